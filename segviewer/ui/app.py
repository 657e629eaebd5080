"""The `segviewer` command: parse the command line, build the window, start the work.

    segviewer [PATH ...] [--server HOST:PORT | --rest URL | --saved-model DIR | --demo]
              [--model NAME] [--version N] [--compare-versions A B] [--screenshot OUT.png]
              [--tls] [--ca-file F] [--cert-file F] [--key-file F] [--header K=V]
              [--timeout S] [--retry-for S] [--max-message-mb MB]
    segviewer --version          (no number: print the app's version and exit)

`--version N` picks the model version, as in segviewer-predict; given alone it prints the
application version. Put image paths before `--version` (a path right after it is read as a number).

Nothing here imports TensorFlow: a SavedModel is only loaded in a worker once the window is up.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from segviewer.core.serving.base import BackendError
from segviewer.core.serving.connection import ConnectionSpec, add_connection_flags

SHOW_APP_VERSION = "show"
SCREENSHOT_TIMEOUT_S = 600
FIRST_PAINT_ENV = "SEGVIEWER_EXIT_ON_FIRST_PAINT"  # benchmarks/gui.py: print epoch time, quit


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segviewer",
        description="Review semantic segmentations: open images, run a model, explore the labels.",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", help="images or folders to open")
    where = add_connection_flags(parser)
    assert where is not None
    where.add_argument("--demo", action="store_true",
                       help="the demo photos with the bundled PASCAL model (version 1 unless "
                       "--version says otherwise)")
    parser.add_argument("--model", metavar="NAME", help="model name (default: the first served)")
    parser.add_argument("--version", nargs="?", const=SHOW_APP_VERSION, metavar="N",
                        help="model version (default: the newest); alone: print the app version")
    parser.add_argument("--compare-versions", nargs=2, type=int, metavar=("A", "B"),
                        help="compare model versions A and B on the images (compare window)")
    parser.add_argument("--screenshot", metavar="OUT.png", help="save a picture of the window "
                        "once loading and inference finish, then exit (1 on any error)")
    return parser


class UsageError(Exception):
    pass


def _check(args: argparse.Namespace) -> tuple[int | None, ConnectionSpec | None]:
    """The model version and connection to use; raises UsageError naming the bad argument and
    the fix."""
    version = None
    if args.version is not None:
        try:
            version = int(args.version)
        except ValueError:
            raise UsageError(f"--version takes a model version number, got '{args.version}' "
                             "(put image paths before --version)") from None
        if version < 1:
            raise UsageError(f"--version must be 1 or more, got {version}")
    for path in args.paths:
        if not Path(path).exists():
            raise UsageError(f"'{path}' does not exist — pass image files or folders")
    if args.saved_model and not Path(args.saved_model).is_dir():
        raise UsageError(f"--saved-model '{args.saved_model}' is not a folder — pass the "
                         "SavedModel folder or its model folder of versions")
    if args.screenshot:
        out = Path(args.screenshot)
        if out.suffix.lower() != ".png":
            raise UsageError(f"--screenshot '{out}' must end in .png")
        if not out.resolve().parent.is_dir():
            raise UsageError(f"--screenshot: folder '{out.resolve().parent}' does not exist")
    if args.demo:
        for flag, wanted in ([("--version", version)] if version else []) + [
                ("--compare-versions", v) for v in args.compare_versions or []]:
            _check_demo_version(flag, wanted)
    if args.compare_versions and not (args.server or args.rest or args.saved_model
                                      or args.demo):
        raise UsageError("--compare-versions needs a model: add --server, --rest, "
                         "--saved-model or --demo")
    if (args.model or version) and not (args.server or args.rest or args.saved_model
                                        or args.demo):
        raise UsageError("--model/--version need a model: add --server, --rest, --saved-model "
                         "or --demo")
    spec = None
    if args.server or args.rest or args.saved_model:
        try:
            spec = ConnectionSpec.from_args(args, (args.model,) if args.model else ())
            spec.check()
        except BackendError as exc:
            raise UsageError(str(exc)) from None
    return version, spec


def _check_demo_version(flag: str, version: int) -> None:
    from segviewer.paths import demo_models_dir

    model = demo_models_dir() / "pascal"
    versions = sorted(int(p.name) for p in model.iterdir() if p.is_dir() and p.name.isdigit())
    if version not in versions:
        raise UsageError(f"{flag} {version}: the demo model has versions "
                         f"{', '.join(map(str, versions))} — pick one of them")


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    args = build_parser().parse_args(argv)
    if args.version == SHOW_APP_VERSION:
        import segviewer

        print(f"segviewer {segviewer.__version__}")
        return 0
    try:
        version, spec = _check(args)
    except UsageError as exc:
        print(f"segviewer: error: {exc}", file=sys.stderr)
        return 2
    bare = not (sys.argv[1:] if argv is None else argv)  # only a bare start restores a session
    return _run(args, version, spec, started, bare)


def _run(args: argparse.Namespace, version: int | None, spec: ConnectionSpec | None,
         started: float, bare: bool = False) -> int:
    from PySide6.QtWidgets import QApplication

    from segviewer.ui.main_window import APP_NAME, MainWindow, app_icon

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(APP_NAME)
    app.setWindowIcon(app_icon())
    window = MainWindow()
    if os.environ.get(FIRST_PAINT_ENV):
        _exit_on_first_paint(app, window, started)

    if args.compare_versions:
        window = _compare_window(args, spec)  # shown instead of the main window
    elif args.demo:
        window.open_demo(images=not args.paths, version=version or 1)
    elif spec is not None:
        window.connect_to(spec, args.model, version)
    if args.paths and not args.compare_versions:
        window.open_paths(args.paths)
    if bare:
        window.restore_session()

    window.show()
    shooter = _ScreenshotWhenIdle(app, window, Path(args.screenshot)) if args.screenshot else None
    code = app.exec()
    del shooter  # kept alive (with its timer) until the loop ends
    return code


def _compare_window(args: argparse.Namespace, spec):
    from segviewer.core.images import find_images
    from segviewer.paths import demo_dir, demo_models_dir
    from segviewer.ui.compare_window import CompareWindow
    from segviewer.ui.dialogs.compare_sources import CompareChoice, SourceChoice

    if args.demo:
        spec = ConnectionSpec("local", str(demo_models_dir()))
    paths = find_images(args.paths or [demo_dir() / "images"])
    a, b = (SourceChoice(spec, args.model, v) for v in args.compare_versions)
    return CompareWindow(CompareChoice(a, b), paths)


def _exit_on_first_paint(app, window, started: float) -> None:
    from PySide6.QtCore import QEvent, QObject

    class FirstPaint(QObject):
        def eventFilter(self, obj, event) -> bool:
            if event.type() == QEvent.Type.Paint and obj is window:
                print(f"first-paint {time.time():.4f} after {time.perf_counter() - started:.4f} s "
                      f"tensorflow-imported={'tensorflow' in sys.modules}", flush=True)
                app.removeEventFilter(self)
                app.quit()
            return False

    app._first_paint = FirstPaint(app)  # keep a reference for the filter's lifetime
    window.installEventFilter(app._first_paint)


class _ScreenshotWhenIdle:
    """Polls until the window has had no work for a few ticks, then saves a grab and exits."""

    TICK_MS, IDLE_TICKS = 100, 3

    def __init__(self, app, window, out: Path) -> None:
        from PySide6.QtCore import QTimer

        self.app, self.window, self.out = app, window, out
        self.idle_ticks = 0
        self.deadline = time.monotonic() + SCREENSHOT_TIMEOUT_S
        self.timer = QTimer()
        self.timer.timeout.connect(self.tick)
        self.timer.start(self.TICK_MS)

    def tick(self) -> None:
        self.idle_ticks = self.idle_ticks + 1 if self.window.idle else 0
        if time.monotonic() > self.deadline:
            self.finish(f"gave up waiting for the work to finish after {SCREENSHOT_TIMEOUT_S} s")
        elif self.idle_ticks >= self.IDLE_TICKS:
            self.finish(self.window.errors[0] if self.window.errors else None)

    def finish(self, error: str | None) -> None:
        self.timer.stop()
        if error is None:
            from segviewer.core.images import save_rgb_png
            from segviewer.ui.canvas import array_from_qimage

            try:
                shot = array_from_qimage(self.window.grab().toImage())
                save_rgb_png(self.out, shot)
                print(f"segviewer: saved {self.out} ({shot.shape[1]}x{shot.shape[0]}) of "
                      f"\"{self.window.windowTitle()}\"")
            except OSError as exc:
                error = f"could not save {self.out}: {exc}"
        if error is not None:
            print(f"segviewer: error: {error}", file=sys.stderr)
        self.window.close()
        self.app.exit(1 if error else 0)


if __name__ == "__main__":
    sys.exit(main())

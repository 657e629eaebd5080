"""What the command-line tools (segviewer-predict, segviewer-review, segviewer-export) share: exit
codes, the one-line usage error, and argument checks that name the flag and the fix."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:  # annotations only: the exporter imports this module without the serving code
    from segviewer.core.serving.base import Backend

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """Bad arguments or an unreachable model: one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line instead of argparse's usage dump
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def run_main(prog: str, run: Callable[[], int], interrupted: str,
             errors: tuple[type[Exception], ...] = ()) -> int:
    """A command's exit code: `run()`'s, 2 with one line for a UsageError or one of `errors`,
    130 with `interrupted` for Ctrl-C (never a traceback for either)."""
    try:
        return run()
    except (UsageError, *errors) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"\n{prog}: {interrupted}", file=sys.stderr)
        return EXIT_INTERRUPTED


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def only_model(backend: Backend, flag: str) -> str:
    """The backend's one model; with none or several, a UsageError asking for `flag`."""
    from segviewer.core.serving.base import BackendError, served_models

    try:
        names = served_models(backend)
    except BackendError as exc:
        raise UsageError(str(exc)) from None
    if not names:
        raise UsageError(f"{backend.description} does not list its models — name one with {flag}")
    if len(names) != 1:
        raise UsageError(f"{backend.description} has models {', '.join(names)} — pick one with "
                         f"{flag}")
    return names[0]


def make_out_dir(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create --out '{out}': {exc.strerror or exc}") from None

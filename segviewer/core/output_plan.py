"""Where each input's outputs go, and the checks that no output replaces an input or another output.

One rule for `segviewer-predict`, the GUI batch export and whoever reads prediction folders: an
input's label map mirrors its path relative to the argument it came from (a file argument: its own
name), with the extension replaced: `<out>/<rel folder>/<stem>.png`, and its overlay
`<stem>_overlay.png` beside it. So one input's outputs never depend on the other inputs.

The checks run as the inputs stream in, in linear time and without listing everything first:

- an input folder that is --out or inside it is refused up front (its images would be replaced);
- an output that is one of the files named explicitly is refused (the only inputs that can lie
  under --out: folders never walk into it and globs skip it);
- two outputs on one path (two stems in one folder, `x.png` against `x_overlay.png`'s label, two
  arguments mirroring the same name) are refused, naming both inputs. Within one argument a
  folder's files arrive together, so a table of that folder's names is enough; across several
  arguments a set of path hashes is kept (about 60 bytes per output).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from segviewer.core.inputs import Input, walk_inputs

OVERLAY_SUFFIX = "_overlay"


class PlanError(Exception):
    """Outputs that would replace an input or each other: one line naming both; exit code 2."""


@dataclass(frozen=True, slots=True)
class Outputs:
    label: Path
    overlay: Path | None = None

    @property
    def paths(self) -> tuple[Path, ...]:
        return (self.label,) if self.overlay is None else (self.label, self.overlay)


def label_relpath(rel: PurePosixPath) -> PurePosixPath:
    """The label map of the input at `rel` (relative to its argument), relative to --out."""
    return rel.with_name(f"{rel.stem}.png")


def overlay_relpath(rel: PurePosixPath) -> PurePosixPath:
    return rel.with_name(f"{rel.stem}{OVERLAY_SUFFIX}.png")


def _real(path: str | Path) -> str:
    return os.path.realpath(path)


def _inside(real: str, folder_real: str) -> bool:
    return real == folder_real or real.startswith(folder_real.rstrip(os.sep) + os.sep)


class OutputPlan:
    """Places each input's outputs under `out` and refuses clashes (PlanError) as inputs arrive.

    `arguments` are the run's inputs as given (files, folders, globs); feed the stream from
    `walk_inputs(arguments, out)` through `place`, in order."""

    def __init__(self, out: Path, arguments: Iterable[str | Path], overlay: bool) -> None:
        self.out = Path(out)
        self.overlay = overlay
        self._out_real = _real(out)
        arguments = [str(a) for a in arguments]
        self._arguments = arguments
        explicit: dict[str, str] = {}  # real path of an explicit file under --out -> as given
        for text in arguments:
            real = _real(text)
            if os.path.isdir(text):
                if _inside(real, self._out_real):
                    raise PlanError(f"input folder '{text}' is inside --out '{out}': its images "
                                    "would be mixed with (or replaced by) the outputs — pick an "
                                    "--out outside the inputs")
            elif os.path.lexists(text) and _inside(real, self._out_real):
                explicit[real] = text
        self._explicit = explicit
        self._group: tuple[int, PurePosixPath] | None = None
        self._names: dict[str, Path] = {}  # output name in the current folder -> its input
        # Several arguments can mirror onto the same names; one set of hashes catches that.
        self._everywhere: dict[int, int] | None = {} if len(arguments) > 1 else None

    def place(self, item: Input) -> Outputs:
        rel_label = label_relpath(item.rel)
        rel_overlay = overlay_relpath(item.rel) if self.overlay else None
        outputs = Outputs(self.out / rel_label,
                          self.out / rel_overlay if rel_overlay is not None else None)
        if self._explicit:
            for path, rel in zip(outputs.paths, (rel_label, rel_overlay), strict=False):
                found = self._explicit.get(os.path.join(self._out_real, *rel.parts))
                if found is not None:
                    raise PlanError(f"output '{path}' of '{item.path}' would replace the input "
                                    f"'{found}' — pick another --out")
        group = (item.argument, item.rel.parent)
        if group != self._group:
            self._group, self._names = group, {}
        names = [rel_label.name] + ([rel_overlay.name] if rel_overlay is not None else [])
        for name, path in zip(names, outputs.paths, strict=True):
            other = self._names.get(name)
            if other is not None:
                raise PlanError(f"'{item.path}' and '{other}' would both write '{path}' — rename "
                                "one, or run them separately with different --out folders")
        for name in names:
            self._names[name] = item.path
        if self._everywhere is not None:
            for rel, path in zip((rel_label, rel_overlay), outputs.paths, strict=False):
                key = hash(rel.as_posix())  # 64-bit: a false clash is ~1e-8 at a million outputs
                argument = self._everywhere.get(key)
                if argument is not None and argument != item.argument:
                    raise PlanError(f"'{item.path}' and an input of '{self._arguments[argument]}'"
                                    f" would both write '{path}' — run them separately with "
                                    "different --out folders")
                self._everywhere[key] = item.argument
        return outputs


def check_plan(arguments: Iterable[str | Path], out: Path, overlay: bool) -> None:
    """Place every input at once, raising PlanError on the first clash: for callers that hold the
    whole list anyway (the GUI), so a clash is refused before anything is sent."""
    arguments = list(arguments)
    plan = OutputPlan(out, arguments, overlay)
    for item in walk_inputs(arguments, out):
        plan.place(item)

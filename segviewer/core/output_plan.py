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
  arguments mirroring the same name) are refused, naming both inputs, when the first of them is
  placed. A walked folder's inputs carry its sorted listing, where same-stem neighbours are
  found by bisection (no table of names, so a flat million-file folder costs nothing more); the
  files of one file or glob argument arrive together and are checked against a table of their
  names; across several arguments a table of path hashes is kept (about 60 bytes per output).
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from segviewer.core.inputs import Input, is_image_name, walk_inputs

OVERLAY_SUFFIX = "_overlay"


class PlanError(Exception):
    """Outputs that would replace an input or each other: one line naming both; exit code 2."""


@dataclass(frozen=True, slots=True)
class Outputs:
    """One input's outputs: `out` (with its trailing separator) and posix paths relative to it."""

    out: str
    label_rel: str
    overlay_rel: str | None = None

    @property
    def label(self) -> Path:
        return Path(self.out + self.label_rel)

    @property
    def overlay(self) -> Path | None:
        return Path(self.out + self.overlay_rel) if self.overlay_rel is not None else None

    @property
    def paths(self) -> tuple[Path, ...]:
        overlay = self.overlay
        return (self.label,) if overlay is None else (self.label, overlay)

    @property
    def folder(self) -> str:
        return self.out + self.label_rel[:self.label_rel.rfind("/") + 1]


def _stem(rel: str) -> str:
    """`rel` without its extension (`os.path.splitext`'s rule, without its cost per call)."""
    slash = rel.rfind("/")
    dot = rel.rfind(".")
    return rel[:dot] if dot > slash + 1 else rel


def label_relpath(rel: str) -> str:
    """The label map of the input at `rel` (posix, relative to its argument), relative to --out:
    `a/b/photo.jpg` -> `a/b/photo.png`."""
    return _stem(rel) + ".png"


def overlay_relpath(rel: str) -> str:
    return _stem(rel) + OVERLAY_SUFFIX + ".png"


def _real(path: str | Path) -> str:
    return os.path.realpath(path)


def _inside(real: str, folder_real: str) -> bool:
    return real == folder_real or real.startswith(folder_real.rstrip(os.sep) + os.sep)


class OutputPlan:
    """Places each input's outputs under `out` and refuses clashes (PlanError) as inputs arrive.

    `arguments` are the run's inputs as given (files, folders, globs); feed the stream from
    `walk_inputs(arguments, out)` through `place`, in order."""

    def __init__(self, out: Path, arguments: Iterable[str | Path], overlay: bool) -> None:
        self.overlay = overlay
        self._out = os.path.join(str(out), "")
        out_real = os.path.join(_real(out), "")
        arguments = [str(a) for a in arguments]
        self._arguments = arguments
        explicit: dict[str, str] = {}  # real path of an explicit file under --out -> as given
        for text in arguments:
            real = _real(text)
            if os.path.isdir(text):
                if _inside(real, out_real.rstrip(os.sep)):
                    raise PlanError(f"input folder '{text}' is inside --out '{out}': its images "
                                    "would be mixed with (or replaced by) the outputs — pick an "
                                    "--out outside the inputs")
            elif os.path.lexists(text) and _inside(real, out_real.rstrip(os.sep)):
                explicit[real[len(out_real):]] = text  # keyed relative to --out
        self._explicit = explicit
        self._group: int | None = None
        self._names: dict[str, str] = {}  # output of the current file argument -> its input
        # Several arguments can mirror onto the same names; one table of hashes catches that.
        self._everywhere: dict[int, int] | None = {} if len(arguments) > 1 else None

    def place(self, item: Input) -> Outputs:
        stem = _stem(item.rel)
        rels = [stem + ".png"] + ([stem + OVERLAY_SUFFIX + ".png"] if self.overlay else [])
        if self._explicit:
            for rel in rels:
                found = self._explicit.get(rel)
                if found is not None:
                    raise PlanError(f"output '{self._out}{rel}' of '{item.name}' would replace "
                                    f"the input '{found}' — pick another --out")
        if item.siblings is not None:
            self._check_folder(item, stem)
        else:
            if item.argument != self._group:  # a file or glob argument's files arrive together
                self._group, self._names = item.argument, {}
            for rel in rels:
                other = self._names.get(rel)
                if other is not None:
                    raise self._clash(item.name, other, rel)
            for rel in rels:
                self._names[rel] = item.name
        if self._everywhere is not None:
            for rel in rels:
                key = hash(rel)  # 64-bit: a false clash is ~1e-8 at a million outputs
                argument = self._everywhere.setdefault(key, item.argument)
                if argument != item.argument:
                    raise PlanError(f"'{item.name}' and an input of '{self._arguments[argument]}'"
                                    f" would both write '{self._out}{rel}' — run them separately "
                                    "with different --out folders")
        return Outputs(self._out, rels[0], rels[1] if self.overlay else None)

    def _check_folder(self, item: Input, stem: str) -> None:
        """Same-stem siblings (one label), and with overlays `s` against `s_overlay` (one's
        overlay is the other's label), looked up in the folder's sorted listing."""
        folder, base = stem[:stem.rfind("/") + 1], stem[stem.rfind("/") + 1:]
        name = item.rel[len(folder):]
        targets = [(base, base + ".png")]
        if self.overlay:
            targets.append((base + OVERLAY_SUFFIX, base + OVERLAY_SUFFIX + ".png"))
            if base.endswith(OVERLAY_SUFFIX):
                targets.append((base[:-len(OVERLAY_SUFFIX)], base + ".png"))
        siblings = item.siblings
        assert siblings is not None
        for target, output in targets:
            prefix = os.fsencode(target + ".")
            at = bisect_left(siblings, prefix)
            while at < len(siblings) and siblings[at].startswith(prefix):
                other = os.fsdecode(siblings[at])
                if other != name and _stem(other) == target and is_image_name(other):
                    sibling = item.name[:len(item.name) - len(name)] + other
                    raise self._clash(item.name, sibling, folder + output)
                at += 1

    def _clash(self, one: str, other: str, rel: str) -> PlanError:
        return PlanError(f"'{one}' and '{other}' would both write '{self._out}{rel}' — rename "
                         "one, or run them separately with different --out folders")


def check_plan(arguments: Iterable[str | Path], out: Path, overlay: bool) -> None:
    """Place every input at once, raising PlanError on the first clash: for callers that hold the
    whole list anyway (the GUI), so a clash is refused before anything is sent."""
    arguments = list(arguments)
    plan = OutputPlan(out, arguments, overlay)
    for item in walk_inputs(arguments, out):
        plan.place(item)

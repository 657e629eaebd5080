"""What the compare window runs in its workers (plain functions, no widgets) and the pictures it
draws from their results: the sources' identities, the review run, each image's colour layers."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segviewer.core.images import load_image
from segviewer.core.labels import Palette, colorize_rgba
from segviewer.core.overlay import disagreement, disagreement_image
from segviewer.core.palettes import palette_for
from segviewer.core.prediction_source import PredictionFolder, PredictionFolderError
from segviewer.core.report import write_report
from segviewer.core.review import (
    ImageResult,
    ReviewOptions,
    ReviewSession,
    Side,
    Source,
    SourceInfo,
    draw_review_sample,
    resolve_side,
    run_review,
)
from segviewer.core.serving.base import Backend, ModelRef, served_models
from segviewer.ui.dialogs.compare_sources import CompareChoice, SourceChoice
from segviewer.ui.workers import TaskState


def _source(backend: Backend | None, side: SourceChoice, name: str) -> Side:
    if side.predictions:
        try:
            return PredictionFolder(side.predictions)
        except PredictionFolderError as exc:
            raise ValueError(f"model {name}: {exc}") from None
    assert backend is not None  # a model side always has its backend
    model = side.model
    if model is None:
        models = served_models(backend)
        if not models:
            raise ValueError(f"model {name}: {backend.description} does not list its models — "
                             "give the model name")
        model = models[0]
    return Source(backend, ModelRef(model, side.version))


def compare(state: TaskState, choice: CompareChoice, current: Backend | None,
            paths: list[Path], cancel: threading.Event,
            owned: list[Backend]) -> ReviewSession:
    """Open the sources (one backend per distinct connection), say which models they are, then
    run the review. Partial results: the (SourceInfo A, SourceInfo B) pair first, then each
    ImageResult as it is made. The backends opened here go into `owned` for the window to close
    (at once, on failure)."""
    opened: dict[object, Backend] = {}
    try:
        backends: list[Backend | None] = []
        for name, side in (("A", choice.a), ("B", choice.b)):
            if side.predictions:
                backends.append(None)
                continue
            if side.spec is None:
                if current is None:
                    raise ValueError(f"model {name}: the window has no connection — choose "
                                     "another server or a SavedModel folder")
                backends.append(current)
                continue
            if side.spec not in opened:
                opened[side.spec] = side.spec.open()
                owned.append(opened[side.spec])
            backends.append(opened[side.spec])
        a = _source(backends[0], choice.a, "A")
        b = _source(backends[1], choice.b, "B")
        # Results stream in before the session: the panes name their models from the start
        # (the fingerprints, which may hash a whole SavedModel, come with the session).
        (info_a, meta_a), (info_b, meta_b) = (resolve_side("A", a, fingerprinted=False),
                                              resolve_side("B", b, fingerprinted=False))
        state.partial((info_a, info_b))
        meta = meta_a or meta_b
        options = ReviewOptions(
            gt_dir=Path(choice.gt_dir) if choice.gt_dir else None,
            gt_palette=palette_for(meta) if choice.gt_colored and meta else None,
            ignore_label=choice.ignore_label,
            workers=1 if meta else 4)  # prediction folders only: reading PNGs, no model
        sample = draw_review_sample(paths, choice.sample, a, b, options) if choice.sample \
            else None
        return run_review(a, b, sample.chosen if sample else paths, options, state.progress,
                          cancel, state.partial, sample)
    except BaseException:
        for backend in opened.values():
            backend.close()
            owned.remove(backend)
        raise


@dataclass
class Views:
    """What the canvases show for one image: the photo, A's and B's colours, the diff map."""

    key: str
    image: np.ndarray
    rgba_a: np.ndarray
    rgba_b: np.ndarray
    diff: np.ndarray
    diff_mask: np.ndarray


def views(state: TaskState, result: ImageResult, palette: Palette) -> Views:
    image = load_image(result.path)
    a, b = result.labels_a, result.labels_b
    return Views(result.key, image, colorize_rgba(a, palette), colorize_rgba(b, palette),
                 disagreement_image(image, a, b), disagreement(a, b)[0])


def report(state: TaskState, session: ReviewSession, out_dir: Path, verdicts,
           sort) -> tuple[Path, Path]:
    return write_report(session, out_dir, verdicts, sort)


def source_name(info: SourceInfo | None) -> str:
    """Model and version first: the backend (often a long path) may be cut off."""
    if info is None:
        return "(opening the model…)"
    version = f" v{info.version}" if info.version is not None else ""
    return f"{info.model}{version}  ·  {info.backend}"


def swiped(rgba_a: np.ndarray, rgba_b: np.ndarray, percent: int) -> np.ndarray:
    """A's colours left of the divider at `percent` of the width, B's right of it, and the
    divider itself as a white line two pixels wide."""
    x = round(rgba_a.shape[1] * percent / 100)
    out = np.concatenate([rgba_a[:, :x], rgba_b[:, x:]], axis=1)
    out[:, max(0, x - 1): x + 1] = 255
    return out

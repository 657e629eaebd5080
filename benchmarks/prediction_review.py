"""A large QA review from precomputed predictions against running the models, in the same run.

Set-up (not timed): N small images (64x48), their ground truth, and two prediction folders of label
PNGs carrying the provenance segviewer-predict records (PNG text chunk `segviewer`).

Measured:
- core: `run_review` on the two prediction folders with ground truth (every image hashed, both
  label maps and the ground truth read, agreement, confusion matrices), then the worst-first sort;
- GUI (unless --no-gui): the compare window on the same folders, from opening until the whole
  queue is sorted worst first and shown (results stream in, with progress, in the background);
- baseline: `run_review` running the two demo models in-process (v1 single scale, v2 multi-scale
  with flipping) on the first --model-images of the same images; its per-image time is scaled to
  N, as running 5,000 images through them would take hours.

Printed: seconds for each and the ratio baseline / prediction-folder review.

    .venv/bin/python benchmarks/prediction_review.py [--images 5000] [--model-images 8]
        [--workers 4] [--no-gui]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from segviewer.core.images import encode_png
from segviewer.core.prediction_source import PredictionFolder
from segviewer.core.provenance import Provenance
from segviewer.core.provenance import write as write_provenance
from segviewer.core.review import ReviewOptions, SortKey, Source, run_review
from segviewer.core.serving.base import ModelRef
from segviewer.core.serving.local_backend import LocalBackend
from segviewer.paths import demo_models_dir

H, W, CLASSES = 48, 64, 21


def make_set(root: Path, count: int, fingerprints: tuple[str, str]) -> tuple[list[Path], Path,
                                                                             Path, Path]:
    """Images, ground truth and A's/B's predictions: blocks of a few classes per image, B
    disagreeing with A on a varying share of pixels."""
    rng = np.random.default_rng(0)
    folders = [root / name for name in ("images", "gt", "pred_a", "pred_b")]
    for folder in folders:
        folder.mkdir()
    for i in range(count):
        name = f"img{i:05d}"
        classes = rng.choice(CLASSES, size=3, replace=False)
        gt = np.full((H, W), classes[0], np.uint8)
        gt[:, W // 3:] = classes[1]
        gt[H // 2:, 2 * W // 3:] = classes[2]
        image = (rng.integers(0, 40, (H, W, 3)) + gt[..., None] * 10).astype(np.uint8)
        Image.fromarray(image).save(folders[0] / f"{name}.png")
        Image.fromarray(gt).save(folders[1] / f"{name}.png")
        for side, (folder, fingerprint) in enumerate(zip(folders[2:], fingerprints,
                                                         strict=True)):
            pred = gt.copy()
            wrong = rng.random((H, W)) < (0.02 + 0.3 * rng.random() * side)
            pred[wrong] = rng.integers(0, CLASSES, int(wrong.sum()))
            made = Provenance("pascal", side + 1, "serving_default", "gRPC farm:8500",
                              fingerprint)
            (folder / f"{name}.png").write_bytes(write_provenance(encode_png(pred), made))
    return sorted(folders[0].glob("*.png")), folders[1], folders[2], folders[3]


def review_folders(images, gt, pred_a, pred_b, workers: int) -> float:
    start = time.perf_counter()
    session = run_review(PredictionFolder(pred_a), PredictionFolder(pred_b), images,
                         ReviewOptions(gt_dir=gt, workers=workers))
    worst = session.sorted(SortKey.MIOU_DROP)
    seconds = time.perf_counter() - start
    assert len(worst) == len(images) and not session.failures, session.failures[:1]
    return seconds


def review_gui(images, gt, pred_a, pred_b) -> float:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QCoreApplication, QSettings
    from PySide6.QtWidgets import QApplication

    from segviewer.ui.compare_window import CompareWindow
    from segviewer.ui.dialogs.compare_sources import CompareChoice, SourceChoice

    app = QApplication.instance() or QApplication([])
    settings = QSettings(str(Path(tempfile.mkdtemp()) / "s.ini"), QSettings.Format.IniFormat)
    choice = CompareChoice(SourceChoice(predictions=str(pred_a)),
                           SourceChoice(predictions=str(pred_b)), str(gt))
    start = time.perf_counter()
    window = CompareWindow(choice, images, settings=settings)
    window.show()
    while not (window.session is not None and window.idle
               and window.review.queue.count() == len(images)):
        QCoreApplication.processEvents()
        time.sleep(0.005)
        if time.perf_counter() - start > 600:
            raise TimeoutError(f"the compare window did not finish: {window.errors}")
    seconds = time.perf_counter() - start
    assert not window.errors, window.errors
    window.close()
    app.processEvents()
    return seconds


def run_models(images, gt, count: int) -> float:
    """Seconds per image for both demo models in-process (after loading them)."""
    local = LocalBackend(demo_models_dir() / "pascal")
    a, b = Source(local, ModelRef("pascal", 1)), Source(local, ModelRef("pascal", 2))
    run_review(a, b, images[:1], ReviewOptions(gt_dir=gt))  # load both, trace
    start = time.perf_counter()
    session = run_review(a, b, images[:count], ReviewOptions(gt_dir=gt, workers=1))
    seconds = time.perf_counter() - start
    assert not session.failures, session.failures[:1]
    local.close()
    return seconds / count


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=5000)
    p.add_argument("--model-images", type=int, default=8)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--no-gui", action="store_true")
    args = p.parse_args()
    if not (demo_models_dir() / "pascal" / "2" / "saved_model.pb").is_file():
        print("the demo models are needed for the baseline (resources/demo/models/pascal)",
              file=sys.stderr)
        return 2
    local = LocalBackend(demo_models_dir() / "pascal")
    from segviewer.core.fingerprint import fingerprint

    fps = tuple(str(fingerprint(local, ModelRef("pascal", v))) for v in (1, 2))
    with tempfile.TemporaryDirectory(prefix="segviewer-bench-") as tmp:
        t = time.perf_counter()
        images, gt, pred_a, pred_b = make_set(Path(tmp), args.images, fps)
        print(f"set-up: {args.images} images {W}x{H}, ground truth, two prediction folders "
              f"({time.perf_counter() - t:.1f} s, not timed)")
        core = review_folders(images, gt, pred_a, pred_b, args.workers)
        print(f"prediction folders, core run_review + sort: {core:.2f} s "
              f"({1000 * core / args.images:.2f} ms/image)")
        gui = None
        if not args.no_gui:
            gui = review_gui(images, gt, pred_a, pred_b)
            print(f"prediction folders, compare window open -> queue sorted: {gui:.2f} s")
        per_image = run_models(images, gt, args.model_images)
        baseline = per_image * args.images
        print(f"running both demo models in-process: {per_image:.3f} s/image on "
              f"{args.model_images} images -> {baseline:.0f} s for {args.images}")
        print(f"ratio (models / prediction folders, core): {baseline / core:.0f}x")
        if gui is not None:
            print(f"ratio (models / prediction folders, GUI): {baseline / gui:.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

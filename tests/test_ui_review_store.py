"""The compare window and the review store: a verdict made in the GUI with the models in-process
shows when the same versions are compared over gRPC (the stand-in server) and when they are read
from prediction folders, with every reviewer's verdict; and nothing goes into the image folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QFileDialog
from review_data import (
    review_images,
    rule_a,
    rule_b,
    write_predictions,
    write_review_set,
)

from segviewer.core.review import Verdict
from segviewer.core.serving.connection import ConnectionSpec
from segviewer.ui.compare_window import CompareWindow
from segviewer.ui.dialogs.compare_sources import CompareChoice, SourceChoice
from segviewer.ui.review_store_menu import REVIEWER_SETTING

WAIT_MS = 120_000


@pytest.fixture
def models(review_models) -> Path:
    return review_models


def open_compare(qtbot, choice: CompareChoice, paths: list[Path]) -> CompareWindow:
    window = CompareWindow(choice, paths)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.session is not None and window.idle, timeout=WAIT_MS)
    assert not window.errors, window.errors
    return window


def test_a_gui_verdict_shows_over_grpc_and_from_prediction_folders(qtbot, models, tmp_path,
                                                                   start_tf_serving, monkeypatch):
    images_dir, gt = write_review_set(tmp_path / "set")
    paths = sorted(images_dir.glob("*.png"))
    before = sorted(p.name for p in images_dir.iterdir())
    QSettings().setValue(REVIEWER_SETTING, "ann")
    local = ConnectionSpec("local", str(models / "seg"))
    window = open_compare(qtbot, CompareChoice(SourceChoice(local, version=1),
                                               SourceChoice(local, version=2), str(gt)), paths)
    window.review.select("right.png")
    window.review.note.setText("sky on the road")
    qtbot.keyClick(window, Qt.Key.Key_2)
    fingerprints = (window.session.a.fingerprint, window.session.b.fingerprint)

    # Write Report starts in a folder that exists, and not the image folder.
    starts = []
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        lambda _parent, _title, start: starts.append(start) or "")
    window.report_dialog()
    assert Path(starts[0]).is_dir() and Path(starts[0]) != images_dir
    window.close()

    server = start_tf_serving(models, versions={"seg": [1, 2]})
    grpc = ConnectionSpec("grpc", server.grpc_address, models=("seg",))
    QSettings().setValue(REVIEWER_SETTING, "bob")
    remote = open_compare(qtbot, CompareChoice(SourceChoice(grpc, "seg", 1),
                                               SourceChoice(grpc, "seg", 2)), paths)
    assert (remote.session.a.fingerprint, remote.session.b.fingerprint) == fingerprints
    assert remote.review.verdict("right.png") is None  # bob has not judged it
    remote.review.select("right.png")
    assert "ann: Fail — sky on the road" in remote.review.queue.currentItem().text()
    qtbot.keyClick(remote, Qt.Key.Key_1)
    assert remote.review.verdict_text("right.png") == \
        "ann: Fail — sky on the road; you: Pass"
    remote.close()

    arrays = review_images()
    pred_a = write_predictions(tmp_path / "pa", arrays, rule_a, 1, str(fingerprints[0]))
    pred_b = write_predictions(tmp_path / "pb", arrays, rule_b, 2, str(fingerprints[1]))
    offline = open_compare(qtbot, CompareChoice(SourceChoice(predictions=str(pred_a)),
                                                SourceChoice(predictions=str(pred_b)), str(gt)),
                           paths)
    assert offline.session.a.backend.startswith("predictions ")
    assert [(e.reviewer, e.verdict) for e in offline.review.store.all("right.png")] == [
        ("ann", Verdict.FAIL), ("bob", Verdict.PASS)]
    assert offline.review.keys()[0] == "right.png"  # worst first, as with the models
    result = offline.session.result("right.png")
    assert np.array_equal(result.labels_b, rule_b(arrays["right"]))
    offline.close()
    assert sorted(p.name for p in images_dir.iterdir()) == before


def test_store_menu_switches_store_and_reviewer_and_imports(qtbot, models, tmp_path):
    images_dir, _ = write_review_set(tmp_path / "set")
    paths = sorted(images_dir.glob("*.png"))
    local = ConnectionSpec("local", str(models / "seg"))
    window = open_compare(qtbot, CompareChoice(SourceChoice(local, version=1),
                                               SourceChoice(local, version=2)), paths)
    panel = window.review
    panel.select("left.png")
    qtbot.keyClick(window, Qt.Key.Key_1)
    shared = tmp_path / "shared" / "team.sqlite3"
    shared.parent.mkdir()
    panel.use_store(str(shared))
    assert panel.store.path == shared and panel.verdict("left.png") is None  # a new store
    assert QSettings().value("review/store") == str(shared)
    panel.set_reviewer("dora")
    qtbot.keyClick(window, Qt.Key.Key_2)
    assert [(e.reviewer, e.verdict) for e in panel.store.all("left.png")] == [
        ("dora", Verdict.FAIL)]
    assert "reviewing as dora" in panel.counts.text() and str(shared) in panel.counts.text()
    legacy = images_dir / ".segviewer-review.json"
    legacy.write_text('{"reviews": {"x": {"a": "seg v1 (here)", "b": "seg v2 (there)", '
                      '"verdicts": {"same.png": {"verdict": "pass"}}}}}')
    panel.set_store(panel.store)
    assert "left verdicts in .segviewer-review.json: Store ▾ › Import" in panel.counts.text()
    assert panel.import_legacy(legacy) == 1
    assert "you: Pass" in panel.verdict_text("same.png")
    panel.use_store("")  # back to the default store: the first verdict is there
    assert panel.store.path != shared
    assert [e.verdict for e in panel.store.all("left.png")] == [Verdict.PASS]
    window.close()


def test_model_tab_shows_the_fingerprint(qtbot, models):
    from segviewer.core.fingerprint import fingerprint
    from segviewer.core.serving.base import ModelRef
    from segviewer.core.serving.local_backend import LocalBackend
    from segviewer.ui.model_panel import ModelInfo

    backend = LocalBackend(models)
    meta = backend.metadata(ModelRef("seg", 1))
    info = ModelInfo()
    qtbot.addWidget(info)
    info.set_metadata(backend.description, meta)
    fp = fingerprint(backend, ModelRef("seg", 1))
    assert f"Fingerprint: content:{fp.digest[:16]}" in info.toPlainText()


def test_sources_dialog_takes_prediction_folders(qtbot, tmp_path):
    from segviewer.ui.dialogs.compare_sources import PREDICTIONS, CompareSourcesDialog

    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    dialog = CompareSourcesDialog(None, settings, "in-process models", "seg", [1, 2])
    qtbot.addWidget(dialog)
    dialog.box_a.kind.setCurrentIndex(PREDICTIONS)
    assert not dialog.box_a.model.isEnabled() and not dialog.box_a.version.isEnabled()
    with pytest.raises(ValueError, match=r"Model A.*prediction folder"):
        dialog.choice()
    (tmp_path / "labels_v1").mkdir()
    dialog.box_a.predictions.setText(str(tmp_path / "labels_v1"))
    choice = dialog.choice()
    assert choice.a == SourceChoice(predictions=str(tmp_path / "labels_v1"))
    assert choice.b == SourceChoice(None, "seg")


def test_a_spot_check_from_the_dialog_runs_and_is_reported(qtbot, models, tmp_path):
    from segviewer.core.sampling import SampleSpec
    from segviewer.ui.dialogs.compare_sources import CompareSourcesDialog

    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    dialog = CompareSourcesDialog(None, settings, "in-process models", "seg", [1, 2])
    qtbot.addWidget(dialog)
    assert dialog.choice().sample is None and not dialog.seed.isEnabled()
    dialog.sample.setChecked(True)
    dialog.sample_size.setValue(2)
    dialog.seed.setValue(5)
    dialog.per_class.setValue(1)
    assert dialog.choice().sample == SampleSpec(2, 5, 1)

    images_dir, gt = write_review_set(tmp_path / "set")
    paths = sorted(images_dir.glob("*.png"))
    local = ConnectionSpec("local", str(models / "seg"))
    choice = CompareChoice(SourceChoice(local, version=1), SourceChoice(local, version=2),
                           str(gt), sample=SampleSpec(2, 5, 1))
    window = open_compare(qtbot, choice, paths)
    sample = window.session.sample
    assert sample is not None and len(window.session.results) == 2
    assert sample.describe() == ("2 of 3 images, seed 5, at least 1 per class present "
                                 "(stratified by ground truth)")
    again = open_compare(qtbot, choice, paths)
    assert [r.key for r in again.session.results] == [r.key for r in window.session.results]
    window.write_report(tmp_path / "report")
    qtbot.waitUntil(lambda: window.report_paths is not None, timeout=WAIT_MS)
    assert "sample: 2 of 3 images, seed 5" in window.report_paths[0].read_text(encoding="utf-8")
    window.close()
    again.close()

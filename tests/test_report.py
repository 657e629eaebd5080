"""The review report: HTML parsed back (sections, tables, embedded PNGs checked pixel by pixel) and
the CSV read with the csv module, on the exact two-model set of review_data."""

from __future__ import annotations

import base64
import csv
import io
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image
from review_data import A, B, rule_a, rule_b, write_review_set

from segviewer.core.labels import colorize
from segviewer.core.overlay import DIFF_COLOR, blend
from segviewer.core.report import (
    CSV_COLUMNS,
    confusion_heatmap,
    row_normalized,
    write_report,
)
from segviewer.core.review import ReviewOptions, SessionVerdicts, Source, Verdict, run_review
from segviewer.core.review_store import ReviewStore
from segviewer.core.sampling import SampleSpec, draw_sample
from segviewer.core.serving.local_backend import LocalBackend

NAVY, WHITE = (8, 48, 107), (255, 255, 255)


class Page(HTMLParser):
    """Sections by id, every <img> (alt, decoded pixels) with the section it is in, and the text
    of each table row per section."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.images: list[tuple[str, str, np.ndarray]] = []
        self.rows: dict[str, list[list[str]]] = {}
        self.external: list[str] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section":
            self.sections.append(a["id"])
        elif tag == "img":
            src = a["src"] or ""
            if not src.startswith("data:image/png;base64,"):
                self.external.append(src)
                return
            png = base64.b64decode(src.split(",", 1)[1])
            pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
            self.images.append((self.sections[-1], a["alt"] or "", pixels))
        elif tag in ("link", "script", "a") and (a.get("href") or a.get("src")):
            self.external.append(a.get("href") or a.get("src") or "")
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.setdefault(self.sections[-1], []).append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def local(review_models) -> LocalBackend:
    return LocalBackend(review_models)


@pytest.fixture
def reviewed(local, tmp_path):
    images, gt = write_review_set(tmp_path)
    (images / "broken.png").write_bytes(b"not a png")
    (images / "extra.png").write_bytes((images / "same.png").read_bytes())
    sample = draw_sample(sorted(images.glob("*.png")), SampleSpec(4, seed=3))
    assert [p.name for p in sample.chosen] == ["broken.png", "left.png", "right.png", "same.png"]
    session = run_review(Source(local, A), Source(local, B), sample.chosen,
                         ReviewOptions(gt_dir=gt), sample=sample)
    store = SessionVerdicts(ReviewStore(tmp_path / "store.sqlite3"), session, "ann")
    store.set("right.png", Verdict.FAIL, 'road → sky, "bad"')
    store.set("left.png", Verdict.PASS)
    SessionVerdicts(store.store, session, "bob").set("right.png", Verdict.NEEDS_LOOK)
    store.refresh()
    return session, store, images


def test_html_report_sections_tables_and_pictures(reviewed, tmp_path):
    session, store, images = reviewed
    html_path, _ = write_report(session, tmp_path / "out", store.verdicts, worst=2)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["metrics.csv", "report.html"]
    text = html_path.read_text(encoding="utf-8")
    page = Page(text)
    assert page.sections == ["sources", "overview", "classes", "confusion", "worst", "images",
                             "failures"]
    assert page.external == []  # self-contained
    assert session.a.backend in text and session.created.strftime("%Y-%m-%d") in text
    header, model_a, model_b, *facts = page.rows["sources"]
    assert header[1:4] == ["model", "version", "fingerprint"]
    assert model_a[1:4] == ["seg", "1", f"content:{session.a.fingerprint.digest[:16]}"]
    assert model_b[1:4] == ["seg", "2", f"content:{session.b.fingerprint.digest[:16]}"]
    stated = dict(facts)
    assert stated["selection"] == "sample: 4 of 5 images, seed 3, random"
    assert stated["reviewers"] == "ann, bob"

    overview = {row[0]: row[1] for row in page.rows["overview"]}
    assert overview["images compared"] == "3" and overview["images failed"] == "1"
    assert overview["pixels where A and B agree"] == f"{100 * 78 / 90:.2f}%"
    assert overview["pixel accuracy A / B"] == f"{100 * 78 / 79:.2f}% / {100 * 66 / 79:.2f}%"
    assert overview["verdicts (consensus per image)"] == \
        "1 pass, 1 fail, 0 needs-look, 0 fixed · 1 not reviewed"

    header, *classes = page.rows["classes"]
    assert header == ["id", "class", "share A", "share B", "Δ share", "IoU A", "IoU B", "Δ IoU"]
    assert [row[1] for row in classes] == ["background", "road", "tree", "sky"]
    road = classes[1]  # 40 pixels of 90 for A, 30 for B; IoU 1 and 0.75
    assert road[2:] == ["44.44%", "33.33%", "-11.11", "100.00%", "75.00%", "-25.00"]
    assert 'style="background:#4682b4"' in text  # sky's swatch (70, 130, 180)

    confusion = [(alt, px) for section, alt, px in page.images if section == "confusion"]
    assert [alt for alt, _ in confusion] == ["confusion matrix A", "confusion matrix B"]
    cell, margin = 28, 30

    def at(px: np.ndarray, gt: int, pred: int) -> tuple[int, ...]:
        return tuple(px[margin + gt * cell + cell // 2, margin + pred * cell + cell // 2])

    heat_a, heat_b = confusion[0][1], confusion[1][1]
    assert heat_a.shape == (margin + 4 * cell, margin + 4 * cell, 3)
    assert at(heat_a, 1, 1) == NAVY and at(heat_a, 1, 3) == WHITE  # road all right in A
    expected = np.rint(np.array(WHITE) + (np.array(NAVY) - WHITE) * 0.75)
    assert at(heat_b, 1, 1) == tuple(expected) and at(heat_b, 2, 3) == NAVY

    worst = [(alt, px) for section, alt, px in page.images if section == "worst"]
    assert len(worst) == 8  # two images, four panels each: mIoU drop puts right before left
    assert [alt.split(":")[0] for alt, _ in worst] == ["right.png"] * 4 + ["left.png"] * 4
    image = np.asarray(Image.open(images / "right.png"))
    shown, over_a, over_b, diff = (px for _, px in worst[:4])
    assert np.array_equal(shown, image)
    assert np.array_equal(over_a, blend(image, colorize(rule_a(image), session.palette)[0], 0.5))
    assert np.array_equal(over_b, blend(image, colorize(rule_b(image), session.palette)[0], 0.5))
    assert np.array_equal(np.all(diff == DIFF_COLOR, axis=-1), rule_a(image) != rule_b(image))
    assert "verdicts: ann: fail — road → sky, &quot;bad&quot;; bob: needs-look" in text
    assert "broken.png" in text.split('id="failures"')[1]


def test_thumbnails_are_small_and_keep_label_edges(local, tmp_path):
    folder = tmp_path / "big"
    folder.mkdir()
    image = np.zeros((600, 900, 3), np.uint8)
    image[:, 450:, 0] = 200  # A: class 0 | class 3
    image[:300, :, 1] = 255  # B: class 3 in the top half
    Image.fromarray(image).save(folder / "big.png")
    session = run_review(Source(local, A), Source(local, B), [folder / "big.png"])
    html_path, _ = write_report(session, tmp_path / "out")
    page = Page(html_path.read_text(encoding="utf-8"))
    assert "confusion" not in page.sections  # no ground truth, no matrices or IoU columns
    assert page.rows["classes"][0] == ["id", "class", "share A", "share B", "Δ share"]
    panels = [px for section, _, px in page.images if section == "worst"]
    assert [p.shape for p in panels] == [(171, 256, 3)] * 4
    diff = np.all(panels[3] == DIFF_COLOR, axis=-1)
    assert diff[:86, :128].all() and not diff[86:].any() and not diff[:, 128:].any()


def test_csv_rows(reviewed, tmp_path):
    session, store, _ = reviewed
    _, csv_path = write_report(session, tmp_path / "out", store.verdicts)
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
        rows = {row["image"]: row for row in reader}
    assert list(rows) == ["broken.png", "left.png", "right.png", "same.png"]  # input order
    left, right, same = rows["left.png"], rows["right.png"], rows["same.png"]
    assert float(left["agreement_pct"]) == 95.0
    assert float(left["pixel_acc_a_pct"]) == pytest.approx(100 * 38 / 39, abs=1e-4)
    assert float(left["pixel_acc_b_pct"]) == pytest.approx(100 * 36 / 39, abs=1e-4)
    assert float(left["miou_a_pct"]) == pytest.approx(100 * 1.95 / 3, abs=1e-4)
    assert (left["verdict"], left["verdicts"], left["notes"]) == ("pass", "ann: pass", "")
    assert left["image_sha256"] == session.result("left.png").sha256
    assert [float(right[c]) for c in ("miou_a_pct", "miou_b_pct", "miou_delta_pct")] == \
        [100.0, 37.5, -62.5]
    assert (right["verdict"], right["verdicts"], right["notes"]) == (
        "fail", "ann: fail; bob: needs-look", 'ann: road → sky, "bad"')
    assert float(same["agreement_pct"]) == 100.0
    assert same["miou_a_pct"] == same["miou_delta_pct"] == same["verdict"] == ""
    assert rows["broken.png"]["error"] and rows["broken.png"]["agreement_pct"] == ""


def test_every_picture_decodes_and_the_image_table_has_the_csv_rows(reviewed, tmp_path):
    session, store, _ = reviewed
    html_path, csv_path = write_report(session, tmp_path / "out", store.verdicts, worst=8)
    page = Page(html_path.read_text(encoding="utf-8"))  # decodes every embedded PNG
    assert page.images and all(px.size for _, _, px in page.images)
    with open(csv_path, newline="", encoding="utf-8") as f:
        csv_rows = {row["image"]: row for row in csv.DictReader(f)}
    header, *rows = page.rows["images"]
    assert header == ["image", "agreement", "mIoU A", "mIoU B", "Δ mIoU", "verdict",
                      "each reviewer"]
    shown = {row[0]: row for row in rows}
    assert sorted(shown) == sorted(csv_rows) and len(rows) == len(csv_rows)
    for key, row in shown.items():
        expected = csv_rows[key]
        agreement = expected["agreement_pct"]
        assert row[1] == (f"{float(agreement):.2f}%" if agreement else "–")
        assert row[5] == (expected["verdict"] or (f"failed: {expected['error']}"
                                                   if expected["error"] else "–"))
    assert [row[0] for row in rows][:3] == ["right.png", "left.png", "same.png"]  # worst first


def test_row_normalized_and_heatmap():
    confusion = np.array([[3, 1, 0], [0, 0, 0], [0, 2, 2]])
    norm = row_normalized(confusion)
    assert np.allclose(norm[0], [0.75, 0.25, 0]) and np.isnan(norm[1]).all()
    assert np.allclose(norm[2], [0, 0.5, 0.5])
    heat = confusion_heatmap(np.pad(confusion, ((0, 200), (0, 200))), list(range(203)))
    assert heat.shape == (203 * 3, 203 * 3, 3)  # small cells: no id labels
    assert tuple(heat[1, 1]) == tuple(np.rint(np.array(WHITE) + (np.array(NAVY) - WHITE) * .75))
    assert tuple(heat[4, 4]) == (224, 224, 224)  # class 1 is not in the ground truth


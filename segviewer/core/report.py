"""The QA review's outputs: a self-contained HTML report and a CSV of per-image metrics.

The HTML needs no other file: thumbnails of the worst images (image | A overlay | B overlay |
disagreement) and the confusion-matrix heat maps are embedded as base64 PNGs drawn with numpy and
Pillow. Both files are written atomically. `row_normalized` and `confusion_heatmap` are also what a
viewer shows for the confusion matrix.
"""

from __future__ import annotations

import base64
import csv
import html
import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from segviewer import __version__
from segviewer.core.images import ImageLoadError, atomic_write_bytes, encode_png, load_image
from segviewer.core.labels import colorize
from segviewer.core.overlay import blend, disagreement_image
from segviewer.core.review import (
    ImageResult,
    ReviewSession,
    SortKey,
    Totals,
    Verdict,
    VerdictEntry,
)

REPORT_HTML = "report.html"
METRICS_CSV = "metrics.csv"
CSV_COLUMNS = (
    "image", "agreement_pct", "pixel_acc_a_pct", "pixel_acc_b_pct", "miou_a_pct", "miou_b_pct",
    "miou_delta_pct", "verdict", "note", "error",
)
THUMBNAIL = 256  # longest side of a report thumbnail, pixels
_LOW, _HIGH = np.array([255, 255, 255]), np.array([8, 48, 107])  # heat-map colour at 0 and 1
_NO_GT = (224, 224, 224)  # heat-map row of a class absent from the ground truth


def default_sort(session: ReviewSession) -> SortKey:
    """Worst-first by mIoU drop when there are ground-truth scores, else by agreement."""
    scored = any(r.scores_a is not None for r in session.results)
    return SortKey.MIOU_DROP if scored else SortKey.AGREEMENT


def write_report(
    session: ReviewSession,
    out_dir: Path,
    verdicts: Mapping[str, VerdictEntry] | None = None,
    sort: SortKey | str | None = None,
    worst: int = 8,
) -> tuple[Path, Path]:
    """Write `report.html` and `metrics.csv` into `out_dir`; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path, csv_path = out_dir / REPORT_HTML, out_dir / METRICS_CSV
    atomic_write_bytes(html_path, render_html(session, verdicts, sort, worst).encode("utf-8"))
    write_csv(session, csv_path, verdicts)
    return html_path, csv_path


# ---------------------------------------------------------------------------------------------
# CSV


def write_csv(session: ReviewSession, path: Path,
              verdicts: Mapping[str, VerdictEntry] | None = None) -> None:
    """One row per image in input order; numbers in percent, blank where they do not apply."""
    verdicts = verdicts or {}
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in session.results:
        entry = verdicts.get(r.key)
        writer.writerow([
            r.key, _pct(r.agreement, 1.0), _pct(r.pixel_accuracy_a), _pct(r.pixel_accuracy_b),
            _pct(r.miou_a), _pct(r.miou_b), _pct(r.miou_delta),
            entry.verdict.value if entry else "", entry.note if entry else "", r.error,
        ])
    atomic_write_bytes(path, buffer.getvalue().encode("utf-8"))


def _pct(value: float | None, scale: float = 100.0) -> str:
    return "" if value is None else f"{value * scale:.4f}"


# ---------------------------------------------------------------------------------------------
# Pictures


def row_normalized(confusion: np.ndarray) -> np.ndarray:
    """Each ground-truth row divided by its sum (the share of the class predicted as each
    class); rows of classes absent from the ground truth are nan."""
    confusion = np.asarray(confusion, dtype=np.float64)
    sums = confusion.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sums > 0, confusion / sums, np.nan)


def confusion_heatmap(confusion: np.ndarray, ids: Sequence[int]) -> np.ndarray:
    """RGB uint8 heat map of the row-normalised matrix restricted to `ids` (rows: ground truth,
    columns: prediction, white 0 to dark blue 1, grey rows: class not in the ground truth), with
    the class ids along the top and left when the cells are big enough to carry them."""
    ids = list(ids)
    n = max(len(ids), 1)
    norm = row_normalized(np.asarray(confusion)[np.ix_(ids, ids)]) if ids else np.zeros((1, 1))
    cell = max(3, min(28, 480 // n))
    grid = np.empty((*norm.shape, 3), dtype=np.uint8)
    missing = np.isnan(norm)
    value = np.where(missing, 0.0, norm)[..., None]
    grid[:] = np.rint(_LOW + (_HIGH - _LOW) * value).astype(np.uint8)
    grid[missing] = _NO_GT
    grid = np.repeat(np.repeat(grid, cell, axis=0), cell, axis=1)
    if cell < 14:
        return grid
    margin = 30
    canvas = Image.new("RGB", (margin + grid.shape[1], margin + grid.shape[0]), "white")
    canvas.paste(Image.fromarray(grid), (margin, margin))
    draw = ImageDraw.Draw(canvas)
    for k, class_id in enumerate(ids):
        centre = margin + k * cell + cell // 2
        draw.text((centre, margin // 2), str(class_id), fill="black", anchor="mm")
        draw.text((margin // 2, centre), str(class_id), fill="black", anchor="mm")
    return np.asarray(canvas)


def thumbnails(session: ReviewSession, result: ImageResult,
               size: int = THUMBNAIL) -> list[np.ndarray]:
    """[image, A overlay, B overlay, disagreement] at most `size` pixels on the longest side."""
    if result.labels_a is None or result.labels_b is None:
        raise ValueError(f"'{result.key}' was not compared: {result.error}")
    image = load_image(result.path)
    h, w = image.shape[:2]
    scale = min(1.0, size / max(h, w))
    th, tw = max(1, round(h * scale)), max(1, round(w * scale))
    small = np.asarray(Image.fromarray(image).resize((tw, th), Image.Resampling.BOX))
    rows = np.arange(th) * h // th  # nearest neighbour: labels are never interpolated
    cols = np.arange(tw) * w // tw
    a = result.labels_a[rows][:, cols]
    b = result.labels_b[rows][:, cols]
    return [
        small,
        blend(small, colorize(a, session.palette)[0], 0.5),
        blend(small, colorize(b, session.palette)[0], 0.5),
        disagreement_image(small, a, b),
    ]


def _img(array: np.ndarray, alt: str) -> str:
    data = base64.b64encode(encode_png(array)).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


# ---------------------------------------------------------------------------------------------
# HTML


def render_html(
    session: ReviewSession,
    verdicts: Mapping[str, VerdictEntry] | None = None,
    sort: SortKey | str | None = None,
    worst: int = 8,
) -> str:
    verdicts = verdicts or {}
    sort = SortKey(sort) if sort else default_sort(session)
    totals = session.totals()
    title = f"Review: {session.a.description} vs {session.b.description}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        _sources(session),
        _overview(session, totals, verdicts),
        _classes(session, totals),
        _confusion(session, totals),
        _worst(session, verdicts, sort, worst),
        _failures(session),
        f"<footer>SegViewer {_e(__version__)}</footer>",
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse;margin:8px 0}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th:first-child,td.name{text-align:left}
.swatch{display:inline-block;width:14px;height:14px;border:1px solid #555;vertical-align:middle}
.neg{color:#b00}.pos{color:#070}
figure{display:inline-block;margin:0 12px 16px 0}
.panels img{margin-right:4px;image-rendering:pixelated}
""".strip()


def _e(text: object) -> str:
    return html.escape(str(text))


def _num(value: float | None, scale: float = 100.0, unit: str = "%") -> str:
    return "–" if value is None else f"{value * scale:.2f}{unit}"


def _delta(value: float | None, scale: float = 100.0, unit: str = "") -> str:
    if value is None:
        return "<td>–</td>"
    shown = value * scale
    css = "neg" if shown < -0.005 else "pos" if shown > 0.005 else ""
    return f'<td class="{css}">{shown:+.2f}{unit}</td>'


def _sources(session: ReviewSession) -> str:
    rows = "".join(
        f'<tr><th>{name}</th><td class="name">{_e(info.model)}</td>'
        f"<td>{_e(info.version if info.version is not None else '–')}</td>"
        f'<td class="name">{_e(info.backend)}</td></tr>'
        for name, info in (("A", session.a), ("B", session.b)))
    when = session.created.strftime("%Y-%m-%d %H:%M UTC")
    gt = (f"ground truth: {_e(session.options.gt_dir)} (ignore label "
          f"{session.options.ignore_label}, {session.num_classes} classes)"
          if session.has_gt else "no ground truth")
    return (f'<section id="sources"><h2>Sources</h2><table><tr><th></th><th>model</th>'
            f"<th>version</th><th>where</th></tr>{rows}</table>"
            f"<p>Images: {_e(session.folder)} · {gt} · {_e(when)}</p></section>")


def _overview(session: ReviewSession, totals: Totals,
              verdicts: Mapping[str, VerdictEntry]) -> str:
    rows = [("images compared", str(totals.images)), ("images failed", str(totals.failed)),
            ("pixels where A and B agree", _num(totals.agreement, 1.0))]
    if session.cancelled:
        rows.append(("not run (cancelled)", str(session.total - len(session.results))))
    if totals.scores_a is not None and totals.scores_b is not None:
        a, b = totals.scores_a, totals.scores_b
        rows += [
            ("images with ground truth", str(totals.with_gt)),
            ("pixel accuracy A / B", f"{_num(a.pixel_accuracy)} / {_num(b.pixel_accuracy)}"),
            ("mIoU A / B", f"{_num(a.mean_iou)} / {_num(b.mean_iou)}"),
            ("mIoU B − A", f"{(b.mean_iou - a.mean_iou) * 100:+.2f} points"),
        ]
    counts = {v: 0 for v in Verdict}
    for r in session.results:
        entry = verdicts.get(r.key)
        if entry:
            counts[entry.verdict] += 1
    rows.append(("verdicts", ", ".join(f"{n} {v.value}" for v, n in counts.items())))
    body = "".join(f'<tr><td class="name">{_e(k)}</td><td>{v}</td></tr>' for k, v in rows)
    return f'<section id="overview"><h2>Overall</h2><table>{body}</table></section>'


def _classes(session: ReviewSession, totals: Totals) -> str:
    scored = totals.scores_a is not None
    head = "<th>id</th><th>class</th><th>share A</th><th>share B</th><th>Δ share</th>"
    if scored:
        head += "<th>IoU A</th><th>IoU B</th><th>Δ IoU</th>"
    rows = []
    for row in session.class_rows(totals):
        swatch = '<span class="swatch" style="background:#{:02x}{:02x}{:02x}"></span>'.format(
            *row.color)
        cells = (f'<td>{row.id}</td><td class="name">{swatch} {_e(row.name)}</td>'
                 f"<td>{row.share_a:.2f}%</td><td>{row.share_b:.2f}%</td>"
                 f"{_delta(row.share_delta, 1.0)}")
        if scored:
            cells += (f"<td>{_num(row.iou_a)}</td><td>{_num(row.iou_b)}</td>"
                      f"{_delta(row.iou_delta)}")
        rows.append(f"<tr>{cells}</tr>")
    note = ("<p>Shares are percent of all pixels; IoU over all images with ground truth "
            "(Δ in points).</p>" if scored else "<p>Shares are percent of all pixels.</p>")
    return (f'<section id="classes"><h2>Classes</h2>{note}<table><tr>{head}</tr>'
            f'{"".join(rows)}</table></section>')


def _confusion(session: ReviewSession, totals: Totals) -> str:
    if totals.scores_a is None or totals.scores_b is None:
        return ""
    ids = [row.id for row in session.class_rows(totals)]
    figures = "".join(
        f"<figure>{_img(confusion_heatmap(s.confusion, ids), f'confusion matrix {name}')}"
        f"<figcaption>{name}: {_e(info.description)}</figcaption></figure>"
        for name, s, info in (("A", totals.scores_a, session.a), ("B", totals.scores_b,
                                                                  session.b)))
    return ('<section id="confusion"><h2>Confusion matrices</h2><p>Rows: ground truth, columns: '
            "prediction, each row normalised to 1 (white 0, dark blue 1; grey: class not in the "
            f"ground truth). Classes: {', '.join(map(str, ids))}.</p>{figures}</section>")


def _worst(session: ReviewSession, verdicts: Mapping[str, VerdictEntry], sort: SortKey,
           worst: int) -> str:
    figures = []
    for r in session.sorted(sort)[:worst]:
        try:
            panels = thumbnails(session, r)
        except ImageLoadError as exc:
            figures.append(f"<figure><figcaption>{_e(r.key)}: {_e(exc)}</figcaption></figure>")
            continue
        names = ("image", f"A {session.a.description}", f"B {session.b.description}",
                 "disagreement")
        imgs = "".join(_img(p, f"{r.key}: {n}") for p, n in zip(panels, names, strict=True))
        entry = verdicts.get(r.key)
        facts = [f"agreement {_num(r.agreement, 1.0)}"]
        if r.miou_a is not None:
            facts.append(f"mIoU A {_num(r.miou_a)} · B {_num(r.miou_b)}")
        if entry:
            facts.append(f"verdict: {entry.verdict.value}" + (f" — {entry.note}" if entry.note
                                                                else ""))
        figures.append(f'<figure class="panels">{imgs}<figcaption><b>{_e(r.key)}</b> · '
                       f"{_e(' · '.join(facts))}</figcaption></figure>")
    return (f'<section id="worst"><h2>Worst images (by {sort.value})</h2><p>Image · A overlay · '
            f"B overlay · disagreement (magenta).</p>{''.join(figures)}</section>")


def _failures(session: ReviewSession) -> str:
    failed = session.failures
    if not failed:
        return ""
    items = "".join(f"<li>{_e(r.key)}: {_e(r.error)}</li>" for r in failed)
    return f'<section id="failures"><h2>Not compared</h2><ul>{items}</ul></section>'

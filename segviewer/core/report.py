"""The QA review's outputs: a self-contained HTML report and a CSV of per-image metrics.

The HTML needs no other file: thumbnails of the worst images (image | A overlay | B overlay |
disagreement) and the confusion-matrix heat maps are embedded as base64 PNGs drawn with numpy and
Pillow. It states what was compared (both models' fingerprints), who reviewed, and the sample and
its seed when the images are a spot check; its table of all images has the CSV's rows. Both files
are written atomically. `row_normalized` and `confusion_heatmap` are also what a
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
    SourceInfo,
    Totals,
    Verdict,
    VerdictEntry,
)
from segviewer.core.review_store import consensus

REPORT_HTML = "report.html"
METRICS_CSV = "metrics.csv"
CSV_COLUMNS = (
    "image", "image_sha256", "agreement_pct", "pixel_acc_a_pct", "pixel_acc_b_pct", "miou_a_pct",
    "miou_b_pct", "miou_delta_pct", "verdict", "verdicts", "notes", "error",
)
Verdicts = Mapping[str, Sequence[VerdictEntry]]  # image key -> every reviewer's verdict
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
    verdicts: Verdicts | None = None,
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


def write_csv(session: ReviewSession, path: Path, verdicts: Verdicts | None = None) -> None:
    """One row per image in input order; numbers in percent, blank where they do not apply.
    `verdict` is the reviewers' consensus (`review_store.consensus`); `verdicts` and
    `notes` list each reviewer's as "name: value", separated by "; "."""
    verdicts = verdicts or {}
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in session.results:
        entries = verdicts.get(r.key, ())
        agreed = consensus(entries)
        writer.writerow([
            r.key, r.sha256, _pct(r.agreement, 1.0), _pct(r.pixel_accuracy_a),
            _pct(r.pixel_accuracy_b), _pct(r.miou_a), _pct(r.miou_b), _pct(r.miou_delta),
            agreed.value if agreed else "",
            "; ".join(f"{e.reviewer}: {e.verdict.value}" for e in entries),
            "; ".join(f"{e.reviewer}: {e.note}" for e in entries if e.note), r.error,
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
    verdicts: Verdicts | None = None,
    sort: SortKey | str | None = None,
    worst: int = 8,
) -> str:
    verdicts = verdicts or {}
    sort = SortKey(sort) if sort else default_sort(session)
    totals = session.totals()
    title = f"Review: {session.a.name} vs {session.b.name}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        _sources(session, verdicts),
        _overview(session, totals, verdicts),
        _classes(session, totals),
        _confusion(session, totals),
        _worst(session, verdicts, sort, worst),
        _all_images(session, verdicts, sort),
        _failures(session),
        f"<footer>SegViewer {_e(__version__)} · {_e(REPORT_HTML)} with {_e(METRICS_CSV)}"
        "</footer>",
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;
max-width:1180px;padding:0 16px;color:#222}
h1{font-size:22px;margin:0 0 12px}h2{font-size:17px;margin:28px 0 6px;
border-bottom:1px solid #ddd;padding-bottom:3px}
table{border-collapse:collapse;margin:8px 0}
th,td{border:1px solid #d4d4d4;padding:3px 8px;text-align:right;vertical-align:top}
th{background:#f3f4f6;font-weight:600}
th:first-child,td.name,th.name{text-align:left}
code{font:12px ui-monospace,Menlo,Consolas,monospace;background:#f3f4f6;padding:1px 4px;
border-radius:3px;word-break:break-all}
.weak{color:#b45309}
.swatch{display:inline-block;width:14px;height:14px;border:1px solid #555;vertical-align:middle}
.neg{color:#b00}.pos{color:#070}
.pass{color:#2e7d32}.fail{color:#c62828}.needs-look{color:#b26a00}
figure{display:inline-block;margin:0 12px 16px 0}
figure.panels{display:block}
.panels img{margin-right:4px;image-rendering:pixelated;max-width:24%;height:auto}
figcaption{font-size:13px;color:#444;margin-top:2px}
.scroll{max-height:480px;overflow:auto;display:inline-block;border:1px solid #e5e5e5}
.scroll table{margin:0}
.scroll th{position:sticky;top:0}
footer{margin-top:28px;color:#777;font-size:12px}
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


def _fingerprint(info: SourceInfo) -> str:
    fp = info.fingerprint
    if fp is None:
        return "–"
    weak = ' <span class="weak">signature only (weak)</span>' if fp.weak else ""
    return f'<code title="{_e(fp)}">{_e(fp.kind)}:{_e(fp.digest[:16])}</code>{weak}'


def _reviewers(verdicts: Verdicts) -> list[str]:
    return sorted({e.reviewer for entries in verdicts.values() for e in entries if e.reviewer})


def _sources(session: ReviewSession, verdicts: Verdicts) -> str:
    rows = "".join(
        f'<tr><th>{name}</th><td class="name">{_e(info.model)}</td>'
        f"<td>{_e(info.version if info.version is not None else '–')}</td>"
        f'<td class="name">{_fingerprint(info)}</td>'
        f'<td class="name">{_e(info.backend)}</td></tr>'
        for name, info in (("A", session.a), ("B", session.b)))
    when = session.created.strftime("%Y-%m-%d %H:%M UTC")
    classes = (f"{session.num_classes} classes" if session.num_classes
               else "classes: the ids in the label maps")
    gt = (f"ground truth {_e(session.options.gt_dir)} (ignore label "
          f"{session.options.ignore_label}, {classes})" if session.has_gt else "no ground truth")
    sample = (f"sample: {_e(session.sample.describe())}" if session.sample is not None
              else f"all {session.total} images (no sample)")
    reviewers = ", ".join(_reviewers(verdicts)) or "none yet"
    facts = [("images", f"{_e(session.folder)}"), ("selection", sample),
             ("ground truth", gt), ("reviewers", _e(reviewers)), ("compared", _e(when))]
    items = "".join(f'<tr><td class="name">{k}</td><td class="name">{v}</td></tr>'
                    for k, v in facts)
    return (f'<section id="sources"><h2>What was compared</h2><table><tr><th></th>'
            f'<th class="name">model</th><th>version</th><th class="name">fingerprint</th>'
            f'<th class="name">where it ran</th></tr>'
            f"{rows}</table><table>{items}</table><p>A fingerprint names a model version by its "
            "content (weights, signatures, export settings), whichever server or folder it ran "
            "from; verdicts are kept by the two fingerprints and each image's content hash.</p>"
            "</section>")


def _verdict_counts(session: ReviewSession, verdicts: Verdicts) -> dict[Verdict, int]:
    counts = {v: 0 for v in Verdict}
    for r in session.results:
        agreed = consensus(verdicts.get(r.key, ()))
        if agreed is not None:
            counts[agreed] += 1
    return counts


def _overview(session: ReviewSession, totals: Totals, verdicts: Verdicts) -> str:
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
    counts = _verdict_counts(session, verdicts)
    reviewed = sum(counts.values())
    rows.append(("verdicts (consensus per image)",
                 ", ".join(f"{n} {v.value}" for v, n in counts.items())
                 + f" · {totals.images - reviewed} not reviewed"))
    body = "".join(f'<tr><td class="name">{_e(k)}</td><td>{v}</td></tr>' for k, v in rows)
    return f'<section id="overview"><h2>Overall</h2><table>{body}</table></section>'


def _classes(session: ReviewSession, totals: Totals) -> str:
    scored = totals.scores_a is not None
    head = ('<th>id</th><th class="name">class</th><th>share A</th><th>share B</th>'
            "<th>Δ share</th>")
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
        f"<figcaption>{name}: {_e(info.name)}</figcaption></figure>"
        for name, s, info in (("A", totals.scores_a, session.a), ("B", totals.scores_b,
                                                                  session.b)))
    return ('<section id="confusion"><h2>Confusion matrices</h2><p>Rows: ground truth, columns: '
            "prediction, each row normalised to 1 (white 0, dark blue 1; grey: class not in the "
            f"ground truth). Classes: {', '.join(map(str, ids))}.</p>{figures}</section>")


def _verdict_text(entries: Sequence[VerdictEntry]) -> str:
    return "; ".join(f"{e.reviewer}: {e.verdict.value}" + (f" — {e.note}" if e.note else "")
                     for e in entries)


def _worst(session: ReviewSession, verdicts: Verdicts, sort: SortKey, worst: int) -> str:
    figures = []
    for r in session.sorted(sort)[:worst]:
        try:
            panels = thumbnails(session, r)
        except ImageLoadError as exc:
            figures.append(f"<figure><figcaption>{_e(r.key)}: {_e(exc)}</figcaption></figure>")
            continue
        names = ("image", f"A {session.a.name}", f"B {session.b.name}", "disagreement")
        imgs = "".join(_img(p, f"{r.key}: {n}") for p, n in zip(panels, names, strict=True))
        facts = [f"agreement {_num(r.agreement, 1.0)}"]
        if r.miou_a is not None:
            facts.append(f"mIoU A {_num(r.miou_a)} · B {_num(r.miou_b)}")
        entries = verdicts.get(r.key, ())
        if entries:
            facts.append(f"verdicts: {_verdict_text(entries)}")
        figures.append(f'<figure class="panels">{imgs}<figcaption><b>{_e(r.key)}</b> · '
                       f"{_e(' · '.join(facts))}</figcaption></figure>")
    return (f'<section id="worst"><h2>Worst images (by {sort.value})</h2><p>Image · A overlay · '
            f"B overlay · disagreement (magenta).</p>{''.join(figures)}</section>")


def _all_images(session: ReviewSession, verdicts: Verdicts, sort: SortKey) -> str:
    """Every image of metrics.csv, worst first (failed ones last), with every verdict."""
    scored = any(r.scores_a is not None for r in session.results)
    head = "<th>image</th><th>agreement</th>"
    if scored:
        head += "<th>mIoU A</th><th>mIoU B</th><th>Δ mIoU</th>"
    head += '<th class="name">verdict</th><th class="name">each reviewer</th>'
    rows = []
    for r in [*session.sorted(sort), *session.failures]:
        entries = verdicts.get(r.key, ())
        agreed = consensus(entries)
        cells = f'<td class="name">{_e(r.key)}</td><td>{_num(r.agreement, 1.0)}</td>'
        if scored:
            cells += f"<td>{_num(r.miou_a)}</td><td>{_num(r.miou_b)}</td>{_delta(r.miou_delta)}"
        verdict = (f'<span class="{agreed.value}">{agreed.value}</span>' if agreed
                   else ("failed: " + _e(r.error) if r.error else "–"))
        cells += (f'<td class="name">{verdict}</td>'
                  f'<td class="name">{_e(_verdict_text(entries))}</td>')
        rows.append(f"<tr>{cells}</tr>")
    return (f'<section id="images"><h2>All images ({len(session.results)}, worst first by '
            f"{sort.value})</h2><div class=\"scroll\"><table><tr>{head}</tr>{''.join(rows)}"
            "</table></div></section>")


def _failures(session: ReviewSession) -> str:
    failed = session.failures
    if not failed:
        return ""
    items = "".join(f"<li>{_e(r.key)}: {_e(r.error)}</li>" for r in failed)
    return f'<section id="failures"><h2>Not compared</h2><ul>{items}</ul></section>'

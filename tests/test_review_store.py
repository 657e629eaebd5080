"""The review store: SQLite schema and migrations, two real processes writing at once, legacy
import, CSV/JSON export, and a verdict made through one path to the models found through the
others (in-process, the stand-in gRPC and REST servers, segviewer-review)."""

from __future__ import annotations

import csv
import json
import sqlite3
import subprocess
import sys
import textwrap

import pytest
from review_data import A, B, write_review_set

from segviewer.core.review import SessionVerdicts, Source, run_review
from segviewer.core.review_cli import main as review_main
from segviewer.core.review_store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    STORE_ENV,
    Pair,
    ReviewError,
    ReviewStore,
    Verdict,
    consensus,
    default_store_path,
)
from segviewer.core.serving.connection import ConnectionSpec
from segviewer.core.serving.local_backend import LocalBackend

PAIR = Pair("content:" + "a" * 64, "content:" + "b" * 64, "m v1", "m v2")


def test_schema_version_migrations_and_a_newer_store_refused(tmp_path):
    path = tmp_path / "s.sqlite3"
    store = ReviewStore(path)
    assert store.schema_version == SCHEMA_VERSION >= 1
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        columns = {row[1] for row in con.execute("PRAGMA table_info(verdicts)")}
    assert {"image_sha256", "model_a", "model_b", "reviewer", "verdict", "note",
            "time"} <= columns
    store.record(PAIR, "f" * 64, "x.png", "ann", Verdict.PASS)
    assert ReviewStore(path).rows()[0].verdict == "pass"  # opening again migrates nothing

    with sqlite3.connect(path) as con:
        con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(ReviewError, match="newer SegViewer"):
        ReviewStore(path)
    (tmp_path / "junk.sqlite3").write_bytes(b"not a database, not at all" * 100)
    with pytest.raises(ReviewError, match="cannot use the review store"):
        ReviewStore(tmp_path / "junk.sqlite3")


def test_a_version_1_store_migrates_to_fixed_verdicts_keeping_every_row(tmp_path):
    path = tmp_path / "v1.sqlite3"
    with sqlite3.connect(path) as con:  # what SegViewer with schema 1 made
        con.executescript(MIGRATIONS[0])
        con.execute("INSERT INTO verdicts (image_sha256, image, model_a, model_b, reviewer, "
                    "verdict, note, time) VALUES (?,?,?,?,?,?,?,?)",
                    ("f" * 64, "x.png", PAIR.model_a, PAIR.model_b, "ann", "fail", "bad", "t"))
        con.execute("PRAGMA user_version = 1")
        with pytest.raises(sqlite3.IntegrityError):  # schema 1 had no "fixed"
            con.execute("INSERT INTO verdicts (image_sha256, image, model_a, model_b, reviewer, "
                        "verdict, time) VALUES ('e', 'y', 'a', 'b', 'bob', 'fixed', 't')")
    store = ReviewStore(path)
    assert store.schema_version == SCHEMA_VERSION >= 2
    old = store.rows()[0]
    assert (old.image, old.reviewer, old.verdict, old.note, old.provenance) == (
        "x.png", "ann", "fail", "bad", "")
    record = json.dumps({"verdict": "fixed", "model": "m", "version": 1})
    store.record(PAIR, "f" * 64, "x.png", "bob", Verdict.FIXED, "from m v1", record)
    entries = store.verdicts(PAIR)["f" * 64]
    assert [(e.reviewer, e.verdict) for e in entries] == [("ann", Verdict.FAIL),
                                                           ("bob", Verdict.FIXED)]
    assert json.loads(entries[1].provenance)["version"] == 1
    assert consensus(entries) is Verdict.FAIL and consensus(entries[1:]) is Verdict.FIXED
    store.export(tmp_path / "v.csv")
    with (tmp_path / "v.csv").open(newline="", encoding="utf-8") as f:
        assert [r["provenance"] for r in csv.DictReader(f)] == ["", record]


def test_default_store_is_in_the_user_data_folder(monkeypatch, tmp_path):
    monkeypatch.delenv(STORE_ENV, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_store_path() == tmp_path / "data" / "segviewer" / "reviews.sqlite3"
    monkeypatch.setenv(STORE_ENV, str(tmp_path / "shared.sqlite3"))
    assert ReviewStore().path == tmp_path / "shared.sqlite3"


WRITER = textwrap.dedent("""
    import sys
    from segviewer.core.review_store import Pair, ReviewStore, Verdict
    path, reviewer, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    pair = Pair("content:" + "a" * 64, "content:" + "b" * 64)
    store = ReviewStore(path)
    sys.stdout.write("ready\\n")
    sys.stdout.flush()
    sys.stdin.readline()  # both start writing together
    for i in range(count):
        store.record(pair, f"{i:064x}", f"img{i}.png", reviewer,
                     (Verdict.PASS, Verdict.FAIL)[i % 2], f"note {i}")
""")


OPENER = textwrap.dedent("""
    import sys
    from segviewer.core.review_store import ReviewError, ReviewStore
    print("ready", flush=True)
    sys.stdin.readline()  # all open the new file together
    try:
        ReviewStore(sys.argv[1])
        print("ok")
    except ReviewError as exc:
        print(exc)
""")


def test_reviewers_opening_a_new_shared_store_at_once_all_get_it(tmp_path):
    """SQLite refuses the switch to WAL at once ("database is locked") while another process
    makes it; without waiting for that, one reviewer in three trials lost the race."""
    for trial in range(6):
        path = tmp_path / f"shared{trial}.sqlite3"
        procs = [subprocess.Popen([sys.executable, "-c", OPENER, str(path)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True) for _ in range(4)]
        for proc in procs:
            assert proc.stdout.readline().strip() == "ready"
        for proc in procs:  # every process imported and waiting: now all at once
            proc.stdin.write("go\n")
            proc.stdin.flush()
        outputs = [proc.communicate(timeout=120)[0].strip() for proc in procs]
        assert outputs == ["ok"] * 4, outputs


def test_two_processes_writing_at_once_lose_no_verdict(tmp_path):
    path = tmp_path / "shared.sqlite3"
    count = 300
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), name, str(count)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for name in ("ann", "bob")]
    for proc in procs:
        assert proc.stdout.readline().strip() == "ready"
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    rows = ReviewStore(path).rows()
    assert len(rows) == 2 * count
    for name in ("ann", "bob"):
        mine = sorted((r for r in rows if r.reviewer == name), key=lambda r: r.image)
        assert len({r.image_sha256 for r in mine}) == count
    verdicts = ReviewStore(path).verdicts(PAIR)
    assert all(len(entries) == 2 for entries in verdicts.values())


def test_export_csv_and_json_and_legacy_import(review_models, tmp_path):
    images_dir, _ = write_review_set(tmp_path / "set")
    images = sorted(images_dir.glob("*.png"))
    local = LocalBackend(review_models)
    session = run_review(Source(local, A), Source(local, B), images)
    legacy = images_dir / ".segviewer-review.json"
    legacy.write_text(json.dumps({"format": 1, "reviews": {
        "x": {"a": f"seg v1 (in-process {review_models})", "b": "seg v2 (gRPC host:1)",
              "verdicts": {"left.png": {"verdict": "fail", "note": "old", "time": "2024-01-01"},
                           "gone.png": {"verdict": "pass"}}},
        "y": {"a": "other v1 (x)", "b": "other v2 (x)",
              "verdicts": {"right.png": {"verdict": "pass"}}}}}))
    store = ReviewStore(tmp_path / "s.sqlite3")
    verdicts = SessionVerdicts(store, session, "ann")
    assert verdicts.import_legacy(legacy) == 1  # gone.png is not in this review
    assert (verdicts.get("left.png").verdict, verdicts.get("left.png").note) == (Verdict.FAIL,
                                                                                "old")
    assert verdicts.get("right.png") is None  # another pair's verdict
    assert verdicts.import_legacy(legacy) == 0  # twice: nothing doubled
    verdicts.set("right.png", Verdict.PASS, 'a "quoted", note')

    assert verdicts.export(tmp_path / "v.csv") == 2
    with (tmp_path / "v.csv").open(newline="", encoding="utf-8") as f:
        rows = {r["image"]: r for r in csv.DictReader(f)}
    assert rows["right.png"]["note"] == 'a "quoted", note'
    assert rows["left.png"]["model_a"] == str(session.a.fingerprint)
    verdicts.export(tmp_path / "v.json")
    data = json.loads((tmp_path / "v.json").read_text())
    assert data["schema"] == SCHEMA_VERSION and len(data["verdicts"]) == 2
    with pytest.raises(ReviewError, match=r"\.csv or \.json"):
        verdicts.export(tmp_path / "v.txt")
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"reviews": {"y": {"a": "o v1 (x)", "b": "o v2 (x)"}}}))
    with pytest.raises(ReviewError, match="no verdicts on seg v1 vs seg v2"):
        verdicts.import_legacy(other)


def test_a_verdict_shows_on_every_path_to_the_same_versions(review_models, start_tf_serving,
                                                            tmp_path, monkeypatch, capsys):
    """Verdict made with the models in-process; the same versions over gRPC and over REST show it,
    and segviewer-review puts it in its report."""
    monkeypatch.setenv(STORE_ENV, str(tmp_path / "store.sqlite3"))
    images_dir, _ = write_review_set(tmp_path / "set")
    images = sorted(images_dir.glob("*.png"))
    local = LocalBackend(review_models)
    made = run_review(Source(local, A), Source(local, B), images)
    SessionVerdicts(ReviewStore(), made, "ann").set("right.png", Verdict.FAIL, "sky on road")

    server = start_tf_serving(review_models, versions={"seg": [1, 2]})
    for spec in (server.grpc_address, server.rest_url):
        remote = ConnectionSpec.parse(spec, models=("seg",)).open()
        try:
            seen = run_review(Source(remote, A), Source(remote, B), images)
        finally:
            remote.close()
        assert (seen.a.fingerprint, seen.b.fingerprint) == (made.a.fingerprint,
                                                            made.b.fingerprint)
        entry = SessionVerdicts(ReviewStore(), seen, "bob").all("right.png")
        assert [(e.reviewer, e.verdict, e.note) for e in entry] == [
            ("ann", Verdict.FAIL, "sky on road")]

    out = tmp_path / "report"
    assert review_main([str(images_dir), "--a", server.grpc_address, "--a-model", "seg",
                        "--a-version", "1",
                        "--b-version", "2", "--out", str(out), "--quiet"]) == 0
    with (out / "metrics.csv").open(newline="", encoding="utf-8") as f:
        rows = {r["image"]: r for r in csv.DictReader(f)}
    assert (rows["right.png"]["verdict"], rows["right.png"]["verdicts"]) == ("fail",
                                                                            "ann: fail")
    assert "ann: fail — sky on road" in (out / "report.html").read_text(encoding="utf-8")
    assert not (images_dir / ".segviewer-review.json").exists()
    assert capsys.readouterr().err == ""


def test_a_store_that_cannot_be_made_is_one_error(tmp_path):
    """A store file in a folder that cannot be made is one clear error."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ReviewError, match="cannot create the review store"):
        ReviewStore(blocker / "sub" / "s.sqlite3")


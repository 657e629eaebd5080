"""The review store: every reviewer's verdict on an image, tied to what was compared, in SQLite.

A verdict is keyed by the image's *content* (sha256 of the file) and the two models'
fingerprints (`core.fingerprint`), never by a path or a connection: the same images compared with
the same model versions show the same verdicts whether the models run in-process or on a gRPC or
REST server, and whatever folder the images were copied to. Each reviewer has at most one verdict
per image and pair; several reviewers' verdicts are all kept. A "fixed" verdict is recorded by
saving a corrected label map as ground truth, with the edit's provenance (JSON: which model and
version it started from, who, when, the file written); a single model's fix (the viewer's main
window) is kept under the pair (its fingerprint, "").

The default store is one file in the user's data folder (platformdirs; `SEGVIEWER_REVIEW_STORE`
overrides it); a team can pick a shared file instead. Writers are safe together: WAL journal, a
busy timeout, and each change in its own immediate transaction. (SQLite's WAL needs a local or
properly locking file system; on a network drive that does not lock, use one file per team that
one machine writes.) The schema carries its version in `PRAGMA user_version` and is migrated
forward on open; a store from a newer SegViewer is refused rather than changed.
"""

from __future__ import annotations

import csv
import getpass
import hashlib
import io
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import platformdirs

from segviewer.core.images import atomic_write_bytes

STORE_ENV = "SEGVIEWER_REVIEW_STORE"
REVIEWER_ENV = "SEGVIEWER_REVIEWER"
STORE_NAME = "reviews.sqlite3"
BUSY_TIMEOUT_S = 30.0
_CHUNK = 1 << 20


class ReviewError(Exception):
    """A review that cannot start or a store that cannot be used; one line for the user."""


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NEEDS_LOOK = "needs-look"
    FIXED = "fixed"  # the reviewer corrected the labels and saved them as ground truth


MARKS = (Verdict.PASS, Verdict.FAIL, Verdict.NEEDS_LOOK)  # what a reviewer gives by hand


# Each entry moves the schema one version forward; never edit one that has shipped.
MIGRATIONS: Sequence[str] = (
    # 1: verdicts by image content, model pair and reviewer
    """
    CREATE TABLE verdicts (
        id INTEGER PRIMARY KEY,
        image_sha256 TEXT NOT NULL,
        image TEXT NOT NULL,
        model_a TEXT NOT NULL,
        model_b TEXT NOT NULL,
        label_a TEXT NOT NULL DEFAULT '',
        label_b TEXT NOT NULL DEFAULT '',
        reviewer TEXT NOT NULL,
        verdict TEXT NOT NULL CHECK (verdict IN ('pass', 'fail', 'needs-look')),
        note TEXT NOT NULL DEFAULT '',
        time TEXT NOT NULL,
        UNIQUE (image_sha256, model_a, model_b, reviewer)
    );
    CREATE INDEX verdicts_pair ON verdicts (model_a, model_b);
    """,
    # 2: the "fixed" verdict and its provenance (SQLite cannot change a CHECK: copy the table)
    """
    CREATE TABLE verdicts_2 (
        id INTEGER PRIMARY KEY,
        image_sha256 TEXT NOT NULL,
        image TEXT NOT NULL,
        model_a TEXT NOT NULL,
        model_b TEXT NOT NULL,
        label_a TEXT NOT NULL DEFAULT '',
        label_b TEXT NOT NULL DEFAULT '',
        reviewer TEXT NOT NULL,
        verdict TEXT NOT NULL CHECK (verdict IN ('pass', 'fail', 'needs-look', 'fixed')),
        note TEXT NOT NULL DEFAULT '',
        time TEXT NOT NULL,
        provenance TEXT NOT NULL DEFAULT '',
        UNIQUE (image_sha256, model_a, model_b, reviewer)
    );
    INSERT INTO verdicts_2 (id, image_sha256, image, model_a, model_b, label_a, label_b,
                            reviewer, verdict, note, time)
        SELECT id, image_sha256, image, model_a, model_b, label_a, label_b, reviewer, verdict,
               note, time FROM verdicts;
    DROP TABLE verdicts;
    ALTER TABLE verdicts_2 RENAME TO verdicts;
    CREATE INDEX verdicts_pair ON verdicts (model_a, model_b);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


def default_store_path() -> Path:
    override = os.environ.get(STORE_ENV)
    if override:
        return Path(override).expanduser()
    return platformdirs.user_data_path("segviewer", appauthor=False) / STORE_NAME


def default_reviewer() -> str:
    name = os.environ.get(REVIEWER_ENV, "").strip()
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in a container without a passwd entry
        return "reviewer"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class Pair:
    """What was compared: both models' fingerprints ("kind:hex") and how they were named."""

    model_a: str
    model_b: str
    label_a: str = ""
    label_b: str = ""


@dataclass(frozen=True)
class VerdictEntry:
    verdict: Verdict
    note: str = ""
    time: str = ""  # UTC, ISO 8601
    reviewer: str = ""
    provenance: str = ""  # a "fixed" verdict's: JSON of what the correction started from


@dataclass(frozen=True)
class StoredVerdict:
    """One row of the store, as exported."""

    image: str
    image_sha256: str
    model_a: str
    model_b: str
    label_a: str
    label_b: str
    reviewer: str
    verdict: str
    note: str
    time: str
    provenance: str = ""


EXPORT_COLUMNS = tuple(StoredVerdict.__dataclass_fields__)


def _use_wal(con: sqlite3.Connection) -> None:
    """Switch the store to WAL. On a new file opened by several processes at once, SQLite
    refuses the switch with "database is locked" at once instead of waiting (its deadlock
    avoidance), so it is tried again until another process has switched the file, or for
    BUSY_TIMEOUT_S."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            con.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class ReviewStore:
    """One SQLite file of verdicts. Each call opens its own connection, so a store can be used
    from any thread and by several processes at once."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path).expanduser() if path is not None else default_store_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as con:
                self._migrate(con)
        except sqlite3.Error as exc:
            raise ReviewError(f"cannot use the review store '{self.path}': {exc} (pick another "
                              "file, or move this one away)") from None
        except OSError as exc:
            raise ReviewError(f"cannot create the review store '{self.path}': "
                              f"{exc.strerror or exc}") from None

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            _use_wal(con)
            con.execute("PRAGMA synchronous=NORMAL")
            yield con
        finally:
            con.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A connection in an immediate transaction: committed on success, else rolled back."""
        try:
            with self._connect() as con:
                con.execute("BEGIN IMMEDIATE")
                try:
                    yield con
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
                con.execute("COMMIT")
        except sqlite3.Error as exc:
            raise ReviewError(f"cannot save to the review store '{self.path}': {exc}") from None

    def _migrate(self, con: sqlite3.Connection) -> None:
        con.execute("BEGIN IMMEDIATE")  # two first opens at once: one migrates, one waits
        try:
            version = con.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise ReviewError(f"the review store '{self.path}' has schema {version}, made by "
                                  f"a newer SegViewer (this one reads up to {SCHEMA_VERSION}) — "
                                  "update SegViewer")
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in filter(str.strip, script.split(";")):
                    con.execute(statement)
                con.execute(f"PRAGMA user_version = {number}")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    @property
    def schema_version(self) -> int:
        with self._connect() as con:
            return con.execute("PRAGMA user_version").fetchone()[0]

    # -- verdicts -------------------------------------------------------------------------------
    def record(self, pair: Pair, image_sha256: str, image: str, reviewer: str,
               verdict: Verdict | str | None, note: str = "",
               provenance: str = "") -> VerdictEntry | None:
        """Set (None: clear) `reviewer`'s verdict on an image for `pair`; returns the entry.
        `provenance`: a "fixed" verdict's JSON record (`ground_truth.fixed_verdict`)."""
        reviewer = reviewer.strip() or default_reviewer()
        with self._write() as con:
            if verdict is None:
                con.execute("DELETE FROM verdicts WHERE image_sha256=? AND model_a=? AND "
                            "model_b=? AND reviewer=?",
                            (image_sha256, pair.model_a, pair.model_b, reviewer))
                return None
            entry = VerdictEntry(Verdict(verdict), note,
                                 datetime.now(UTC).isoformat(timespec="seconds"), reviewer,
                                 provenance)
            con.execute(
                "INSERT INTO verdicts (image_sha256, image, model_a, model_b, label_a, label_b, "
                "reviewer, verdict, note, time, provenance) VALUES (?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT (image_sha256, model_a, model_b, reviewer) DO UPDATE SET "
                "image=excluded.image, label_a=excluded.label_a, label_b=excluded.label_b, "
                "verdict=excluded.verdict, note=excluded.note, time=excluded.time, "
                "provenance=excluded.provenance",
                (image_sha256, image, pair.model_a, pair.model_b, pair.label_a, pair.label_b,
                 reviewer, entry.verdict.value, note, entry.time, provenance))
            return entry

    def verdicts(self, pair: Pair) -> dict[str, list[VerdictEntry]]:
        """{image sha256: every reviewer's verdict, by reviewer name} for `pair`."""
        found: dict[str, list[VerdictEntry]] = {}
        for row in self._rows(pair):
            found.setdefault(row.image_sha256, []).append(
                VerdictEntry(Verdict(row.verdict), row.note, row.time, row.reviewer,
                             row.provenance))
        return found

    def rows(self, pair: Pair | None = None) -> list[StoredVerdict]:
        return list(self._rows(pair))

    def _rows(self, pair: Pair | None) -> Iterator[StoredVerdict]:
        query = ("SELECT image, image_sha256, model_a, model_b, label_a, label_b, reviewer, "
                 "verdict, note, time, provenance FROM verdicts")
        args: tuple[str, ...] = ()
        if pair is not None:
            query += " WHERE model_a=? AND model_b=?"
            args = (pair.model_a, pair.model_b)
        query += " ORDER BY image, reviewer"
        try:
            with self._connect() as con:
                rows = con.execute(query, args).fetchall()
        except sqlite3.Error as exc:
            raise ReviewError(f"cannot read the review store '{self.path}': {exc}") from None
        for row in rows:
            yield StoredVerdict(*row)

    # -- export ---------------------------------------------------------------------------------
    def export(self, path: Path, pair: Pair | None = None) -> int:
        """Write the verdicts (of `pair`, or all) to a .csv or .json file; returns the count."""
        path = Path(path)
        rows = self.rows(pair)
        if path.suffix.lower() == ".json":
            text = json.dumps({"schema": SCHEMA_VERSION, "verdicts": [asdict(r) for r in rows]},
                              indent=2, ensure_ascii=False) + "\n"
        elif path.suffix.lower() == ".csv":
            buffer = io.StringIO(newline="")
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow(EXPORT_COLUMNS)
            writer.writerows([getattr(r, c) for c in EXPORT_COLUMNS] for r in rows)
            text = buffer.getvalue()
        else:
            raise ReviewError(f"cannot export verdicts to '{path}': name it .csv or .json")
        try:
            atomic_write_bytes(path, text.encode("utf-8"))
        except OSError as exc:
            raise ReviewError(f"cannot write '{path}': {exc.strerror or exc}") from None
        return len(rows)

    # -- import ---------------------------------------------------------------------------------
    def import_legacy(self, path: Path, pair: Pair, hashes: dict[str, str],
                      reviewer: str) -> int:
        """Import the verdicts of an old `.segviewer-review.json` (keyed by image path relative
        to its folder) for the images in `hashes` ({key: sha256}) as `pair`, credited to
        `reviewer` (the file did not record one). The file's reviews must name the same models
        and versions as `pair`'s labels; verdicts a reviewer already gave are kept. Returns how
        many were imported."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            reviews = data["reviews"]
            if not isinstance(reviews, dict):
                raise TypeError
        except FileNotFoundError:
            raise ReviewError(f"cannot import '{path}': file not found") from None
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
            raise ReviewError(f"cannot import '{path}': not a SegViewer review file") from None
        wanted = (_model_part(pair.label_a), _model_part(pair.label_b))
        matching = [r for r in reviews.values() if isinstance(r, dict)
                    and (_model_part(r.get("a", "")), _model_part(r.get("b", ""))) == wanted]
        if not matching:
            found = "; ".join(f"{r.get('a')} vs {r.get('b')}" for r in reviews.values()
                              if isinstance(r, dict)) or "none"
            raise ReviewError(f"'{path}' has no verdicts on {wanted[0]} vs {wanted[1]} (it has: "
                              f"{found})")
        have = self.verdicts(pair)
        count = 0
        with self._write() as con:
            for review in matching:
                for key, value in (review.get("verdicts") or {}).items():
                    sha = hashes.get(key)
                    try:
                        verdict = Verdict(value["verdict"])
                    except (TypeError, KeyError, ValueError):
                        continue
                    if sha is None or any(e.reviewer == reviewer for e in have.get(sha, [])):
                        continue
                    con.execute(
                        "INSERT OR IGNORE INTO verdicts (image_sha256, image, model_a, model_b, "
                        "label_a, label_b, reviewer, verdict, note, time) VALUES "
                        "(?,?,?,?,?,?,?,?,?,?)",
                        (sha, key, pair.model_a, pair.model_b, pair.label_a, pair.label_b,
                         reviewer, verdict.value, str(value.get("note", "")),
                         str(value.get("time", ""))))
                    count += 1
        return count


def _model_part(description: str) -> str:
    """"pascal v1 (in-process /x)" -> "pascal v1": the old file keyed by where, too."""
    return str(description).split(" (", 1)[0].strip()


def consensus(entries: Iterable[VerdictEntry]) -> Verdict | None:
    """The verdict that stands for several reviewers': fail over fixed (the model was wrong,
    the labels were corrected) over needs-look over pass."""
    found = {e.verdict for e in entries}
    for verdict in (Verdict.FAIL, Verdict.FIXED, Verdict.NEEDS_LOOK, Verdict.PASS):
        if verdict in found:
            return verdict
    return None

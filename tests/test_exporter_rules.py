"""The exporter's plain-Python rules (no TensorFlow, fast tier): version numbering, the defaults
and number parsing the CLI and the GUI share, and which temporary folders count as leftovers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from exporter.defaults import default_output_stride, parse_numbers, rates_at
from exporter.export import next_free_version, remove_leftovers


def test_next_free_version(tmp_path):
    assert next_free_version(tmp_path, "m") == 1
    for name in ("1", "7", "notes", ".9.tmp-x"):
        (tmp_path / "m" / name).mkdir(parents=True)
    assert next_free_version(tmp_path, "m") == 8


@pytest.mark.parametrize(("text", "kind", "expected"), [
    ("6,12,18", int, (6, 12, 18)),
    (" 6, 12 ,18 ", int, (6, 12, 18)),
    ("0.75,1.0", float, (0.75, 1.0)),
    ("", int, ()),
    ("None", int, ()),
])
def test_parse_numbers(text, kind, expected):
    assert parse_numbers(text, kind, "Atrous rates") == expected


def test_parse_numbers_names_the_field_and_an_example():
    with pytest.raises(ValueError, match=r"^Inference scales '1.0, big' must be comma-separated "
                                         r"numbers, e.g. 0.75,1.0,1.25$"):
        parse_numbers("1.0, big", float, "Inference scales")
    with pytest.raises(ValueError, match=r"^'x' must be comma-separated numbers, e.g. 513,513$"):
        parse_numbers("x", int, "", "513,513")


def test_output_stride_follows_the_atrous_rates():
    assert default_output_stride((6, 12, 18)) == 16
    assert default_output_stride(()) == default_output_stride(None) == 8
    assert rates_at((6, 12, 18), 8) == (12, 24, 36)
    assert rates_at((6, 12, 18), 16) == (6, 12, 18)


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_only_leftovers_of_ended_exports_are_removed(tmp_path):
    host = socket.gethostname()
    names = {
        f".1.tmp-{host}-{_dead_pid()}-ab_12": True,  # its export was killed
        ".2.tmp-k3j_x9": True,  # an older release's name: no owner recorded
        f".3.tmp-{host}-{os.getpid()}-cd34": False,  # an export still running
        f".4.tmp-other-host-{_dead_pid()}-ef56": False,  # another machine's, on a shared disk
        "5": False,
        ".5.old-123": True,  # an older release's, its new version 5 in place
        f".5.old-{host}-{_dead_pid()}-456": True,  # the same, killed before removing it
        f".5.old-{host}-{os.getpid()}-789": False,  # an export swapping right now
        "notes": False,
    }
    for name in names:
        (tmp_path / name / "model").mkdir(parents=True)
    removed = remove_leftovers(tmp_path)
    assert sorted(p.name for p in removed) == sorted(n for n, gone in names.items() if gone)
    kept = sorted(n for n, gone in names.items() if not gone)
    assert sorted(p.name for p in tmp_path.iterdir()) == kept


def test_a_version_moved_aside_by_a_killed_overwrite_is_put_back(tmp_path):
    host, dead = socket.gethostname(), _dead_pid()
    # Killed between the renames: 6 moved aside, the new one still in its temporary folder.
    (tmp_path / f".6.old-{host}-{dead}-111" / "variables").mkdir(parents=True)
    (tmp_path / f".6.old-{host}-{dead}-111" / "saved_model.pb").write_bytes(b"previous")
    (tmp_path / f".6.tmp-{host}-{dead}-xy" / "model").mkdir(parents=True)
    (tmp_path / ".7.old-222" / "variables").mkdir(parents=True)  # an older release's name
    removed = remove_leftovers(tmp_path)
    assert [p.name for p in removed] == [f".6.tmp-{host}-{dead}-xy"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["6", "7"]
    assert (tmp_path / "6" / "saved_model.pb").read_bytes() == b"previous"


def test_this_module_needs_no_tensorflow():
    code = ("import sys, exporter.export, exporter.defaults; "
            "print('tensorflow' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.stdout.strip() == "False", run.stderr

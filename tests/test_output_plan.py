"""The input walk, the output plan, shards, provenance chunks and summaries: pure core, no model."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segviewer.core import provenance
from segviewer.core.images import encode_png, temp_name
from segviewer.core.inputs import walk_inputs
from segviewer.core.output_plan import OutputPlan, PlanError, check_plan, label_relpath
from segviewer.core.shards import Shard, ShardError
from segviewer.core.summary import BatchSummary, Failure, SummaryError, merge_summaries


def touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def rels(items) -> list[str]:
    return [i.rel for i in items]


def test_walk_is_lazy_sorted_per_folder_files_first(tmp_path):
    touch(tmp_path, "b.png", "a.jpg", "z/c.png", "m/d.png", "m/n/e.png", ".hid/x.png",
          "m/.y.png", "notes.txt")
    walk = walk_inputs([tmp_path])
    assert next(walk).rel == "a.jpg"  # the first input without listing the rest
    assert rels(walk) == ["b.png", "m/d.png", "m/n/e.png", "z/c.png"]


def test_each_input_is_relative_to_its_own_argument(tmp_path):
    touch(tmp_path, "a/photo.png", "b/sub/photo.png", "c.jpg")
    items = list(walk_inputs([tmp_path / "a", tmp_path / "b", tmp_path / "c.jpg"]))
    assert [(i.rel, i.argument) for i in items] == [
        ("photo.png", 0), ("sub/photo.png", 1), ("c.jpg", 2)]


def test_out_is_not_walked_and_is_reported_and_nested_arguments_walk_once(tmp_path):
    touch(tmp_path, "in/a.png", "in/out/old.png", "in/sub/b.png")
    skipped: list[Path] = []
    items = list(walk_inputs([tmp_path / "in", tmp_path / "in" / "sub", tmp_path / "in/a.png"],
                             tmp_path / "in" / "out", on_skipped=skipped.append))
    # in/sub is walked once, as its own argument; in/a.png once, as the file argument it is
    assert [(i.rel, i.argument) for i in items] == [("b.png", 1), ("a.png", 2)]
    assert skipped == [tmp_path / "in" / "out"]


def test_a_symlink_loop_and_a_fifo_are_yielded_to_be_named_not_followed(tmp_path):
    os.symlink("loop", tmp_path / "loop")  # a folder link to itself: never walked into
    os.symlink(tmp_path, tmp_path / "up")  # a link to an ancestor: not followed
    os.mkfifo(tmp_path / "x.png")
    assert rels(walk_inputs([tmp_path])) == ["x.png"]
    assert rels(walk_inputs([tmp_path / "loop"])) == ["loop"]  # explicit: kept, load names it


def plan_all(arguments, out, overlay=False):
    plan = OutputPlan(out, arguments, overlay)
    return [plan.place(item) for item in walk_inputs(arguments, out)]


def test_outputs_mirror_each_argument_whatever_the_other_inputs(tmp_path):
    touch(tmp_path, "in/sub1/a.png", "in/sub1/b.png", "in/sub2/c.png")
    first = plan_all([tmp_path / "in"], tmp_path / "out")
    touch(tmp_path, "in/sub2/a.png")  # a new clashing stem changes nobody else's outputs
    second = plan_all([tmp_path / "in"], tmp_path / "out")
    assert {o.label for o in first} < {o.label for o in second}
    assert second[0].label == tmp_path / "out" / "sub1" / "a.png"
    assert label_relpath("x/photo.jpg") == "x/photo.png"


@pytest.mark.parametrize("names, overlay, clash", [
    (["x.png", "x_overlay.png"], True, "x_overlay.png"),
    (["x.jpg", "x.png"], False, "x.png"),
])
def test_two_outputs_on_one_path_are_refused_naming_both(tmp_path, names, overlay, clash):
    touch(tmp_path / "in", *names)
    with pytest.raises(PlanError) as error:
        plan_all([tmp_path / "in"], tmp_path / "out", overlay)
    message = str(error.value)
    assert all(str(tmp_path / "in" / n) in message for n in names)
    assert str(tmp_path / "out" / clash) in message and "\n" not in message


def test_two_arguments_writing_one_path_are_refused(tmp_path):
    touch(tmp_path, "a/photo.png", "b/photo.png")
    with pytest.raises(PlanError, match=r"photo\.png"):
        plan_all([tmp_path / "a", tmp_path / "b"], tmp_path / "out")
    with pytest.raises(PlanError, match="photo"):  # two file arguments, their own names
        plan_all([tmp_path / "a/photo.png", tmp_path / "b/photo.png"], tmp_path / "out")


def test_an_output_replacing_an_input_is_refused(tmp_path):
    touch(tmp_path, "a/photo.png", "b/photo.png")
    # Issue 13's `a b --out a`: the input folder is the output folder.
    with pytest.raises(PlanError, match=r"input folder .*a' is inside --out"):
        OutputPlan(tmp_path / "a", [tmp_path / "a", tmp_path / "b"], False)
    # The GUI's case: output folder = the images' folder.
    with pytest.raises(PlanError) as error:
        check_plan([tmp_path / "a" / "photo.png"], tmp_path / "a", overlay=False)
    assert str(error.value).count(str(tmp_path / "a" / "photo.png")) >= 2
    check_plan([tmp_path / "a" / "photo.png"], tmp_path / "a" / "labels", overlay=True)


def test_clashing_stems_in_linear_time(tmp_path):
    """100,000 inputs, all one stem in pairs across folders: no quadratic naming (benchmark:
    benchmarks/output_plan.py)."""
    from segviewer.core.inputs import Input

    plan = OutputPlan(tmp_path / "out", [tmp_path / "in"], overlay=True)
    for i in range(20_000):
        plan.place(Input(f"in/{i}/x.png", f"{i}/x.png", 0))


def test_shards_cover_every_input_exactly_once():
    paths = [f"d{i % 7}/img{i}.png" for i in range(3000)]
    shards = [Shard.parse(f"{k}/3") for k in range(3)]
    owners = [sum(s.holds(p) for s in shards) for p in paths]
    assert owners == [1] * len(paths)
    sizes = [sum(s.holds(p) for p in paths) for s in shards]
    assert min(sizes) > 900  # about a third each
    # stable: a pure function of the relative path (BLAKE2b, not Python's salted hash)
    assert [Shard.parse("0/3").holds(p) for p in ("a.png", "b/c.png", "d.png")] == [
        False, True, False]
    for bad in ("3/3", "-1/3", "0/0", "1", "a/b", "2/1"):
        with pytest.raises(ShardError):
            Shard.parse(bad)


def test_provenance_chunk_round_trips_and_pillow_sees_it(tmp_path):
    made = provenance.Provenance("tiny", 2, "serving_default", "gRPC host:8500", None)
    png = provenance.write(encode_png(np.arange(12, dtype=np.uint8).reshape(3, 4)), made)
    path = tmp_path / "x.png"
    path.write_bytes(png)
    assert provenance.read(path) == made
    with Image.open(io.BytesIO(png)) as img:
        assert img.text["segviewer"].startswith('{"model": "tiny"')
        assert np.array_equal(np.asarray(img), np.arange(12).reshape(3, 4))
    assert made.same_model(provenance.Provenance("tiny", 2, "serving_default", "REST x", "f"))
    assert not made.same_model(provenance.Provenance("tiny", 1, "serving_default", "x"))
    assert not made.same_model(None)
    path.write_bytes(encode_png(np.zeros((2, 2), np.uint8)))
    assert provenance.read(path) is None
    assert provenance.read(tmp_path / "missing.png") is None


def test_temp_names_have_a_fixed_length(tmp_path):
    long = tmp_path / ("n" * 242 + ".png")
    assert len(temp_name(long).name) < 50
    assert temp_name(long).suffix == ".png"


def test_summaries_of_shards_merge_into_the_whole_run():
    parts = []
    for k, (ok, seconds) in enumerate(((3, 0.1), (2, 0.3))):
        summary = BatchSummary(total=ok + 1, ok=ok)
        summary.add_failure(Failure(Path(f"bad{k}.png"), "damaged"))
        summary.class_pixels = {0: 10, 1: 10 * k}
        for _ in range(ok):
            summary.latency.add(seconds)
        summary.seconds = 1.0 + k
        parts.append({"model": "m", "version": 1, "signature": "s", "out": "o"}
                     | summary.to_json())
    merged = merge_summaries(parts)
    assert (merged["total"], merged["ok"], merged["failed"], merged["shards"]) == (7, 5, 2, 2)
    assert [f["input"] for f in merged["failures"]] == ["bad0.png", "bad1.png"]
    assert merged["class_pixels"] == [{"id": 0, "name": "class 0", "pixels": 20},
                                      {"id": 1, "name": "class 1", "pixels": 10}]
    assert merged["timings"]["total_s"] == 2.0
    assert merged["timings"]["per_image_p50_s"] == pytest.approx(0.1, rel=0.05)
    assert merged["timings"]["per_image_p95_s"] == pytest.approx(0.3, rel=0.05)
    with pytest.raises(SummaryError, match="version"):
        merge_summaries([parts[0], parts[1] | {"version": 2}])
    with pytest.raises(SummaryError):
        merge_summaries([{"model": "m"}])

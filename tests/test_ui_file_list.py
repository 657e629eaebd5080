"""The image list on real folders, driven through a real Qt event loop (pytest-qt): a 10,000-image
folder walked and listed chunk by chunk, thumbnails only for painted rows, filters, sorting,
removing, Home/End, and failure reasons shown whole."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt, QTimer

from segviewer.core.folder_walk import walk_images
from segviewer.ui.file_list import FileList, Status
from segviewer.ui.file_model import SortKey
from segviewer.ui.folder_walker import FIRST_CHUNK, FolderWalker

N = 10_000


def tiny_png(value: int) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.full((6, 8, 3), value, np.uint8)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def big_folder(tmp_path_factory) -> Path:
    """10,000 real 8x6 PNGs in two sub-folders, plus a hidden file and a non-image."""
    folder = tmp_path_factory.mktemp("big")
    data = [tiny_png(v) for v in (40, 120, 200)]
    for sub in ("a", "b"):
        (folder / sub).mkdir()
        for i in range(N // 2):
            (folder / sub / f"img{i:05d}.png").write_bytes(data[i % 3])
    (folder / "a" / ".hidden.png").write_bytes(data[0])
    (folder / "notes.txt").write_text("not an image")
    return folder


@pytest.fixture
def files(qtbot) -> FileList:
    widget = FileList()
    qtbot.addWidget(widget)
    widget.resize(320, 500)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def fill(files: FileList, qtbot, inputs: list) -> list[int]:
    """Walk `inputs` into the list; returns the list's row count after each chunk."""
    walker = FolderWalker(files)
    counts: list[int] = []
    walker.found.connect(lambda chunk: (files.add_paths(chunk), counts.append(files.count())))
    with qtbot.waitSignal(walker.finished, timeout=60_000) as done:
        walker.start(inputs)
    assert done.args == [files.count()]
    return counts


def test_walk_matches_find_images_selection(big_folder):
    from segviewer.core.images import find_images

    walked = [p for chunk in walk_images([big_folder], (100, 1000)) for p in chunk]
    assert sorted(walked) == sorted(str(p) for p in find_images([big_folder]))
    chunks = [len(c) for c in walk_images([big_folder, big_folder / "a"], (100, 1000))]
    assert chunks[:3] == [100, 1000, 1000] and sum(chunks) == N  # the second input: duplicates


def test_ten_thousand_images_fill_in_chunks_while_the_event_loop_runs(files, qtbot, big_folder):
    beats = []
    heartbeat = QTimer()
    heartbeat.timeout.connect(lambda: beats.append(files.count()))
    heartbeat.start(1)
    counts = fill(files, qtbot, [big_folder])
    heartbeat.stop()
    assert files.count() == N
    assert counts[0] == FIRST_CHUNK and len(counts) > 2 and counts == sorted(counts)
    assert any(0 < n < N for n in beats), "the event loop ran while the list was filling"
    assert Path(files.paths()[0]).name == "img00000.png"
    assert Path(files.paths()[-1]).parent.name == "b"
    # Thumbnails: only for the rows painted, never the 10,000.
    qtbot.waitUntil(lambda: files.thumbnails.decoded > 0, timeout=10_000)
    qtbot.wait(200)
    shown = files.view.viewport().height() // files.view.sizeHintForRow(0) + 2
    assert 0 < files.thumbnails.decoded <= shown
    image = files.thumbnails.get(files.paths()[0])
    assert image is not None and image.width() == image.height()  # squared, ready to paint


def test_scrolling_to_the_end_decodes_only_rows_painted_on_the_way(files, qtbot, big_folder):
    fill(files, qtbot, [big_folder])
    files.step(1)
    qtbot.keyClick(files.view, Qt.Key.Key_End)
    assert files.current_path == files.paths()[-1]
    qtbot.waitUntil(lambda: files.thumbnails.get(files.paths()[-1]) is not None, timeout=10_000)
    assert files.thumbnails.decoded < 100
    qtbot.keyClick(files.view, Qt.Key.Key_Home)
    assert files.current_path == files.paths()[0]


def test_filter_by_name_and_status(files, qtbot):
    paths = [f"/data/set/{name}.png" for name in ("cat_01", "dog_01", "cat_02", "bird", "Cat_03")]
    files.add_paths(paths)
    files.set_status(paths[0], Status.DONE)
    files.set_status(paths[1], Status.FAILED, "cannot read: file is truncated")
    files.set_status(paths[3], Status.RUNNING)
    files.set_filter(text="cat")
    assert files.visible_paths() == [paths[0], paths[2], paths[4]]  # case-insensitive
    files.set_filter(text="", status="failed")
    assert files.visible_paths() == [paths[1]]
    files.set_filter(status="pending")  # running counts as pending
    assert files.visible_paths() == [paths[2], paths[3], paths[4]]
    files.set_filter(text="cat", status="pending")
    assert files.visible_paths() == [paths[2], paths[4]]
    assert files.count_label.text() == "2 of 5 images shown"
    files.set_filter(text="", status="all")
    assert files.visible_paths() == paths
    assert files.paths() == paths


def test_typing_in_the_filter_box_filters_when_the_user_pauses(files, qtbot):
    files.add_paths(["/x/alpha.png", "/x/beta.png"])
    qtbot.keyClicks(files.filter_edit, "bet")
    qtbot.waitUntil(lambda: files.visible_paths() == ["/x/beta.png"], timeout=2000)


def test_a_status_filter_follows_new_results_but_keeps_the_shown_image(files, qtbot):
    paths = [f"/x/{i}.png" for i in range(4)]
    files.add_paths(paths)
    files.select_path(paths[0])
    files.set_filter(status="pending")
    files.set_status(paths[0], Status.DONE)
    files.set_status(paths[1], Status.DONE)
    qtbot.waitUntil(lambda: files.visible_paths() == [paths[0], paths[2], paths[3]], timeout=2000)
    assert files.current_path == paths[0]  # pinned: the image on screen stays listed


def test_class_filter_and_share_sort(files, qtbot):
    paths = [f"/x/{i}.png" for i in range(4)]
    files.add_paths(paths)
    files.set_class_names({0: "background", 8: "cat", 15: "person"})
    files.set_classes(paths[0], {0: 90.0, 15: 10.0})
    files.set_classes(paths[1], {0: 40.0, 15: 60.0})
    files.set_classes(paths[2], {0: 95.0, 8: 5.0})
    labels = [files.class_combo.itemText(i) for i in range(files.class_combo.count())]
    assert labels == ["Any class", "0 background", "8 cat", "15 person"]
    files.set_filter(class_id=15)
    assert files.visible_paths() == [paths[0], paths[1]]
    files.set_filter(min_share=50)
    assert files.visible_paths() == [paths[1]]
    row = files.proxy.index(0, 0)
    assert files._status_line(row) == "pending · person 60.0 %"  # the share filtered on
    files.set_filter(class_id=0, min_share=0)
    files.set_sort(SortKey.CLASS_SHARE)
    assert files.visible_paths() == [paths[2], paths[0], paths[1]]  # no result: filtered out
    files.set_filter(status="all")
    files.class_combo.setCurrentIndex(0)
    assert files.visible_paths()[-1] == paths[3]  # sorted by background share, no result last


def test_sorting_by_name_and_status_keeps_the_current_image(files, qtbot):
    paths = ["/x/b.png", "/y/a.png", "/x/C.png", "/x/d.png"]
    files.add_paths(paths)
    files.select_path(paths[2])
    files.set_status(paths[3], Status.FAILED, "broken")
    files.set_status(paths[0], Status.DONE)
    files.set_sort(SortKey.NAME)
    assert files.visible_paths() == ["/y/a.png", "/x/b.png", "/x/C.png", "/x/d.png"]
    files.set_sort(SortKey.STATUS)
    assert files.visible_paths() == ["/x/d.png", "/y/a.png", "/x/C.png", "/x/b.png"]
    assert files.current_path == paths[2]
    assert files.view.currentIndex().row() == 2  # the selection followed its image
    files.step(1)
    assert files.current_path == "/x/b.png"  # stepping follows the list's order
    files.set_sort(SortKey.ADDED)
    assert files.visible_paths() == paths
    files.add_paths(["/x/0.png"])
    files.set_sort(SortKey.NAME)
    assert files.visible_paths()[0] == "/x/0.png"


def test_remove_with_delete_and_clear(files, qtbot):
    paths = [f"/x/{i}.png" for i in range(5)]
    files.add_paths(paths)
    removed = []
    files.paths_removed.connect(removed.append)
    changes = []
    files.current_path_changed.connect(changes.append)
    files.select_path(paths[1])
    files.view.setFocus()
    qtbot.keyClick(files.view, Qt.Key.Key_Down, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClick(files.view, Qt.Key.Key_Delete)
    assert removed == [[paths[2], paths[1]]] or removed == [[paths[1], paths[2]]]
    assert files.paths() == [paths[0], paths[3], paths[4]]
    assert files.current_path in files.paths() and changes[-1] == files.current_path
    files.add_paths([paths[1]])  # a removed image can be opened again
    assert files.paths()[-1] == paths[1] and files.status(paths[1]) is Status.PENDING
    files.clear_all()
    assert files.count() == 0 and files.paths() == [] and files.current_path is None
    assert sorted(removed[-1]) == sorted([paths[0], paths[3], paths[4], paths[1]])
    assert files.detail.isHidden()


def test_home_and_end_follow_the_filtered_order(files, qtbot):
    paths = [f"/x/{name}.png" for name in ("k1", "x", "k2", "k3", "y")]
    files.add_paths(paths)
    files.select_path(paths[0])
    files.set_filter(text="k")
    files.view.setFocus()
    qtbot.keyClick(files.view, Qt.Key.Key_End)
    assert files.current_path == paths[3]
    qtbot.keyClick(files.view, Qt.Key.Key_Home)
    assert files.current_path == paths[0]
    files.step(-1)
    assert files.current_path == paths[0]  # stops at the ends


def test_failure_reason_is_shown_whole(files, qtbot):
    deep = "/very/long/folder/name/" * 8 + "an_image_with_a_long_name.png"
    reason = "cannot read: PNG file is truncated or damaged (re-export or re-download it)"
    files.add_paths([deep])
    files.select_path(deep)
    files.set_status(deep, Status.FAILED, reason)
    assert files.tooltip(deep) == f"{deep}\nfailed: {reason}"
    assert files.detail.isVisible() and reason in files.detail.text()
    assert files.detail.wordWrap()
    files.set_status(deep, Status.DONE)
    assert "failed" not in files.tooltip(deep) and files.message(deep) == ""


def test_unreadable_files_get_a_no_preview_mark_not_a_crash(files, qtbot, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    files.add_paths([broken])
    qtbot.waitUntil(lambda: files.thumbnails.failed(str(broken)), timeout=10_000)
    files.set_thumbnail(str(broken), np.zeros((4, 8, 3), np.uint8))  # made from a decoded image
    image = files.thumbnails.get(str(broken))
    assert image is not None and (image.width(), image.height()) == (8, 8)


def test_a_cancelled_walk_stops_and_reports_nothing(files, qtbot, big_folder):
    walker = FolderWalker(files)
    chunks, finished = [], []
    walker.found.connect(chunks.append)
    walker.finished.connect(finished.append)
    walker.found.connect(lambda _: walker.cancel())  # the user opens something else
    walker.start([big_folder])
    qtbot.waitUntil(lambda: bool(chunks), timeout=10_000)
    qtbot.waitUntil(lambda: not walker._couriers, timeout=10_000)  # the thread has ended
    assert len(chunks) == 1 and finished == [] and not walker.running


def test_clearing_the_list_empties_the_main_window(qtbot, tmp_path):
    from segviewer.ui.main_window import MainWindow

    for name in ("a.png", "b.png"):
        (tmp_path / name).write_bytes(tiny_png(90))
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    window.open_paths([tmp_path])
    qtbot.waitUntil(lambda: window.image is not None and window.idle, timeout=30_000)
    window.file_list.remove_paths([window.current_path])  # the view moves to the other one
    qtbot.waitUntil(lambda: window.current_path == str(tmp_path / "b.png")
                    and window.image is not None, timeout=30_000)
    window.file_list.clear_all()
    assert window.current_path is None and window.image is None
    assert window.canvas.image_shape is None and window.windowTitle() == "SegViewer"


def test_thumbnails_are_small_upright_and_bounded(tmp_path):
    from segviewer.core.thumbnails import load_thumbnail

    photo = np.zeros((480, 640, 3), np.uint8)
    photo[:, :320] = (250, 20, 20)
    path = tmp_path / "photo.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    Image.fromarray(photo).save(path, quality=90, exif=exif)
    thumb = load_thumbnail(path, 112)
    assert thumb.shape == (112, 84, 3) and thumb.dtype == np.uint8  # upright: portrait
    assert thumb[:10].mean(axis=(0, 1))[0] > 200  # the red half is on top once upright
    with pytest.raises(ValueError, match="at least 1"):
        load_thumbnail(path, 0)
    with pytest.raises(OSError):
        load_thumbnail(tmp_path / "missing.png", 112)


def test_the_main_window_lists_a_big_folder_as_it_is_walked(qtbot, big_folder, tmp_path):
    from segviewer.ui import settings as keys
    from segviewer.ui.main_window import MainWindow

    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    sizes, statuses = [], []
    window.state.images_added.connect(lambda paths: sizes.append(len(paths)))
    window.state.status_changed.connect(lambda *args: statuses.append(args))
    window.open_paths([big_folder])
    assert not window.idle  # the walk counts as work (what --screenshot waits for)
    qtbot.waitUntil(lambda: window.idle and window.image is not None, timeout=60_000)
    assert sizes[0] == FIRST_CHUNK and len(sizes) > 2 and sum(sizes) == N
    assert window.file_list.paths() == window.state.paths and window.file_list.count() == N
    assert window.current_path == str(big_folder / "a" / "img00000.png")  # the first, shown
    assert statuses == []  # no model: nothing decoded for it, every image stays pending
    assert window.prefs.get(keys.RECENT)[0] == str(big_folder)
    empty = tmp_path / "empty"
    empty.mkdir()
    window.open_paths([empty])
    qtbot.waitUntil(lambda: window.idle and bool(window.errors), timeout=30_000)
    assert window.errors[-1].startswith(f"No images found in {empty}")
    assert window.prefs.get(keys.RECENT)[0] == str(big_folder)  # not remembered

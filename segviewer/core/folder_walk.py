"""Walk folders for images a chunk at a time, so a list can show the first ones at once.

Same selection as `images.find_images` (image extensions, case-insensitive; hidden files and
folders skipped; explicit files kept as given; glob patterns expanded), but yielded in chunks as
the walk goes: each folder's images in name order, then its sub-folders in name order. Duplicates
(the same file reached twice) are yielded once. No Qt here: the UI runs this in a thread.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from segviewer.core.images import IMAGE_EXTENSIONS, find_images


def walk_images(
    inputs: Iterable[str | Path],
    chunk_sizes: Iterable[int] = (256,),
    cancelled: Callable[[], bool] = lambda: False,
) -> Iterator[list[str]]:
    """Yield lists of image paths (as strings). Chunks take their sizes from `chunk_sizes` in
    turn, the last size repeating: a small first chunk paints soon, larger ones cost fewer
    updates. Stops early when `cancelled()` turns true."""
    sizes = list(chunk_sizes) or [256]
    seen: set[str] = set()
    chunk: list[str] = []
    emitted = 0
    for path in _candidates(inputs, cancelled):
        if path.key in seen:
            continue
        seen.add(path.key)
        chunk.append(path.text)
        if len(chunk) >= sizes[min(emitted, len(sizes) - 1)]:
            yield chunk
            emitted += 1
            chunk = []
        if cancelled():
            return
    if chunk:
        yield chunk


class _Found:
    __slots__ = ("key", "text")

    def __init__(self, text: str, key: str) -> None:
        self.text, self.key = text, key


def _candidates(inputs: Iterable[str | Path], cancelled: Callable[[], bool]) -> Iterator[_Found]:
    for item in inputs:
        if os.path.isdir(item):
            # One realpath per folder, not per file: files are keyed under their folder's.
            yield from _walk(str(item), os.path.realpath(item), cancelled)
        else:
            for path in find_images([item]):
                yield _Found(str(path), os.path.realpath(path))


def _walk(folder: str, real: str, cancelled: Callable[[], bool]) -> Iterator[_Found]:
    try:
        with os.scandir(folder) as it:
            entries = sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
    except OSError:
        return  # an unreadable sub-folder is skipped, as rglob does
    subfolders = []
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):  # as rglob: no cycles through links
            subfolders.append(entry)
        elif entry.name.lower().endswith(IMAGE_EXTENSIONS) and entry.is_file():
            yield _Found(entry.path, os.path.join(real, entry.name))
    for entry in subfolders:
        if cancelled():
            return
        yield from _walk(entry.path, os.path.join(real, entry.name), cancelled)

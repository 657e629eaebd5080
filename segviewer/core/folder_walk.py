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
    inputs = list(inputs)
    sizes = list(chunk_sizes) or [256]
    # One input cannot repeat a file (links to folders are not followed), so 100,000 paths need
    # no second set of 100,000 keys; several inputs may overlap.
    seen: set[str] | None = set() if len(inputs) > 1 else None
    chunk: list[str] = []
    emitted = 0
    for path, key in _candidates(inputs, cancelled, seen is not None):
        if seen is not None:
            if key in seen:
                continue
            seen.add(key)
        chunk.append(path)
        if len(chunk) >= sizes[min(emitted, len(sizes) - 1)]:
            yield chunk
            emitted += 1
            chunk = []
        if cancelled():
            return
    if chunk:
        yield chunk


def _candidates(inputs: list[str | Path], cancelled: Callable[[], bool],
                keyed: bool) -> Iterator[tuple[str, str]]:
    """(path, the file's real path when `keyed`, else "")."""
    for item in inputs:
        if os.path.isdir(item):
            folder = str(item)
            # One realpath per folder, not per file: a file's key is its folder's plus its name.
            real = os.path.realpath(folder) if keyed else ""
            for path in _walk(folder, cancelled):
                yield path, (real + path[len(folder):] if keyed else "")
        else:
            for path in find_images([item]):
                yield str(path), (os.path.realpath(path) if keyed else "")


def _walk(folder: str, cancelled: Callable[[], bool]) -> Iterator[str]:
    try:
        with os.scandir(folder) as it:
            entries = sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
    except OSError:
        return  # an unreadable sub-folder is skipped, as rglob does
    subfolders = []
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):  # as rglob: no cycles through links
            subfolders.append(entry.path)
        elif entry.name.lower().endswith(IMAGE_EXTENSIONS) and entry.is_file():
            yield entry.path
    del entries
    for path in subfolders:
        if cancelled():
            return
        yield from _walk(path, cancelled)

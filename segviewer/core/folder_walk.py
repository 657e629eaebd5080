"""Walk inputs for images a chunk at a time, so a list can show the first ones at once.

The selection and order are `inputs.walk_inputs`' (the one rule, shared with `find_images` and
the batch runs); this only cuts its lazy stream into chunks. No Qt here: the UI runs this in a
thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from segviewer.core.inputs import walk_inputs


def walk_images(
    inputs: Iterable[str | Path],
    chunk_sizes: Iterable[int] = (256,),
    cancelled: Callable[[], bool] = lambda: False,
) -> Iterator[list[str]]:
    """Yield lists of image paths (as strings). Chunks take their sizes from `chunk_sizes` in
    turn, the last size repeating: a small first chunk paints soon, larger ones cost fewer
    updates. Stops early when `cancelled()` turns true."""
    sizes = list(chunk_sizes) or [256]
    chunk: list[str] = []
    emitted = 0
    for item in walk_inputs(inputs):
        chunk.append(item.name)
        if len(chunk) >= sizes[min(emitted, len(sizes) - 1)]:
            yield chunk
            emitted += 1
            chunk = []
        if cancelled():
            return
    if chunk:
        yield chunk

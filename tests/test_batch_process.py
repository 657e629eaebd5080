"""A folder run's process settings: large blocks stay in the heap from one image to the next."""

from __future__ import annotations

import gc
import subprocess
import sys

from segviewer.core.batch_process import prepare_for_batch

# Ten 1080p "images" in a worker thread, as a folder run makes them: the decoded image, its
# request bytes, the label map. Prints the page faults of the second ten (the first grow the heap).
PROBE = """
import resource, sys, threading
import numpy as np
from segviewer.core.batch_process import prepare_for_batch
if sys.argv[1] == "tuned":
    prepare_for_batch()
def images():
    for _ in range(10):
        image = np.ones((1080, 1920, 3), np.uint8)
        request = image.tobytes()
        labels = np.ones((1080, 1920), np.uint8)
        del image, request, labels
for _ in range(2):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    worker = threading.Thread(target=images)
    worker.start()
    worker.join()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    result = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                            check=True)
    return int(result.stdout)


def test_images_after_the_first_reuse_memory_instead_of_faulting_in_fresh_pages():
    default, tuned = _faults("default"), _faults("tuned")
    # 1080p x (3 + 3 + 1) bytes x 10 images is ~36,000 pages faulted in anew without the tuning.
    assert tuned * 5 < default, (tuned, default)


def test_start_up_objects_are_left_out_of_later_collections():
    try:
        prepare_for_batch()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()

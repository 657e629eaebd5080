"""Whether a process on this machine is still running: how leftovers of killed runs (temporary
files of batch runs, temporary folders of exports) are told from the files of live ones."""

from __future__ import annotations

import os


def process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except OSError:  # it exists, as another user
        return True
    return True

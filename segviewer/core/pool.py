"""The bounded worker pool the batch runner and the review share.

Items are pulled from an iterator only as workers free up (at most two per worker wait in the
queue), so a stream of a million inputs is never held at once and a cancel waits for little.
Results come back in the caller's thread, in completion order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def bounded_map(
    work: Callable[[T], R],
    items: Iterable[T],
    workers: int,
    stopped: Callable[[], bool],
    on_interrupt: Callable[[], None],
    name: str = "segviewer-pool",
) -> Iterator[R]:
    """Run `work` on `items` with `workers` threads, yielding each result as it completes.

    No new item is pulled once `stopped()` is true; those in flight still finish and are yielded.
    Ctrl-C in the caller's thread calls `on_interrupt` (which should make `stopped()` true) and the
    run drains the same way. An exception raised by `items` itself stops the pulling too, and is
    raised once the work in flight has been yielded."""
    workers = max(1, workers)
    source = iter(items)
    pending: set[Future[R]] = set()
    error: BaseException | None = None
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name) as pool:
        while True:
            try:
                while error is None and not stopped() and len(pending) < 2 * workers:
                    try:
                        item = next(source)
                    except StopIteration:
                        break
                    except KeyboardInterrupt:
                        raise
                    except Exception as exc:  # e.g. a plan check failing mid-stream
                        error = exc
                        break
                    pending.add(pool.submit(work, item))
                if not pending:
                    break
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    pending.discard(future)
                    yield future.result()
            except KeyboardInterrupt:
                on_interrupt()
    if error is not None:
        raise error

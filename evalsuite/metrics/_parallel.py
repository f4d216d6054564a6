"""Split a large per-example computation across the machine's cores.

Why: corpus metrics over tens of thousands of long texts are CPU-bound pure Python (sacrebleu's n-gram
statistics). Per-example statistics are independent and are summed afterwards, so computing them in
chunks on several processes gives exactly the same numbers. Small batches stay in-process: starting a
worker costs more than it saves.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
PARALLEL_MIN_ITEMS = 2000  # below this a worker's start-up (~0.5 s) outweighs the gain
CHUNKS_PER_PROCESS = 8
_pool: ProcessPoolExecutor | None = None
_pool_size = 0


def cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _workers(n: int) -> ProcessPoolExecutor:
    """One pool per process, started on first use and kept (later batches skip the start-up).

    ``forkserver``: forking a process that may hold other threads (the async engine, Rust thread pools)
    can deadlock, and ``spawn`` would re-run the caller's ``__main__``.
    """
    global _pool, _pool_size
    if _pool is None or _pool_size != n:
        if _pool is not None:
            _pool.shutdown()
        _pool = ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("forkserver"))
        _pool_size = n
    return _pool


def map_chunks(fn: Callable[..., list[T]], items: Sequence[Any], *args: Any) -> list[T]:
    """``fn(items, *args)`` computed chunk-wise on this process and ``cpus() - 1`` workers.

    ``fn`` must be a module-level function returning one result per item, in order. Workers take chunks
    from the front while this process takes them from the back (cancelling what no worker has started),
    so a slow worker start-up or a busy core never leaves the other side idle.
    """
    n_processes = min(cpus(), len(items) // (PARALLEL_MIN_ITEMS // 2))
    if n_processes < 2:
        return fn(items, *args)
    size = -(-len(items) // (n_processes * CHUNKS_PER_PROCESS))
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    pool = _workers(n_processes - 1)
    futures = [pool.submit(fn, chunk, *args) for chunk in chunks]
    done: dict[int, list[T]] = {}
    for i in reversed(range(len(chunks))):
        if futures[i].cancel():
            done[i] = fn(chunks[i], *args)
    results: list[T] = []
    for i, future in enumerate(futures):
        results.extend(done[i] if i in done else future.result())
    return results

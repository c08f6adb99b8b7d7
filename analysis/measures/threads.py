"""Independent numpy work spread over the machine's cores.

Batches of small problems (DFT-CCA's frequencies) leave a multi-threaded BLAS idle: each 32 x 32 product is
too small to split, so it runs on one core; and centring, validation passes and DFT-CCA's gathering of
spectra are single-threaded in numpy. Here independent pieces (a batch cut in one piece per core, or the
two layers of a pair) run in threads (numpy, torch and LAPACK release the GIL), with BLAS held to one
thread meanwhile so the threads do not compete for cores. The BLAS limit is process-wide while it holds
(threadpoolctl), so only calls from the main thread are split; elsewhere the pieces run one after another
in the caller.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from functools import cache
from typing import TypeVar

import numpy as np

T = TypeVar("T")
R = TypeVar("R")

#: Fewer elements than this in all, and starting threads (~0.3 ms) costs more than they save.
MIN_ELEMENTS = 1 << 18


def cores() -> int:
    """Cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@cache
def _controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()  # inspecting the loaded libraries takes ~1 ms: once per process


def worth_splitting(*arrays) -> bool:
    """Whether work on these arrays is worth spreading over cores: numpy (torch batches on its own), and large."""
    return all(isinstance(a, np.ndarray) for a in arrays) and sum(a.size for a in arrays) >= MIN_ELEMENTS


def parallel_map(fn: Callable[[T], R], items: Iterable[T], single_blas: bool = True, threads: bool = True) -> list[R]:
    """`[fn(item) for item in items]`, the items in threads, one per core at most; exceptions propagate.

    `single_blas`: hold BLAS to one thread while they run. `threads=False`, or a caller outside the main
    thread: one after another (see `worth_splitting`).
    """
    items = list(items)
    # only from the main thread: threadpoolctl lets one thread (the first to set it) change BLAS's process-wide
    # thread count, and callers in other threads already run beside others
    main = threading.current_thread() is threading.main_thread()
    workers = min(len(items), cores()) if threads and main else 1
    if workers <= 1:
        return [fn(item) for item in items]
    limit = _controller().limit(limits=1, user_api="blas") if single_blas else nullcontext()
    with limit, ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, items))


def pieces(count: int, minimum: int = 1) -> list[slice]:
    """`range(count)` cut into contiguous slices, one per core, each at least `minimum` long (one if count is 0)."""
    k = max(1, min(cores(), count // max(minimum, 1)))
    bounds = np.linspace(0, count, k + 1).round().astype(int)
    return [slice(int(lo), int(hi)) for lo, hi in zip(bounds[:-1], bounds[1:])]

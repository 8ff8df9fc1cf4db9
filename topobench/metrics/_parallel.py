"""Thread-parallel map over windows.

Threads help only where the kernel releases the GIL: cc3d's connected components (2D and 3D)
and scikit-image's 3D thinning (Lee) do; its 2D thinning (Zhang-Suen) does not (two threads over
2D windows ran at 1.03x of one), so 2D skeletons run on the calling thread
(:func:`topobench.metrics.overlap.skeleton_stats` passes ``gil_free=False``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from topobench.errors import InvalidParameterError

T = TypeVar("T")
R = TypeVar("R")


def resolve_workers(workers: int | None) -> int:
    """Number of threads: None -> all cores; otherwise a positive integer."""
    if workers is None:
        return max(1, os.cpu_count() or 1)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidParameterError(f"workers must be a positive integer or None, got {workers!r}")
    return workers


def map_windows(
    fn: Callable[[T], R], items: Iterable[T], workers: int | None, *, gil_free: bool = True
) -> list[R]:
    """``[fn(x) for x in items]``, on ``workers`` threads, order kept.

    ``gil_free=False`` (``fn`` holds the GIL: threads would only add switching) runs on the
    calling thread whatever ``workers`` is; ``workers`` is still validated.
    """
    items = list(items)
    n = min(resolve_workers(workers), len(items))
    if n <= 1 or not gil_free:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(fn, items))

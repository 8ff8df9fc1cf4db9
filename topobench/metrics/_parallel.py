"""Thread-parallel map over windows.

Threads help only where the kernel releases the GIL. Measured with scikit-image 0.26 and cc3d
4.1 (``benchmarks/bench_metrics.py --only gil``: process CPU seconds per wall second with two
threads, above 1 only when both run at once): scikit-image's thinning releases it, in 2D
(Zhang-Suen, 1.7) and in 3D (Lee, 1.8), so skeletons of the two masks and of the windows run on
threads; cc3d's connected components hold it (1.0, 2D and 3D), so the Betti numbers and e0-Gt
of the windows run on the calling thread (``gil_free=False``), where threads only cost.
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

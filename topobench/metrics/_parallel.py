"""Thread-parallel map over windows (the heavy kernels, cc3d and skeletonize, release the GIL)."""

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


def map_windows(fn: Callable[[T], R], items: Iterable[T], workers: int | None) -> list[R]:
    """``[fn(x) for x in items]``, on ``workers`` threads, order kept."""
    items = list(items)
    n = min(resolve_workers(workers), len(items))
    if n <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(fn, items))

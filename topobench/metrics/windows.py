"""Non-overlapping sliding windows (tiles) over 2D images and 3D volumes (docs/metrics.md).

Tiles start at the origin; the last tile along an axis is clipped at the border, so the tiles
always cover the whole array.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import product

import numpy as np

from topobench.errors import InvalidParameterError

__all__ = ["Window", "normalize_window", "sliding_windows"]

Window = int | Sequence[int] | None


def normalize_window(window: Window, ndim: int) -> tuple[int, ...] | None:
    """Validate a window size and return it per axis (None means the whole array).

    Parameters
    ----------
    window : int, sequence of int, or None
        One size for every axis, or one per axis (length ``ndim``). Sizes larger than the array
        are clipped to it when tiling.
    ndim : int
        Dimension of the arrays the window applies to.
    """
    if window is None:
        return None
    if isinstance(window, (bool, np.bool_)):
        raise InvalidParameterError(f"window must be a positive integer or a tuple, got {window!r}")
    if isinstance(window, (int, np.integer)):
        sizes: tuple = (int(window),) * ndim
    else:
        try:
            sizes = tuple(window)
        except TypeError:
            raise InvalidParameterError(
                f"window must be a positive integer or a tuple of {ndim}, got {window!r}"
            ) from None
        if len(sizes) != ndim:
            raise InvalidParameterError(
                f"window must have one size per axis: expected {ndim} sizes, got {len(sizes)} "
                f"({window!r})"
            )
    for s in sizes:
        if isinstance(s, (bool, np.bool_)) or not isinstance(s, (int, np.integer)) or s <= 0:
            raise InvalidParameterError(
                f"window sizes must be positive integers, got {window!r}"
            )
    return tuple(int(s) for s in sizes)


def sliding_windows(shape: Sequence[int], window: Window) -> list[tuple[slice, ...]]:
    """The tiles of an array of ``shape`` as tuples of slices, in C order.

    Examples
    --------
    >>> sliding_windows((5, 4), 3)
    [(slice(0, 3, None), slice(0, 3, None)), (slice(0, 3, None), slice(3, 4, None)), \
(slice(3, 5, None), slice(0, 3, None)), (slice(3, 5, None), slice(3, 4, None))]
    """
    sizes = normalize_window(window, len(shape))
    if sizes is None:
        return [tuple(slice(0, n) for n in shape)]
    starts = [range(0, n, s) for n, s in zip(shape, sizes)]
    return [
        tuple(slice(a, min(a + s, n)) for a, s, n in zip(corner, sizes, shape))
        for corner in product(*starts)
    ]

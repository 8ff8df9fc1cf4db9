"""Betti errors over sliding windows or 2D slices, and the gap metric e0-Gt (docs/metrics.md).

Each metric is its per-window statistics and a reduction of them (the pattern of every metric
here): :func:`betti_window_stats` / :func:`betti_errors_from_window_stats` and
:func:`e0_gt_window_stats` / :func:`e0_gt_from_window_stats`. The public statistics validate
their inputs; ``_betti_window_stats`` and ``_e0_gt_window_stats`` take masks already validated
(bool, same shape) and a resolved connectivity, for :func:`topobench.metrics.evaluate_case`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from topobench.masks import as_mask_pair, resolve_connectivity, slice_connectivity
from topobench.metrics._parallel import map_windows
from topobench.metrics.topology import (
    _betti_validated,
    count_components,
    slab_components,
    uses_slabs,
)
from topobench.metrics.windows import Window, sliding_windows

__all__ = [
    "BettiErrors",
    "betti_errors",
    "betti_errors_from_window_stats",
    "betti_window_stats",
    "e0_gt",
    "e0_gt_from_window_stats",
    "e0_gt_window_stats",
    "window_views",
]


@dataclass(frozen=True)
class BettiErrors:
    """Mean Betti errors over windows.

    Attributes
    ----------
    e : float
        Mean of ``e0 + e1 (+ e2)`` per window.
    e0, e1 : float
        Mean absolute differences of beta0 (components) and beta1 (holes / tunnels).
    e2 : float or None
        Mean absolute difference of beta2 (cavities) for 3D windows; None for 2D windows.
    n_windows : int
        Number of windows averaged.
    """

    e: float
    e0: float
    e1: float
    e2: float | None
    n_windows: int

    def to_dict(self) -> dict[str, float | int | None]:
        """The fields as a plain dict (``e2`` omitted for 2D windows)."""
        d = asdict(self)
        if self.e2 is None:
            del d["e2"]
        return d


def window_views(
    shape: tuple[int, ...], window: Window, slices: bool, connectivity: int
) -> tuple[list[tuple], int]:
    """Index tuples of the windows, and the connectivity to use inside each window.

    With ``slices=True`` a 3D array is cut into its 2D slices ``mask[z]`` (each tiled by a 2D
    ``window`` if given), evaluated with the matching 2D connectivity (26->8, 6->4). A 2D array
    with ``slices=True`` is its own single slice.
    """
    if slices and len(shape) == 3:
        tiles = sliding_windows(shape[1:], window)
        views = [(z, *w) for z in range(shape[0]) for w in tiles]
        return views, slice_connectivity(connectivity)
    return sliding_windows(shape, window), connectivity


def betti_window_stats(
    pred: np.ndarray,
    target: np.ndarray,
    *,
    window: Window = None,
    slices: bool = False,
    connectivity: int | None = None,
    workers: int | None = None,
) -> np.ndarray:
    """Betti numbers of prediction and target in every window (the errors' sufficient statistics).

    Parameters are those of :func:`betti_errors`; :func:`betti_errors_from_window_stats` reduces
    the result (statistics of several cases can be concatenated first).

    Returns
    -------
    numpy.ndarray of int64, shape (n_windows, 2, k)
        ``[:, 0]`` prediction, ``[:, 1]`` target; ``k = 2`` for 2D windows, 3 for 3D windows.
    """
    p, t = as_mask_pair(pred, target)
    c = resolve_connectivity(connectivity, p.ndim)
    return _betti_window_stats(p, t, window, slices, c, workers)


def _betti_window_stats(
    p: np.ndarray, t: np.ndarray, window: Window, slices: bool, c: int, workers: int | None
) -> np.ndarray:
    """:func:`betti_window_stats` of validated masks and a resolved connectivity."""
    views, cw = window_views(p.shape, window, slices, c)

    def one(view: tuple) -> tuple[tuple[int, ...], tuple[int, ...]]:
        pw, tw = p[view], t[view]
        if not pw.any() and not tw.any():
            zero = (0,) * pw.ndim
            return zero, zero
        return _betti_validated(pw, cw), _betti_validated(tw, cw)

    # cc3d holds the GIL: threads over these windows gain nothing (_parallel)
    return np.asarray(map_windows(one, views, workers, gil_free=False), dtype=np.int64)


def betti_errors_from_window_stats(stats: np.ndarray) -> BettiErrors:
    """The mean Betti errors of :func:`betti_window_stats`' statistics.

    Parameters
    ----------
    stats : numpy.ndarray of int, shape (n_windows, 2, k)

    Returns
    -------
    BettiErrors
    """
    diff = np.abs(stats[:, 0] - stats[:, 1]).astype(np.float64)
    per_dim = diff.mean(axis=0)
    e2 = float(per_dim[2]) if stats.shape[2] == 3 else None
    return BettiErrors(
        e=float(diff.sum(axis=1).mean()),
        e0=float(per_dim[0]),
        e1=float(per_dim[1]),
        e2=e2,
        n_windows=int(stats.shape[0]),
    )


def betti_errors(
    pred: np.ndarray,
    target: np.ndarray,
    *,
    window: Window = None,
    slices: bool = False,
    connectivity: int | None = None,
    workers: int | None = None,
) -> BettiErrors:
    """Betti errors between prediction and target, averaged over windows.

    Per window ``w``: ``e_i = |beta_i(X_w) - beta_i(Y_w)|`` and ``e = e0 + e1 (+ e2)``; each window
    is its own image embedded in background. The result is the unweighted mean over all windows,
    empty ones included.

    Parameters
    ----------
    pred, target : array_like, shape (H, W) or (Z, H, W)
        Binary masks of the same shape.
    window : int or tuple of int, optional
        Tile size; None evaluates the whole array (or each whole slice).
    slices : bool
        Evaluate each 2D slice ``mask[z]`` of a volume as a window (26->8, 6->4 connectivity).
    connectivity : {4, 8} in 2D, {6, 26} in 3D, optional
        Foreground connectivity (default: 8 / 26).
    workers : int, optional
        Threads over windows (default: all cores).

    Returns
    -------
    BettiErrors
        ``e, e0, e1`` (and ``e2`` for 3D windows) and ``n_windows``.

    Examples
    --------
    >>> target = np.zeros((5, 9), bool); target[2, 1:8] = True
    >>> pred = target.copy(); pred[2, 4] = False          # a gap: one more component
    >>> betti_errors(pred, target).to_dict()
    {'e': 1.0, 'e0': 1.0, 'e1': 0.0, 'n_windows': 1}
    """
    stats = betti_window_stats(
        pred, target, window=window, slices=slices, connectivity=connectivity, workers=workers
    )
    return betti_errors_from_window_stats(stats)


def e0_gt_window_stats(
    pred: np.ndarray,
    target: np.ndarray,
    *,
    window: Window = None,
    connectivity: int | None = None,
    workers: int | None = None,
) -> np.ndarray:
    """Per window ``(beta0(X & Y), beta0(Y))``, the statistics of e0-Gt.

    Parameters are those of :func:`e0_gt`; :func:`e0_gt_from_window_stats` reduces the result.

    Returns
    -------
    numpy.ndarray of int64, shape (n_windows, 2)
    """
    p, t = as_mask_pair(pred, target)
    c = resolve_connectivity(connectivity, p.ndim)
    return _e0_gt_window_stats(p, t, window, c, workers)


def _e0_gt_window_stats(
    p: np.ndarray, t: np.ndarray, window: Window, c: int, workers: int | None
) -> np.ndarray:
    """:func:`e0_gt_window_stats` of validated masks and a resolved connectivity."""

    def one(view: tuple) -> tuple[int, int]:
        pw, tw = p[view], t[view]
        if uses_slabs(tw.shape):  # X & Y is built slab by slab, never whole
            both = slab_components(lambda z0, z1: pw[z0:z1] & tw[z0:z1], tw.shape, c).n
        else:
            both = count_components(pw & tw, c)
        return both, count_components(tw, c)

    windows = sliding_windows(p.shape, window)
    # cc3d holds the GIL: threads over these windows gain nothing (_parallel)
    return np.asarray(map_windows(one, windows, workers, gil_free=False), dtype=np.int64)


def e0_gt_from_window_stats(stats: np.ndarray) -> float:
    """e0-Gt from :func:`e0_gt_window_stats`' statistics: mean of ``|beta0(X & Y) - beta0(Y)|``."""
    return float(np.abs(stats[:, 0] - stats[:, 1]).mean())


def e0_gt(
    pred: np.ndarray,
    target: np.ndarray,
    *,
    window: Window = None,
    connectivity: int | None = None,
    workers: int | None = None,
) -> float:
    """Gap error e0-Gt: extra pieces the target falls into where the prediction misses it.

    Per window, ``|beta0(X & Y) - beta0(Y)|``; the mean over windows. A reconstruction of the
    paper's definition (see ``docs/metrics.md``): unlike e0 it cannot be cancelled by
    false-positive components elsewhere. Lower is better; 0 when both masks are empty.

    Parameters
    ----------
    pred, target : array_like, shape (H, W) or (Z, H, W)
        Binary masks of the same shape.
    window : int or tuple of int, optional
        Tile size; None evaluates the whole array.
    connectivity : {4, 8} in 2D, {6, 26} in 3D, optional
        Foreground connectivity (default: 8 / 26).
    workers : int, optional
        Threads over windows (default: all cores).

    Returns
    -------
    float >= 0

    Examples
    --------
    >>> target = np.zeros((5, 9), bool); target[2, 1:8] = True
    >>> pred = target.copy(); pred[2, 3] = pred[2, 5] = False   # two gaps: three pieces
    >>> e0_gt(pred, target)
    2.0
    """
    stats = e0_gt_window_stats(
        pred, target, window=window, connectivity=connectivity, workers=workers
    )
    return e0_gt_from_window_stats(stats)

"""Synthetic thin structures for the benchmarks: random tubes; gaps and blobs for predictions."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.draw import line_nd


def tubes(shape: tuple[int, ...], n: int, radius: int, seed: int) -> np.ndarray:
    """``n`` random straight tubes of the given radius (voxels) through a 2D or 3D array."""
    rng = np.random.default_rng(seed)
    centre = np.zeros(shape, bool)
    for _ in range(n):
        a = rng.integers(0, shape)
        b = rng.integers(0, shape)
        centre[line_nd(a, b)] = True
    if radius > 0:
        ball = ndimage.generate_binary_structure(len(shape), 1)
        centre = ndimage.binary_dilation(centre, ball, iterations=radius)
    return centre


def degrade(target: np.ndarray, n_gaps: int, n_blobs: int, seed: int) -> np.ndarray:
    """A prediction: ``target`` with ``n_gaps`` cubes cut out on it and ``n_blobs`` added."""
    rng = np.random.default_rng(seed)
    pred = target.copy()
    on = np.flatnonzero(target.ravel())
    for idx in rng.choice(on, size=min(n_gaps, on.size), replace=False):
        c = np.unravel_index(idx, target.shape)
        pred[tuple(slice(max(x - 3, 0), x + 4) for x in c)] = False
    for _ in range(n_blobs):
        c = rng.integers(0, target.shape)
        pred[tuple(slice(max(x - 1, 0), x + 2) for x in c)] = True
    return pred

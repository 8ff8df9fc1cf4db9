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


def sheets(shape: tuple[int, ...], n: int, radius: int, seed: int) -> np.ndarray:
    """``n`` random curved sheets (membranes) ``2 * radius + 1`` voxels thick through a volume.

    Each sheet is a height field across a random axis: ``u = h(v, w)``, with ``h`` a random
    offset plus three random low-frequency sinusoids (amplitude up to a tenth of the axis), so
    the sheets bend, cross and wall off cells, as membranes in electron microscopy do. Built
    column by column through index arrays: a 600x1024x1024 volume takes seconds.

    Parameters
    ----------
    shape : tuple of 3 int
        Volume shape ``(Z, Y, X)``.
    n : int
        Number of sheets.
    radius : int
        Half thickness in voxels (0: one voxel thick).
    seed : int
        Random seed.

    Returns
    -------
    numpy.ndarray of bool, ``shape``.
    """
    if len(shape) != 3:
        raise ValueError(f"sheets are 3D: expected a shape of 3, got {shape}")
    rng = np.random.default_rng(seed)
    out = np.zeros(shape, bool)
    for _ in range(n):
        axis = int(rng.integers(0, 3))
        others = [a for a in range(3) if a != axis]
        size = shape[axis]
        v, w = np.meshgrid(*(np.arange(shape[a], dtype=np.float32) for a in others),
                           indexing="ij")
        h = np.full(v.shape, rng.uniform(0.1, 0.9) * size, dtype=np.float32)
        for _ in range(3):
            fv, fw = rng.uniform(0.5, 2.5, size=2) * 2 * np.pi / np.array(
                [shape[others[0]], shape[others[1]]])
            amp = rng.uniform(0.02, 0.1) * size
            h += (amp * np.sin(fv * v + fw * w + rng.uniform(0, 2 * np.pi))).astype(np.float32)
        centre = np.rint(h).astype(np.int64)
        for d in range(-radius, radius + 1):
            u = centre + d
            ok = (u >= 0) & (u < size)
            index = [None, None, None]
            index[axis] = u[ok]
            index[others[0]] = np.broadcast_to(np.arange(shape[others[0]])[:, None],
                                               u.shape)[ok]
            index[others[1]] = np.broadcast_to(np.arange(shape[others[1]])[None, :],
                                               u.shape)[ok]
            out[tuple(index)] = True
    return out

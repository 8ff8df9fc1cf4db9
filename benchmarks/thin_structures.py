"""Synthetic thin structures for the benchmarks: random tubes and sheets; gaps and blobs for
predictions.

How the sheets of the ``cld`` benchmark were chosen (:data:`CEMENT_LINES`). CLD is the
ContextLoss paper's bone Cement Line Dataset: 1024^2 x 600 nano-CT volumes at 45.6 nm, whose
foreground is the cement lines, "layer/membrane-like" boundaries of osteons (paper, Sec. 3 and
A.4); its labels are not public, so thickness and foreground share are not known from them.
Osteons are 100-300 um across and the volume 47 x 47 x 27 um, so a volume holds a few cement
lines, each crossing it: a few gently curved sheets, not a foam. The one membrane data set at
hand, the ISBI 2012 EM labels (``../shared/data/isbi2012-membranes``, 30 slices of 512x512), gives
the thickness: median 4.9 px (twice the distance to the background on the skeleton, minus one),
area / skeleton length 6.0 px; their 22% foreground comes from cells 43 px across, the density
of EM neurites, which cement lines do not have. Hence 8 sheets of 5 voxels: 4.4% foreground of
600x1024x1024. The earlier benchmark's 24 sheets of 3 voxels (8.2% there, 21% at 128 slices,
where the sheets across z fill the thin volume) were three times as many sheets.
"""

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


#: ``sheets`` parameters of CLD-like cement lines: 8 curved sheets, 5 voxels thick (see above).
CEMENT_LINES = {"n": 8, "radius": 2}


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

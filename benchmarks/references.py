"""Independent reference implementations shared by the benchmarks and the tests.

- :func:`gudhi_betti`: Betti numbers from gudhi's cubical persistence, the oracle of
  ``betti_numbers`` (``tests/metrics/conftest.py``, ``bench_metrics.py --only betti``).
- :func:`plain_soft_skeleton`: the soft skeleton of Shit et al. (2021), Alg. 1, written out as a
  plain loop whose tensors autograd keeps for the backward pass, with its own min-pool erosion
  and max-pool dilation: the reference of the recomputing ``topobench.losses.soft_skeleton``
  (``tests/losses/test_soft_skeleton_memory.py``) and the ``stored`` baseline of
  ``bench_soft_skeleton.py``.

Neither is imported by the package; torch and gudhi are imported on use.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def gudhi_betti(mask: np.ndarray, connectivity: int) -> tuple[int, ...]:
    """Betti numbers of the sublevel set {f <= 0} with f = 0 on foreground, 1 on background.

    Top-dimensional cells give the 8/26 complex (closed pixels/voxels), vertices the 4/6 one.
    """
    import gudhi

    f = np.where(mask, 0.0, 1.0)
    if connectivity in (8, 26):
        complex_ = gudhi.CubicalComplex(top_dimensional_cells=f)
    else:
        complex_ = gudhi.CubicalComplex(vertices=f)
    complex_.compute_persistence()
    betti = list(complex_.persistent_betti_numbers(0.0, 0.0))[: mask.ndim]
    return tuple(int(b) for b in betti + [0] * (mask.ndim - len(betti)))


def _erode(x: Any) -> Any:
    """Soft erosion: the minimum of min-pools along each axis (cross-shaped), (B, C, ...)."""
    import torch
    import torch.nn.functional as F

    if x.ndim == 4:
        return torch.minimum(-F.max_pool2d(-x, (3, 1), 1, (1, 0)),
                             -F.max_pool2d(-x, (1, 3), 1, (0, 1)))
    return torch.minimum(torch.minimum(-F.max_pool3d(-x, (3, 1, 1), 1, (1, 0, 0)),
                                       -F.max_pool3d(-x, (1, 3, 1), 1, (0, 1, 0))),
                         -F.max_pool3d(-x, (1, 1, 3), 1, (0, 0, 1)))


def _dilate(x: Any) -> Any:
    """Soft dilation: a 3x3 (3x3x3) max-pool, (B, C, ...)."""
    import torch.nn.functional as F

    return F.max_pool2d(x, 3, 1, 1) if x.ndim == 4 else F.max_pool3d(x, 3, 1, 1)


def plain_soft_skeleton(x: Any, iterations: int = 50) -> Any:
    """Shit et al. (2021), Alg. 1, with every tensor kept by autograd.

    Parameters
    ----------
    x : torch.Tensor, shape (B, C, H, W) or (B, C, D, H, W)
        Probabilities.
    iterations : int
        Erosion steps after the first.

    Returns
    -------
    torch.Tensor, same shape and dtype.
    """
    import torch.nn.functional as F

    eroded = _erode(x)
    skel = F.relu(x - _dilate(eroded))
    for _ in range(iterations):
        x = eroded
        eroded = _erode(x)
        delta = F.relu(x - _dilate(eroded))
        skel = skel + F.relu(delta - skel * delta)
    return skel

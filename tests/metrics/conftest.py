"""Fixtures of the metric tests: gudhi's cubical persistence as the independent oracle."""

from __future__ import annotations

import numpy as np
import pytest


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


@pytest.fixture(scope="session")
def oracle():
    """The function ``gudhi_betti(mask, connectivity)``; skips when gudhi is absent."""
    pytest.importorskip("gudhi")
    return gudhi_betti

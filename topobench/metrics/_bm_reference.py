"""Betti-Matching-3D (Stucki, Buergin et al. 2024) as the reference of the Betti matching error.

Its compiled module ships inside the ``topolosses`` wheel (``pip install --no-deps topolosses``);
the tests of ``topobench.metrics.betti_matching`` and ``benchmarks/bench_betti_matching.py`` load
it from there. Not used by topobench itself.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np


def load_reference() -> ModuleType | None:
    """Betti-Matching-3D's compiled module from the topolosses wheel; None if it is absent or
    does not load."""
    try:
        spec = importlib.util.find_spec("topolosses")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations)))
    found = sorted((root / "losses" / "betti_matching" / "src").glob("betti_matching*.so"))
    if not found:
        return None
    loader = importlib.machinery.ExtensionFileLoader("betti_matching", str(found[0]))
    mod_spec = importlib.util.spec_from_file_location("betti_matching", found[0], loader=loader)
    module = importlib.util.module_from_spec(mod_spec)
    try:
        loader.exec_module(module)
    except ImportError:
        return None
    return module


def reference_inputs(x: np.ndarray, y: np.ndarray, connectivity: int) -> tuple[np.ndarray, ...]:
    """The reference's inputs for masks ``x, y`` in topobench's convention: ``1 - mask`` as
    float64, of the masks themselves for connectivity 4 / 6 and of the subdivided masks for 8 / 26
    (:func:`topobench.metrics.betti_matching.subdivide`)."""
    from topobench.metrics.betti_matching import subdivide

    if connectivity in (8, 26):
        x, y = subdivide(x), subdivide(y)
    return tuple(np.ascontiguousarray(1.0 - m.astype(np.float64)) for m in (x, y))


def reference_counts(module: ModuleType, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``module.compute_matching(a, b)`` as topobench's counts: int64 array (3, ndim) of matched,
    unmatched ``a`` and unmatched ``b`` pairs per dimension."""
    r = module.compute_matching(a, b)
    return np.array([r.num_matched, r.num_unmatched_input1, r.num_unmatched_input2],
                    dtype=np.int64)

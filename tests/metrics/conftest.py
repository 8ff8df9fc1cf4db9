"""Fixtures of the metric tests: gudhi's cubical persistence as the independent oracle."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from references import gudhi_betti  # noqa: E402  (shared with bench_metrics.py)


@pytest.fixture(scope="session")
def oracle():
    """The function ``gudhi_betti(mask, connectivity)``; skips when gudhi is absent."""
    pytest.importorskip("gudhi")
    return gudhi_betti

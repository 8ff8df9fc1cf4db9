"""Topology and overlap metrics for binary segmentations (docs/metrics.md).

Pure functions over numpy masks ``(H, W)`` or ``(Z, H, W)``, argument order (pred, target):

- :func:`betti_numbers`, :func:`euler_characteristic`
- :func:`betti_errors` (sliding windows or 2D slices) -> :class:`BettiErrors`
- :func:`dice`, :func:`cldice`, :func:`ags`, :func:`e0_gt`
- :func:`evaluate_case` with the paper's protocols (:data:`PROTOCOLS`, :func:`resolve_protocol`)
- :func:`sliding_windows`
"""

from topobench.metrics.overlap import ags, cldice, dice, skeleton, skeleton_stats
from topobench.metrics.protocols import (
    METRIC_NAMES,
    PROTOCOLS,
    Protocol,
    evaluate_case,
    resolve_protocol,
)
from topobench.metrics.topology import betti_numbers, euler_characteristic
from topobench.metrics.window_errors import BettiErrors, betti_errors, betti_window_stats, e0_gt
from topobench.metrics.windows import sliding_windows

__all__ = [
    "METRIC_NAMES",
    "PROTOCOLS",
    "BettiErrors",
    "Protocol",
    "ags",
    "betti_errors",
    "betti_numbers",
    "betti_window_stats",
    "cldice",
    "dice",
    "e0_gt",
    "euler_characteristic",
    "evaluate_case",
    "resolve_protocol",
    "skeleton",
    "skeleton_stats",
    "sliding_windows",
]

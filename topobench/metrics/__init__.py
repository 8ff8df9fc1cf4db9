"""Topology and overlap metrics for binary segmentations (docs/metrics.md).

Pure functions over numpy masks ``(H, W)`` or ``(Z, H, W)``, argument order (pred, target):

- :func:`betti_numbers`, :func:`euler_characteristic`
- :func:`betti_errors` (sliding windows or 2D slices) -> :class:`BettiErrors`
- :func:`dice`, :func:`cldice`, :func:`ags`, :func:`e0_gt`
- :func:`evaluate_case` with the paper's protocols (:data:`PROTOCOLS`, :func:`resolve_protocol`)
- :func:`sliding_windows`
- per-window statistics and their reductions, one pattern for every windowed metric:
  ``<statistics>_window_stats(pred, target, ...)`` and ``<metric>_from_window_stats(stats)``
  (:func:`skeleton_window_stats` for clDice and AGS, :func:`betti_window_stats`,
  :func:`e0_gt_window_stats`, :func:`betti_matching_window_stats`)
- :func:`hd95`, :func:`assd`, :func:`nsd` (surface distances with voxel spacing)
- :func:`vi_split`, :func:`vi_merge`, :func:`adapted_rand_error` (partitions of the components)
- :func:`evaluate_labels` for integer label maps, :func:`label_average`
- :func:`betti_matching_error` (Stucki et al. 2023, exact for binary masks) ->
  :class:`BettiMatchingError`
- :class:`TopologyMetrics`, a ``torchmetrics.Metric`` (needs the torch extra; imported on first
  use, so that importing this package needs no torch)
"""

from typing import Any

from topobench.metrics.betti_matching import (
    BettiMatchingError,
    betti_matching_counts,
    betti_matching_error,
    betti_matching_error_from_window_stats,
    betti_matching_window_stats,
)
from topobench.metrics.distance import assd, hd95, nsd, surface_distances
from topobench.metrics.labels import evaluate_labels, label_average, read_label_names
from topobench.metrics.overlap import (
    ags,
    ags_from_window_stats,
    cldice,
    cldice_from_window_stats,
    dice,
    skeleton,
    skeleton_window_stats,
)
from topobench.metrics.partition import (
    adapted_rand_error,
    partition_scores,
    vi_merge,
    vi_split,
)
from topobench.metrics.protocols import (
    DEFAULT_METRICS,
    METRIC_NAMES,
    PROTOCOLS,
    Protocol,
    evaluate_case,
    resolve_protocol,
)
from topobench.metrics.topology import betti_numbers, euler_characteristic
from topobench.metrics.window_errors import (
    BettiErrors,
    betti_errors,
    betti_errors_from_window_stats,
    betti_window_stats,
    e0_gt,
    e0_gt_from_window_stats,
    e0_gt_window_stats,
)
from topobench.metrics.windows import sliding_windows

__all__ = [
    "DEFAULT_METRICS",
    "METRIC_NAMES",
    "PROTOCOLS",
    "BettiErrors",
    "BettiMatchingError",
    "Protocol",
    "adapted_rand_error",
    "assd",
    "ags",
    "ags_from_window_stats",
    "betti_errors",
    "betti_errors_from_window_stats",
    "betti_matching_counts",
    "betti_matching_error",
    "betti_matching_error_from_window_stats",
    "betti_matching_window_stats",
    "betti_numbers",
    "betti_window_stats",
    "cldice",
    "cldice_from_window_stats",
    "dice",
    "e0_gt",
    "e0_gt_from_window_stats",
    "e0_gt_window_stats",
    "euler_characteristic",
    "evaluate_case",
    "evaluate_labels",
    "hd95",
    "label_average",
    "nsd",
    "partition_scores",
    "read_label_names",
    "resolve_protocol",
    "skeleton",
    "skeleton_window_stats",
    "sliding_windows",
    "surface_distances",
    "vi_merge",
    "vi_split",
]


def __getattr__(name: str) -> Any:
    # TopologyMetrics needs torch and torchmetrics: import them only when it is asked for.
    if name == "TopologyMetrics":
        from topobench.metrics.torchmetric import TopologyMetrics

        return TopologyMetrics
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

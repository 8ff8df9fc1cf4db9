"""Evaluation protocols (the paper's supplement A.7) and :func:`evaluate_case`.

A protocol is only a bundle of parameters; each one can be overridden on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from topobench import __version__
from topobench.catalog import metric_names
from topobench.errors import InvalidMaskError, InvalidParameterError
from topobench.masks import as_mask_pair, resolve_connectivity
from topobench.metrics.betti_matching import (
    betti_matching_error_from_window_stats,
    betti_matching_window_stats,
)
from topobench.metrics.distance import (
    Spacing,
    _check_tolerance,
    _surface_distances_validated,
    resolve_spacing,
)
from topobench.metrics.overlap import (
    _dice_validated,
    _skeleton_window_stats,
    ags_from_window_stats,
    cldice_from_window_stats,
)
from topobench.metrics.partition import _partition_validated
from topobench.metrics.window_errors import (
    _betti_window_stats,
    _e0_gt_window_stats,
    betti_errors_from_window_stats,
    e0_gt_from_window_stats,
)
from topobench.metrics.windows import normalize_window

__all__ = [
    "DEFAULT_METRICS",
    "METRIC_NAMES",
    "PROTOCOLS",
    "Protocol",
    "evaluate_case",
    "resolve_protocol",
]

#: Every metric :func:`evaluate_case` can return, in report order (from
#: :data:`topobench.catalog.METRICS`). ``e2`` only for 3D windows.
METRIC_NAMES: tuple[str, ...] = metric_names()

#: What a protocol computes unless it names its metrics: the ContextLoss paper's topology and
#: overlap metrics. The surface distances (``hd95``, ``assd``, ``nsd``) and the partition
#: metrics (``vi_split``, ``vi_merge``, ``are``) are computed when a protocol lists them.
DEFAULT_METRICS: tuple[str, ...] = ("dice", "cldice", "e", "e0", "e1", "e2", "e0_gt", "ags")

_DISTANCE_KEYS = ("hd95", "assd", "nsd")
_PARTITION_KEYS = ("vi_split", "vi_merge", "are")

_BETTI_KEYS = ("e", "e0", "e1", "e2")
_BM_KEYS = ("bm", "bm0", "bm1", "bm2")

WindowSpec = int | tuple[int, ...] | None


@dataclass(frozen=True)
class Protocol:
    """A metric configuration: which metric is computed over which windows.

    Attributes
    ----------
    name : str
        Preset name, or ``"custom"`` style names chosen by the user.
    ndim : int or None
        Dimension the preset is meant for (2 or 3); None accepts both.
    connectivity : int or None
        Foreground connectivity (None: 8 in 2D, 26 in 3D).
    betti_window : int, tuple or None
        Tile size of the Betti errors (None: whole image or whole slice).
    betti_slices : bool
        Betti errors on each 2D slice ``mask[z]`` of a volume.
    cldice_window, ags_window, e0_gt_window : int, tuple or None
        Tile sizes of clDice, AGS and e0-Gt (None: whole image or volume). Dice is always whole.
    metrics : tuple of str
        Metrics to compute (subset of :data:`METRIC_NAMES`; ``e2`` appears only for 3D windows;
        default :data:`DEFAULT_METRICS`).
    nsd_tolerance : float
        Tolerance of the normalised surface distance, in spacing units.
    merged_metrics : tuple of str
        With several labels (:func:`topobench.metrics.evaluate_labels`), the metrics computed
        only on the merged mask (the union of the labels), as TopCoW computes clDice; empty:
        every metric per label and merged.
    """

    name: str = "default"
    ndim: int | None = None
    connectivity: int | None = None
    betti_window: WindowSpec = None
    betti_slices: bool = False
    cldice_window: WindowSpec = None
    ags_window: WindowSpec = None
    e0_gt_window: WindowSpec = None
    metrics: tuple[str, ...] = DEFAULT_METRICS
    nsd_tolerance: float = 1.0
    merged_metrics: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready configuration, with the topobench version that computes it."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        for key, value in d.items():
            if isinstance(value, tuple):
                d[key] = list(value)
        d["topobench_version"] = __version__
        return d


PROTOCOLS: dict[str, Protocol] = {
    "default": Protocol(),
    "roads": Protocol(name="roads", ndim=2, betti_window=375, e0_gt_window=375),
    "hrf": Protocol(name="hrf", ndim=2, betti_window=292, e0_gt_window=292),
    "vessap": Protocol(name="vessap", ndim=3, betti_slices=True),
    "cld": Protocol(
        name="cld",
        ndim=3,
        betti_slices=True,
        cldice_window=(64, 1024, 1024),
        ags_window=(64, 1024, 1024),
        e0_gt_window=(64, 1024, 1024),
    ),
    # TopoMortar (Valverde et al., BMVC 2025; github.com/jmlipman/TopoMortar): Betti0 and Betti1
    # errors of the whole 512x512 image with 8-connected foreground, Dice, clDice and HD95.
    "topomortar": Protocol(
        name="topomortar",
        ndim=2,
        connectivity=8,
        metrics=("dice", "cldice", "e", "e0", "e1", "hd95"),
    ),
    # TopCoW challenge (Yang et al. 2023, github.com/CoWBenchmark/TopCoW_Eval_Metrics):
    # class-average Dice, Betti0 error and HD95 per vessel label (26-connectivity), clDice on
    # the binary-merged mask.
    "topcow": Protocol(
        name="topcow",
        ndim=3,
        connectivity=26,
        metrics=("dice", "cldice", "e0", "hd95"),
        merged_metrics=("cldice",),
    ),
}


def _as_window_spec(value: Any, key: str) -> WindowSpec:
    if value is None or (isinstance(value, str) and value.lower() == "whole"):
        return None
    if isinstance(value, (list, tuple)):
        value = tuple(value)
        normalize_window(value, len(value))
        return tuple(int(v) for v in value)
    normalize_window(value, 1)
    return int(value)


def resolve_protocol(protocol: str | Protocol = "default", **overrides: Any) -> Protocol:
    """A preset by name (or a :class:`Protocol`), with parameters overridden one by one.

    Parameters
    ----------
    protocol : {"default", "roads", "hrf", "vessap", "cld", "topomortar", "topcow"} or Protocol
    **overrides
        Any field of :class:`Protocol` (``connectivity``, ``betti_window``, ``betti_slices``,
        ``cldice_window``, ``ags_window``, ``e0_gt_window``, ``metrics``, ``nsd_tolerance``,
        ``merged_metrics``); None values are ignored,
        and a window given as ``"whole"`` replaces a preset's tiles by the whole image.

    Raises
    ------
    InvalidParameterError
        Unknown preset, unknown parameter, unknown metric name, bad window size.
    """
    if isinstance(protocol, Protocol):
        base = protocol
    else:
        try:
            base = PROTOCOLS[str(protocol)]
        except KeyError:
            raise InvalidParameterError(
                f"unknown protocol {protocol!r}: expected one of {', '.join(PROTOCOLS)}"
            ) from None
    names = {f.name for f in fields(Protocol)} - {"name", "ndim"}
    unknown = set(overrides) - names
    if unknown:
        raise InvalidParameterError(
            f"unknown protocol parameter(s) {sorted(unknown)}: expected {sorted(names)}"
        )
    changes = {k: v for k, v in overrides.items() if v is not None}
    for key in ("betti_window", "cldice_window", "ags_window", "e0_gt_window"):
        if key in changes:
            changes[key] = _as_window_spec(changes[key], key)
    if "metrics" in changes:
        metrics = tuple(changes["metrics"])
        bad = [m for m in metrics if m not in METRIC_NAMES]
        if bad or not metrics:
            raise InvalidParameterError(
                f"unknown metric(s) {bad}: expected a non-empty subset of {list(METRIC_NAMES)}"
            )
        changes["metrics"] = tuple(m for m in METRIC_NAMES if m in metrics)
    if "merged_metrics" in changes:
        merged = tuple(changes["merged_metrics"])
        bad = [m for m in merged if m not in METRIC_NAMES]
        if bad:
            raise InvalidParameterError(
                f"unknown merged metric(s) {bad}: expected a subset of {list(METRIC_NAMES)}"
            )
        changes["merged_metrics"] = tuple(m for m in METRIC_NAMES if m in merged)
    if "nsd_tolerance" in changes:
        changes["nsd_tolerance"] = _check_tolerance(changes["nsd_tolerance"])
    if "betti_slices" in changes:
        changes["betti_slices"] = bool(changes["betti_slices"])
    return replace(base, **changes) if changes else base


def evaluate_case(
    pred: np.ndarray,
    target: np.ndarray,
    *,
    protocol: str | Protocol = "default",
    workers: int | None = None,
    spacing: Spacing = None,
    **overrides: Any,
) -> dict[str, float]:
    """Every metric of a protocol for one (prediction, target) pair.

    Parameters
    ----------
    pred, target : array_like, shape (H, W) or (Z, H, W)
        Binary masks of the same shape (see :func:`topobench.masks.as_mask`).
    protocol : {"default", "roads", "hrf", "vessap", "cld"} or Protocol
        Preset (docs/metrics.md); ``default`` computes everything on the whole array in its native
        dimension.
    workers : int, optional
        Threads over windows (default: all cores; pass 1 inside a process pool).
    spacing : float or sequence of float, optional
        Voxel size per axis in array order, for the surface distances (``hd95``, ``assd``,
        ``nsd``) only; default 1 (distances in pixels). Topology does not depend on it.
    **overrides
        Protocol parameters, see :func:`resolve_protocol`.

    Returns
    -------
    dict of str to float
        The protocol's metrics in :data:`METRIC_NAMES` order (by default ``dice, cldice, e, e0,
        e1, e2, e0_gt, ags``; ``e2`` only when the Betti errors use 3D windows). Fractions in
        [0, 1] for dice, cldice, ags and nsd; mean counts for the errors; spacing units for
        hd95 and assd; bits for vi_split and vi_merge. Never NaN.

    Examples
    --------
    >>> target = np.zeros((8, 12), bool); target[4, 1:11] = True
    >>> pred = target.copy(); pred[4, 6] = False
    >>> r = evaluate_case(pred, target)
    >>> r["e0"], r["e0_gt"], round(r["dice"], 3)
    (1.0, 1.0, 0.947)
    """
    p, t = as_mask_pair(pred, target)  # validated once; the kernels below take p and t as is
    proto = resolve_protocol(protocol, **overrides)
    if proto.ndim is not None and p.ndim != proto.ndim:
        raise InvalidMaskError(
            f"protocol {proto.name!r} expects {proto.ndim}D masks, got {p.ndim}D of shape {p.shape}"
        )
    sp = resolve_spacing(spacing, p.ndim)  # a wrong spacing is an error even when unused
    case = _Case(p, t, proto, resolve_connectivity(proto.connectivity, p.ndim), workers, sp)
    out: dict[str, float] = {}
    for keys, compute in _METRIC_GROUPS:
        wanted = [k for k in keys if k in proto.metrics]
        if wanted:
            values = compute(case)
            out.update((k, float(values[k])) for k in wanted if k in values)
    return {k: out[k] for k in METRIC_NAMES if k in out}


@dataclass
class _Case:
    """One validated pair and what its metric groups share: the protocol, the resolved
    connectivity and spacing, the thread count and the skeleton statistics per window size."""

    p: np.ndarray
    t: np.ndarray
    proto: Protocol
    c: int
    workers: int | None
    spacing: tuple[float, ...]
    skeletons: dict[WindowSpec, np.ndarray] = field(default_factory=dict)

    def skeleton_stats(self, window: WindowSpec, with_pred: bool) -> np.ndarray:
        """Skeleton statistics of ``window``, computed once: clDice's (both skeletons) also
        serve AGS on the same windows, so clDice runs first."""
        if window in self.skeletons:
            return self.skeletons[window]
        stats = _skeleton_window_stats(self.p, self.t, window, with_pred, self.workers)
        if with_pred:
            self.skeletons[window] = stats
        return stats


def _betti_group(case: _Case) -> dict[str, Any]:
    proto = case.proto
    stats = _betti_window_stats(
        case.p, case.t, proto.betti_window, proto.betti_slices, case.c, case.workers
    )
    return betti_errors_from_window_stats(stats).to_dict()


def _e0_gt_group(case: _Case) -> dict[str, float]:
    stats = _e0_gt_window_stats(case.p, case.t, case.proto.e0_gt_window, case.c, case.workers)
    return {"e0_gt": e0_gt_from_window_stats(stats)}


def _distance_group(case: _Case) -> dict[str, float]:
    dist = _surface_distances_validated(case.p, case.t, case.spacing)
    return {"hd95": dist.hd95(), "assd": dist.assd(), "nsd": dist.nsd(case.proto.nsd_tolerance)}


def _betti_matching_group(case: _Case) -> dict[str, Any]:
    # on the Betti errors' windows (bm2 only for 3D windows); bool masks: its validation is free
    proto = case.proto
    stats = betti_matching_window_stats(
        case.p, case.t, window=proto.betti_window, slices=proto.betti_slices,
        connectivity=case.c, workers=case.workers,
    )
    return betti_matching_error_from_window_stats(stats).to_dict()


#: ``(metric keys, compute)`` in evaluation order; a group runs when the protocol asks for one
#: of its keys. clDice precedes AGS so that AGS can reuse its skeletons.
_METRIC_GROUPS: tuple[tuple[tuple[str, ...], Callable[[_Case], dict[str, Any]]], ...] = (
    (("dice",), lambda case: {"dice": _dice_validated(case.p, case.t)}),
    (("cldice",), lambda case: {"cldice": cldice_from_window_stats(
        case.skeleton_stats(case.proto.cldice_window, True))}),
    (_BETTI_KEYS, _betti_group),
    (("e0_gt",), _e0_gt_group),
    (("ags",), lambda case: {"ags": ags_from_window_stats(
        case.skeleton_stats(case.proto.ags_window, False))}),
    (_DISTANCE_KEYS, _distance_group),
    (_PARTITION_KEYS, lambda case: _partition_validated(case.p, case.t, case.c).to_dict()),
    (_BM_KEYS, _betti_matching_group),
)

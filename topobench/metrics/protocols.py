"""Evaluation protocols (the paper's supplement A.7) and :func:`evaluate_case`.

A protocol is only a bundle of parameters; each one can be overridden on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from topobench import __version__
from topobench.catalog import metric_names
from topobench.errors import InvalidMaskError, InvalidParameterError
from topobench.masks import as_mask_pair, resolve_connectivity
from topobench.metrics.betti_matching import _error_from_stats as _bm_from_stats
from topobench.metrics.betti_matching import betti_matching_window_stats
from topobench.metrics.distance import (
    Spacing,
    _check_tolerance,
    resolve_spacing,
    surface_distances,
)
from topobench.metrics.overlap import _ags_from_stats, _cldice_from_stats, dice, skeleton_stats
from topobench.metrics.partition import partition_scores
from topobench.metrics.window_errors import (
    _errors_from_stats,
    betti_window_stats,
    e0_gt_window_stats,
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
    p, t = as_mask_pair(pred, target)
    proto = resolve_protocol(protocol, **overrides)
    if proto.ndim is not None and p.ndim != proto.ndim:
        raise InvalidMaskError(
            f"protocol {proto.name!r} expects {proto.ndim}D masks, got {p.ndim}D of shape {p.shape}"
        )
    c = resolve_connectivity(proto.connectivity, p.ndim)
    wanted = set(proto.metrics)
    out: dict[str, float] = {}
    if "dice" in wanted:
        out["dice"] = dice(p, t)
    skel_cache: dict[tuple, np.ndarray] = {}

    def skel(window: WindowSpec, with_pred: bool) -> np.ndarray:
        key = (window,)
        cached = skel_cache.get(key)
        if cached is not None:
            return cached
        stats = skeleton_stats(p, t, window=window, with_pred_skeleton=with_pred, workers=workers)
        if with_pred:
            skel_cache[key] = stats
        return stats

    # clDice first: its statistics (both skeletons) also serve AGS on the same windows.
    if "cldice" in wanted:
        out["cldice"] = _cldice_from_stats(skel(proto.cldice_window, True))
    if wanted & set(_BETTI_KEYS):
        stats = betti_window_stats(
            p, t, window=proto.betti_window, slices=proto.betti_slices, connectivity=c,
            workers=workers,
        )
        errors = _errors_from_stats(stats).to_dict()
        for key in _BETTI_KEYS:
            if key in wanted and key in errors:
                out[key] = float(errors[key])
    if "e0_gt" in wanted:
        gt = e0_gt_window_stats(p, t, window=proto.e0_gt_window, connectivity=c, workers=workers)
        out["e0_gt"] = float(np.abs(gt[:, 0] - gt[:, 1]).mean())
    if "ags" in wanted:
        out["ags"] = _ags_from_stats(skel(proto.ags_window, False))
    if wanted & set(_DISTANCE_KEYS):
        dist = surface_distances(p, t, spacing=spacing)
        if "hd95" in wanted:
            out["hd95"] = dist.hd95()
        if "assd" in wanted:
            out["assd"] = dist.assd()
        if "nsd" in wanted:
            out["nsd"] = dist.nsd(proto.nsd_tolerance)
    elif spacing is not None:
        resolve_spacing(spacing, p.ndim)  # a wrong spacing is an error even when unused
    if wanted & set(_PARTITION_KEYS):
        parts = partition_scores(p, t, connectivity=c).to_dict()
        for key in _PARTITION_KEYS:
            if key in wanted:
                out[key] = parts[key]
    if wanted & set(_BM_KEYS):
        # Betti matching error on the Betti errors' windows (bm2 only for 3D windows)
        bm_stats = betti_matching_window_stats(
            p, t, window=proto.betti_window, slices=proto.betti_slices, connectivity=c,
            workers=workers,
        )
        matching = _bm_from_stats(bm_stats).to_dict()
        for key in _BM_KEYS:
            if key in wanted and key in matching:
                out[key] = float(matching[key])
    return {k: out[k] for k in METRIC_NAMES if k in out}

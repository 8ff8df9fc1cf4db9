"""Per-label evaluation of integer label maps (arteries and veins, TopCoW's vessel classes, ...).

Each listed label is evaluated as its own binary structure (``pred == label`` against ``target ==
label``) with exactly the metrics and rules of :func:`topobench.metrics.evaluate_case`, plus the
union of the listed labels (``"merged"``, as TopCoW computes clDice). Labels that are not listed
are background for every entry; a listed label missing from one of the two maps follows the
documented empty-mask rules (docs/metrics.md).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from topobench.errors import InvalidMaskError, InvalidMaskTypeError, InvalidParameterError
from topobench.metrics.distance import Spacing
from topobench.metrics.protocols import Protocol, evaluate_case, resolve_protocol

__all__ = [
    "MERGED",
    "LabelSpec",
    "as_label_map",
    "evaluate_labels",
    "label_average",
    "read_label_names",
    "resolve_labels",
]

#: Key of the union of the listed labels in :func:`evaluate_labels`' result.
MERGED = "merged"

LabelNames = Mapping[str, int] | str | Path | None


def as_label_map(labels: Any, *, name: str = "labels") -> np.ndarray:
    """Validate an integer label map ``(H, W)`` or ``(Z, H, W)`` (bool is read as {0, 1}).

    Raises
    ------
    InvalidMaskError
        Wrong dimension, empty array or negative labels.
    InvalidMaskTypeError
        A float (or other non-integer) dtype.
    """
    arr = np.asarray(labels)
    if arr.ndim not in (2, 3):
        raise InvalidMaskError(
            f"{name}: expected a 2D (H, W) or 3D (Z, H, W) label map, got {arr.ndim}D array of "
            f"shape {arr.shape}"
        )
    if arr.size == 0:
        raise InvalidMaskError(f"{name}: expected a non-empty array, got shape {arr.shape}")
    if arr.dtype == bool:
        return arr.astype(np.uint8)
    if not np.issubdtype(arr.dtype, np.integer):
        raise InvalidMaskTypeError(
            f"{name}: expected an integer label map, got dtype {arr.dtype}"
        )
    if int(arr.min()) < 0:
        raise InvalidMaskError(f"{name}: expected labels >= 0, got {int(arr.min())}")
    return arr


def read_label_names(dataset_json: str | Path) -> dict[str, int]:
    """Label names and values from an nnU-Net ``dataset.json``, without the background.

    Reads nnU-Net v2's ``"labels": {"background": 0, "artery": 1, ...}`` and v1's
    ``"labels": {"0": "background", "1": "artery"}``. Region-based labels (lists of values)
    are refused.

    Returns
    -------
    dict of str to int
        Name -> label value, in increasing value order, value 0 left out.
    """
    path = Path(dataset_json)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidParameterError(
            f"{path}: cannot read an nnU-Net dataset.json ({exc})"
        ) from None
    raw = data.get("labels") if isinstance(data, dict) else None
    if not isinstance(raw, dict) or not raw:
        raise InvalidParameterError(f"{path}: expected a 'labels' object, found none")
    names: dict[str, int] = {}
    for key, value in raw.items():
        if isinstance(value, str) and str(key).strip().lstrip("-").isdigit():  # nnU-Net v1
            key, value = value, int(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidParameterError(
                f"{path}: label {key!r} has value {value!r}; expected one integer (region-based "
                "labels are not supported)"
            )
        names[str(key)] = int(value)
    return {k: v for k, v in sorted(names.items(), key=lambda kv: kv[1]) if v != 0}


@dataclass(frozen=True)
class LabelSpec:
    """One evaluated label: its display name and value."""

    name: str
    value: int


def resolve_labels(
    labels: Iterable[int | str] | Mapping[str, int],
    *,
    label_names: LabelNames = None,
) -> list[LabelSpec]:
    """Turn ints, names or a name -> value mapping into :class:`LabelSpec` s.

    Parameters
    ----------
    labels : iterable of int or str, or mapping of str to int
        Label values (``[1, 2]``), names (``["artery"]``, looked up in ``label_names``), digit
        strings (``"1"``, as the CLI passes them) or an explicit ``{"name": value}`` mapping.
    label_names : mapping of str to int, or path of an nnU-Net dataset.json, optional
        Names of the label values; values with a name are reported under it, others as their
        number.

    Raises
    ------
    InvalidParameterError
        Unknown name, label 0 (the background), repeated label, empty list, a name ``merged``.
    """
    if label_names is None:
        names: dict[str, int] = {}
    elif isinstance(label_names, (str, Path)):
        names = read_label_names(label_names)
    else:
        names = {str(k): int(v) for k, v in label_names.items()}
    by_value = {v: k for k, v in names.items()}
    specs: list[LabelSpec] = []
    if isinstance(labels, Mapping):
        items: list[tuple[str | None, Any]] = [(str(k), v) for k, v in labels.items()]
    else:
        items = [(None, v) for v in labels]
    for given_name, value in items:
        if isinstance(value, str):
            text = value.strip()
            if text in names:
                given_name, value = text, names[text]
            elif text.isdigit():
                value = int(text)
            else:
                known = ", ".join(names) or "none (pass label_names or a dataset.json)"
                raise InvalidParameterError(f"unknown label name {text!r}: known names: {known}")
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise InvalidParameterError(f"labels: expected ints or names, got {value!r}")
        value = int(value)
        if value <= 0:
            raise InvalidParameterError(
                f"labels: expected label values > 0 (0 is the background), got {value}"
            )
        name = given_name or by_value.get(value, str(value))
        specs.append(LabelSpec(name, value))
    if not specs:
        raise InvalidParameterError("labels: expected at least one label")
    for attr in ("name", "value"):
        seen = [getattr(s, attr) for s in specs]
        dup = sorted({str(x) for x in seen if seen.count(x) > 1})
        if dup:
            raise InvalidParameterError(f"labels: each label once, got {attr}(s) {dup} twice")
    if any(s.name == MERGED for s in specs):
        raise InvalidParameterError(f"labels: {MERGED!r} is reserved for the union of the labels")
    return specs


def evaluate_labels(
    pred: np.ndarray,
    target: np.ndarray,
    *,
    labels: Iterable[int | str] | Mapping[str, int],
    protocol: str | Protocol = "default",
    merged: bool = True,
    label_names: LabelNames = None,
    spacing: Spacing = None,
    workers: int | None = None,
    **overrides: Any,
) -> dict[str, dict[str, float]]:
    """The protocol's metrics for each listed label of two label maps, and for their union.

    Parameters
    ----------
    pred, target : array_like of int, shape (H, W) or (Z, H, W)
        Label maps of the same shape (0 is the background).
    labels : iterable of int or str, or mapping of str to int
        The labels to evaluate (see :func:`resolve_labels`); other values are ignored (taken as
        background).
    protocol : str or Protocol
        As in :func:`topobench.metrics.evaluate_case`. Its ``merged_metrics`` are computed only
        on the merged mask.
    merged : bool
        Also evaluate the union of the listed labels, under the key ``"merged"``.
    label_names : mapping of str to int, or path of an nnU-Net dataset.json, optional
        Names for label values.
    spacing, workers, **overrides
        As in :func:`topobench.metrics.evaluate_case`.

    Returns
    -------
    dict of str to dict of str to float
        ``{label_name: {metric: value}}`` in the order of ``labels``, then ``"merged"``. Each
        entry equals ``evaluate_case(pred == value, target == value, ...)`` (the merged entry:
        of the masks of all listed labels). Never NaN.

    Examples
    --------
    >>> target = np.zeros((9, 12), np.uint8); target[2, 1:11] = 1; target[6, 1:11] = 2
    >>> pred = target.copy(); pred[6, 5] = 0                      # label 2 is cut
    >>> r = evaluate_labels(pred, target, labels={"artery": 1, "vein": 2})
    >>> r["artery"]["e0"], r["vein"]["e0"], r["merged"]["e0"]
    (0.0, 1.0, 1.0)
    """
    p = as_label_map(pred, name="pred")
    t = as_label_map(target, name="target")
    if p.shape != t.shape:
        raise InvalidMaskError(
            f"pred and target must have the same shape, got pred {p.shape} and target {t.shape}"
        )
    specs = resolve_labels(labels, label_names=label_names)
    proto = resolve_protocol(protocol, **overrides)
    per_label = tuple(m for m in proto.metrics if m not in proto.merged_metrics)
    croppable = _windowless(proto)

    def run(pm: np.ndarray, tm: np.ndarray, run_proto: Protocol) -> dict[str, float]:
        if croppable:
            pm, tm = _crop_to_structures(pm, tm)
        return evaluate_case(pm, tm, protocol=run_proto, workers=workers, spacing=spacing)

    out: dict[str, dict[str, float]] = {}
    if per_label:
        label_proto = resolve_protocol(proto, metrics=per_label)
        for spec in specs:
            out[spec.name] = run(p == spec.value, t == spec.value, label_proto)
    if merged:
        values = [s.value for s in specs]
        out[MERGED] = run(np.isin(p, values), np.isin(t, values), proto)
    return out


#: Background margin kept around the structures when a label's masks are cropped.
_CROP_MARGIN = 2


def _windowless(proto: Protocol) -> bool:
    """Whether every metric of ``proto`` looks at the whole image (no tiles, no slices)."""
    return (
        not proto.betti_slices
        and proto.betti_window is None
        and proto.cldice_window is None
        and proto.ags_window is None
        and proto.e0_gt_window is None
    )


def _crop_to_structures(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both masks cut to the bounding box of their union plus a background margin.

    Exact for whole-image metrics (the image is embedded in background anyway: topology,
    skeletons, overlaps and surface distances do not change), and what makes a label that
    fills a small part of a volume cheap. Not applied when a mask is empty: the distances of
    an empty mask use the full image's diagonal.
    """
    if not pred.any() or not target.any():
        return pred, target
    union = pred | target
    box = []
    for axis in range(union.ndim):
        other = tuple(a for a in range(union.ndim) if a != axis)
        hit = np.flatnonzero(union.any(axis=other))
        lo = max(int(hit[0]) - _CROP_MARGIN, 0)
        hi = min(int(hit[-1]) + 1 + _CROP_MARGIN, union.shape[axis])
        box.append(slice(lo, hi))
    return pred[tuple(box)], target[tuple(box)]


def label_average(
    results: Mapping[str, Mapping[str, float]], *, exclude: Sequence[str] = (MERGED,)
) -> dict[str, float]:
    """Class average of :func:`evaluate_labels`' per-label results (the merged entry left out).

    Each metric is averaged over the labels that have it; metrics computed only on the merged
    mask are taken from it.

    Examples
    --------
    >>> label_average({"1": {"dice": 1.0}, "2": {"dice": 0.5}, "merged": {"dice": 0.8}})
    {'dice': 0.75}
    """
    labels = [k for k in results if k not in exclude]
    metrics: list[str] = []
    for k in labels:
        metrics += [m for m in results[k] if m not in metrics]
    out = {m: math.fsum(results[k][m] for k in labels if m in results[k]) for m in metrics}
    counts = {m: sum(1 for k in labels if m in results[k]) for m in metrics}
    avg = {m: out[m] / counts[m] for m in metrics}
    for key in exclude:
        for m, v in results.get(key, {}).items():
            avg.setdefault(m, v)
    return avg

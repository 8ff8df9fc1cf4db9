"""Summaries: the metric columns, the one mean reducer (:func:`summarize`), the configuration a
resumed run must share (:func:`config_differences`) and the report of a run.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from topobench.evaluate.case import ArrayCase
from topobench.evaluate.pairing import CasePair
from topobench.io import peek_ndim
from topobench.metrics import METRIC_NAMES, Protocol

__all__ = [
    "EvaluationReport",
    "metric_columns",
    "not_binary_hint",
    "statistics",
    "summarize",
]


def metric_columns(protocol: Protocol, ndim: int | None) -> list[str]:
    """The metric columns of ``cases.csv`` for a protocol and data dimension.

    ``e2`` is a column only when the Betti errors use 3D windows (3D data without slices).
    """
    has_e2 = ndim == 3 and not protocol.betti_slices
    return [m for m in METRIC_NAMES if m in protocol.metrics and (m != "e2" or has_e2)]


def statistics(values: Iterable[float]) -> dict[str, Any]:
    """Mean, std (sample, ddof=1), median and n of some values.

    Returns
    -------
    dict
        ``{"mean", "std", "median", "n"}``; statistics are None when n is 0 (std also when n
        is 1).
    """
    a = np.asarray(list(values), dtype=float)
    return {
        "mean": float(a.mean()) if a.size else None,
        "std": float(a.std(ddof=1)) if a.size > 1 else None,
        "median": float(np.median(a)) if a.size else None,
        "n": int(a.size),
    }


def summarize(rows: Iterable[dict[str, Any]], metrics: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Mean, std (sample, ddof=1), median and n of each metric over the cases.

    The one reducer of the evaluation drivers (folders, nnU-Net predictions, label maps).

    Parameters
    ----------
    rows : iterable of dict
        One per case, metric name -> value (float or its text; empty text is skipped).
    metrics : sequence of str

    Returns
    -------
    dict
        ``{metric: {"mean", "std", "median", "n"}}`` (:func:`statistics` of each metric).
    """
    values: dict[str, list[float]] = {m: [] for m in metrics}
    for row in rows:
        for m in metrics:
            v = row.get(m, "")
            if v not in ("", None):
                values[m].append(float(v))
    return {m: statistics(vs) for m, vs in values.items()}


@dataclass(frozen=True)
class EvaluationReport:
    """What :func:`run_evaluation` did.

    Attributes
    ----------
    out_dir : Path
    summary : dict
        The content of ``summary.json``.
    n_evaluated : int
        Cases evaluated in this run (succeeded or failed).
    n_skipped : int
        Cases skipped because ``cases.csv`` already held them (resume).
    failures : tuple of (str, str)
        ``(case, reason)`` of every failed or unpaired case of this run.
    not_binary : tuple of str
        Cases whose prediction is a probability map read without a threshold (also in
        ``failures``); :attr:`hint` says what to do, once for all of them.
    reevaluated : tuple of str
        Resume: cases whose row was dropped and evaluated again because a file of theirs changed
        (or no fingerprint of theirs was recorded).
    dropped : tuple of str
        Resume: cases whose row was removed because their files are gone.
    """

    out_dir: Path
    summary: dict[str, Any]
    n_evaluated: int
    n_skipped: int
    failures: tuple[tuple[str, str], ...]
    not_binary: tuple[str, ...] = ()
    reevaluated: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every case succeeded (the exit status is 0 only then)."""
        return not self.failures

    @property
    def hint(self) -> str | None:
        """One message for every probability-map prediction, naming the parameter to set."""
        if not self.not_binary:
            return None
        return not_binary_hint(self.not_binary)


def not_binary_hint(cases: Sequence[str]) -> str:
    """The message for predictions that are probability maps (Python parameter names)."""
    listed = ", ".join(cases[:5]) + (f" and {len(cases) - 5} more" if len(cases) > 5 else "")
    return (
        f"{len(cases)} prediction{'s are' if len(cases) != 1 else ' is'} not a binary mask but "
        f"a probability map ({listed}): values other than {{0, 1}} / {{0, 255}}, or floats; "
        "binarise the predictions with threshold=... (for example threshold=0.5). Integer maps "
        "are divided by their dtype's maximum first: 255 for 8-bit, 65535 for 16-bit"
    )


def run_config(
    protocol: Protocol,
    threshold: float | None,
    channel: int | None = None,
    spacing: float | tuple[float, ...] | None = None,
) -> dict[str, Any]:
    """``summary.json``'s ``config``: the full metric configuration, threshold, channel, spacing."""
    config: dict[str, Any] = {"protocol": protocol.to_dict(), "threshold": threshold}
    if channel is not None:
        config["channel"] = channel
    if spacing is not None:
        config["spacing"] = spacing if isinstance(spacing, float) else list(spacing)
    return config


def _comparable(summary: dict[str, Any]) -> dict[str, Any]:
    """What must agree between a run and its resumption, flat: ``{"protocol.connectivity": 4}``.

    The configuration of the metrics, the threshold and channel, the input folders and the name
    suffixes of pairing (keys an older summary lacks are left out of the comparison), and each
    key of the caller's ``provenance``.
    """
    config = summary.get("config", {}) or {}
    out: dict[str, Any] = {}
    for key, value in (config.get("protocol") or {}).items():
        if key != "topobench_version":
            out[f"protocol.{key}"] = value
    out["threshold"] = config.get("threshold")
    out["channel"] = config.get("channel")
    out["spacing"] = config.get("spacing")
    for key in ("pred_dir", "target_dir", "pred_suffix", "target_suffix"):
        if key in summary:
            out[key] = summary[key]
    for key, value in (summary.get("provenance") or {}).items():
        out[f"provenance.{key}"] = value
    return out


def _shown(value: Any) -> str:
    if value is None:
        return "None"
    return repr(value) if isinstance(value, str) else json.dumps(value)


def config_differences(previous: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """``key: old -> new`` for every setting that differs between a recorded ``summary.json``
    (``previous``) and this run's (``now``: ``config``, folders, ``provenance``).

    Folders and suffixes that an older summary did not record are not compared.
    """
    before, now = _comparable(previous), _comparable(now)
    return [
        f"{key}: {_shown(before.get(key))} -> {_shown(now.get(key))}"
        for key in sorted(set(before) | set(now))
        if (
            key in before
            or key.startswith(("protocol.", "provenance."))
            or key in ("threshold", "channel")
        )
        and before.get(key) != now.get(key)
    ]


def has_e2(protocol: Protocol, cases: Sequence[CasePair | ArrayCase]) -> bool:
    """Whether ``cases.csv`` has an ``e2`` column: from the protocol and each case's dimension.

    Only when ``e2`` is selected and the Betti errors use 3D windows (no slices): then always
    for a 3D protocol, never for a 2D one, and for a protocol of any dimension when some target
    is 3D (read from the file headers; a file that cannot be read fails on its own later).
    """
    if "e2" not in protocol.metrics or protocol.betti_slices:
        return False
    if protocol.ndim is not None:
        return protocol.ndim == 3
    for case in cases:
        try:
            ndim = case.target.ndim if isinstance(case, ArrayCase) else peek_ndim(case.target)
        except Exception:  # unreadable: that case fails on its own
            continue
        if ndim == 3:
            return True
    return False

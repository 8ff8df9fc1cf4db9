"""The tidy results table: its columns, normalisation, CSV form and the metric configuration key.

The tidy table has one row per (configuration, fold, seed, case, metric) and the columns of
:data:`TIDY_COLUMNS`. Scale convention: ``value`` holds the library's units, i.e. fractions in
[0, 1] for Dice, clDice and AGS and plain counts for the Betti errors; tables multiply the
fractions by 100 when they render them. Run-level figures (timings) have an empty ``case``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from topobench.catalog import LOSSES, METRICS, metric_names
from topobench.errors import ReadError

#: Columns of the tidy table, in order.
TIDY_COLUMNS: tuple[str, ...] = (
    "source",
    "run",
    "dataset",
    "method",
    "loss",
    "gamma",
    "alpha",
    "critical_mask",
    "pretrain_epochs",
    "finetune_epochs",
    "postprocessing",
    "fold",
    "seed",
    "case",
    "metric",
    "value",
    "decimals",
    "device",
    "protocol",
    "topobench_version",
    "reference",
)

#: Columns that identify one table cell's configuration (together with ``metric``). The
#: metric configuration (``protocol``, with the threshold) is part of it: results computed
#: differently are never merged.
CONFIG_COLUMNS: tuple[str, ...] = (
    "source",
    "dataset",
    "method",
    "loss",
    "gamma",
    "alpha",
    "critical_mask",
    "pretrain_epochs",
    "finetune_epochs",
    "postprocessing",
    "protocol",
)

NUMERIC_COLUMNS: tuple[str, ...] = (
    "gamma",
    "alpha",
    "pretrain_epochs",
    "finetune_epochs",
    "fold",
    "seed",
    "value",
    "decimals",
)

#: Display name of the pretraining model's predictions (the paper's "nnU-Net" row).
PRETRAINED_METHOD = "nnU-Net"

#: Metrics measured per case, in the order of the run record (:data:`topobench.catalog.METRICS`).
CASE_METRICS: tuple[str, ...] = metric_names()
#: Run-level timing figures (Table 7).
RUNTIME_METRICS: tuple[str, ...] = ("seconds_per_epoch", "minutes_per_training")
#: Metrics stored as fractions in [0, 1] and shown in percent.
FRACTION_METRICS: frozenset[str] = frozenset(m.name for m in METRICS.values() if m.percent)

#: Critical pixel mask of each loss (``make_loss`` names), used when a run record leaves it null.
CRITICAL_MASK_OF_LOSS: dict[str, str] = {name: info.critical_mask for name, info in LOSSES.items()}


def empty_tidy() -> pd.DataFrame:
    """An empty tidy table with the right columns and dtypes."""
    return normalise_tidy(pd.DataFrame(columns=list(TIDY_COLUMNS)))


def normalise_tidy(frame: pd.DataFrame) -> pd.DataFrame:
    """Return ``frame`` with every tidy column present, numbers as float, text as str.

    Missing text is the empty string and missing numbers are NaN, so that grouping keeps
    rows with unset fields (e.g. no gamma) together.
    """
    out = pd.DataFrame(index=frame.index)
    for column in TIDY_COLUMNS:
        if column in NUMERIC_COLUMNS:
            raw = frame[column] if column in frame else np.nan
            out[column] = pd.to_numeric(pd.Series(raw, index=frame.index), errors="raise").astype(
                float
            )
        else:
            raw = frame[column] if column in frame else ""
            series = pd.Series(raw, index=frame.index, dtype=object)
            series = series.where(series.notna(), "")
            if pd.api.types.infer_dtype(series, skipna=False) not in ("string", "empty"):
                series = series.map(_text)
            out[column] = series.astype(object)
    return out.reset_index(drop=True)


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def read_tidy_csv(path: str | Path) -> pd.DataFrame:
    """Read a tidy CSV (a leaderboard, or a table written by :func:`write_tidy_csv`).

    Raises
    ------
    ReadError
        If the file cannot be read or lacks the ``metric`` and ``value`` columns.
    """
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ReadError(f"cannot read {path}: {exc}") from exc
    missing = {"metric", "value", "dataset", "method"} - set(frame.columns)
    if missing:
        raise ReadError(f"{path}: expected tidy columns metric, value, dataset, method; "
                        f"missing {sorted(missing)}")
    for column in NUMERIC_COLUMNS:
        if column in frame:
            frame[column] = _parse_numbers(frame[column], column, path)
    return normalise_tidy(frame)


def _parse_numbers(series: pd.Series, column: str, path: Path, *,
                   allow_nan: bool = True) -> pd.Series:
    text = series.astype(str).str.strip()
    numbers = pd.to_numeric(text.where(text != ""), errors="coerce")
    is_nan_text = text.str.lower() == "nan"
    bad = numbers.isna() & (text != "") & ~is_nan_text
    if bad.any():
        raise ReadError(
            f"{path}: column {column!r} expected numbers, got {text[bad].iloc[0]!r}"
        )
    if not allow_nan and is_nan_text.any():
        line = int(is_nan_text.argmax()) + 2
        raise ReadError(f"{path}: column {column!r} holds NaN in line {line}; a figure that "
                        "could not be computed is refused, not averaged (leave the field empty "
                        "if the metric was not measured)")
    return numbers


def write_tidy_csv(frame: pd.DataFrame, path: str | Path) -> None:
    """Write a tidy table as CSV: empty fields for missing values, numbers in their shortest
    exact form (``0.795``, ``22``), so that rewriting a file leaves its rows unchanged."""
    out = normalise_tidy(frame)
    for column in NUMERIC_COLUMNS:
        out[column] = [
            "" if np.isnan(v) else np.format_float_positional(v, trim="-")
            for v in out[column].to_numpy()
        ]
    out.to_csv(path, index=False, lineterminator="\n")


def protocol_key(protocol: Mapping[str, Any] | str, threshold: float | None = None) -> str:
    """The metric configuration of a result as one text, part of every comparison key.

    Canonical JSON of the protocol (without the ``topobench_version`` it records, which has its
    own column) plus the probability ``threshold`` when one binarised the predictions; empty
    when nothing is known. Results whose keys differ are never merged or compared.

    >>> protocol_key({"name": "roads", "betti_window": 375}, 0.5)
    '{"betti_window": 375, "name": "roads", "threshold": 0.5}'
    """
    if isinstance(protocol, str):
        proto: dict[str, Any] = {"name": protocol} if protocol else {}
    else:
        proto = {k: v for k, v in protocol.items() if k != "topobench_version"}
    if threshold is not None:
        proto["threshold"] = threshold
    return json.dumps(proto, sort_keys=True) if proto else ""

"""Loading run records, per-case CSVs and leaderboards into one tidy table.

The tidy table has one row per (configuration, fold, case, metric) and the columns of
:data:`TIDY_COLUMNS`. Scale convention: ``value`` holds the library's units, i.e. fractions in
[0, 1] for Dice, clDice and AGS and plain counts for the Betti errors; tables multiply the
fractions by 100 when they render them. Run-level figures (timings) have an empty ``case``.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from topobench.catalog import LOSSES, METRICS, RUN_FORMAT, metric_names
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

#: Columns that identify one table cell's configuration (together with ``metric``).
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
TEXT_COLUMNS: tuple[str, ...] = tuple(c for c in TIDY_COLUMNS if c not in NUMERIC_COLUMNS)

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
_NON_METRIC_COLUMNS = frozenset({"case", "seconds", "shape"})
_RUN_FILES = (
    ("metrics_pretrained.csv", None),
    ("metrics_raw.csv", "without"),
    ("metrics_postprocessed.csv", "with"),
)


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


def _parse_numbers(series: pd.Series, column: str, path: Path) -> pd.Series:
    text = series.astype(str).str.strip()
    numbers = pd.to_numeric(text.where(text != ""), errors="coerce")
    bad = numbers.isna() & (text != "") & (text.str.lower() != "nan")
    if bad.any():
        raise ReadError(
            f"{path}: column {column!r} expected numbers, got {text[bad].iloc[0]!r}"
        )
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


def read_run(run_dir: str | Path, *, include_running: bool = False) -> pd.DataFrame:
    """Read one training run directory (``run.json`` plus its metric CSVs) into tidy rows.

    ``metrics_pretrained.csv`` becomes the :data:`PRETRAINED_METHOD` rows (no post-processing),
    ``metrics_raw.csv`` the ``postprocessing == "without"`` rows and
    ``metrics_postprocessed.csv`` the ``"with"`` rows of the run's method; the fine-tuning
    timings become the run-level :data:`RUNTIME_METRICS` rows.

    Parameters
    ----------
    run_dir : path
        Directory holding ``run.json``.
    include_running : bool
        Also read runs whose status is not ``"complete"`` (whatever files they have so far).

    Returns
    -------
    pandas.DataFrame
        Tidy rows; empty when the run is skipped because it is not complete.

    Raises
    ------
    ReadError
        If ``run.json`` is missing, malformed or of another format.
    """
    return normalise_tidy(_run_rows(Path(run_dir), include_running=include_running))


def _run_rows(run_dir: Path, *, include_running: bool) -> pd.DataFrame:
    """Tidy rows of one run, not yet normalised (see :func:`read_run`)."""
    record = _read_json(run_dir / "run.json")
    fmt = record.get("format")
    if fmt != RUN_FORMAT:
        raise ReadError(f"{run_dir / 'run.json'}: expected format {RUN_FORMAT!r}, got {fmt!r}")
    if record.get("status", "complete") != "complete" and not include_running:
        return pd.DataFrame(columns=list(TIDY_COLUMNS))
    for key in ("dataset", "loss", "method"):
        if not isinstance(record.get(key), str):
            raise ReadError(f"{run_dir / 'run.json'}: expected a string {key!r}, "
                            f"got {record.get(key)!r}")
    loss = record["loss"]
    mask = record.get("critical_mask") or CRITICAL_MASK_OF_LOSS.get(loss, "")
    finetune_epochs = record.get("finetune_epochs")
    base = {
        "run": run_dir.name,
        "dataset": record["dataset"],
        "pretrain_epochs": record.get("epochs"),
        "fold": record.get("fold"),
        "seed": record.get("seed"),
        "device": record.get("device", ""),
        "protocol": json.dumps(record.get("protocol", {}), sort_keys=True),
        "topobench_version": record.get("topobench_version", ""),
    }
    fine_tuned = {
        "method": record["method"],
        "loss": loss,
        "gamma": record.get("gamma"),
        "alpha": record.get("alpha"),
        "critical_mask": mask,
        "finetune_epochs": finetune_epochs,
    }
    pretrained = {"method": PRETRAINED_METHOD, "loss": "dice_ce", "critical_mask": "none"}
    parts = []
    for name, postprocessing in _RUN_FILES:
        path = run_dir / name
        if not path.is_file():
            if record.get("status", "complete") == "complete":
                raise ReadError(f"{run_dir}: complete run without {name}")
            continue
        config = dict(base, **(pretrained if postprocessing is None else fine_tuned))
        config["postprocessing"] = postprocessing or ""
        parts.append(_case_rows(read_case_table(path), config))
    parts.append(_runtime_rows(record, dict(base, **fine_tuned)))
    return pd.concat(parts, ignore_index=True)


def _runtime_rows(record: Mapping[str, Any], config: dict[str, Any]) -> pd.DataFrame:
    per_epoch = (record.get("seconds_per_epoch") or {}).get("finetune")
    total = (record.get("seconds_total") or {}).get("finetune")
    rows = []
    if per_epoch is not None:
        rows.append(dict(config, case="", metric="seconds_per_epoch", value=per_epoch))
    if total is not None:
        rows.append(dict(config, case="", metric="minutes_per_training", value=total / 60.0))
    return pd.DataFrame(rows)


def read_case_table(path: str | Path) -> pd.DataFrame:
    """Read a per-case metric CSV (``case`` then metric columns) as a wide table.

    Columns ``seconds`` and ``shape`` are dropped; every other column must be numeric.

    Raises
    ------
    ReadError
        If the file cannot be read, has no ``case`` column or a non-numeric metric.
    """
    path = Path(path)
    try:
        # No NA parsing: case names such as "NA" or "null" are names, and an empty metric
        # field is parsed as missing below.
        frame = pd.read_csv(path, dtype={"case": str}, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ReadError(f"cannot read {path}: {exc}") from exc
    if "case" not in frame.columns:
        raise ReadError(f"{path}: expected a 'case' column, got {list(frame.columns)}")
    frame["case"] = frame["case"].fillna("")
    metrics = [c for c in frame.columns if c not in _NON_METRIC_COLUMNS]
    for column in metrics:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = _parse_numbers(frame[column].fillna(""), column, path)
    return frame[["case", *metrics]]


def _case_rows(wide: pd.DataFrame, config: Mapping[str, Any]) -> pd.DataFrame:
    """Long rows (case, metric, value) of a wide per-case table, with ``config`` repeated."""
    metrics = [c for c in wide.columns if c != "case"]
    values = wide[metrics].to_numpy(dtype=float).ravel()
    keep = ~np.isnan(values)
    columns: dict[str, Any] = {
        "case": np.repeat(wide["case"].to_numpy(dtype=object), len(metrics))[keep],
        "metric": np.tile(np.array(metrics, dtype=object), len(wide))[keep],
        "value": values[keep],
    }
    columns.update((key, [value] * int(keep.sum())) for key, value in config.items())
    return pd.DataFrame(columns)


def read_case_csv(
    path: str | Path, *, method: str | None = None, dataset: str | None = None
) -> pd.DataFrame:
    """Read a ``topobench evaluate`` output (``cases.csv``, optional ``summary.json``).

    The method defaults to the name of the folder holding ``cases.csv`` (or to the file's stem
    for any other name); the dataset and metric configuration come from ``summary.json`` when
    it names them.
    """
    path = Path(path)
    summary_path = path.parent / "summary.json"
    summary: dict[str, Any] = _read_json(summary_path) if summary_path.is_file() else {}
    config_block = summary.get("config")
    protocol = (config_block.get("protocol") if isinstance(config_block, dict) else None) or (
        summary.get("protocol") or {}
    )
    if method is None:
        method = path.parent.name if path.stem == "cases" else path.stem
    if dataset is None:
        dataset = str(summary.get("dataset") or "")
    config = {
        "run": path.parent.name,
        "dataset": dataset,
        "method": method,
        "protocol": json.dumps(protocol, sort_keys=True) if protocol else "",
        "topobench_version": summary.get("topobench_version", ""),
    }
    return normalise_tidy(_case_rows(read_case_table(path), config))



def load_results(
    sources: Iterable[str | Path], *, include_running: bool = False
) -> pd.DataFrame:
    """Load run directories, per-case CSVs and tidy CSVs into one tidy table.

    Each source may be a run directory (holding ``run.json``), a directory searched recursively
    for run directories and ``cases.csv`` files, a tidy CSV (a leaderboard: it has ``metric``
    and ``value`` columns) or a per-case CSV (it has a ``case`` column).

    Parameters
    ----------
    sources : iterable of paths
    include_running : bool
        Also read runs, and ``topobench evaluate`` outputs (``summary.json`` beside
        ``cases.csv``), whose ``status`` is not ``"complete"``; otherwise they are skipped with
        a :class:`UserWarning` naming them.

    Returns
    -------
    pandas.DataFrame
        The tidy table (:data:`TIDY_COLUMNS`).

    Raises
    ------
    ReadError
        If a source does not exist, holds nothing readable, or a file is malformed.
    """
    parts = []
    for source in sources:
        path = Path(source)
        if not path.exists():
            raise ReadError(f"no such file or directory: {path}")
        if path.is_file():
            parts.append(_read_file(path, include_running=include_running))
            continue
        found = _read_directory(path, include_running=include_running)
        if not found:
            raise ReadError(f"{path}: expected run directories (run.json) or cases.csv, "
                            "found none")
        parts.extend(found)
    if not parts:
        return empty_tidy()
    return normalise_tidy(pd.concat(parts, ignore_index=True))


def _read_file(path: Path, *, include_running: bool) -> pd.DataFrame:
    if path.name == "run.json":
        return _run_rows(path.parent, include_running=include_running)
    try:
        header = pd.read_csv(path, nrows=0).columns
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError,
            UnicodeDecodeError) as exc:
        raise ReadError(f"cannot read {path}: {exc}") from exc
    if {"metric", "value"} <= set(header):
        return read_tidy_csv(path)
    if "case" in header:
        return _evaluation_rows(path, include_running=include_running, stacklevel=4)
    raise ReadError(f"{path}: expected a tidy CSV (metric, value) or a per-case CSV (case), "
                    f"got columns {list(header)}")


def _read_directory(path: Path, *, include_running: bool) -> list[pd.DataFrame]:
    if (path / "run.json").is_file():
        run_dirs = [path]
    else:
        run_dirs = sorted(p.parent for p in path.rglob("run.json"))
    parts = []
    for run_dir in run_dirs:
        rows = _run_rows(run_dir, include_running=include_running)
        if rows.empty:
            warnings.warn(f"skipped {run_dir}: run is not complete", UserWarning, stacklevel=3)
        parts.append(rows)
    for cases in sorted(path.rglob("cases.csv")):
        if not any(run_dir in cases.parents for run_dir in run_dirs):
            parts.append(_evaluation_rows(cases, include_running=include_running, stacklevel=4))
    return parts


def _evaluation_rows(path: Path, *, include_running: bool, stacklevel: int) -> pd.DataFrame:
    """:func:`read_case_csv`, or no rows (with a warning) for an unfinished evaluation.

    ``topobench evaluate`` marks its ``summary.json`` ``"running"`` until the last case is
    done; its ``cases.csv`` then holds only some of the cases.
    """
    summary_path = path.parent / "summary.json"
    if not include_running and summary_path.is_file():
        status = _read_json(summary_path).get("status", "complete")
        if status != "complete":
            warnings.warn(f"skipped {path}: evaluation is not complete (status {status!r})",
                          UserWarning, stacklevel=stacklevel)
            return pd.DataFrame(columns=list(TIDY_COLUMNS))
    return read_case_csv(path)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReadError(f"missing {path}") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ReadError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ReadError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data

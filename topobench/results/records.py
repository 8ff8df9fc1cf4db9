"""Reading run directories and per-case CSVs into tidy rows.

A run directory (:mod:`topobench.run_record`: ``run.json`` and, per prediction variant,
``evaluation/<variant>/cases.csv`` or, format 1, ``metrics_<variant>.csv``) gives the nnU-Net
rows of its pretrained model, its method's rows without and with post-processing and its
fine-tuning timings. A ``topobench evaluate`` output (``cases.csv`` with ``summary.json``) gives
one method's rows.
"""

from __future__ import annotations

import csv
import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from topobench.errors import ReadError
from topobench.results.tidy import (
    CRITICAL_MASK_OF_LOSS,
    PRETRAINED_METHOD,
    TIDY_COLUMNS,
    normalise_tidy,
    protocol_key,
)
from topobench.run_record import (
    CaseRow,
    RunRecord,
    read_run_record,
    variant_cases_path,
)

_NON_METRIC_COLUMNS = frozenset({"case", "seconds", "shape"})
#: The tidy ``postprocessing`` of each prediction variant's rows (None: the pretrained model).
_VARIANT_ROWS: dict[str, str | None] = {
    "pretrained": None,
    "raw": "without",
    "postprocessed": "with",
}


def read_run(run_dir: str | Path, *, include_running: bool = False,
             run_id: str | None = None) -> pd.DataFrame:
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
    run_id : str, optional
        Identifier stored in the ``run`` column (default: the directory's name);
        :func:`load_results` passes the run's path relative to its source.

    Returns
    -------
    pandas.DataFrame
        Tidy rows; empty when the run is skipped because it is not complete.

    Raises
    ------
    ReadError
        If ``run.json`` is missing, malformed or of another format.
    """
    return normalise_tidy(run_rows(Path(run_dir), include_running=include_running,
                                    run_id=run_id))


def run_rows(run_dir: Path, *, include_running: bool, run_id: str | None = None) -> pd.DataFrame:
    """Tidy rows of one run, not yet normalised (see :func:`read_run`)."""
    record = read_run_record(run_dir / "run.json")
    if record.status != "complete" and not include_running:
        return pd.DataFrame(columns=list(TIDY_COLUMNS))
    base = {
        "run": run_id or run_dir.name,
        "dataset": record.dataset,
        "pretrain_epochs": record.epochs,
        "fold": record.fold,
        "seed": record.seed,
        "device": record.device,
        "protocol": protocol_key(record.protocol or {}, record.threshold),
        "topobench_version": record.topobench_version,
    }
    fine_tuned = {
        "method": record.method,
        "loss": record.loss,
        "gamma": record.gamma,
        "alpha": record.alpha,
        "critical_mask": record.critical_mask or CRITICAL_MASK_OF_LOSS.get(record.loss, ""),
        "finetune_epochs": record.finetune_epochs,
    }
    pretrained = {"method": PRETRAINED_METHOD, "loss": "dice_ce", "critical_mask": "none"}
    parts = []
    for variant, postprocessing in _VARIANT_ROWS.items():
        path = variant_cases_path(run_dir, variant)
        if not path.is_file():
            if record.status == "complete":
                store = f"evaluation/{variant}/cases.csv"
                what = (f"metrics_{variant}.csv" if record.format == "topobench-run/1"
                        else f"{store} (nor metrics_{variant}.csv)")
                raise ReadError(f"{run_dir}: complete run without {what}")
            continue
        config = dict(base, **(pretrained if postprocessing is None else fine_tuned))
        config["postprocessing"] = postprocessing or ""
        parts.append(_case_rows(read_case_table(path), config))
    parts.append(_runtime_rows(record, dict(base, **fine_tuned)))
    return pd.concat(parts, ignore_index=True)


def _runtime_rows(record: RunRecord, config: dict[str, Any]) -> pd.DataFrame:
    per_epoch = record.seconds_per_epoch.get("finetune")
    total = record.seconds_total.get("finetune")
    rows = []
    if per_epoch is not None:
        rows.append(dict(config, case="", metric="seconds_per_epoch", value=per_epoch))
    if total is not None:
        rows.append(dict(config, case="", metric="minutes_per_training", value=total / 60.0))
    return pd.DataFrame(rows)


def read_case_table(path: str | Path) -> pd.DataFrame:
    """Read a per-case metric CSV (``case`` then metric columns) as a wide table.

    Each line is parsed as a :class:`topobench.run_record.CaseRow`: columns ``seconds`` and
    ``shape`` are dropped, every other column must be numeric, an empty field is a metric not
    measured (NaN in the table) and a NaN written out is refused.

    Raises
    ------
    ReadError
        If the file cannot be read, has no ``case`` column or a non-numeric metric.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            lines = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ReadError(f"cannot read {path}: {exc}") from exc
    if not lines:
        raise ReadError(f"cannot read {path}: no columns to parse from file")
    header = lines[0]
    if "case" not in header:
        raise ReadError(f"{path}: expected a 'case' column, got {header}")
    metrics = [c for c in header if c not in _NON_METRIC_COLUMNS]
    rows = []
    for number, fields in enumerate(lines[1:], start=2):
        if not fields:
            continue  # a blank line
        if len(fields) > len(header):
            raise ReadError(f"cannot read {path}: expected {len(header)} fields in line "
                            f"{number}, saw {len(fields)}")
        rows.append(CaseRow.from_row(dict(zip(header, fields)), origin=str(path), line=number))
    table = {"case": [r.case for r in rows]}
    for m in metrics:
        table[m] = [r.metrics.get(m, np.nan) for r in rows]
    return pd.DataFrame(table, columns=["case", *metrics]).astype(
        {m: float for m in metrics})


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
    path: str | Path, *, method: str | None = None, dataset: str | None = None,
    run_id: str | None = None,
) -> pd.DataFrame:
    """Read a ``topobench evaluate`` output (``cases.csv``, optional ``summary.json``).

    The method defaults to the name of the folder holding ``cases.csv`` (or to the file's stem
    for any other name); the dataset and metric configuration (protocol and threshold) come
    from ``summary.json`` when it names them. ``run_id`` is stored in the ``run`` column
    (default: the folder's name).
    """
    path = Path(path)
    summary_path = path.parent / "summary.json"
    summary: dict[str, Any] = _read_json(summary_path) if summary_path.is_file() else {}
    config_block = summary.get("config")
    protocol = (config_block.get("protocol") if isinstance(config_block, dict) else None) or (
        summary.get("protocol") or {}
    )
    threshold = config_block.get("threshold") if isinstance(config_block, dict) else None
    if method is None:
        method = path.parent.name if path.stem == "cases" else path.stem
    if dataset is None:
        dataset = str(summary.get("dataset") or "")
    config = {
        "run": run_id or path.parent.name,
        "dataset": dataset,
        "method": method,
        "protocol": protocol_key(protocol, threshold) if protocol or threshold is not None
        else "",
        "topobench_version": summary.get("topobench_version", ""),
    }
    return normalise_tidy(_case_rows(read_case_table(path), config))


def evaluation_rows(path: Path, *, include_running: bool, stacklevel: int,
                     run_id: str | None = None) -> pd.DataFrame:
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
    return read_case_csv(path, run_id=run_id)


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

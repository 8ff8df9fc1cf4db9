"""Loading run records, per-case CSVs and leaderboards into one tidy table.

The tidy table has one row per (configuration, fold, case, metric) and the columns of
:data:`TIDY_COLUMNS`. Scale convention: ``value`` holds the library's units, i.e. fractions in
[0, 1] for Dice, clDice and AGS and plain counts for the Betti errors; tables multiply the
fractions by 100 when they render them. Run-level figures (timings) have an empty ``case``.
"""

from __future__ import annotations

import csv
import json
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from topobench.catalog import LOSSES, METRICS, metric_names
from topobench.errors import ReadError
from topobench.run_record import (
    CaseRow,
    RunRecord,
    read_run_record,
    variant_cases_path,
)

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
#: The tidy ``postprocessing`` of each prediction variant's rows (None: the pretrained model).
_VARIANT_ROWS: dict[str, str | None] = {
    "pretrained": None,
    "raw": "without",
    "postprocessed": "with",
}


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
    return normalise_tidy(_run_rows(Path(run_dir), include_running=include_running,
                                    run_id=run_id))


def _run_rows(run_dir: Path, *, include_running: bool, run_id: str | None = None) -> pd.DataFrame:
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
        with open(path, newline="", encoding="utf-8") as f:
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


@dataclass
class _Found:
    """One file or run directory to read: what it is, its run id, how it was named."""

    kind: Literal["run", "cases", "tidy"]
    path: Path
    run_id: str
    given: str
    auto_method: bool = False


def load_results(
    sources: Iterable[str | Path], *, include_running: bool = False
) -> pd.DataFrame:
    """Load run directories, per-case CSVs and tidy CSVs into one tidy table, checked.

    Each source may be a run directory (holding ``run.json``), a directory searched recursively
    for run directories and ``cases.csv`` files, a tidy CSV (a leaderboard: it has ``metric``
    and ``value`` columns) or a per-case CSV (it has a ``case`` column).

    A run is identified by its path relative to the source it was found in (``exp1/modelA``;
    the full given path where two sources would give the same one); its ``run`` column holds
    that identifier. An evaluation output's method defaults to its folder's name, or to its run
    identifier when two runs of one dataset share that name. A file or directory reached twice
    is read once.

    Every figure is checked before it is returned; a refused figure raises :class:`ReadError`
    naming the file or run, the case and the metric:

    - values outside the metric's range (:data:`topobench.catalog.METRICS`: Dice 1.7, e0 = -5,
      fractions written in percent), infinities and NaN (an empty field means "not measured"
      and is simply absent);
    - one case listed twice in one run with different values;
    - two runs holding the same configuration, fold, seed and metric (e.g. two copies of one
      experiment in different folders) unless they hold the same cases with the same values,
      as every fine-tuning run of one pretrained model does for its nnU-Net rows: those count
      once. Rows of different runs of one seed are never averaged; runs that differ only in
      their seed are distinct runs of one configuration, which the tables aggregate over
      seeds (:func:`topobench.results.aggregate_cells`).

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
        If a source does not exist, holds nothing readable, a file is malformed or a figure is
        refused (see above). Sources holding only unfinished runs give an empty table (with
        the warnings).
    """
    found: list[_Found] = []
    for source in sources:
        path = Path(source)
        if not path.exists():
            raise ReadError(f"no such file or directory: {path}")
        if path.is_file():
            found.append(_classify_file(path))
            continue
        entries = _find_in_directory(path)
        if not entries:
            raise ReadError(f"{path}: expected run directories (run.json) or cases.csv, "
                            "found none")
        found.extend(entries)
    found = _unique_runs(found)
    parts: list[tuple[pd.DataFrame, _Found]] = []
    for entry in found:
        rows = _read_found(entry, include_running=include_running)
        if not rows.empty:
            parts.append((rows, entry))
    if not parts:
        return empty_tidy()
    _name_methods_apart(parts)
    checked = []
    for rows, entry in parts:
        rows = normalise_tidy(rows)
        checked.append(check_rows(rows, origin=entry.given))
    return _merge_runs(normalise_tidy(pd.concat(checked, ignore_index=True)))


def _classify_file(path: Path) -> _Found:
    given = path.as_posix()
    if path.name == "run.json":
        return _Found("run", path.parent, path.parent.resolve().name, path.parent.as_posix())
    try:
        header = pd.read_csv(path, nrows=0).columns
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError,
            UnicodeDecodeError) as exc:
        raise ReadError(f"cannot read {path}: {exc}") from exc
    if {"metric", "value"} <= set(header):
        return _Found("tidy", path, "", given)
    if "case" in header:
        if path.stem == "cases":
            return _Found("cases", path, path.parent.resolve().name, path.parent.as_posix(),
                          auto_method=True)
        return _Found("cases", path, path.stem, given, auto_method=True)
    raise ReadError(f"{path}: expected a tidy CSV (metric, value) or a per-case CSV (case), "
                    f"got columns {list(header)}")


def _relative_id(path: Path, root: Path) -> str:
    relative = path.relative_to(root).as_posix()
    return root.resolve().name if relative == "." else relative


def _find_in_directory(path: Path) -> list[_Found]:
    if (path / "run.json").is_file():
        run_dirs = [path]
    else:
        run_dirs = sorted(p.parent for p in path.rglob("run.json"))
    found = [_Found("run", d, _relative_id(d, path), d.as_posix()) for d in run_dirs]
    for cases in sorted(path.rglob("cases.csv")):
        if not any(run_dir == cases.parent or run_dir in cases.parents for run_dir in run_dirs):
            found.append(_Found("cases", cases, _relative_id(cases.parent, path),
                                cases.parent.as_posix(), auto_method=True))
    return found


def _unique_runs(found: list[_Found]) -> list[_Found]:
    """Drop entries reached twice; give runs whose identifiers collide their full paths."""
    unique: dict[Path, _Found] = {}
    for entry in found:
        unique.setdefault(entry.path.resolve(), entry)
    entries = list(unique.values())
    by_id: dict[str, set[Path]] = {}
    for entry in entries:
        if entry.kind != "tidy":
            by_id.setdefault(entry.run_id, set()).add(entry.path.resolve())
    for entry in entries:
        if entry.kind != "tidy" and len(by_id[entry.run_id]) > 1:
            entry.run_id = entry.given
    return entries


def _read_found(entry: _Found, *, include_running: bool) -> pd.DataFrame:
    if entry.kind == "tidy":
        return read_tidy_csv(entry.path)
    if entry.kind == "run":
        rows = _run_rows(entry.path, include_running=include_running, run_id=entry.run_id)
        if rows.empty:
            warnings.warn(f"skipped {entry.path}: run is not complete", UserWarning,
                          stacklevel=4)
        return rows
    return _evaluation_rows(entry.path, include_running=include_running, stacklevel=5,
                            run_id=entry.run_id)


def _name_methods_apart(parts: list[tuple[pd.DataFrame, _Found]]) -> None:
    """Evaluation outputs of one dataset whose folders share a name: method = run id."""
    owners: dict[tuple[str, str], set[str]] = {}
    for rows, entry in parts:
        if entry.auto_method and not rows.empty:
            for dataset, method in set(zip(rows["dataset"], rows["method"])):
                owners.setdefault((dataset, method), set()).add(entry.run_id)
    for i, (rows, entry) in enumerate(parts):
        if not entry.auto_method or rows.empty:
            continue
        clash = [len(owners[(d, m)]) > 1 for d, m in zip(rows["dataset"], rows["method"])]
        if any(clash):
            parts[i] = (rows.assign(method=entry.run_id), entry)


def _where(row: Mapping[str, Any]) -> str:
    parts = []
    if row.get("run"):
        parts.append(f"run {row['run']!r}")
    elif row.get("source"):
        parts.append(f"entry {row['source']!r}")
    parts.append(f"{row.get('method')!r} on {row.get('dataset')!r}" if row.get("dataset")
                 else repr(row.get("method")))
    if row.get("postprocessing"):
        parts.append(f"{row['postprocessing']} post-processing")
    for key in ("fold", "seed"):
        number = row.get(key)
        if number is not None and not (isinstance(number, float) and np.isnan(number)):
            parts.append(f"{key} {number:g}")
    if row.get("case"):
        parts.append(f"case {row['case']!r}")
    return ", ".join(parts)


def _range_problem(metric: str, value: float) -> str | None:
    """Why ``value`` cannot be a figure of ``metric``; None if it can."""
    if np.isnan(value):
        return ("NaN: a figure that could not be computed is refused, not averaged (leave it "
                "out, or empty, if the metric was not measured)")
    if not np.isfinite(value):
        return "not finite"
    info = METRICS.get(metric)
    if info is not None and not info.in_range(value):
        text = f"outside the range of {info.label}, [{info.low:g}, {info.high:g}]"
        if info.percent and 1.0 < value <= 100.0:
            text += "; fractions are stored in [0, 1], not in percent (divide by 100)"
        return text
    if metric in RUNTIME_METRICS and value < 0:
        return "negative"
    return None


_IDENTITY = ("source", "run", *(c for c in CONFIG_COLUMNS if c != "source"), "fold", "seed",
             "case", "metric")


def check_rows(rows: pd.DataFrame, *, origin: str = "") -> pd.DataFrame:
    """Refuse impossible figures and conflicting duplicates of one run; drop exact repeats.

    Parameters
    ----------
    rows : pandas.DataFrame
        Tidy rows (:data:`TIDY_COLUMNS`).
    origin : str
        File or folder the rows come from, named in the messages.

    Returns
    -------
    pandas.DataFrame
        ``rows`` without repeated identical rows of one case.

    Raises
    ------
    ReadError
        If a value is NaN, infinite or outside its metric's range
        (:meth:`topobench.catalog.MetricInfo.in_range`; run timings must be >= 0), or one
        case of one run has two different values of one metric.
    """
    prefix = f"{origin}: " if origin else ""
    if rows.empty:
        return rows
    values = rows["value"].to_numpy(dtype=float)
    metrics = rows["metric"].to_numpy(dtype=object)
    bad = ~np.isfinite(values)
    for name, info in METRICS.items():
        selected = metrics == name
        if selected.any():
            v = values[selected]
            bad[selected] |= (v < info.low) | (v > info.high)
    bad |= np.isin(metrics, RUNTIME_METRICS) & (values < 0)
    if bad.any():
        first = int(np.argmax(bad))
        row = rows.iloc[first].to_dict()
        more = int(bad.sum()) - 1
        tail = f" ({more} more such figure{'s' if more > 1 else ''})" if more else ""
        raise ReadError(f"{prefix}{_where(row)}: {row['metric']} = {row['value']:g} is "
                        f"{_range_problem(str(row['metric']), float(row['value']))}{tail}")
    keys = list(_IDENTITY)
    repeated = rows.duplicated(keys, keep=False)
    if not repeated.any():
        return rows
    spread = rows[repeated].groupby(keys, dropna=False, sort=False)["value"].agg(["min", "max"])
    conflict = spread[spread["max"] != spread["min"]]
    if not conflict.empty:
        key = dict(zip(keys, conflict.index[0]))
        low, high = conflict.iloc[0]
        raise ReadError(f"{prefix}{_where(key)}: listed more than once with different "
                        f"{key['metric']} values ({low:g} and {high:g}); duplicate case rows "
                        "are refused, not averaged")
    return rows.drop_duplicates(keys).reset_index(drop=True)


def _merge_runs(tidy: pd.DataFrame) -> pd.DataFrame:
    """Keep one copy of figures several runs hold identically; refuse any other overlap.

    Runs overlap when they hold one configuration, fold, seed and metric: runs that differ only
    in their seed are distinct runs of that configuration and are all kept.
    """
    keys = [*CONFIG_COLUMNS, "fold", "seed", "metric"]
    n_runs = tidy.groupby(keys, dropna=False, sort=False)["run"].transform("nunique")
    shared = n_runs > 1
    if not shared.any():
        return tidy
    drop = np.zeros(len(tidy), bool)
    for _, group in tidy[shared].groupby(keys, dropna=False, sort=False):
        table = group.set_index(["case", "run"])["value"].unstack("run")
        runs = list(dict.fromkeys(group["run"]))
        first = table[runs[0]]
        for other in runs[1:]:
            missing = table.index[first.isna() != table[other].isna()]
            differs = table.index[(first - table[other]).abs() > 1e-12]
            if len(missing) or len(differs):
                row = group.iloc[0].to_dict()
                row.update(run="", source=row["source"], case="")
                what = (f"differ on case {differs[0]!r} ({first[differs[0]]:g} and "
                        f"{table[other][differs[0]]:g})" if len(differs) else
                        f"hold different cases (e.g. {missing[0]!r})")
                raise ReadError(
                    f"{_where(row)}: runs {runs[0]!r} and {other!r} both hold {row['metric']} "
                    f"for this configuration, fold and seed but {what}; rows of different "
                    "runs of one seed are never averaged: read one of them, give each its own "
                    "seed, or add each to a leaderboard under its own entry name "
                    "(leaderboard add --name)")
        drop[group.index[group["run"] != runs[0]]] = True
    return tidy[~drop].reset_index(drop=True)


def _evaluation_rows(path: Path, *, include_running: bool, stacklevel: int,
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

"""Checks of tidy rows: impossible figures, conflicting duplicates, runs that overlap.

:func:`check_rows` refuses figures outside their metric's range and one case listed twice with
different values; :func:`merge_runs` keeps one copy of figures several runs hold identically
and refuses any other overlap of runs of one configuration, fold and seed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from topobench.catalog import METRICS
from topobench.errors import ReadError
from topobench.results.tidy import CONFIG_COLUMNS, PRETRAINED_METHOD, RUNTIME_METRICS


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


def merge_runs(tidy: pd.DataFrame) -> pd.DataFrame:
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


def merge_shared_pretraining(tidy: pd.DataFrame) -> pd.DataFrame:
    """Count once the pretrained model's figures that runs of several seeds share.

    Fine-tuning runs of several seeds often start from one pretrained model (``pretrained_from``):
    their nnU-Net rows are the same figures under different seeds. Per configuration and
    fold, a seed whose nnU-Net figures (every metric of every case) equal those of an earlier
    seed is dropped, so that the nnU-Net cell does not count one model as several seeds.
    Pretrained models of different seeds differ in their figures and are all kept.
    """
    pre = tidy[(tidy["method"] == PRETRAINED_METHOD) & (tidy["case"] != "")]
    if pre.empty or pre["seed"].nunique(dropna=False) < 2:
        return tidy
    drop = np.zeros(len(tidy), bool)
    for _, group in pre.groupby([*CONFIG_COLUMNS, "fold"], dropna=False, sort=False):
        kept: list[pd.Series] = []
        for _, rows in group.groupby(group["seed"].fillna(-1.0), sort=False):
            figures = rows.set_index(["metric", "case"])["value"].sort_index()
            if any(figures.index.equals(k.index) and np.allclose(figures, k, rtol=0, atol=1e-12)
                   for k in kept):
                drop[rows.index] = True
            else:
                kept.append(figures)
    return tidy[~drop].reset_index(drop=True)

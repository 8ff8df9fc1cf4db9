"""Table cells from the tidy table: mean over cases, then over seeds, then over folds.

Order of reduction: for each configuration, metric, fold and seed (one run), the figure is first
averaged over the run's cases; the fold's figure is the mean of its seeds' run means; the cell
value is the mean of the fold figures. With one seed per fold this is today's mean over cases,
then over folds, and with one fold (and one seed) the plain mean over cases. Every seed of a fold
weighs the same whatever its number of cases, and every fold the same whatever its number of
seeds.

:func:`load_results` has already refused conflicting duplicates (same configuration, fold and
seed) and kept one copy of figures several runs hold identically (the same pretrained model read
from several fine-tuning runs); a tidy table built by hand that still repeats a (fold, seed, case)
has it averaged first, so that it counts once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from topobench.results.tidy import CONFIG_COLUMNS

CELL_KEYS: tuple[str, ...] = (*CONFIG_COLUMNS, "metric")
#: Columns of :func:`aggregate_cells`' result besides :data:`CELL_KEYS`.
CELL_STATISTICS: tuple[str, ...] = (
    "mean", "std", "fold_std", "seed_std", "n", "n_folds", "n_seeds", "decimals",
)


def _sample_std(values: pd.Series) -> float:
    return values.std(ddof=1) if len(values) > 1 else np.nan


def aggregate_cells(tidy: pd.DataFrame) -> pd.DataFrame:
    """Reduce a tidy table to one row per configuration and metric.

    Parameters
    ----------
    tidy : pandas.DataFrame
        Rows as from :func:`topobench.results.load_results`.

    Returns
    -------
    pandas.DataFrame
        :data:`CELL_KEYS` plus ``mean`` (mean over folds of the mean over seeds of the mean over
        each run's cases), ``std`` (sample std of the per-case values, pooled over folds and
        seeds), ``fold_std`` (sample std of the fold figures; NaN with one fold), ``seed_std``
        (sample std over seeds of each seed's mean over folds of its run means; NaN with one
        seed), ``n`` (number of (fold, seed, case) values; NaN for published, already averaged
        figures), ``n_folds``, ``n_seeds`` (distinct seeds; a missing seed counts as one) and
        ``decimals`` (printed decimals when the source states them, else NaN). Units are those
        of the tidy table.
    """
    keys = list(CELL_KEYS)
    if tidy.empty:
        return pd.DataFrame(columns=[*keys, *CELL_STATISTICS])
    frame = tidy.assign(seed=tidy["seed"].fillna(-1.0), fold=tidy["fold"].fillna(-1.0))
    per_case = frame.groupby([*keys, "fold", "seed", "case"], dropna=False, sort=False).agg(
        value=("value", "mean"), decimals=("decimals", "max")
    ).reset_index()
    per_run = per_case.groupby([*keys, "fold", "seed"], dropna=False, sort=False).agg(
        run_mean=("value", "mean"), decimals=("decimals", "max")
    ).reset_index()
    per_fold = per_run.groupby([*keys, "fold"], dropna=False, sort=False).agg(
        fold_mean=("run_mean", "mean"), decimals=("decimals", "max")
    ).reset_index()
    per_seed = per_run.groupby([*keys, "seed"], dropna=False, sort=False).agg(
        seed_mean=("run_mean", "mean")
    ).reset_index()
    cells = per_fold.groupby(keys, dropna=False, sort=False).agg(
        mean=("fold_mean", "mean"),
        fold_std=("fold_mean", _sample_std),
        n_folds=("fold_mean", "size"),
        decimals=("decimals", "max"),
    )
    seeds = per_seed.groupby(keys, dropna=False, sort=False).agg(
        seed_std=("seed_mean", _sample_std), n_seeds=("seed_mean", "size"))
    spread = per_case[per_case["case"] != ""].groupby(keys, dropna=False, sort=False).agg(
        std=("value", _sample_std),
        n=("value", "size"),
    )
    cells = cells.join(seeds, how="left").join(spread, how="left").reset_index()
    cells["n"] = cells["n"].astype(float)
    return cells[[*keys, *CELL_STATISTICS]]


def case_means(tidy: pd.DataFrame) -> pd.DataFrame:
    """Per-case values averaged over folds and seeds, for paired comparisons.

    A case is the unit of pairing: a method's and the baseline's figures of one case are each
    averaged over their seeds (and folds) first, so that each case is one pair whatever the
    number of seeds (pairing every (case, seed) would count a case once per seed and overstate
    the significance).

    Returns
    -------
    pandas.DataFrame
        :data:`CELL_KEYS` plus ``case`` and ``value``; run-level figures (no case) are left out.
    """
    with_case = tidy[tidy["case"] != ""]
    return (
        with_case.groupby([*CELL_KEYS, "case"], dropna=False, sort=False)["value"]
        .mean()
        .reset_index()
    )

"""Table cells from the tidy table: mean over cases, then over folds.

Order of reduction: for each configuration, metric and fold, the figure is first averaged over
the fold's cases; the cell value is then the mean of those fold means. With one fold (or the
same cases in every fold) this is the plain mean over cases. :func:`load_results` has already
refused conflicting duplicates and kept one copy of figures several runs hold identically (the
same pretrained model read from several fine-tuning runs); a tidy table built by hand that
still repeats a (fold, case) has it averaged first, so that it counts once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from topobench.results.records import CONFIG_COLUMNS

CELL_KEYS: tuple[str, ...] = (*CONFIG_COLUMNS, "metric")
#: Columns of :func:`aggregate_cells`' result besides :data:`CELL_KEYS`.
CELL_STATISTICS: tuple[str, ...] = ("mean", "std", "fold_std", "n", "n_folds", "decimals")


def aggregate_cells(tidy: pd.DataFrame) -> pd.DataFrame:
    """Reduce a tidy table to one row per configuration and metric.

    Parameters
    ----------
    tidy : pandas.DataFrame
        Rows as from :func:`topobench.results.load_results`.

    Returns
    -------
    pandas.DataFrame
        :data:`CELL_KEYS` plus ``mean`` (mean over folds of the mean over cases), ``std``
        (sample std of the per-case values, pooled over folds), ``fold_std`` (sample std of the
        fold means; NaN with one fold), ``n`` (number of (fold, case) values; NaN for
        published, already averaged figures), ``n_folds`` and ``decimals`` (printed decimals
        when the source states them, else NaN). Units are those of the tidy table.
    """
    keys = list(CELL_KEYS)
    if tidy.empty:
        return pd.DataFrame(columns=[*keys, *CELL_STATISTICS])
    per_case = tidy.groupby([*keys, "fold", "case"], dropna=False, sort=False).agg(
        value=("value", "mean"), decimals=("decimals", "max")
    ).reset_index()
    per_case["has_case"] = per_case["case"] != ""
    per_fold = per_case.groupby([*keys, "fold"], dropna=False, sort=False).agg(
        fold_mean=("value", "mean"), decimals=("decimals", "max")
    ).reset_index()
    cells = per_fold.groupby(keys, dropna=False, sort=False).agg(
        mean=("fold_mean", "mean"),
        fold_std=("fold_mean", lambda s: s.std(ddof=1) if len(s) > 1 else np.nan),
        n_folds=("fold_mean", "size"),
        decimals=("decimals", "max"),
    )
    spread = per_case[per_case["has_case"]].groupby(keys, dropna=False, sort=False).agg(
        std=("value", lambda s: s.std(ddof=1) if len(s) > 1 else np.nan),
        n=("value", "size"),
    )
    cells = cells.join(spread, how="left").reset_index()
    cells["n"] = cells["n"].astype(float)
    return cells[[*keys, *CELL_STATISTICS]]


def case_means(tidy: pd.DataFrame) -> pd.DataFrame:
    """Per-case values averaged over folds, for paired comparisons.

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

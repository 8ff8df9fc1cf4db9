"""Table cells from the tidy table: the shared aggregates, one cell's figure, its comparison.

:func:`prepare` aggregates a tidy table once for every table built from it
(:func:`topobench.results.aggregate_cells`, per-case figures); :func:`make_cell` turns an
aggregated figure into a printed :class:`~topobench.results.table_model.Cell` and
:func:`mark_best` marks the best figure per dataset, metric configuration and column.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from topobench.results.aggregate import aggregate_cells, case_means
from topobench.results.selection import effective_loss, key_of, rank
from topobench.results.stats import PairedComparison, paired_comparison
from topobench.results.table_model import (
    DATASET_ORDER,
    RESULT_COLUMNS,
    Cell,
    Column,
    TableRow,
)
from topobench.results.tidy import CONFIG_COLUMNS


@dataclass
class Prepared:
    """Aggregates shared by the tables built from one tidy table."""

    tidy: pd.DataFrame
    cells: pd.DataFrame
    cell_index: dict[tuple[Any, ...], pd.Series]
    configs: pd.DataFrame
    case_index: dict[tuple[Any, ...], pd.Series]
    fold_cases: dict[tuple[Any, ...], pd.DataFrame]
    protocols: dict[tuple[Any, ...], str]
    dataset_rank: dict[str, int]
    source_rank: dict[str, int]
    comparisons: dict[tuple[Any, ...], PairedComparison | None]


def prepare(tidy: pd.DataFrame, datasets: Sequence[str] | None) -> Prepared:
    """Aggregate ``tidy`` (only ``datasets`` when given) once for all tables built from it.

    Cells by key (configuration and metric), candidate configurations with their clDice and
    effective loss, per-case figures averaged over folds and seeds (for the paired tests),
    per-(fold, seed, case) figures (for figures on a selection of cases) and the metric
    configurations of each configuration.
    """
    if datasets:
        tidy = tidy[tidy["dataset"].isin(list(datasets))]
    metrics = [c.metric for c in RESULT_COLUMNS]
    figures = tidy[tidy["metric"].isin(metrics)]
    cells = aggregate_cells(figures)
    keys = [*CONFIG_COLUMNS, "metric"]
    cell_index = {
        key_of(values): cells.iloc[i]
        for i, values in enumerate(cells[keys].itertuples(index=False, name=None))
    }
    configs = cells[list(CONFIG_COLUMNS)].drop_duplicates().reset_index(drop=True)
    cldice = cells[cells["metric"] == "cldice"][[*CONFIG_COLUMNS, "mean"]]
    configs = configs.merge(cldice.rename(columns={"mean": "cldice_mean"}), how="left",
                            on=list(CONFIG_COLUMNS))
    configs["loss_"] = effective_loss(configs)
    per_case = case_means(figures)
    case_index = {
        key_of(k): g.set_index("case")["value"]
        for k, g in per_case.groupby(keys, dropna=False, sort=False)
    } if not per_case.empty else {}
    with_case = figures[figures["case"] != ""]
    fold_cases = {
        key_of(k): g[["fold", "seed", "case", "value", "decimals"]].reset_index(drop=True)
        for k, g in with_case.groupby([*keys, "fold", "seed", "case"], dropna=False,
                                      sort=False).agg(
            value=("value", "mean"), decimals=("decimals", "max")
        ).reset_index().groupby(keys, dropna=False, sort=False)
    } if not with_case.empty else {}
    protocols = {
        key_of(k): " | ".join(sorted(set(g) - {""}))
        for k, g in tidy.groupby(list(CONFIG_COLUMNS), dropna=False, sort=False)["protocol"]
    } if not tidy.empty else {}
    return Prepared(
        tidy=tidy, cells=cells, cell_index=cell_index, configs=configs, case_index=case_index,
        fold_cases=fold_cases, protocols=protocols,
        dataset_rank=rank(DATASET_ORDER, tidy["dataset"]),
        source_rank=rank((), tidy["source"]), comparisons={},
    )


def case_statistics(frame: pd.DataFrame) -> pd.Series:
    """A cell from per-(fold, seed, case) figures, as :func:`aggregate_cells` computes it."""
    values = frame["value"]
    fold = frame["fold"].fillna(-1.0)
    seed = frame["seed"].fillna(-1.0)
    run_means = values.groupby([fold, seed], sort=False).mean()
    fold_means = run_means.groupby(level=0, sort=False).mean()
    seed_means = run_means.groupby(level=1, sort=False).mean()
    return pd.Series({
        "mean": fold_means.mean() if len(values) else np.nan,
        "std": values.std(ddof=1) if len(values) > 1 else np.nan,
        "fold_std": fold_means.std(ddof=1) if len(fold_means) > 1 else np.nan,
        "seed_std": seed_means.std(ddof=1) if len(seed_means) > 1 else np.nan,
        "n": float(len(values)),
        "n_folds": len(fold_means),
        "n_seeds": len(seed_means),
        "decimals": frame["decimals"].max(),
    })


def cached_comparison(prepared: Prepared, config_key: tuple[Any, ...],
                       base: tuple[Any, ...], column: Column,
                       bootstrap: tuple[float, int, int],
                       frames: dict[tuple[Any, ...], pd.DataFrame] | None = None,
                       number: int = 0) -> PairedComparison | None:
    def per_case(key: tuple[Any, ...]) -> pd.Series | None:
        frame = (frames or {}).get((*key, column.metric))
        if frame is None:
            return prepared.case_index.get((*key, column.metric))
        return frame.groupby("case", sort=False)["value"].mean()

    key = (number, config_key, base, column.metric, bootstrap)
    if key not in prepared.comparisons:
        prepared.comparisons[key] = _compare(per_case(config_key), per_case(base),
                                             column.scale, *bootstrap)
    return prepared.comparisons[key]


def _compare(values: pd.Series | None, base: pd.Series | None, scale: float,
             confidence: float, n_resamples: int, seed: int) -> PairedComparison | None:
    if values is None or base is None:
        return None
    common = values.index.intersection(base.index)
    if len(common) == 0:
        return None
    result = paired_comparison(values.loc[common].to_numpy(), base.loc[common].to_numpy(),
                               confidence=confidence, n_resamples=n_resamples, seed=seed)
    return result.scaled(scale)


def make_cell(cell: pd.Series | None, column: Column,
          comparison: PairedComparison | None) -> Cell:
    if cell is None or pd.isna(cell["mean"]):
        return Cell(value=None, decimals=column.decimals, unit=column.unit)
    decimals = cell["decimals"]
    return Cell(
        value=float(cell["mean"]) * column.scale,
        decimals=column.decimals if pd.isna(decimals) else int(decimals),
        unit=column.unit,
        std=None if pd.isna(cell["std"]) else float(cell["std"]) * column.scale,
        fold_std=None if pd.isna(cell["fold_std"]) else float(cell["fold_std"]) * column.scale,
        seed_std=None if pd.isna(cell["seed_std"]) else float(cell["seed_std"]) * column.scale,
        n=None if pd.isna(cell["n"]) else int(cell["n"]),
        n_folds=int(cell["n_folds"]),
        n_seeds=int(cell["n_seeds"]),
        comparison=comparison,
    )


def mark_best(rows: list[TableRow], columns: Sequence[Column],
               incomparable: set[tuple[Any, ...]] | None = None) -> list[TableRow]:
    """Mark the best printed value per dataset, metric configuration and column (ties all
    marked); none in the ``(dataset, protocol, metric)`` groups of ``incomparable``."""
    out = list(rows)

    def protocol(row: TableRow) -> str:
        return str(dict(row.details).get("protocol") or "")

    for dataset, proto in dict.fromkeys((r.dataset, protocol(r)) for r in rows):
        members = [i for i, r in enumerate(rows) if r.dataset == dataset and protocol(r) == proto]
        for j, column in enumerate(columns):
            if column.higher_is_better is None:
                continue
            if (dataset, proto, column.metric) in (incomparable or set()):
                continue
            printed = {i: float(rows[i].cells[j].text()) for i in members
                       if rows[i].cells[j].value is not None}
            if not printed:
                continue
            pick = max if column.higher_is_better else min
            best = pick(printed.values())
            for i, value in printed.items():
                if value == best:
                    cells = list(out[i].cells)
                    cells[j] = replace(cells[j], best=True)
                    out[i] = replace(out[i], cells=tuple(cells))
    return out


def runtime_decimals(value: float) -> int:
    """Whole seconds/minutes as the paper prints them, but two significant digits below 10."""
    if value >= 10 or value == 0:
        return 0
    return max(0, 1 - math.floor(math.log10(abs(value))))

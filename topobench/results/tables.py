"""The paper's Tables 1-7 built from a tidy results table.

Each table is a selection of configurations (rows) and metrics (columns) from the aggregated
cells, in the layout of Schacht et al. 2025. The selection rules follow the paper:

1. Comparison per dataset: every method except Thin CLoss, post-processed, at the shortest
   fine-tuning length; clDice and compound clDice at the weight with the highest clDice
   (the paper's selection, Sec. A.6), every weight of the other methods.
2. Post-processing: every configuration that has results both without and with it.
3. Fine-tuning length: every configuration evaluated at two or more fine-tuning lengths.
4. Critical pixel mask: Dice & CE, compound clDice, Thin CLoss and CLoss (all with the same
   pixel loss), on the datasets that have Thin CLoss results.
5. Pixel-wise loss: clDice against compound clDice at the same weight.
6. Compound clDice optimisation: datasets with a sweep of three or more compound clDice
   weights (pass ``datasets`` for the paper's example alone).
7. Runtime: seconds per fine-tuning epoch and minutes per fine-tuning, per loss.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence

import pandas as pd

from topobench.catalog import LOSSES
from topobench.errors import InvalidParameterError
from topobench.results.cells import (
    Prepared,
    cached_comparison,
    case_statistics,
    make_cell,
    mark_best,
    prepare,
    runtime_decimals,
)
from topobench.results.selection import (
    SELECTORS,
    baseline_config,
    case_selection,
    key_of,
    none_if_nan,
    rank,
    sort_configurations,
)
from topobench.results.table_model import (
    CASE_SELECTIONS,
    METHOD_ORDER,
    RESULT_COLUMNS,
    RUNTIME_COLUMNS,
    TABLE_NUMBERS,
    CaseSelection,
    Cell,
    Column,
    ResultTable,
    TableRow,
)
from topobench.results.tidy import CONFIG_COLUMNS, PRETRAINED_METHOD, RUNTIME_METRICS

__all__ = [
    "CASE_SELECTIONS",
    "TABLE_NUMBERS",
    "Cell",
    "Column",
    "ResultTable",
    "TableRow",
    "build_table",
    "build_tables",
]

_GROUP_LABELS: dict[int, str | None] = {
    1: None,
    2: "Post-Processing",
    3: "Epochs",
    4: "Critical pixel mask",
    5: None,
    6: None,
    7: None,
}
_TITLES: dict[int, str] = {
    1: "Quantitative results.",
    2: "Post-Processing. Example for {datasets}.",
    3: "Fine-tuning length. Example for {datasets}.",
    4: "Critical pixel mask. Example for {datasets}.",
    5: "Pixel-wise loss: clDice (Dice loss) against compound clDice (Dice and CE loss) at the "
    "same weight.",
    6: "Compound clDice optimization. Example for {datasets}.",
    7: "Runtime. Example for {datasets}.",
}


def build_table(
    tidy: pd.DataFrame,
    number: int,
    *,
    baseline: str | None = LOSSES["dice_ce"].display,
    datasets: Sequence[str] | None = None,
    significance: float = 0.05,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
    cases: CaseSelection = "shared",
) -> ResultTable:
    """Build the paper's table ``number`` (1-7) from a tidy results table.

    Parameters
    ----------
    tidy : pandas.DataFrame
        Rows as from :func:`topobench.results.load_results`.
    number : int
        Table number, 1-7 (see the module docstring for each table's rows).
    baseline : str or None
        Method (display name) each row is compared with, case by case, in its dataset; None
        for no comparison. Comparisons need per-case figures on both sides.
    datasets : sequence of str, optional
        Only these datasets (default: every dataset that has the table's data).
    significance : float
        Wilcoxon p-value below which a figure gets the marker.
    confidence, n_resamples, seed
        Bootstrap options of :func:`topobench.results.paired_comparison`.
    cases : {"shared", "all"}
        Rows of one dataset evaluated on different cases: ``"shared"`` computes every figure
        of that dataset on the cases all its rows have (the table's ``notes`` and caption name
        what was left out); ``"all"`` keeps each row's own cases, says so, and marks no best
        figure in the columns concerned.

    Returns
    -------
    ResultTable
        Figures in printed units; the best value per dataset, metric configuration and column
        is marked ``best``. Rows with different metric configurations (protocol, threshold)
        are separate rows, never merged, compared or marked against each other.

    Raises
    ------
    InvalidParameterError
        If ``number`` is not 1-7, ``cases`` is unknown, or with ``cases="shared"`` the rows of
        a dataset share no case.
    """
    return build_tables(tidy, (number,), baseline=baseline, datasets=datasets,
                        significance=significance, confidence=confidence,
                        n_resamples=n_resamples, seed=seed, keep_empty=True, cases=cases)[0]


def build_tables(
    tidy: pd.DataFrame,
    numbers: Iterable[int] = TABLE_NUMBERS,
    *,
    baseline: str | None = LOSSES["dice_ce"].display,
    datasets: Sequence[str] | None = None,
    significance: float = 0.05,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
    keep_empty: bool = False,
    cases: CaseSelection = "shared",
) -> list[ResultTable]:
    """Build several tables at once (options as :func:`build_table`), sharing the aggregation.

    Tables without rows are left out unless ``keep_empty``.
    """
    numbers = list(numbers)
    for number in numbers:
        if number not in TABLE_NUMBERS:
            raise InvalidParameterError(f"expected a table number 1-7, got {number!r}")
    if cases not in CASE_SELECTIONS:
        raise InvalidParameterError(f"expected cases 'shared' or 'all', got {cases!r}")
    prepared = prepare(tidy, datasets)
    if baseline and prepared.case_index and baseline not in set(prepared.configs["method"]):
        methods = ", ".join(sorted(set(prepared.configs["method"])))
        warnings.warn(f"baseline {baseline!r} is not among the methods ({methods}); "
                      "no paired comparisons", UserWarning, stacklevel=2)
    _warn_mixed_protocols(prepared.tidy)
    tables = []
    for number in numbers:
        if number == 7:
            table = _build_runtime(prepared)
        else:
            table = _build_results_table(prepared, number, baseline, significance,
                                         (confidence, n_resamples, seed), cases)
        if table.rows or keep_empty:
            tables.append(table)
    return tables


def _warn_mixed_protocols(tidy: pd.DataFrame) -> None:
    """Warn when one source evaluated one dataset with different metric configurations."""
    figures = tidy[(tidy["protocol"] != "") & tidy["metric"].isin([c.metric for c in
                                                                    RESULT_COLUMNS])]
    counts = figures.groupby(["source", "dataset"])["protocol"].nunique()
    for (source, dataset), n in counts.items():
        if n > 1:
            where = f"{dataset} ({source})" if source else dataset
            warnings.warn(f"{where}: results were computed with {n} different metric "
                          "configurations; their rows are kept apart and compared only within "
                          "one configuration", UserWarning, stacklevel=3)


def _build_results_table(prepared: Prepared, number: int, baseline: str | None,
                         significance: float, bootstrap: tuple[float, int, int],
                         cases: CaseSelection = "shared") -> ResultTable:
    columns = RESULT_COLUMNS
    selected = (SELECTORS[number](prepared.configs) if not prepared.configs.empty
                else prepared.configs.assign(group=""))
    selected = sort_configurations(selected, prepared.dataset_rank, prepared.source_rank)
    frames, notes, incomparable = case_selection(prepared.fold_cases, selected, columns, cases)
    rows = []
    for _, config in selected.iterrows():
        config_key = key_of(config[list(CONFIG_COLUMNS)])
        base = baseline_config(selected, config, baseline) if baseline else None
        row_cells = []
        for column in columns:
            key = (*config_key, column.metric)
            frame = frames.get(key)
            cell = case_statistics(frame) if frame is not None else prepared.cell_index.get(key)
            comparison = None
            if base is not None and base != config_key:
                comparison = cached_comparison(prepared, config_key, base, column, bootstrap,
                                                frames, number)
            row_cells.append(make_cell(cell, column, comparison))
        details = [(c, none_if_nan(config[c]))
                   for c in ("loss", "alpha", "critical_mask", "pretrain_epochs",
                             "finetune_epochs", "postprocessing")]
        details.append(("protocol", prepared.protocols.get(config_key, "")))
        details.append(("note", " ".join(notes.get(config["dataset"], ()))))
        rows.append(
            TableRow(
                dataset=config["dataset"],
                source=config["source"],
                method=config["method"],
                gamma=none_if_nan(config["gamma"]),
                group=config["group"],
                cells=tuple(row_cells),
                details=tuple(details),
            )
        )
    rows = mark_best(rows, columns, incomparable)
    configurations = tuple(dict.fromkeys(str(dict(r.details).get("protocol") or "")
                                         for r in rows))
    all_notes = tuple(dict.fromkeys(n for d in dict.fromkeys(r.dataset for r in rows)
                                    for n in notes.get(d, ())))
    mixed = any(len({dict(r.details).get("protocol") for r in rows if r.dataset == d}) > 1
                for d in {r.dataset for r in rows})
    if mixed:
        all_notes += ("Rows with different metric configurations ([1], [2], ...) are compared "
                      "only within one configuration.",)
    return ResultTable(
        number=number,
        caption=" ".join([_caption(number, rows, baseline, significance), *all_notes]),
        group_label=_GROUP_LABELS[number],
        columns=columns,
        rows=tuple(rows),
        show_dataset=number in (1, 5) or len({r.dataset for r in rows}) > 1,
        show_source=len({r.source for r in rows}) > 1,
        show_gamma=True,
        repeat_gamma=number not in (2, 3),
        baseline=baseline,
        significance=significance,
        configurations=configurations if mixed else (),
        notes=all_notes,
    )


def _caption(number: int, rows: Sequence[TableRow], baseline: str | None,
             significance: float) -> str:
    datasets = ", ".join(dict.fromkeys(r.dataset for r in rows)) or "n/a"
    parts = [_TITLES[number].format(datasets=datasets)]
    fine_tuned = [dict(r.details).get("postprocessing") for r in rows
                  if r.method != PRETRAINED_METHOD]
    if number in (3, 4, 5, 6) and fine_tuned and all(p == "with" for p in fine_tuned):
        parts.append("All results are post-processed.")
    if number == 4:
        parts.append("All methods differ only in the critical pixel mask.")
    if number != 7 and any(c.n for r in rows for c in r.cells):
        several_seeds = any((c.n_seeds or 0) > 1 for r in rows for c in r.cells)
        parts.append("Mean over cases, then over seeds, then over folds." if several_seeds
                     else "Mean over cases, then over folds.")
    if any(c.comparison is not None for r in rows for c in r.cells):
        parts.append(
            f"\N{DAGGER}: p < {significance:g}, two-sided Wilcoxon signed-rank test against "
            f"{baseline} over the same cases."
        )
    return " ".join(parts)


def _build_runtime(prepared: Prepared) -> ResultTable:
    columns = RUNTIME_COLUMNS
    dataset_rank, source_rank = prepared.dataset_rank, prepared.source_rank
    runtime = prepared.tidy[prepared.tidy["metric"].isin(RUNTIME_METRICS)]
    grouped = runtime.groupby(["source", "dataset", "method", "metric"], dropna=False,
                              sort=False).agg(value=("value", "mean"),
                                              decimals=("decimals", "max"),
                                              n=("value", "size"))
    configs = grouped.reset_index()[["source", "dataset", "method"]].drop_duplicates()
    method_rank = rank(METHOD_ORDER, sorted(set(configs["method"]) - set(METHOD_ORDER)))
    configs = configs.assign(
        _d=configs["dataset"].map(dataset_rank), _s=configs["source"].map(source_rank),
        _m=configs["method"].map(method_rank),
    ).sort_values(["_d", "_s", "_m"], kind="stable")
    rows = []
    for _, config in configs.iterrows():
        row_cells = []
        for column in columns:
            key = (config["source"], config["dataset"], config["method"], column.metric)
            if key in grouped.index:
                hit = grouped.loc[key]
                decimals = (runtime_decimals(float(hit["value"])) if pd.isna(hit["decimals"])
                            else int(hit["decimals"]))
                row_cells.append(Cell(value=float(hit["value"]), decimals=decimals,
                                      unit=column.unit, n=int(hit["n"])))
            else:
                row_cells.append(Cell(value=None, decimals=column.decimals, unit=column.unit))
        rows.append(TableRow(dataset=config["dataset"], source=config["source"],
                             method=config["method"], gamma=None, group="",
                             cells=tuple(row_cells)))
    devices = sorted(set(runtime["device"]) - {""})
    caption = _TITLES[7].format(datasets=", ".join(dict.fromkeys(r.dataset for r in rows))
                                or "n/a")
    caption += " Fine-tuning: seconds per epoch and minutes per training."
    if devices:
        caption += " Hardware: " + ", ".join(devices) + "."
    return ResultTable(
        number=7, caption=caption, group_label=None, columns=columns, rows=tuple(rows),
        show_dataset=len({r.dataset for r in rows}) > 1,
        show_source=len({r.source for r in rows}) > 1,
        show_gamma=False, repeat_gamma=True, baseline=None, significance=0.05,
    )

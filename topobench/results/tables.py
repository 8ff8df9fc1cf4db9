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

import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from topobench.catalog import LOSSES, METRICS
from topobench.errors import InvalidParameterError
from topobench.results.aggregate import aggregate_cells, case_means
from topobench.results.stats import PairedComparison, paired_comparison
from topobench.results.tidy import (
    CONFIG_COLUMNS,
    PRETRAINED_METHOD,
    RUNTIME_METRICS,
)

TABLE_NUMBERS: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7)

#: How rows evaluated on different cases are compared: ``"shared"`` on the cases every row of
#: the dataset has (the others are left out, and the caption says so), ``"all"`` each on its
#: own cases (the caption says so, and those columns get no "best" mark).
CaseSelection = Literal["shared", "all"]
CASE_SELECTIONS: tuple[str, ...] = ("shared", "all")

DATASET_ORDER: tuple[str, ...] = ("Roads", "HRF-Retina", "Vessap", "CLD")
#: Row order of the paper's tables (display names from :data:`topobench.catalog.LOSSES`).
METHOD_ORDER: tuple[str, ...] = (
    PRETRAINED_METHOD,
    *(LOSSES[name].display for name in
      ("dice_ce", "cldice", "compound_cldice", "thin_closs", "closs", "closs_dice")),
)
#: ``make_loss`` name of each display name, for records that do not state the loss.
LOSS_OF_METHOD: dict[str, str] = {info.display: name for name, info in LOSSES.items()}
MASK_LABELS: dict[str, str] = {
    "none": "w/o",
    "skeleton": "Full skeleton",
    "thin": "Skeleton at topological errors",
    "context": "Context at topological errors",
}
POSTPROCESSING_LABELS: dict[str, str] = {"without": "w/o", "with": "with"}


@dataclass(frozen=True)
class Column:
    """One figure column of a table.

    Attributes
    ----------
    metric : str
        Name in the tidy table.
    label : str
        Plain-text header (Markdown, CSV).
    latex : str
        LaTeX header, without the arrow.
    higher_is_better : bool or None
        Direction of the arrow and of the bold "best" mark; None: no arrow, no mark.
    scale : float
        Factor from tidy units to printed units (100 for fractions shown in percent).
    decimals : int
        Printed decimals when the data do not state them.
    unit : str
        Suffix of a printed figure (``"s"``, ``"min"``).
    """

    metric: str
    label: str
    latex: str
    higher_is_better: bool | None
    scale: float = 1.0
    decimals: int = 3
    unit: str = ""


def _metric_column(name: str) -> Column:
    info = METRICS[name]
    return Column(name, info.label, info.latex, info.higher_is_better, info.scale, info.decimals)


#: The paper's metric columns, in its order; labels, scales, directions from the catalog.
RESULT_COLUMNS: tuple[Column, ...] = tuple(
    _metric_column(name) for name in ("dice", "cldice", "e", "e1", "e0", "e0_gt", "ags")
)
RUNTIME_COLUMNS: tuple[Column, ...] = (
    Column("seconds_per_epoch", "Time/epoch", "Time/epoch", None, 1.0, 0, "s"),
    Column("minutes_per_training", "Time/training", "Time/training", None, 1.0, 0, "min"),
)


@dataclass(frozen=True)
class Cell:
    """One figure of a table, in printed units (percent for Dice, clDice, AGS).

    ``value`` is None for a missing figure, which prints as ``"n/a"``.
    """

    value: float | None
    decimals: int
    unit: str = ""
    std: float | None = None
    fold_std: float | None = None
    seed_std: float | None = None
    n: int | None = None
    n_folds: int | None = None
    n_seeds: int | None = None
    comparison: PairedComparison | None = None
    best: bool = False

    def text(self) -> str:
        """The figure as printed, e.g. ``"79.69"``, ``"22s"`` or ``"n/a"``."""
        if self.value is None:
            return "n/a"
        return f"{self.value:.{self.decimals}f}{self.unit}"


@dataclass(frozen=True)
class TableRow:
    """One row: a configuration and its figures (one :class:`Cell` per table column)."""

    dataset: str
    source: str
    method: str
    gamma: float | None
    group: str
    cells: tuple[Cell, ...]
    details: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class ResultTable:
    """A rendered-ready table: caption, layout flags, rows.

    Attributes
    ----------
    number : int
        The paper's table number (1-7).
    caption : str
        Caption text, without the "Table N:" prefix.
    group_label : str or None
        Header of the table's leading column (e.g. ``"Post-Processing"``), if it has one.
    columns : tuple of Column
    rows : tuple of TableRow
    show_dataset, show_source, show_gamma : bool
        Whether the Dataset, Source and Weight columns are printed.
    repeat_gamma : bool
        False where the paper prints the weight only on the first row of a method's block.
    baseline : str or None
        Method every other row is compared with.
    significance : float
        Level below which a Wilcoxon p-value earns the marker.
    configurations : tuple of str
        The metric configurations (:func:`topobench.results.tidy.protocol_key`) of the
        rows, numbered from 1 in this order; rows of different configurations are never
        compared with each other.
    notes : tuple of str
        What the reader must know to read the figures (cases left out, cases that differ
        between rows); also part of the caption.
    """

    number: int
    caption: str
    group_label: str | None
    columns: tuple[Column, ...]
    rows: tuple[TableRow, ...]
    show_dataset: bool
    show_source: bool
    show_gamma: bool
    repeat_gamma: bool
    baseline: str | None
    significance: float
    configurations: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def has_comparisons(self) -> bool:
        """Whether any cell carries a paired comparison."""
        return any(c.comparison is not None for r in self.rows for c in r.cells)


# --------------------------------------------------------------------------------------------
# configuration helpers


def _none_if_nan(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _key(values: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(_none_if_nan(v) for v in values)


def _effective_loss(frame: pd.DataFrame) -> pd.Series:
    by_method = frame["method"].map(LOSS_OF_METHOD).fillna("")
    loss = frame["loss"].where(frame["loss"] != "", by_method)
    return loss.where(frame["method"] != PRETRAINED_METHOD, "pretrained")


def _prefer_postprocessed(cfg: pd.DataFrame) -> pd.DataFrame:
    """Keep the post-processed configurations where a configuration has them."""
    others = [c for c in CONFIG_COLUMNS if c != "postprocessing"]
    has_with = cfg.groupby(others, dropna=False)["postprocessing"].transform(
        lambda s: (s == "with").any()
    )
    return cfg[~has_with.astype(bool) | (cfg["postprocessing"] == "with")]


def _shortest_finetune(cfg: pd.DataFrame) -> pd.DataFrame:
    """Keep, per configuration, its shortest fine-tuning length (the standard 5 % schedule)."""
    others = [c for c in CONFIG_COLUMNS if c != "finetune_epochs"]
    shortest = cfg.groupby(others, dropna=False)["finetune_epochs"].transform("min")
    return cfg[cfg["finetune_epochs"].isna() | (cfg["finetune_epochs"] == shortest)]


def standard_configurations(cfg: pd.DataFrame) -> pd.DataFrame:
    """Keep post-processed results where present, each at its shortest fine-tuning length."""
    return _shortest_finetune(_prefer_postprocessed(cfg))


def _rank(order: Sequence[str], seen: Iterable[str]) -> dict[str, int]:
    ranks = {name: i for i, name in enumerate(order)}
    for name in seen:
        ranks.setdefault(name, len(ranks))
    return ranks


# --------------------------------------------------------------------------------------------
# row selection per table: each returns the selected configurations with a "group" column


def _select_1(cfg: pd.DataFrame) -> pd.DataFrame:
    cfg = standard_configurations(cfg[cfg["loss_"] != "thin_closs"])
    swept = cfg["loss_"].isin(["cldice", "compound_cldice"]) & cfg["cldice_mean"].notna()
    identity = ["source", "dataset", "method", "protocol"]
    best = (cfg[swept].sort_values(["cldice_mean", "gamma"], ascending=[False, True])
            .drop_duplicates(identity).set_index(identity)["gamma"])
    chosen = best.reindex(pd.MultiIndex.from_frame(cfg[identity])).to_numpy()
    gamma = cfg["gamma"].to_numpy()
    same = (gamma == chosen) | (np.isnan(gamma) & pd.isna(chosen))
    return cfg[~swept.to_numpy() | same].assign(group="")


def _select_2(cfg: pd.DataFrame) -> pd.DataFrame:
    cfg = _shortest_finetune(cfg[cfg["postprocessing"].isin(["with", "without"])])
    others = [c for c in CONFIG_COLUMNS if c != "postprocessing"]
    both = cfg.groupby(others, dropna=False)["postprocessing"].transform("nunique") == 2
    cfg = cfg[both]
    return cfg.assign(group=cfg["postprocessing"].map(POSTPROCESSING_LABELS))


def _select_3(cfg: pd.DataFrame) -> pd.DataFrame:
    cfg = _prefer_postprocessed(cfg[cfg["finetune_epochs"].notna()])
    others = [c for c in CONFIG_COLUMNS if c != "finetune_epochs"]
    lengths = cfg.groupby(others, dropna=False)["finetune_epochs"].transform("nunique")
    cfg = cfg[lengths >= 2]
    return cfg.assign(group=cfg["finetune_epochs"].map(lambda v: f"{v:g}"))


def _select_4(cfg: pd.DataFrame) -> pd.DataFrame:
    cfg = standard_configurations(cfg)
    thin = set(cfg.loc[cfg["loss_"] == "thin_closs", "dataset"])
    cfg = cfg[cfg["dataset"].isin(thin)]
    cfg = cfg[cfg["loss_"].isin(["dice_ce", "compound_cldice", "thin_closs", "closs"])]
    mask = cfg["critical_mask"].where(cfg["critical_mask"] != "", "none")
    return cfg.assign(group=mask.map(lambda m: MASK_LABELS.get(m, m)))


def _select_5(cfg: pd.DataFrame) -> pd.DataFrame:
    cfg = standard_configurations(cfg[cfg["loss_"].isin(["cldice", "compound_cldice"])])
    losses = cfg.groupby(["source", "dataset", "gamma", "protocol"],
                         dropna=False)["loss_"].transform(
        "nunique"
    )
    return cfg[losses == 2].assign(group="")


def _select_6(cfg: pd.DataFrame) -> pd.DataFrame:
    cfg = standard_configurations(cfg)
    compound = cfg[cfg["loss_"] == "compound_cldice"]
    swept = compound.groupby(["source", "dataset"])["gamma"].nunique()
    swept = {dataset for (_, dataset), n in swept.items() if n >= 3}
    cfg = cfg[cfg["dataset"].isin(swept)]
    return cfg[cfg["loss_"].isin(["pretrained", "dice_ce", "compound_cldice", "closs"])].assign(
        group=""
    )


_SELECTORS: dict[int, Callable[[pd.DataFrame], pd.DataFrame]] = {
    1: _select_1,
    2: _select_2,
    3: _select_3,
    4: _select_4,
    5: _select_5,
    6: _select_6,
}
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


# --------------------------------------------------------------------------------------------
# building


@dataclass
class _Prepared:
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


def _prepare(tidy: pd.DataFrame, datasets: Sequence[str] | None) -> _Prepared:
    if datasets:
        tidy = tidy[tidy["dataset"].isin(list(datasets))]
    metrics = [c.metric for c in RESULT_COLUMNS]
    figures = tidy[tidy["metric"].isin(metrics)]
    cells = aggregate_cells(figures)
    keys = [*CONFIG_COLUMNS, "metric"]
    cell_index = {
        _key(values): cells.iloc[i]
        for i, values in enumerate(cells[keys].itertuples(index=False, name=None))
    }
    configs = cells[list(CONFIG_COLUMNS)].drop_duplicates().reset_index(drop=True)
    cldice = cells[cells["metric"] == "cldice"][[*CONFIG_COLUMNS, "mean"]]
    configs = configs.merge(cldice.rename(columns={"mean": "cldice_mean"}), how="left",
                            on=list(CONFIG_COLUMNS))
    configs["loss_"] = _effective_loss(configs)
    per_case = case_means(figures)
    case_index = {
        _key(k): g.set_index("case")["value"]
        for k, g in per_case.groupby(keys, dropna=False, sort=False)
    } if not per_case.empty else {}
    with_case = figures[figures["case"] != ""]
    fold_cases = {
        _key(k): g[["fold", "seed", "case", "value", "decimals"]].reset_index(drop=True)
        for k, g in with_case.groupby([*keys, "fold", "seed", "case"], dropna=False,
                                      sort=False).agg(
            value=("value", "mean"), decimals=("decimals", "max")
        ).reset_index().groupby(keys, dropna=False, sort=False)
    } if not with_case.empty else {}
    protocols = {
        _key(k): " | ".join(sorted(set(g) - {""}))
        for k, g in tidy.groupby(list(CONFIG_COLUMNS), dropna=False, sort=False)["protocol"]
    } if not tidy.empty else {}
    return _Prepared(
        tidy=tidy, cells=cells, cell_index=cell_index, configs=configs, case_index=case_index,
        fold_cases=fold_cases, protocols=protocols,
        dataset_rank=_rank(DATASET_ORDER, tidy["dataset"]),
        source_rank=_rank((), tidy["source"]), comparisons={},
    )


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
    prepared = _prepare(tidy, datasets)
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


def _build_results_table(prepared: _Prepared, number: int, baseline: str | None,
                         significance: float, bootstrap: tuple[float, int, int],
                         cases: CaseSelection = "shared") -> ResultTable:
    columns = RESULT_COLUMNS
    selected = (_SELECTORS[number](prepared.configs) if not prepared.configs.empty
                else prepared.configs.assign(group=""))
    selected = _sort(selected, prepared.dataset_rank, prepared.source_rank)
    frames, notes, incomparable = _case_selection(prepared, selected, columns, cases)
    rows = []
    for _, config in selected.iterrows():
        config_key = _key(config[list(CONFIG_COLUMNS)])
        base = _baseline_config(selected, config, baseline) if baseline else None
        row_cells = []
        for column in columns:
            key = (*config_key, column.metric)
            frame = frames.get(key)
            cell = _case_statistics(frame) if frame is not None else prepared.cell_index.get(key)
            comparison = None
            if base is not None and base != config_key:
                comparison = _cached_comparison(prepared, config_key, base, column, bootstrap,
                                                frames, number)
            row_cells.append(_cell(cell, column, comparison))
        details = [(c, _none_if_nan(config[c]))
                   for c in ("loss", "alpha", "critical_mask", "pretrain_epochs",
                             "finetune_epochs", "postprocessing")]
        details.append(("protocol", prepared.protocols.get(config_key, "")))
        details.append(("note", " ".join(notes.get(config["dataset"], ()))))
        rows.append(
            TableRow(
                dataset=config["dataset"],
                source=config["source"],
                method=config["method"],
                gamma=_none_if_nan(config["gamma"]),
                group=config["group"],
                cells=tuple(row_cells),
                details=tuple(details),
            )
        )
    rows = _mark_best(rows, columns, incomparable)
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


def _case_selection(
    prepared: _Prepared, selected: pd.DataFrame, columns: Sequence[Column],
    cases: CaseSelection,
) -> tuple[dict[tuple[Any, ...], pd.DataFrame], dict[str, list[str]], set[tuple[Any, ...]]]:
    """Per-case figures of the selected rows, on the cases chosen by ``cases``.

    Rows are compared within (dataset, metric configuration). Returns the per-case frames by
    cell key, the notes per dataset and the (dataset, protocol, metric) groups whose rows
    cover different cases (``cases="all"``: no best mark there).
    """
    frames: dict[tuple[Any, ...], pd.DataFrame] = {}
    notes: dict[str, list[str]] = {}
    incomparable: set[tuple[Any, ...]] = set()
    keyed = [(_key(c[list(CONFIG_COLUMNS)]), c) for _, c in selected.iterrows()]
    groups: dict[tuple[str, str], list[tuple[tuple[Any, ...], pd.Series]]] = {}
    for config_key, config in keyed:
        groups.setdefault((config["dataset"], config["protocol"]), []).append(
            (config_key, config))
    for (dataset, protocol), members in groups.items():
        texts: dict[str, list[str]] = {}
        for column in columns:
            have = {k: prepared.fold_cases[(*k, column.metric)] for k, _ in members
                    if (*k, column.metric) in prepared.fold_cases}
            for k, frame in have.items():
                frames[(*k, column.metric)] = frame
            names = {k: set(frame["case"]) for k, frame in have.items()}
            if len(names) < 2 or all(n == next(iter(names.values())) for n in names.values()):
                continue
            configs = dict(members)
            shared = set.intersection(*names.values())
            union = set.union(*names.values())
            if cases == "all":
                incomparable.add((dataset, protocol, column.metric))
                sizes = sorted({len(n) for n in names.values()})
                texts.setdefault(f"on {sizes[0]} to {sizes[-1]} cases of their own, not the "
                                 "same ones (no best mark)", []).append(column.label)
                continue
            if not shared:
                methods = ", ".join(sorted({_row_name(configs[k]) for k in names}))
                raise InvalidParameterError(
                    f"{dataset}: the rows {methods} share no case for {column.label}; compare "
                    "each on its own cases with cases='all' (topobench table --cases all)")
            for k, frame in have.items():
                frames[(*k, column.metric)] = frame[frame["case"].isin(shared)].reset_index(
                    drop=True)
            left_out = sorted(union - shared)
            shown = ", ".join(left_out[:5]) + (", ..." if len(left_out) > 5 else "")
            texts.setdefault(f"on the {len(shared)} cases every row has ({len(left_out)} "
                             f"left out: {shown})", []).append(column.label)
        for text, labels in texts.items():
            notes.setdefault(dataset, []).append(
                f"{dataset}: {', '.join(labels)} {'are' if len(labels) > 1 else 'is'} "
                f"compared {text}.")
    return frames, notes, incomparable


def _row_name(config: pd.Series) -> str:
    gamma = _none_if_nan(config["gamma"])
    name = str(config["method"]) if gamma is None else f"{config['method']}@{gamma:g}"
    return f"{name} ({config['source']})" if config["source"] else name


def _case_statistics(frame: pd.DataFrame) -> pd.Series:
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


def _cached_comparison(prepared: _Prepared, config_key: tuple[Any, ...],
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


def _sort(cfg: pd.DataFrame, dataset_rank: dict[str, int],
          source_rank: dict[str, int]) -> pd.DataFrame:
    method_rank = _rank(METHOD_ORDER, sorted(set(cfg["method"]) - set(METHOD_ORDER)))
    keys = pd.DataFrame({
        "d": cfg["dataset"].map(dataset_rank),
        "pr": cfg["protocol"].map({p: i for i, p in enumerate(dict.fromkeys(cfg["protocol"]))}),
        "s": cfg["source"].map(source_rank),
        "m": cfg["method"].map(method_rank),
        "g": cfg["gamma"].fillna(-1.0),
        "a": cfg["alpha"].fillna(-1.0),
        "c": cfg["critical_mask"],
        "p": cfg["pretrain_epochs"].fillna(-1.0),
        "f": cfg["finetune_epochs"].fillna(-1.0),
        "pp": cfg["postprocessing"].map({"without": 1, "with": 2}).fillna(0),
    }, index=cfg.index)
    order = keys.sort_values(list(keys.columns), kind="stable").index
    return cfg.loc[order]


def _baseline_config(selected: pd.DataFrame, config: pd.Series,
                     baseline: str) -> tuple[Any, ...] | None:
    """The configuration of ``baseline`` that ``config`` is compared with, if any."""
    same = selected[(selected["dataset"] == config["dataset"])
                    & (selected["source"] == config["source"])
                    & (selected["protocol"] == config["protocol"])
                    & (selected["method"] == baseline)]
    if same.empty:
        return None
    match = same[same["postprocessing"] == config["postprocessing"]]
    chosen = match.iloc[0] if not match.empty else same.iloc[0]
    return _key(chosen[list(CONFIG_COLUMNS)])


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


def _cell(cell: pd.Series | None, column: Column,
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


def _mark_best(rows: list[TableRow], columns: Sequence[Column],
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


def _runtime_decimals(value: float) -> int:
    """Whole seconds/minutes as the paper prints them, but two significant digits below 10."""
    if value >= 10 or value == 0:
        return 0
    return max(0, 1 - math.floor(math.log10(abs(value))))


def _build_runtime(prepared: _Prepared) -> ResultTable:
    columns = RUNTIME_COLUMNS
    dataset_rank, source_rank = prepared.dataset_rank, prepared.source_rank
    runtime = prepared.tidy[prepared.tidy["metric"].isin(RUNTIME_METRICS)]
    grouped = runtime.groupby(["source", "dataset", "method", "metric"], dropna=False,
                              sort=False).agg(value=("value", "mean"),
                                              decimals=("decimals", "max"),
                                              n=("value", "size"))
    configs = grouped.reset_index()[["source", "dataset", "method"]].drop_duplicates()
    method_rank = _rank(METHOD_ORDER, sorted(set(configs["method"]) - set(METHOD_ORDER)))
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
                decimals = (_runtime_decimals(float(hit["value"])) if pd.isna(hit["decimals"])
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


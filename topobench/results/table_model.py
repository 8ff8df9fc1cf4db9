"""The parts of a results table: columns, cells, rows, the table, and the paper's orders.

:class:`ResultTable` is what :mod:`topobench.results.tables` builds and
:mod:`topobench.results.render` prints: frozen dataclasses holding figures in printed units.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from topobench.catalog import LOSSES, METRICS
from topobench.results.stats import PairedComparison
from topobench.results.tidy import PRETRAINED_METHOD

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

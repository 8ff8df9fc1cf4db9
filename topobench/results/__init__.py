"""Results aggregation: run records to tidy tables, statistics, the paper's Tables 1-7, plots.

- :func:`load_results` reads run directories, per-case CSVs and leaderboards into one tidy
  table (:data:`TIDY_COLUMNS`; fractions in [0, 1] for Dice, clDice and AGS).
- :func:`aggregate_cells` reduces it to table cells (mean over cases, then seeds, then folds).
- :func:`paired_comparison` compares a method with a baseline over the same cases.
- :func:`build_table` / :func:`render_tables` produce Tables 1-7 as CSV, Markdown or LaTeX.
- :func:`add_to_leaderboard` appends runs to a leaderboard file.
- :func:`plot_gamma_sweep` and :func:`plot_case_scatter` draw the figures.
"""

from topobench.results.aggregate import aggregate_cells, case_means
from topobench.results.checks import check_rows
from topobench.results.leaderboard import add_to_leaderboard
from topobench.results.loading import load_results
from topobench.results.plots import plot_case_scatter, plot_gamma_sweep
from topobench.results.records import read_case_csv, read_run
from topobench.results.render import FORMATS, render_tables, table_to_frame
from topobench.results.stats import (
    PairedComparison,
    bootstrap_mean_ci,
    paired_comparison,
    wilcoxon_p,
)
from topobench.results.tables import (
    CASE_SELECTIONS,
    TABLE_NUMBERS,
    Cell,
    Column,
    ResultTable,
    TableRow,
    build_table,
    build_tables,
)
from topobench.results.tidy import (
    CONFIG_COLUMNS,
    PRETRAINED_METHOD,
    TIDY_COLUMNS,
    protocol_key,
    read_tidy_csv,
    write_tidy_csv,
)

__all__ = [
    "CASE_SELECTIONS",
    "CONFIG_COLUMNS",
    "FORMATS",
    "PRETRAINED_METHOD",
    "TABLE_NUMBERS",
    "TIDY_COLUMNS",
    "Cell",
    "Column",
    "PairedComparison",
    "ResultTable",
    "TableRow",
    "add_to_leaderboard",
    "aggregate_cells",
    "bootstrap_mean_ci",
    "build_table",
    "build_tables",
    "case_means",
    "check_rows",
    "load_results",
    "paired_comparison",
    "plot_case_scatter",
    "plot_gamma_sweep",
    "protocol_key",
    "read_case_csv",
    "read_run",
    "read_tidy_csv",
    "render_tables",
    "table_to_frame",
    "wilcoxon_p",
    "write_tidy_csv",
]

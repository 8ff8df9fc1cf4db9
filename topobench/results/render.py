"""Rendering :class:`~topobench.results.tables.ResultTable` as CSV, Markdown or LaTeX.

Markdown and LaTeX follow the paper's layout: arrows in the headers, the best figure per
dataset and column in bold, a method's name (and, in Tables 2-3, its weight) printed on the
first row of its block only, ``n/a`` for a missing figure and a dagger for a significant
paired difference against the baseline. CSV holds every figure unrounded, in printed units,
with its spread, count and paired statistics in extra columns.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any, Literal

import pandas as pd

from topobench import __version__, catalog
from topobench.catalog import METRICS
from topobench.errors import InvalidParameterError
from topobench.results.table_model import Cell, Column, ResultTable, TableRow

Format = Literal["csv", "md", "latex"]
FORMATS: tuple[str, ...] = ("csv", "md", "latex")

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters in plain text."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def format_gamma(gamma: float | None) -> str:
    """A weight as the paper prints it (``0.08``, ``0.1``); empty when unset."""
    return "" if gamma is None else f"{gamma:g}"


def render_tables(tables: Sequence[ResultTable], fmt: Format, *, show_std: bool = False) -> str:
    """Render one or more tables in ``fmt`` (``"csv"``, ``"md"`` or ``"latex"``).

    Several tables are separated by a blank line (Markdown, LaTeX) or stacked in one CSV with
    a ``table`` column.

    Raises
    ------
    InvalidParameterError
        If ``fmt`` is not one of :data:`FORMATS`.
    """
    if fmt == "csv":
        return tables_to_csv(tables)
    if fmt == "md":
        return "\n".join(table_to_markdown(t, show_std=show_std) for t in tables)
    if fmt == "latex":
        return "\n".join(table_to_latex(t, show_std=show_std) for t in tables)
    raise InvalidParameterError(f"expected a format in {FORMATS}, got {fmt!r}")


# --------------------------------------------------------------------------------------------
# shared layout


def _label_columns(table: ResultTable) -> list[str]:
    names = []
    if table.show_dataset:
        names.append("Dataset")
    if table.show_source:
        names.append("Source")
    if table.group_label:
        names.append(table.group_label)
    names.append("Loss" if table.number == 7 else "Method")
    if table.show_gamma:
        names.append("Weight γ")
    if table.configurations:
        names.append("Metrics")
    return names


def _label_cells(table: ResultTable) -> list[list[str]]:
    """Leading text cells of every row, with the paper's blanking of repeated names."""
    out = []
    previous: TableRow | None = None
    for row in table.rows:
        same_dataset = previous is not None and previous.dataset == row.dataset
        same_source = same_dataset and previous is not None and previous.source == row.source
        same_group = same_source and previous is not None and previous.group == row.group
        same_method = same_source and previous is not None and previous.method == row.method
        if table.group_label and table.number == 4:
            same_method = same_method and same_group
        same_gamma = same_method and previous is not None and previous.gamma == row.gamma
        cells = []
        if table.show_dataset:
            cells.append("" if same_dataset else row.dataset)
        if table.show_source:
            cells.append("" if same_source else row.source)
        if table.group_label:
            cells.append("" if (table.number == 4 and same_group) else row.group)
        cells.append("" if same_method else row.method)
        if table.show_gamma:
            blank = same_gamma and not table.repeat_gamma
            cells.append("" if blank else format_gamma(row.gamma))
        if table.configurations:
            cells.append(f"[{_configuration_number(table, row)}]")
        out.append(cells)
        previous = row
    return out


def _configuration_number(table: ResultTable, row: TableRow) -> int:
    """1-based number of the row's metric configuration in ``table.configurations``."""
    return table.configurations.index(str(dict(row.details).get("protocol") or "")) + 1


def _configuration_lines(table: ResultTable) -> list[str]:
    """``[k] configuration`` when rows differ in it, else each configuration once."""
    if table.configurations:
        return [f"[{k}] {p or 'not recorded'}" for k, p in enumerate(table.configurations, 1)]
    return _protocols(table)


def _is_significant(cell: Cell, table: ResultTable) -> bool:
    c = cell.comparison
    return c is not None and c.p_value < table.significance


def _protocols(table: ResultTable) -> list[str]:
    """Distinct metric configurations of the table's rows (recorded as comments)."""
    found: dict[str, None] = {}
    for row in table.rows:
        for name in str(dict(row.details).get("protocol") or "").split(" | "):
            if name:
                found[name] = None
    return list(found)


def _std_text(cell: Cell) -> str:
    return "" if cell.std is None else f"{cell.std:.{cell.decimals}f}"


# --------------------------------------------------------------------------------------------
# Markdown


def _md_header(column: Column) -> str:
    arrow = {True: " ↑", False: " ↓", None: ""}[column.higher_is_better]
    return column.label + arrow


def _md_cell(cell: Cell, table: ResultTable, show_std: bool) -> str:
    text = cell.text()
    if cell.value is not None and show_std and cell.std is not None:
        text = f"{text} ± {_std_text(cell)}"
    if cell.best:
        text = f"**{text}**"
    if _is_significant(cell, table):
        text += "\N{DAGGER}"
    return text


def table_to_markdown(table: ResultTable, *, show_std: bool = False) -> str:
    """The table as a GitHub-flavoured Markdown pipe table with a caption line above."""
    labels = _label_columns(table)
    header = labels + [_md_header(c) for c in table.columns]
    align = ["---"] * len(labels) + ["---:"] * len(table.columns)
    lines = [
        f"<!-- topobench {__version__} -->",
        *(f"<!-- metric configuration: {p} -->" for p in _configuration_lines(table)),
        f"**Table {table.number}: {table.caption}**",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(align) + "|",
    ]
    for row, label_cells in zip(table.rows, _label_cells(table)):
        figures = [_md_cell(c, table, show_std) for c in row.cells]
        labels = [text.replace("|", "\\|") for text in label_cells]
        lines.append("| " + " | ".join(labels + figures) + " |")
    if table.configurations:
        lines.append("")
        lines += [f"Metrics {line}  " for line in _configuration_lines(table)]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# LaTeX


def _latex_header(column: Column) -> str:
    arrow = {True: r" $\uparrow$", False: r" $\downarrow$", None: ""}[column.higher_is_better]
    return column.latex + arrow


def _latex_cell(cell: Cell, table: ResultTable, show_std: bool) -> str:
    text = cell.text()
    if cell.value is not None and show_std and cell.std is not None:
        text = f"{text} $\\pm$ {_std_text(cell)}"
    if cell.best:
        text = rf"\textbf{{{text}}}"
    if _is_significant(cell, table):
        text += r"$^\dagger$"
    return text


def table_to_latex(table: ResultTable, *, show_std: bool = False) -> str:
    """The table as a LaTeX ``table`` environment (needs ``\\usepackage{booktabs}``)."""
    labels = [latex_escape(x).replace("γ", r"$\gamma$") for x in _label_columns(table)]
    header = labels + [_latex_header(c) for c in table.columns]
    spec = "l" * len(labels) + "r" * len(table.columns)
    caption = latex_escape(table.caption).replace("\N{DAGGER}", r"$^\dagger$")
    lines = [
        f"% topobench {__version__}; needs \\usepackage{{booktabs}}",
        *(f"% metric configuration: {p}" for p in _configuration_lines(table)),
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{caption}}}",
        rf"\label{{tab:topobench-{table.number}}}",
        rf"\begin{{tabular}}{{{spec}}}",
        r"\toprule",
        " & ".join(header) + r" \\",
        r"\midrule",
    ]
    previous: TableRow | None = None
    for row, label_cells in zip(table.rows, _label_cells(table)):
        if previous is not None and previous.dataset != row.dataset:
            lines.append(r"\midrule")
        cells = [latex_escape(x) for x in label_cells]
        cells += [_latex_cell(c, table, show_std) for c in row.cells]
        lines.append(" & ".join(cells) + r" \\")
        previous = row
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# CSV


def table_to_frame(table: ResultTable) -> pd.DataFrame:
    """One row per table row: configuration, then per metric its figure and statistics.

    Figures are in printed units (percent for Dice, clDice, AGS), unrounded; ``<m>_diff``,
    ``<m>_ci_low``, ``<m>_ci_high`` and ``<m>_p`` hold the paired comparison with
    ``baseline`` (empty where there is none).
    """
    records = []
    for row in table.rows:
        record: dict[str, object] = {
            "table": table.number,
            "dataset": row.dataset,
            "source": row.source,
            "group": row.group,
            "method": row.method,
            "gamma": row.gamma,
            **dict(row.details),
        }
        for column, cell in zip(table.columns, row.cells):
            m = column.metric
            comparison = cell.comparison
            record[m] = cell.value
            record[f"{m}_std"] = cell.std
            record[f"{m}_fold_std"] = cell.fold_std
            record[f"{m}_seed_std"] = cell.seed_std
            record[f"{m}_n"] = cell.n
            record[f"{m}_best"] = cell.best
            if table.baseline is not None:
                record[f"{m}_diff"] = comparison.mean_difference if comparison else None
                record[f"{m}_ci_low"] = comparison.ci_low if comparison else None
                record[f"{m}_ci_high"] = comparison.ci_high if comparison else None
                record[f"{m}_p"] = comparison.p_value if comparison else None
        if table.baseline is not None:
            record["baseline"] = table.baseline
        record["topobench_version"] = __version__
        records.append(record)
    return pd.DataFrame.from_records(records)


def tables_to_csv(tables: Sequence[ResultTable]) -> str:
    """Several tables stacked into one CSV text (columns are the union)."""
    frames = [table_to_frame(t) for t in tables]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, float_format="%.10g")
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------
# evaluation summaries (``topobench evaluate``'s summary.json)

_PERCENT_METRICS = frozenset(m.name for m in METRICS.values() if m.percent)


def format_value(value: float | None, metric: str) -> str:
    """A statistic as printed in tables: percent with 2 decimals or a count with 3."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{100 * value:.2f}" if metric in _PERCENT_METRICS else f"{value:.3f}"


def metric_label(metric: str) -> str:
    """Display name of a metric column (``e0_gt`` -> ``e0-Gt``, ``dice`` -> ``Dice (%)``)."""
    return catalog.metric_label(metric, unit=True)


def summary_table(summary: dict[str, Any], fmt: Literal["md", "latex"] = "md") -> str:
    """Render an evaluation's ``summary.json`` statistics as a Markdown or LaTeX table.

    Dice, clDice and AGS are shown in percent (as the paper's tables); the first line is a
    comment with the topobench version and the protocol.
    """
    stats = summary["metrics"]
    proto = summary["config"]["protocol"]
    config = ", ".join(
        f"{k}={v}" for k, v in proto.items() if k not in ("topobench_version", "metrics")
    )
    if summary["config"].get("threshold") is not None:
        config += f", threshold={summary['config']['threshold']}"
    note = (
        f"topobench {summary['topobench_version']}; {summary['n_succeeded']} cases, "
        f"{summary['n_failed']} failures; {config}"
    )
    rows = [
        (
            metric_label(m),
            format_value(s["mean"], m),
            format_value(s["std"], m),
            format_value(s["median"], m),
            str(s["n"]),
        )
        for m, s in stats.items()
    ]
    head = ("metric", "mean", "std", "median", "n")
    if fmt not in ("md", "latex"):
        raise InvalidParameterError(f"format must be 'md' or 'latex', got {fmt!r}")
    return simple_table(head, rows, fmt, comment=note)


def simple_table(header: Sequence[str], rows: Sequence[Sequence[str]],
                 fmt: Literal["md", "latex"], *, comment: str = "") -> str:
    """A plain table of text cells: a Markdown pipe table or a LaTeX ``tabular`` (booktabs).

    The first column is left-aligned, the others (figures) right-aligned. LaTeX's special
    characters are escaped in every cell and in ``comment``, which becomes the first line
    (``<!-- comment -->`` or ``% comment``) when given.

    Raises
    ------
    InvalidParameterError
        If ``fmt`` is not ``"md"`` or ``"latex"``.
    """
    if fmt == "md":
        lines = [f"<!-- {comment} -->"] if comment else []
        lines += ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    elif fmt == "latex":
        lines = [f"% {latex_escape(comment)}"] if comment else []
        lines += [rf"\begin{{tabular}}{{l{'r' * (len(header) - 1)}}}", r"\toprule",
                  " & ".join(latex_escape(h) for h in header) + r" \\", r"\midrule"]
        lines += [" & ".join(latex_escape(c) for c in row) + r" \\" for row in rows]
        lines += [r"\bottomrule", r"\end{tabular}"]
    else:
        raise InvalidParameterError(f"format must be 'md' or 'latex', got {fmt!r}")
    return "\n".join(lines) + "\n"

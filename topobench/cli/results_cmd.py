"""``topobench table``, ``topobench leaderboard add`` and ``topobench plot``."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from topobench.catalog import LOSSES
from topobench.cli._common import console, err_console, library_errors

_TABLE_HELP = (
    "Table: 1 comparison, 2 post-processing, 3 fine-tuning length, 4 critical pixel mask, "
    "5 pixel-wise loss, 6 compound clDice weights, 7 runtime, or all."
)


@contextmanager
def _reported_warnings() -> Iterator[None]:
    """Print the library's warnings (e.g. skipped incomplete runs) as notes on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        err_console.print(f"[yellow]note:[/] {w.message}", highlight=False)


def _resolved(sources: list[Path]) -> list[Path]:
    """Existing paths as given; other names looked up among the packaged leaderboards."""
    from topobench.leaderboards import resolve_source

    return [resolve_source(s) for s in sources]


def table(
    sources: Annotated[list[Path], typer.Argument(
        help="Run directories, folders of runs, per-case CSVs, leaderboard CSVs or the name of "
        "a packaged leaderboard (contextloss2025).")],
    table: Annotated[str, typer.Option("--table", "-t", help=_TABLE_HELP)] = "1",
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv, md or latex.")] = "md",
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Output file (default: stdout).")] = None,
    baseline: Annotated[str, typer.Option(
        help="Method compared case by case with every row; 'none' for no test.")] = (
            LOSSES["dice_ce"].display),
    dataset: Annotated[list[str] | None, typer.Option(
        "--dataset", "-d", help="Only this dataset (repeatable).")] = None,
    significance: Annotated[float, typer.Option(
        help="Wilcoxon p below which a figure gets a dagger.")] = 0.05,
    std: Annotated[bool, typer.Option("--std", help="Print mean ± std over cases.")] = False,
    include_running: Annotated[bool, typer.Option(
        help="Also read runs that are not complete.")] = False,
    cases: Annotated[str, typer.Option(
        "--cases", help="Rows of a dataset evaluated on different cases: 'shared' compares them "
        "on the cases they all have (the caption names those left out), 'all' on their own "
        "cases (said in the caption; no bold in those columns).")] = "shared",
) -> None:
    """Render the paper's Tables 1-7 from runs or leaderboards as CSV, Markdown or LaTeX."""
    from topobench.results import TABLE_NUMBERS, build_tables, load_results, render_tables

    if fmt not in ("csv", "md", "latex"):
        raise typer.BadParameter(f"expected csv, md or latex, got {fmt!r}", param_hint="--format")
    if table == "all":
        numbers: tuple[int, ...] = TABLE_NUMBERS
    elif table.isdigit() and int(table) in TABLE_NUMBERS:
        numbers = (int(table),)
    else:
        raise typer.BadParameter(f"expected 1-7 or all, got {table!r}", param_hint="--table")
    if cases not in ("shared", "all"):
        raise typer.BadParameter(f"expected shared or all, got {cases!r}", param_hint="--cases")
    text = ""
    tables = []
    with library_errors(), _reported_warnings():
        tidy = load_results(_resolved(sources), include_running=include_running)
        if not tidy.empty:
            tables = build_tables(
                tidy,
                numbers,
                baseline=None if baseline.lower() == "none" else baseline,
                datasets=dataset or None,
                significance=significance,
                cases=cases,  # type: ignore[arg-type]
            )
            text = render_tables(tables, fmt, show_std=std)  # type: ignore[arg-type]
    if tidy.empty:
        hint = "" if include_running else (
            "; runs that are not complete are skipped (see the notes above): wait for them, "
            "or pass --include-running to read them as they are")
        err_console.print(f"[bold red]error:[/] the sources hold no results{hint}",
                          highlight=False, soft_wrap=True)
        raise typer.Exit(code=2)
    if not tables:
        err_console.print("[yellow]note:[/] the sources hold no data for this table")
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote {out}", highlight=False)


def leaderboard_add(
    runs: Annotated[list[Path], typer.Argument(
        help="Run directories, folders of runs or CSVs.")],
    name: Annotated[str, typer.Option("--name", "-n", help="Entry name shown in the tables.")],
    leaderboard: Annotated[Path, typer.Option(
        "--leaderboard", "-l", help="Leaderboard CSV to append to (created if missing); show "
        "it beside the published figures with 'topobench table contextloss2025 FILE'.")
    ] = Path("leaderboard.csv"),
    reference: Annotated[str, typer.Option(help="Citation or note stored with the entry.")] = "",
    replace: Annotated[bool, typer.Option(help="Replace an existing entry of that name.")] = False,
) -> None:
    """Append your runs to a leaderboard so they render beside the published results."""
    from topobench.results import add_to_leaderboard

    with library_errors(), _reported_warnings():
        added = add_to_leaderboard(runs, leaderboard, name=name, reference=reference,
                                   replace=replace)
    console.print(f"added {added} rows as {name!r} to {leaderboard}", highlight=False)


def plot(
    sources: Annotated[list[Path], typer.Argument(help="Runs, CSVs or leaderboards.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output .png, .pdf or .svg.")],
    kind: Annotated[str, typer.Option(
        help="gamma (metric against weight) or scatter.")] = "gamma",
    metric: Annotated[list[str] | None, typer.Option(
        "--metric", "-m",
        help="Metric(s): gamma default dice, e0_gt, ags; scatter default e0_gt.")] = None,
    x: Annotated[str | None, typer.Option(
        help="Scatter: method on x, e.g. 'Dice & CE'.")] = None,
    y: Annotated[str | None, typer.Option(
        help="Scatter: method on y, e.g. 'CLoss@0.2'.")] = None,
    dataset: Annotated[list[str] | None, typer.Option(
        "--dataset", "-d", help="Only this dataset (repeatable).")] = None,
) -> None:
    """Draw the gamma sweep (per dataset) or a per-case scatter of two methods."""
    from topobench.results import load_results, plot_case_scatter, plot_gamma_sweep

    if kind not in ("gamma", "scatter"):
        raise typer.BadParameter(f"expected gamma or scatter, got {kind!r}", param_hint="--kind")
    if kind == "scatter" and (x is None or y is None):
        raise typer.BadParameter("scatter needs --x and --y", param_hint="--x/--y")
    with library_errors(), _reported_warnings():
        tidy = load_results(_resolved(sources))
        if kind == "gamma":
            written = plot_gamma_sweep(tidy, out, metrics=metric or ("dice", "e0_gt", "ags"),
                                       datasets=dataset or None)
        else:
            written = plot_case_scatter(tidy, out, x=x, y=y,  # type: ignore[arg-type]
                                        metric=(metric or ["e0_gt"])[0],
                                        datasets=dataset or None)
    console.print(f"wrote {written}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``table``, ``leaderboard add`` and ``plot`` to the ``topobench`` app."""
    app.command("table")(table)
    group = typer.Typer(help="Leaderboard files of published and own results.",
                        no_args_is_help=True)
    group.command("add")(leaderboard_add)
    app.add_typer(group, name="leaderboard")
    app.command("plot")(plot)

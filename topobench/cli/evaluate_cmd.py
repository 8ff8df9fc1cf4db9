"""``topobench evaluate PRED_DIR GT_DIR``: metrics for every case of two folders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from topobench.catalog import metric_names
from topobench.cli._common import (
    cli_names,
    console,
    err_console,
    library_errors,
    parse_window,
    print_error,
)


def register(app: typer.Typer) -> None:
    """Add the ``evaluate`` command to ``app``."""
    app.command("evaluate")(evaluate_command)


_WINDOW_HELP = "Tile size (375, 64x1024x1024) or 'none' for the whole image."


def _window_override(text: str | None) -> tuple[bool, object]:
    """(given, value): an option left out is not an override; 'none' clears a preset's window."""
    if text is None:
        return False, None
    return True, parse_window(text)


def evaluate_command(
    pred_dir: Annotated[Path, typer.Argument(help="Folder of predicted masks.")],
    gt_dir: Annotated[Path, typer.Argument(help="Folder of ground-truth masks.")],
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Results folder (cases.csv, failures.csv, summary.json)."),
    ] = Path("topobench-results"),
    maps: Annotated[
        Path | None,
        typer.Option("--maps", help="Write an error map per case (missed/false connections) here."),
    ] = None,
    protocol: Annotated[
        str, typer.Option("--protocol", "-p", help="Metric preset: roads|hrf|vessap|cld|default.")
    ] = "default",
    window: Annotated[
        str | None, typer.Option("--window", help=f"Betti-error and e0-Gt tiles. {_WINDOW_HELP}")
    ] = None,
    betti_window: Annotated[str | None, typer.Option("--betti-window", help=_WINDOW_HELP)] = None,
    e0_gt_window: Annotated[str | None, typer.Option("--e0-gt-window", help=_WINDOW_HELP)] = None,
    cldice_window: Annotated[str | None, typer.Option("--cldice-window", help=_WINDOW_HELP)] = None,
    ags_window: Annotated[str | None, typer.Option("--ags-window", help=_WINDOW_HELP)] = None,
    slices: Annotated[
        bool | None,
        typer.Option(
            "--slices/--no-slices", help="Betti errors on each 2D slice along z (3D data)."
        ),
    ] = None,
    connectivity: Annotated[
        int | None,
        typer.Option("--connectivity", "-c", help="Foreground connectivity: 4/8 (2D), 6/26 (3D)."),
    ] = None,
    metrics: Annotated[
        str | None,
        typer.Option(
            "--metrics", "-m", help=f"Comma-separated subset: {','.join(metric_names())}."
        ),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold",
            "-t",
            help=(
                "Binarise probability-map predictions as value > T (integer maps divided by "
                "their dtype's maximum first: 255 for 8-bit, 65535 for 16-bit)."
            ),
        ),
    ] = None,
    channel: Annotated[
        int | None,
        typer.Option(
            "--channel",
            help="Class channel of nnU-Net --save_probabilities .npz predictions (with -t).",
        ),
    ] = None,
    pred_suffix: Annotated[
        str, typer.Option("--pred-suffix", help="Name ending to drop, e.g. _pred.")
    ] = "",
    gt_suffix: Annotated[
        str, typer.Option("--gt-suffix", help="Name ending to drop, e.g. _mask.")
    ] = "",
    workers: Annotated[
        int, typer.Option("--workers", "-j", help="Processes (0: all cores; 1: no pool).")
    ] = 0,
    dask: Annotated[
        str | None,
        typer.Option("--dask", help="Dask scheduler address, or 'local' to start a LocalCluster."),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue an interrupted run in --out.")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Discard earlier results in --out.")
    ] = False,
    dataset: Annotated[
        str | None, typer.Option("--dataset", help="Data set name recorded in summary.json.")
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format", "-f",
            help="Summary as rich (table), md or latex (also saved), or json (summary.json's "
            "content on stdout).",
        ),
    ] = "rich",
    labels: Annotated[
        str | None,
        typer.Option(
            "--labels",
            help="Integer label maps: evaluate each of these labels (values or names, e.g. "
            "1,2,3 or artery,vein) as its own structure, plus their union (merged).",
        ),
    ] = None,
    label_names: Annotated[
        Path | None,
        typer.Option(
            "--label-names",
            help="nnU-Net dataset.json naming the labels (default: GT_DIR/../dataset.json when "
            "it exists).",
        ),
    ] = None,
    merged: Annotated[
        bool, typer.Option("--merged/--no-merged", help="With --labels: also the union.")
    ] = True,
    spacing: Annotated[
        str | None,
        typer.Option(
            "--spacing",
            help="Voxel size for the distances (hd95, assd, nsd) of files whose headers record "
            "none: one number or ZxHxW / HxW, e.g. 0.6x0.3x0.3.",
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar and no table.")
    ] = False,
) -> None:
    """Evaluate every prediction in PRED_DIR against the target with the same name in GT_DIR.

    Exit status: 0 when every case succeeded, 1 when some case failed or had no partner,
    2 for a usage error.
    """
    from topobench.evaluate import CaseResult, run_evaluation
    from topobench.metrics import resolve_protocol
    from topobench.results.render import summary_table

    if fmt not in ("rich", "md", "latex", "json"):
        raise typer.BadParameter(
            f"expected rich, md, latex or json, got {fmt!r}", param_hint="--format"
        )
    voxel = _parse_spacing(spacing)
    overrides: dict[str, object] = {
        "connectivity": connectivity,
        "betti_slices": slices,
        "metrics": [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None,
    }
    windows = {
        "betti_window": betti_window or window,
        "e0_gt_window": e0_gt_window or window,
        "cldice_window": cldice_window,
        "ags_window": ags_window,
    }
    for key, text in windows.items():
        given, value = _window_override(text)
        if given:  # "none" turns a preset's tiles back into the whole image
            overrides[key] = "whole" if value is None else value

    with library_errors():
        proto = resolve_protocol(protocol, **overrides)
    if labels is not None:
        _evaluate_labels(
            pred_dir, gt_dir, out, proto=proto, labels=labels, label_names=label_names,
            merged=merged, spacing=voxel, fmt=fmt, quiet=quiet, workers=workers,
            pred_suffix=pred_suffix, gt_suffix=gt_suffix, overwrite=overwrite, dataset=dataset,
            unsupported={"--maps": maps, "--threshold": threshold, "--channel": channel,
                         "--dask": dask, "--resume": resume or None},
        )
        return
    with library_errors():

        progress = Progress(
            TextColumn("[bold]evaluate"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[last]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=err_console,
            disable=quiet,
            transient=False,
        )
        task_id = progress.add_task("cases", total=None, last="")

        def on_start(n_todo: int, n_skipped: int) -> None:
            progress.update(task_id, total=n_todo)
            progress.start()
            if n_skipped and not quiet:
                err_console.print(f"resuming: {n_skipped} cases already done")

        def on_result(result: CaseResult) -> None:
            status = "[green]ok" if result.ok else "[red]failed"
            progress.update(task_id, advance=1, last=f"{status}[/] {escape(result.case)}")

        try:
            report = run_evaluation(
                pred_dir,
                gt_dir,
                out,
                protocol=proto,
                threshold=threshold,
                channel=channel,
                pred_suffix=pred_suffix,
                target_suffix=gt_suffix,
                maps_dir=maps,
                workers=workers or None,
                dask=dask,
                resume=resume,
                overwrite=overwrite,
                dataset=dataset,
                on_start=on_start,
                on_result=on_result,
                **({"spacing": voxel} if voxel is not None else {}),
            )
        except KeyboardInterrupt:
            progress.stop()
            err_console.print(
                f"[yellow]interrupted:[/] finished cases are saved in {escape(str(out))}; "
                "continue with --resume",
                highlight=False,
            )
            raise typer.Exit(code=130) from None
        finally:
            progress.stop()

    summary = report.summary
    if fmt == "json":
        typer.echo(json.dumps(summary, indent=2))
    elif fmt in ("md", "latex"):
        text = summary_table(summary, fmt)  # type: ignore[arg-type]
        (out / ("summary.md" if fmt == "md" else "summary.tex")).write_text(text, encoding="utf-8")
        if not quiet:
            typer.echo(text, nl=False)
    elif not quiet:
        console.print(_rich_summary(summary))
    if report.reevaluated and not quiet:
        err_console.print(
            f"resumed: {len(report.reevaluated)} cases evaluated again because their files "
            f"changed since their row was written: {escape(_listed(report.reevaluated))}",
            highlight=False,
        )
    if report.dropped and not quiet:
        err_console.print(
            f"resumed: {len(report.dropped)} rows dropped because their files are gone: "
            f"{escape(_listed(report.dropped))}",
            highlight=False,
        )
    not_binary = set(report.not_binary)
    for case, reason in report.failures:
        if case not in not_binary:  # those get one message below, not one per case
            err_console.print(
                f"[red]failed[/] {escape(case)}: {escape(cli_names(reason))}", highlight=False
            )
    if report.hint is not None:
        print_error(report.hint)
    if not quiet:  # the table alone on stdout for md/latex, so that it can be redirected
        (console if fmt == "rich" else err_console).print(
            f"results in {escape(str(out))}"
            + (f", error maps in {escape(str(maps))}" if maps else "")
        )
    if not report.ok:
        raise typer.Exit(code=1)


def _listed(cases: tuple[str, ...], n: int = 10) -> str:
    return ", ".join(cases[:n]) + (f" and {len(cases) - n} more" if len(cases) > n else "")


def _rich_summary(summary: dict) -> Table:
    from topobench.results.render import format_value, metric_label

    proto = summary["config"]["protocol"]
    table = Table(
        title=(
            f"topobench {summary['topobench_version']} · protocol {proto['name']} · "
            f"{summary['n_succeeded']} cases, {summary['n_failed']} failures"
        ),
        title_justify="left",
    )
    table.add_column("metric")
    for col in ("mean", "std", "median", "n"):
        table.add_column(col, justify="right")
    for metric, s in summary["metrics"].items():
        table.add_row(
            metric_label(metric),
            format_value(s["mean"], metric),
            format_value(s["std"], metric),
            format_value(s["median"], metric),
            str(s["n"]),
        )
    return table


def _parse_spacing(text: str | None) -> float | tuple[float, ...] | None:
    """``--spacing``: one number, or per axis ``ZxHxW`` / ``HxW`` (``,`` also separates)."""
    if text is None:
        return None
    parts = [p for p in text.replace(",", "x").lower().split("x") if p.strip()]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise typer.BadParameter(
            f"expected a number or ZxHxW, got {text!r}", param_hint="--spacing"
        ) from None
    if not values or not all(v > 0 and v < float("inf") for v in values):
        raise typer.BadParameter(
            f"expected positive voxel sizes, got {text!r}", param_hint="--spacing"
        )
    return values[0] if len(values) == 1 else values


def _evaluate_labels(
    pred_dir: Path,
    gt_dir: Path,
    out: Path,
    *,
    proto: object,
    labels: str,
    label_names: Path | None,
    merged: bool,
    spacing: float | tuple[float, ...] | None,
    fmt: str,
    quiet: bool,
    workers: int,
    pred_suffix: str,
    gt_suffix: str,
    overwrite: bool,
    dataset: str | None,
    unsupported: dict[str, object],
) -> None:
    """``evaluate --labels``: label maps per label (topobench.label_evaluation)."""
    from topobench.label_evaluation import run_label_evaluation

    for option, value in unsupported.items():
        if value is not None:
            raise typer.BadParameter(f"{option} does not apply to label maps (--labels)",
                                     param_hint=option)
    wanted = [p.strip() for p in labels.split(",") if p.strip()]
    if label_names is None and (gt_dir.parent / "dataset.json").is_file():
        label_names = gt_dir.parent / "dataset.json"
    with library_errors():
        report = run_label_evaluation(
            pred_dir, gt_dir, out, labels=wanted, label_names=label_names, merged=merged,
            protocol=proto, spacing=spacing, pred_suffix=pred_suffix, target_suffix=gt_suffix,
            workers=workers or None, overwrite=overwrite, dataset=dataset,
        )
    summary = report.summary
    if fmt == "json":
        typer.echo(json.dumps(summary, indent=2))
    elif fmt in ("md", "latex"):
        text = _labels_text(summary, fmt)
        (out / ("summary.md" if fmt == "md" else "summary.tex")).write_text(text, encoding="utf-8")
        if not quiet:
            typer.echo(text, nl=False)
    elif not quiet:
        console.print(_labels_rich(summary))
    for case, reason in report.failures:
        err_console.print(
            f"[red]failed[/] {escape(case)}: {escape(cli_names(reason))}", highlight=False
        )
    if not quiet:
        (console if fmt == "rich" else err_console).print(
            f"results in {escape(str(out))}", highlight=False
        )
    if not report.ok:
        raise typer.Exit(code=1)


def _label_rows(summary: dict) -> tuple[list[str], list[tuple[str, list[str]]]]:
    from topobench.results.render import format_value, metric_label

    per_label = summary["labels"]
    metrics: list[str] = []
    for stats in per_label.values():
        metrics += [m for m in stats if m not in metrics]
    rows = []
    for label, stats in per_label.items():
        cells = [format_value(stats[m]["mean"], m) if m in stats else "" for m in metrics]
        rows.append((label.replace("_", " ") if label == "class_average" else label, cells))
    return [metric_label(m) for m in metrics], rows


def _labels_rich(summary: dict) -> Table:
    header, rows = _label_rows(summary)
    table = Table(title=f"mean over {summary['n_cases']} cases, per label "
                        f"({summary['config']['protocol']['name']})")
    table.add_column("label")
    for name in header:
        table.add_column(name, justify="right")
    for label, cells in rows:
        table.add_row(escape(label), *cells)
    return table


def _labels_text(summary: dict, fmt: str) -> str:
    header, rows = _label_rows(summary)
    if fmt == "latex":
        header = [h.replace("%", "\\%") for h in header]
    if fmt == "md":
        lines = ["| label | " + " | ".join(header) + " |",
                 "|---|" + "---:|" * len(header)]
        lines += ["| " + label + " | " + " | ".join(cells) + " |" for label, cells in rows]
        return "\n".join(lines) + "\n"
    lines = ["\\begin{tabular}{l" + "r" * len(header) + "}", "\\toprule",
             "label & " + " & ".join(header) + " \\\\", "\\midrule"]
    lines += [label.replace("_", "\\_") + " & " + " & ".join(cells) + " \\\\"
              for label, cells in rows]
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines) + "\n"

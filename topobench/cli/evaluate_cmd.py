"""``topobench evaluate PRED_DIR GT_DIR``: metrics for every case of two folders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

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


# The options of ``topobench evaluate``, one alias each (the command's signature lists them).
_PredDir = Annotated[Path, typer.Argument(help="Folder of predicted masks.")]
_GtDir = Annotated[Path, typer.Argument(help="Folder of ground-truth masks.")]
_Out = Annotated[
    Path,
    typer.Option("--out", "-o", help="Results folder (cases.csv, failures.csv, summary.json)."),
]
_Maps = Annotated[
    Path | None,
    typer.Option("--maps", help="Write an error map per case (missed/false connections) here."),
]
_Protocol = Annotated[
    str, typer.Option("--protocol", "-p", help="Metric preset: roads|hrf|vessap|cld|default.")
]
_Window = Annotated[
    str | None, typer.Option("--window", help=f"Betti-error and e0-Gt tiles. {_WINDOW_HELP}")
]
_BettiWindow = Annotated[str | None, typer.Option("--betti-window", help=_WINDOW_HELP)]
_E0GtWindow = Annotated[str | None, typer.Option("--e0-gt-window", help=_WINDOW_HELP)]
_CldiceWindow = Annotated[str | None, typer.Option("--cldice-window", help=_WINDOW_HELP)]
_AgsWindow = Annotated[str | None, typer.Option("--ags-window", help=_WINDOW_HELP)]
_Slices = Annotated[
    bool | None,
    typer.Option(
        "--slices/--no-slices", help="Betti errors on each 2D slice along z (3D data)."
    ),
]
_Connectivity = Annotated[
    int | None,
    typer.Option("--connectivity", "-c", help="Foreground connectivity: 4/8 (2D), 6/26 (3D)."),
]
_Metrics = Annotated[
    str | None,
    typer.Option(
        "--metrics", "-m", help=f"Comma-separated subset: {','.join(metric_names())}."
    ),
]
_Threshold = Annotated[
    float | None,
    typer.Option(
        "--threshold",
        "-t",
        help=(
            "Binarise probability-map predictions as value > T (integer maps divided by "
            "their dtype's maximum first: 255 for 8-bit, 65535 for 16-bit)."
        ),
    ),
]
_Channel = Annotated[
    int | None,
    typer.Option(
        "--channel",
        help="Class channel of nnU-Net --save_probabilities .npz predictions (with -t).",
    ),
]
_PredSuffix = Annotated[
    str, typer.Option("--pred-suffix", help="Name ending to drop, e.g. _pred.")
]
_GtSuffix = Annotated[
    str, typer.Option("--gt-suffix", help="Name ending to drop, e.g. _mask.")
]
_Workers = Annotated[
    int, typer.Option("--workers", "-j", help="Processes (0: all cores; 1: no pool).")
]
_Dask = Annotated[
    str | None,
    typer.Option("--dask", help="Dask scheduler address, or 'local' to start a LocalCluster."),
]
_Resume = Annotated[
    bool, typer.Option("--resume", help="Continue an interrupted run in --out.")
]
_Overwrite = Annotated[
    bool, typer.Option("--overwrite", help="Discard earlier results in --out.")
]
_Dataset = Annotated[
    str | None, typer.Option("--dataset", help="Data set name recorded in summary.json.")
]
_Fmt = Annotated[
    str,
    typer.Option(
        "--format", "-f",
        help="Summary as rich (table), md or latex (also saved), or json (summary.json's "
        "content on stdout).",
    ),
]
_Labels = Annotated[
    str | None,
    typer.Option(
        "--labels",
        help="Integer label maps: evaluate each of these labels (values or names, e.g. "
        "1,2,3 or artery,vein) as its own structure, plus their union (merged).",
    ),
]
_LabelNames = Annotated[
    Path | None,
    typer.Option(
        "--label-names",
        help="nnU-Net dataset.json naming the labels (default: GT_DIR/../dataset.json when "
        "it exists).",
    ),
]
_Merged = Annotated[
    bool, typer.Option("--merged/--no-merged", help="With --labels: also the union.")
]
_Spacing = Annotated[
    str | None,
    typer.Option(
        "--spacing",
        help="Voxel size for the distances (hd95, assd, nsd) of files whose headers record "
        "none: one number or ZxHxW / HxW, e.g. 0.6x0.3x0.3.",
    ),
]
_Quiet = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress bar and no table.")
]


def evaluate_command(
    pred_dir: _PredDir,
    gt_dir: _GtDir,
    out: _Out = Path("topobench-results"),
    maps: _Maps = None,
    protocol: _Protocol = "default",
    window: _Window = None,
    betti_window: _BettiWindow = None,
    e0_gt_window: _E0GtWindow = None,
    cldice_window: _CldiceWindow = None,
    ags_window: _AgsWindow = None,
    slices: _Slices = None,
    connectivity: _Connectivity = None,
    metrics: _Metrics = None,
    threshold: _Threshold = None,
    channel: _Channel = None,
    pred_suffix: _PredSuffix = "",
    gt_suffix: _GtSuffix = "",
    workers: _Workers = 0,
    dask: _Dask = None,
    resume: _Resume = False,
    overwrite: _Overwrite = False,
    dataset: _Dataset = None,
    fmt: _Fmt = "rich",
    labels: _Labels = None,
    label_names: _LabelNames = None,
    merged: _Merged = True,
    spacing: _Spacing = None,
    quiet: _Quiet = False,
) -> None:
    """Evaluate every prediction in PRED_DIR against the target with the same name in GT_DIR.

    Exit status: 0 when every case succeeded, 1 when some case failed or had no partner,
    2 for a usage error.
    """
    from topobench.metrics import resolve_protocol

    if fmt not in ("rich", "md", "latex", "json"):
        raise typer.BadParameter(
            f"expected rich, md, latex or json, got {fmt!r}", param_hint="--format"
        )
    voxel = _parse_spacing(spacing)
    overrides = _protocol_overrides(
        connectivity, slices, metrics,
        betti_window=betti_window or window, e0_gt_window=e0_gt_window or window,
        cldice_window=cldice_window, ags_window=ags_window,
    )
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
    report = _run_with_progress(
        pred_dir, gt_dir, out, quiet=quiet, protocol=proto, threshold=threshold,
        channel=channel, pred_suffix=pred_suffix, target_suffix=gt_suffix, maps_dir=maps,
        workers=workers or None, dask=dask, resume=resume, overwrite=overwrite, dataset=dataset,
        **({"spacing": voxel} if voxel is not None else {}),
    )
    _print_summary(report.summary, fmt, out, quiet)
    _print_outcome(report, out, maps, fmt, quiet)
    if not report.ok:
        raise typer.Exit(code=1)


def _protocol_overrides(
    connectivity: int | None, slices: bool | None, metrics: str | None, **windows: str | None
) -> dict[str, object]:
    """The protocol parameters the options set (an option left out is not an override)."""
    overrides: dict[str, object] = {
        "connectivity": connectivity,
        "betti_slices": slices,
        "metrics": [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None,
    }
    for key, text in windows.items():
        given, value = _window_override(text)
        if given:  # "none" turns a preset's tiles back into the whole image
            overrides[key] = "whole" if value is None else value
    return overrides


def _progress_bar(quiet: bool) -> Progress:
    return Progress(
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


def _run_with_progress(pred_dir: Path, gt_dir: Path, out: Path, *, quiet: bool, **options: Any):
    """:func:`topobench.evaluate.run_evaluation` with a progress bar; Ctrl-C exits 130."""
    from topobench.evaluate import CaseResult, run_evaluation

    with library_errors():
        progress = _progress_bar(quiet)
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
            return run_evaluation(
                pred_dir, gt_dir, out, on_start=on_start, on_result=on_result, **options
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


def _print_summary(summary: dict, fmt: str, out: Path, quiet: bool) -> None:
    """The summary as JSON on stdout, a Markdown/LaTeX table (also saved) or a Rich table."""
    if fmt == "json":
        typer.echo(json.dumps(summary, indent=2))
    elif fmt in ("md", "latex"):
        from topobench.results.render import summary_table

        text = summary_table(summary, fmt)  # type: ignore[arg-type]
        (out / ("summary.md" if fmt == "md" else "summary.tex")).write_text(text, encoding="utf-8")
        if not quiet:
            typer.echo(text, nl=False)
    elif not quiet:
        console.print(_rich_summary(summary))


def _print_outcome(report: Any, out: Path, maps: Path | None, fmt: str, quiet: bool) -> None:
    """What resume changed, each failure, the probability-map hint, where the results are."""
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

"""``topobench train``: the paper's pretrain / fine-tune / post-process / evaluate protocol."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from topobench.catalog import FINETUNE_FRACTION, LOSSES, METRICS, metric_label
from topobench.cli._common import console, default_gamma_help, library_errors

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from topobench.training import TrainConfig, TrainEvent, TrainResult


def register(app: typer.Typer) -> None:
    """Add the ``train`` command to ``app``."""
    app.command("train")(train_command)


def _parse_patch(text: str | None) -> tuple[int, ...] | None:
    if text is None or text.strip().lower() in ("", "auto"):
        return None
    try:
        return tuple(int(p) for p in text.lower().replace("x", ",").split(",") if p.strip())
    except ValueError:
        raise typer.BadParameter(
            f"expected a size like 128x128 or 32x64x64, got {text!r}"
        ) from None


def train_command(
    data: Path = typer.Argument(..., help="nnU-Net-style dataset folder (imagesTr/, labelsTr/)."),
    loss: str = typer.Option(
        "closs", "--loss", help=f"Fine-tuning loss: {'|'.join(LOSSES)}."),
    gamma: float | None = typer.Option(
        None, "--gamma",
        help=f"Weight of the topological term (default per loss: {default_gamma_help()})."),
    epochs: int = typer.Option(20, "--epochs", help="Pretraining epochs N."),
    fold: int = typer.Option(0, "--fold", help="Cross-validation fold to hold out (0-4)."),
    out: Path = typer.Option(Path("runs"), "--out", help="Runs folder."),
    finetune_fraction: float = typer.Option(
        FINETUNE_FRACTION, "--finetune-fraction",
        help="Fine-tuning length as a share of N, rounded half up (at least 1)."),
    finetune_epochs: int | None = typer.Option(
        None, "--finetune-epochs", help="Explicit fine-tuning epochs (overrides the fraction)."),
    pretrained: Path | None = typer.Option(
        None, "--pretrained", help="Fine-tune from this run's pretrained model (same fold)."),
    protocol: str | None = typer.Option(
        None, "--protocol", help="Evaluation protocol (default: 'default' in 2D, 'vessap' in 3D)."),
    connectivity: int | None = typer.Option(
        None, "--connectivity", help="Foreground connectivity for evaluation (4/8, 6/26)."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:1, ..."),
    amp: bool | None = typer.Option(
        None, "--amp/--no-amp", help="Mixed precision (default: on for CUDA)."),
    patch_size: str | None = typer.Option(
        None, "--patch-size", help="Patch size, e.g. 128x128 or 32x64x64 (default by dim)."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Default 4 (2D), 2 (3D)."),
    iterations: int = typer.Option(50, "--iterations", help="Optimiser steps per epoch."),
    lr: float = typer.Option(1e-3, "--lr", help="Initial learning rate (poly decay)."),
    finetune_lr: float | None = typer.Option(
        None, "--finetune-lr", help="Fine-tuning learning rate (default: --lr)."),
    optimizer: str = typer.Option("adam", "--optimizer", help="adam (AdamW) or sgd (nnU-Net)."),
    depth: int = typer.Option(4, "--depth", help="U-Net resolution levels."),
    width: int = typer.Option(16, "--width", help="U-Net channels at the first level."),
    norm: str = typer.Option("instance", "--norm", help="instance|batch|group|none."),
    network: str = typer.Option(
        "unet", "--network",
        help="unet (topobench's) or plainconv (nnU-Net's PlainConvUNet, needs topobench[nnunet])."),
    foreground_fraction: float = typer.Option(
        0.33, "--foreground-fraction", help="Share of patches centred on foreground."),
    threads: int | None = typer.Option(
        None, "--threads", help="CPU threads for torch (1 is fastest on a busy machine)."),
    workers: int = typer.Option(
        0, "--workers", help="Processes drawing the training patches (0: the training one)."),
    eval_set: str = typer.Option("fold", "--eval-set", help="fold (held-out fold) or test."),
    run_name: str | None = typer.Option(None, "--run-name", help="Run directory name."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run."),
    no_predictions: bool = typer.Option(
        False, "--no-predictions", help="Do not write predicted masks."),
) -> None:
    """Pretrain with Dice & CE, fine-tune with LOSS, post-process and evaluate one fold."""
    # The signature is the option list (Typer); the body only hands off and prints.
    options = dict(locals())
    with library_errors():
        from topobench.training import train

        config = _config(options)
    progress, on_event = _progress_display()
    with library_errors(), progress:
        result = train(config, progress=on_event)
    _print_summary(result)


def _config(options: dict) -> TrainConfig:
    """The TrainConfig of the command's options (validated: a bad option raises by name)."""
    from topobench.training import TrainConfig

    o = dict(options)
    renamed = {"iterations": "iterations_per_epoch", "workers": "num_workers"}
    for old, new in renamed.items():
        o[new] = o.pop(old)
    o["patch_size"] = _parse_patch(o["patch_size"])
    o["save_predictions"] = not o.pop("no_predictions")
    return TrainConfig(**o)


def _progress_display() -> tuple[Progress, Callable[[TrainEvent], None]]:
    """A Rich progress display with one bar per stage, and the callback that drives it."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
        console=console, transient=False,
    )
    tasks: dict[str, TaskID] = {}

    def on_event(event: TrainEvent) -> None:
        if event.kind == "stage":
            total = event.epochs or event.steps
            tasks[event.phase] = progress.add_task(event.phase, total=total, info="")
            return
        task = tasks.get(event.phase)
        if task is None:
            return
        if event.phase in ("pretrain", "finetune"):
            done = event.epoch - 1 + event.step / max(event.steps, 1)
            info = (f"epoch {event.epoch}/{event.epochs} loss {event.loss:.4f} "
                    f"{event.throughput:.1f} patches/s")
            progress.update(task, completed=done, info=info)
        else:
            progress.update(task, completed=event.step)

    return progress, on_event


def _print_summary(result: TrainResult) -> None:
    """Where the run went, and the mean metrics of its three prediction variants."""
    from rich.table import Table

    rec = result.record
    console.print(f"run written to [bold]{result.run_dir}[/] ({rec['method']}, fold {rec['fold']}, "
                  f"{rec['epochs']} + {rec['finetune_epochs']} epochs, {rec['device']})")
    names = list(result.summary["postprocessed"])
    table = Table(title=f"mean over {len(rec['eval_cases'])} held-out cases")
    table.add_column("model")
    for n in names:
        table.add_column(metric_label(n, unit=True), justify="right")
    labels = {"pretrained": "pretrained (Dice & CE)", "raw": f"{rec['method']} (raw)",
              "postprocessed": f"{rec['method']} + post-processing"}
    scale = {n: METRICS[n].scale if n in METRICS else 1.0 for n in names}
    for kind, label in labels.items():
        table.add_row(label, *(f"{result.summary[kind][n] * scale[n]:.3f}" for n in names))
    console.print(table)

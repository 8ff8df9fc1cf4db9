"""``topobench nnunet ...``: train with nnU-Net and topobench's losses, evaluate its predictions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from topobench.catalog import FINETUNE_FRACTION, LOSSES
from topobench.cli._common import (
    console,
    default_gamma_help,
    err_console,
    library_errors,
    parse_window,
)

nnunet_app = typer.Typer(
    name="nnunet",
    help="nnU-Net v2: train with CLoss/clDice trainers, evaluate prediction folders.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add the ``nnunet`` command group to ``app``."""
    app.add_typer(nnunet_app, name="nnunet")


@nnunet_app.command("train")
def train_command(
    dataset: Annotated[str, typer.Argument(help="Dataset name or id, as for nnUNetv2_train.")],
    configuration: Annotated[str, typer.Argument(help="nnU-Net configuration: 2d, 3d_fullres...")],
    fold: Annotated[str, typer.Argument(help="Fold 0-4 or 'all'.")],
    loss: Annotated[
        str,
        typer.Option(
            "--loss", "-l",
            help=f"{'|'.join(LOSSES)}.",
        ),
    ] = "closs",
    gamma: Annotated[
        float | None,
        typer.Option("--gamma", "-g", help=f"Loss weight (default: {default_gamma_help()})."),
    ] = None,
    pretrained: Annotated[
        Path | None,
        typer.Option(
            "--pretrained",
            help=f"nnU-Net checkpoint to fine-tune ({FINETUNE_FRACTION:.0%} of its epochs, "
            "rounded half up, unless --epochs).",
        ),
    ] = None,
    finetune: Annotated[
        bool | None,
        typer.Option("--finetune/--no-finetune", help="Fine-tuning trainer."),
    ] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", help="Number of epochs.")] = None,
    iterations: Annotated[
        int | None,
        typer.Option(
            "--iterations", "--iterations-per-epoch",
            help="Training iterations per epoch (nnU-Net: 250; validation in proportion). "
            "With --epochs, a short run: --epochs 2 --iterations 10.",
        ),
    ] = None,
    trainer: Annotated[
        str | None,
        typer.Option("--trainer", "-tr", help="Any trainer class name (overrides --loss/--gamma)."),
    ] = None,
    plans: Annotated[str, typer.Option("--plans", "-p", help="Plans identifier.")] = "nnUNetPlans",
    device: Annotated[
        str, typer.Option("--device", help="auto (CUDA, else MPS, else CPU), cuda, cpu or mps.")
    ] = "auto",
    continue_training: Annotated[
        bool, typer.Option("--continue", "--c", help="Continue from the latest checkpoint.")
    ] = False,
    validation_only: Annotated[
        bool, typer.Option("--val", help="Only run the final validation.")
    ] = False,
    npz: Annotated[bool, typer.Option("--npz", help="Save validation probabilities.")] = False,
    disable_checkpointing: Annotated[
        bool, typer.Option("--disable-checkpointing", help="Do not write checkpoints.")
    ] = False,
    val_best: Annotated[
        bool, typer.Option("--val-best", help="Validate with checkpoint_best.pth.")
    ] = False,
) -> None:
    """Train one fold with nnU-Net's own training and a topobench trainer (no files copied)."""
    from topobench.nnunet import resolve_trainer_name, train

    with library_errors():
        name = resolve_trainer_name(
            trainer=trainer, loss=loss, gamma=gamma, pretrained=pretrained, finetune=finetune,
            epochs=epochs, iterations=iterations,
        )
        err_console.print(f"[bold]nnU-Net trainer:[/] {name}", highlight=False)
        train(
            dataset, configuration, fold, trainer=name, plans=plans,
            pretrained=pretrained, device=device, continue_training=continue_training,
            validation_only=validation_only, save_probabilities=npz,
            disable_checkpointing=disable_checkpointing, val_best=val_best,
        )


@nnunet_app.command(
    "predict",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def predict_command(ctx: typer.Context) -> None:
    """nnUNetv2_predict with topobench's trainers found by name; takes nnUNetv2_predict's options.

    Example: topobench nnunet predict -i IN -o OUT -d 1 -c 2d -f 0 -tr nnUNetTrainerCLoss_ft
    """
    from topobench.nnunet import predict

    with library_errors():
        predict(list(ctx.args))


def _means_table(means: dict[str, dict[str, float]]) -> Table:
    names = list(next(iter(means.values())).keys()) if means else []
    table = Table(title="nnU-Net predictions: mean over cases")
    table.add_column("variant")
    for name in names:
        table.add_column(name, justify="right")
    for variant, values in means.items():
        table.add_row(variant, *(f"{values[n]:.4f}" for n in names))
    return table


@nnunet_app.command("evaluate")
def evaluate_command(
    gt_dir: Annotated[
        Path | None,
        typer.Option(
            "-ref", "--ref",
            help="Reference labels (default for fold_K/validation: gt_segmentations), as "
            "nnUNetv2_evaluate_folder's -ref.",
        ),
    ] = None,
    pred_dir: Annotated[
        Path | None,
        typer.Option(
            "-pred", "--pred", help="nnU-Net predictions, e.g. fold_0/validation (required)."
        ),
    ] = None,
    pretrained: Annotated[
        Path | None,
        typer.Option(
            "--pretrained",
            help="The pretraining model's predictions: adds the topological post-processing.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o",
            help="Output folder for the metrics (required; never the prediction folder by "
            "default).",
        ),
    ] = None,
    protocol: Annotated[
        str, typer.Option("--protocol", help="roads|hrf|vessap|cld|default.")
    ] = "default",
    window: Annotated[
        str | None, typer.Option("--window", help="Betti/e0-Gt tiles: 375, 64x1024x1024.")
    ] = None,
    connectivity: Annotated[
        int | None, typer.Option("--connectivity", "-c", help="4/8 in 2D, 6/26 in 3D.")
    ] = None,
    label: Annotated[int, typer.Option("--label", help="Foreground label in the files.")] = 1,
    write_postprocessed: Annotated[
        bool,
        typer.Option("--write-postprocessed/--no-write-postprocessed", help="Save masks."),
    ] = True,
    workers: Annotated[
        int, typer.Option("--workers", "-j", help="Processes (0: all cores; 1: no pool).")
    ] = 1,
    resume: Annotated[
        bool, typer.Option("--resume", help="Keep earlier rows in --out whose masks are unchanged.")
    ] = False,
) -> None:
    """Topology metrics (and post-processing) for an nnU-Net prediction folder.

    Example: topobench nnunet evaluate -ref labelsTs -pred pred_ft -o eval/ --pretrained pred_pre
    """
    from topobench.nnunet import evaluate_predictions

    if pred_dir is None:
        raise typer.BadParameter("give the prediction folder: -pred PRED", param_hint="-pred")
    if out is None:
        raise typer.BadParameter(
            "give the output folder: -o OUT (results are not written into the prediction "
            "folder)", param_hint="--out",
        )
    overrides: dict[str, object] = {}
    if connectivity is not None:
        overrides["connectivity"] = connectivity
    if window is not None:
        overrides["betti_window"] = overrides["e0_gt_window"] = parse_window(window)
    with library_errors(), Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeRemainingColumn(), console=err_console, transient=True,
    ) as bar:
        task = bar.add_task("evaluating", total=None)

        def advance(case: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=escape(case))

        result = evaluate_predictions(
            pred_dir, gt_dir, pretrained_dir=pretrained, out_dir=out, protocol=protocol,
            label=label, write_postprocessed=write_postprocessed, workers=workers or None,
            resume=resume, progress=advance, **overrides,
        )
    console.print(_means_table(result.means()))
    console.print(f"results in {escape(str(result.out_dir))}", highlight=False)


@nnunet_app.command("trainer-name")
def trainer_name_command(
    loss: Annotated[str, typer.Argument(help="A make_loss name, e.g. closs.")],
    gamma: Annotated[float | None, typer.Option("--gamma", "-g", help="Loss weight.")] = None,
    finetune: Annotated[bool, typer.Option("--finetune", help="Fine-tuning variant.")] = False,
    epochs: Annotated[int | None, typer.Option("--epochs", help="Number of epochs.")] = None,
) -> None:
    """Print the trainer class name to pass to nnUNetv2_train -tr."""
    from topobench.nnunet import trainer_class_name

    with library_errors():
        typer.echo(trainer_class_name(loss, gamma, finetune=finetune, epochs=epochs))


@nnunet_app.command("ext-path")
def ext_path_command() -> None:
    """Print the folder for nnU-Net's nnUNet_extTrainer variable."""
    from topobench.nnunet import ext_trainer_dir

    typer.echo(str(ext_trainer_dir()))


@nnunet_app.command("install-trainers")
def install_trainers_command(
    trainer_dir: Annotated[
        Path | None, typer.Option("--trainer-dir", help="nnU-Net's trainer folder.")
    ] = None,
) -> None:
    """Write a shim module into nnU-Net's trainer folder so that -tr finds topobench's trainers."""
    from topobench.nnunet import install_trainers

    with library_errors():
        path = install_trainers(trainer_dir)
    console.print(f"installed {escape(str(path))}", highlight=False)


@nnunet_app.command("uninstall-trainers")
def uninstall_trainers_command(
    trainer_dir: Annotated[
        Path | None, typer.Option("--trainer-dir", help="nnU-Net's trainer folder.")
    ] = None,
) -> None:
    """Remove the shim module written by install-trainers."""
    from topobench.nnunet import uninstall_trainers

    with library_errors():
        path = uninstall_trainers(trainer_dir)
    if path is None:
        console.print("nothing to remove: the shim is not installed")
    else:
        console.print(f"removed {escape(str(path))}", highlight=False)

"""Everything that states a fact about metrics and losses agrees with ``topobench.catalog``.

The CLI (``--help`` texts and defaults), the trainers (``topobench train`` and the nnU-Net
trainer names), ``make_loss``, the evaluation and results tables, the run records and the docs
are each compared with the catalog, so that a changed default or a new metric cannot leave a
stale copy behind.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from topobench import catalog
from topobench.catalog import FINETUNE_FRACTION, LOSSES, METRICS, RUN_FORMAT
from topobench.cli import app

DOCS = Path(__file__).resolve().parents[1] / "docs"
DEFAULT_GAMMAS = {name: info.default_gamma for name, info in LOSSES.items()}


def _help(*command: str) -> str:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    return " ".join(result.output.replace("│", " ").split())


def _markdown_table(text: str, heading: str) -> list[list[str]]:
    """Rows (cells stripped, header and rule left out) of the first table under ``heading``."""
    section = text.split(f"\n{heading}\n", 1)[1]
    lines = section.split("\n\n## ", 1)[0].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break  # the first table ends at its first non-table line
        rows.append(line)
    return [[c.strip() for c in row.strip("|").split("|")] for row in rows[2:]]


def _number(cell: str) -> float | None:
    return None if cell.startswith("-") else float(cell)


# --------------------------------------------------------------------------------------------
# the facts that disagreed, one test each
# --------------------------------------------------------------------------------------------


def test_default_weights_agree_between_train_nnunet_and_docs() -> None:
    from topobench.nnunet.naming import DEFAULT_GAMMA, parse_trainer_name, trainer_class_name
    from topobench.training import LOSSES as TRAIN_LOSSES

    assert {n: i.default_gamma for n, i in TRAIN_LOSSES.items()} == DEFAULT_GAMMAS
    assert DEFAULT_GAMMA == DEFAULT_GAMMAS
    for name, info in LOSSES.items():
        # the name without "_g" stands for the default weight, in both directions
        plain = f"nnUNetTrainer{info.class_stem}"
        assert trainer_class_name(name) == plain
        assert parse_trainer_name(plain).gamma == info.default_gamma
    rows = _markdown_table((DOCS / "losses.md").read_text(encoding="utf-8"), "## Defaults")
    stated = {row[0].strip("`"): _number(row[3]) for row in rows}
    assert stated == DEFAULT_GAMMAS


def test_finetuning_length_agrees_between_train_and_nnunet(tmp_path: Path) -> None:
    from topobench.nnunet.naming import finetune_epoch_count
    from topobench.training import TrainConfig, finetune_epochs

    for n in range(1, 2001):
        assert finetune_epochs(n, TrainConfig.finetune_fraction) == finetune_epoch_count(n), n
    # 61 epochs: 3.05 -> 3 (the nnU-Net naming rounded up to 4); 70: 3.5 -> 4 (half up)
    assert (finetune_epoch_count(61), finetune_epoch_count(70), finetune_epoch_count(1000)) == (
        3, 4, 50,
    )
    torch = pytest.importorskip("torch")
    from topobench.nnunet import finetune_epochs_for_checkpoint, resolve_trainer_name

    ckpt = tmp_path / "checkpoint_final.pth"
    torch.save({"current_epoch": 61}, ckpt)
    assert finetune_epochs_for_checkpoint(ckpt) == 3
    assert resolve_trainer_name(loss="closs", pretrained=ckpt) == "nnUNetTrainerCLoss_ft_3epochs"


def test_run_format_is_one_name() -> None:
    from topobench import run_record as record_module
    from topobench.catalog import RUN_FORMATS_READ
    from topobench.nnunet.evaluation import run_record
    from topobench.training import runner

    assert runner.RUN_FORMAT is record_module.RUN_FORMAT is RUN_FORMAT
    assert RUN_FORMATS_READ[-1] == RUN_FORMAT and "topobench-run/1" in RUN_FORMATS_READ
    assert run_record({"loss": "closs"}, {})["format"] == RUN_FORMAT
    text = (DOCS / "training.md").read_text(encoding="utf-8")
    assert f'`format` ("{RUN_FORMAT}")' in text


def test_metric_names_labels_and_scales_agree() -> None:
    from topobench import evaluate
    from topobench.metrics import METRIC_NAMES, evaluate_case
    from topobench.results import table_model, tidy

    names = tuple(METRICS)
    assert METRIC_NAMES == tidy.CASE_METRICS == names
    percent = {m.name for m in METRICS.values() if m.percent}
    assert set(evaluate.PERCENT_METRICS) == tidy.FRACTION_METRICS == percent
    assert {"dice", "cldice", "ags"} <= percent
    for name, info in METRICS.items():
        assert evaluate.metric_label(name) == catalog.metric_label(name, unit=True)
        assert evaluate.format_value(0.5, name) == ("50.00" if info.percent else "0.500")
    assert evaluate.metric_label("e0_gt") == "e0-Gt" and evaluate.metric_label("dice") == "Dice (%)"
    for column in table_model.RESULT_COLUMNS:
        info = METRICS[column.metric]
        assert (column.label, column.latex, column.higher_is_better, column.scale,
                column.decimals) == (info.label, info.latex, info.higher_is_better, info.scale,
                                     info.decimals)
    # evaluate_case returns the catalog's metrics of the image's dimension, in its order
    target = np.zeros((24, 24), bool)
    target[4:20, 11:13] = True
    pred = target.copy()
    pred[10:13] = False
    keys = tuple(evaluate_case(pred, target))
    assert keys == tuple(m for m in catalog.metric_names(2) if m in keys)
    assert set(keys) >= {"dice", "cldice", "e", "e0", "e1", "e0_gt", "ags"}
    assert "e2" not in catalog.metric_names(2) and "e2" in catalog.metric_names(3)


def test_loss_names_display_names_and_masks_agree() -> None:
    from topobench.losses import LOSS_DISPLAY_NAMES, LOSS_NAMES
    from topobench.results import table_model, tidy

    assert LOSS_NAMES == tuple(LOSSES)
    assert LOSS_DISPLAY_NAMES == {n: i.display for n, i in LOSSES.items()}
    assert tidy.CRITICAL_MASK_OF_LOSS == {n: i.critical_mask for n, i in LOSSES.items()}
    assert table_model.LOSS_OF_METHOD == {i.display: n for n, i in LOSSES.items()}
    assert set(table_model.METHOD_ORDER) == {tidy.PRETRAINED_METHOD} | {
        i.display for i in LOSSES.values()
    }
    assert set(table_model.MASK_LABELS) == {i.critical_mask for i in LOSSES.values()}
    for info in LOSSES.values():
        assert catalog.loss_of_display_name(info.display) == info.name


# --------------------------------------------------------------------------------------------
# make_loss, the CLI, the trainers and the docs against the catalog
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(LOSSES))
def test_make_loss_builds_what_the_catalog_says(name: str) -> None:
    pytest.importorskip("torch")
    from topobench.losses import (
        ClDiceLoss,
        CompoundClDiceLoss,
        ContextLoss,
        DiceCELoss,
        make_loss,
    )

    info = LOSSES[name]
    loss = make_loss(name, gamma=info.default_gamma)
    assert getattr(loss, "gamma", None) == info.default_gamma
    assert getattr(loss, "alpha", None) == info.alpha
    expected = {"none": DiceCELoss, "context": ContextLoss, "thin": ContextLoss}.get(
        info.critical_mask, CompoundClDiceLoss if info.alpha is not None else ClDiceLoss
    )
    assert type(loss) is expected
    if expected is ContextLoss:
        assert loss.mask == info.critical_mask


def test_train_cli_help_states_the_catalog() -> None:
    text = _help("train")
    assert f"Fine-tuning loss: {'|'.join(LOSSES)}." in text
    assert f"[default: {FINETUNE_FRACTION:g}]" in text.split("--finetune-fraction", 1)[1][:200]
    gammas = re.search(r"--gamma <float> Weight of the topological term \(default per loss: "
                       r"(?P<list>[^)]*)\)", text)
    assert gammas is not None, text
    stated: dict[str, float] = {}
    for part in gammas["list"].split("; "):
        value, names = part.split(" for ")
        stated.update({n: float(value) for n in names.split(", ")})
    assert stated == {n: g for n, g in DEFAULT_GAMMAS.items() if g is not None}
    assert f"Comma-separated subset: {','.join(catalog.metric_names())}." in _help("evaluate")
    nnunet = _help("nnunet", "train")
    assert f"(default: {gammas['list']})" in nnunet
    assert f"{FINETUNE_FRACTION:.0%} of its epochs" in nnunet


def test_train_config_defaults_are_the_catalog_s() -> None:
    from topobench.cli.train_cmd import train_command
    from topobench.training import TrainConfig

    assert TrainConfig.finetune_fraction == FINETUNE_FRACTION
    import inspect

    option = inspect.signature(train_command).parameters["finetune_fraction"].default
    assert option.default == FINETUNE_FRACTION


def test_written_out_nnunet_trainers_use_the_default_weights() -> None:
    pytest.importorskip("nnunetv2")
    pytest.importorskip("torch")
    import topobench.nnunet.trainers as trainers

    seen = set()
    for name in trainers.__all__:
        cls = getattr(trainers, name)
        if getattr(cls, "spec", None) is None:
            continue
        spec = cls.spec
        assert spec.class_name == name  # one spelling, whatever the defaults are
        if "_g" not in name:
            assert spec.gamma == LOSSES[spec.loss].default_gamma, name
            seen.add(spec.loss)
    assert seen == set(LOSSES)

    # what a trainer writes to topobench.json (and so to the nnU-Net run record)
    from types import SimpleNamespace

    from topobench.losses import make_loss
    from topobench.nnunet.evaluation import run_record

    for name, info in LOSSES.items():
        spec = trainers.trainer_class(f"nnUNetTrainer{info.class_stem}_ft").spec
        fake = SimpleNamespace(
            spec=spec, loss=SimpleNamespace(loss=make_loss(name, gamma=spec.gamma), weights=[1]),
            plans_manager=SimpleNamespace(dataset_name="D"), configuration_name="2d", fold=0,
            topology_scales="full", num_epochs=50, num_iterations_per_epoch=250,
        )
        config = trainers.nnUNetTrainerTopobench.topobench_config(fake)
        assert (config["method"], config["alpha"], config["critical_mask"], config["gamma"]) == (
            info.display, info.alpha, info.critical_mask, info.default_gamma)
        assert config["finetune_fraction"] == FINETUNE_FRACTION
        record = run_record(config, {})
        assert (record["method"], record["critical_mask"]) == (info.display, info.critical_mask)


def test_docs_quote_the_catalog() -> None:
    from topobench.nnunet.naming import parse_trainer_name

    losses_md = (DOCS / "losses.md").read_text(encoding="utf-8")
    for row in _markdown_table(losses_md, "## Defaults"):
        info = LOSSES[row[0].strip("`")]
        assert _number(row[1]) == info.alpha, row
        assert row[2] == info.critical_mask, row
    assert {r[0].strip("`") for r in _markdown_table(losses_md, "## Defaults")} == set(LOSSES)
    for row in _markdown_table(losses_md, "## Choosing a loss by name"):
        assert LOSSES[row[0].strip("`")].display == row[1], row

    # the other pages point at the one table instead of repeating the numbers
    training_md = (DOCS / "training.md").read_text(encoding="utf-8")
    gamma_row = next(r for r in _markdown_table(training_md, "## Commands")
                     if r[0] == "`--gamma`")
    assert "losses.md#defaults" in gamma_row[2] and not re.search(r"\d", gamma_row[2])
    fraction_row = next(r for r in _markdown_table(training_md, "## Commands")
                        if r[0].startswith("`--finetune-fraction`"))
    assert fraction_row[1].startswith(f"{FINETUNE_FRACTION:g} ")
    examples = re.findall(r"N = (\d+)\s+gives\s+(?:the paper's )?(\d+)", training_md)
    assert len(examples) >= 3
    for n, ft in examples:
        assert catalog.finetune_epoch_count(int(n)) == int(ft), (n, ft)

    nnunet_md = (DOCS / "nnunet.md").read_text(encoding="utf-8")
    assert "losses.md#defaults" in nnunet_md
    rows = _markdown_table(nnunet_md, "## Trainers")
    assert len(rows) == 7
    for row in rows:
        names = re.findall(r"`(nnUNetTrainer\w+)`", row[0])
        values = [v.strip() for v in row[2].split(",")]
        assert len(values) == len(names), row
        for name, value in zip(names, values, strict=True):
            spec = parse_trainer_name(name)
            assert spec is not None, name
            if value == "default":
                assert spec.gamma == LOSSES[spec.loss].default_gamma is not None, name
            elif value == "-":
                assert spec.gamma is None and LOSSES[spec.loss].default_gamma is None, name
            else:  # an explicit weight: the name carries it, and it is not the default
                assert spec.gamma == float(value) != LOSSES[spec.loss].default_gamma, name
    for n, name in re.findall(r"(\d+) ->\s+`(_ft\w*)`", nnunet_md):
        epochs = catalog.finetune_epoch_count(int(n))
        assert name == ("_ft" if epochs == catalog.finetune_epoch_count(1000)
                        else f"_ft_{epochs}epochs"), (n, name)

"""Trainer class names: one name per configuration, read back exactly."""

from __future__ import annotations

import pytest

from topobench.errors import InvalidParameterError
from topobench.nnunet.naming import (
    DEFAULT_GAMMA,
    LOSS_CLASS_STEMS,
    TrainerSpec,
    finetune_epoch_count,
    parse_trainer_name,
    trainer_class_name,
)

GAMMAS = [0.0, 0.03, 0.08, 0.1, 0.2, 0.25, 0.3, 0.5, 1.0]


@pytest.mark.parametrize("loss", [k for k in LOSS_CLASS_STEMS if k != "dice_ce"])
@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("finetune", [False, True])
@pytest.mark.parametrize("epochs", [None, 1, 13])
def test_round_trip(loss: str, gamma: float, finetune: bool, epochs: int | None) -> None:
    spec = TrainerSpec(loss, gamma, finetune, epochs)
    name = spec.class_name
    assert name.isidentifier()
    assert parse_trainer_name(name) == spec


def test_paper_names() -> None:
    assert trainer_class_name("closs") == "nnUNetTrainerCLoss"
    assert trainer_class_name("closs", 0.2) == "nnUNetTrainerCLoss"
    assert trainer_class_name("closs", 0.08) == "nnUNetTrainerCLoss_g0p08"
    assert trainer_class_name("closs", 0.1, finetune=True) == "nnUNetTrainerCLoss_g0p1_ft"
    assert trainer_class_name("cldice") == "nnUNetTrainerClDice"
    assert trainer_class_name("compound_cldice", 0.3) == "nnUNetTrainerCompoundClDice_g0p3"
    assert trainer_class_name("dice_ce", finetune=True) == "nnUNetTrainerDiceCE_ft"
    assert trainer_class_name("closs_dice", 0.08) == "nnUNetTrainerCLossDice_g0p08"


def test_longest_stem_wins() -> None:
    spec = parse_trainer_name("nnUNetTrainerCLossDice_ft")
    assert spec == TrainerSpec("closs_dice", DEFAULT_GAMMA["closs_dice"], True)
    assert parse_trainer_name("nnUNetTrainerThinCLoss").loss == "thin_closs"


@pytest.mark.parametrize(
    "name",
    [
        "nnUNetTrainer",
        "nnUNetTrainerCLoss_g0p2",  # the default weight has no _g part
        "nnUNetTrainerCLoss_g0p10",  # one spelling per weight
        "nnUNetTrainerCLoss_g2p0",  # above 1
        "nnUNetTrainerCLoss_0epochs",
        "nnUNetTrainerCLoss_01epochs",
        "nnUNetTrainerCLoss_ft_g0p1",  # parts in the documented order only
        "nnUNetTrainerDiceCE_g0p1",  # Dice & CE has no weight
        "nnUNetTrainerCLossX",
        "xnnUNetTrainerCLoss",
    ],
)
def test_not_a_name(name: str) -> None:
    assert parse_trainer_name(name) is None


@pytest.mark.parametrize(
    ("loss", "gamma", "epochs"),
    [
        ("nope", 0.2, None),
        ("closs", 1.5, None),
        ("closs", -0.1, None),
        ("closs", float("nan"), None),
        ("dice_ce", 0.2, None),
        ("closs", 0.2, 0),
    ],
)
def test_bad_spec(loss: str, gamma: float, epochs: int | None) -> None:
    with pytest.raises(InvalidParameterError):
        TrainerSpec(loss, gamma, epochs=epochs)


def test_finetune_epoch_count() -> None:
    assert finetune_epoch_count(1000) == 50  # the paper's 50 epochs
    assert finetune_epoch_count(250) == 13
    assert finetune_epoch_count(10) == 1
    assert finetune_epoch_count(1) == 1


def test_to_dict() -> None:
    d = TrainerSpec("closs", 0.1, True).to_dict()
    assert d == {"loss": "closs", "gamma": 0.1, "finetune": True, "epochs": None,
                 "iterations": None, "trainer": "nnUNetTrainerCLoss_g0p1_ft"}


def test_iterations_per_epoch_in_the_name() -> None:
    spec = TrainerSpec("closs", 0.1, True, 3, 12)
    assert spec.class_name == "nnUNetTrainerCLoss_g0p1_ft_3epochs_12iters"
    assert parse_trainer_name(spec.class_name) == spec
    assert parse_trainer_name("nnUNetTrainerDiceCE_10iters") == TrainerSpec(
        "dice_ce", None, iterations=10
    )
    assert parse_trainer_name("nnUNetTrainerCLoss_10iters_2epochs") is None  # one order
    assert parse_trainer_name("nnUNetTrainerCLoss_0iters") is None
    with pytest.raises(InvalidParameterError, match="iterations"):
        TrainerSpec("closs", 0.2, iterations=0)

"""``topobench nnunet`` commands that need no training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import topobench.nnunet
from topobench.cli import app
from topobench.nnunet import ext_trainer_dir

runner = CliRunner()


def test_trainer_name() -> None:
    result = runner.invoke(app, ["nnunet", "trainer-name", "closs", "--gamma", "0.1", "--finetune"])
    assert result.exit_code == 0 and result.output.strip() == "nnUNetTrainerCLoss_g0p1_ft"
    result = runner.invoke(app, ["nnunet", "trainer-name", "closs", "--gamma", "3"])
    assert result.exit_code == 2 and "gamma" in result.output


def test_ext_path() -> None:
    result = runner.invoke(app, ["nnunet", "ext-path"])
    assert result.exit_code == 0 and Path(result.output.strip()) == ext_trainer_dir()


def test_install_uninstall(tmp_path: Path) -> None:
    folder = tmp_path / "nnUNetTrainer"
    folder.mkdir()
    result = runner.invoke(app, ["nnunet", "install-trainers", "--trainer-dir", str(folder)])
    assert result.exit_code == 0 and (folder / "topobench_trainers.py").is_file()
    result = runner.invoke(app, ["nnunet", "uninstall-trainers", "--trainer-dir", str(folder)])
    assert result.exit_code == 0 and not (folder / "topobench_trainers.py").exists()
    result = runner.invoke(app, ["nnunet", "uninstall-trainers", "--trainer-dir", str(folder)])
    assert result.exit_code == 0 and "not installed" in result.output
    missing = str(tmp_path / "x")
    result = runner.invoke(app, ["nnunet", "install-trainers", "--trainer-dir", missing])
    assert result.exit_code == 2 and "not a folder" in result.output


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[tuple, dict[str, Any]]]:
    """Record what the train command hands to the library instead of training."""
    recorded: list[tuple[tuple, dict[str, Any]]] = []
    monkeypatch.setattr(topobench.nnunet, "train", lambda *a, **k: recorded.append((a, k)))
    return recorded


def test_train_arguments(calls: list) -> None:
    result = runner.invoke(app, [
        "nnunet", "train", "Dataset001_Roads", "2d", "3", "--loss", "compound_cldice",
        "--gamma", "0.3", "--device", "cpu", "--npz", "--plans", "nnUNetResEncUNetMPlans",
    ])
    assert result.exit_code == 0, result.output
    (args, kwargs), = calls
    assert args == ("Dataset001_Roads", "2d", "3")
    assert kwargs["trainer"] == "nnUNetTrainerCompoundClDice_g0p3"
    assert kwargs["device"] == "cpu" and kwargs["save_probabilities"] is True
    assert kwargs["plans"] == "nnUNetResEncUNetMPlans" and kwargs["pretrained"] is None


def test_train_finetune_from_checkpoint(calls: list, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    ckpt = tmp_path / "checkpoint_final.pth"
    torch.save({"current_epoch": 1000}, ckpt)
    result = runner.invoke(app, ["nnunet", "train", "1", "2d", "0", "--pretrained", str(ckpt)])
    assert result.exit_code == 0, result.output
    (_, kwargs), = calls
    assert kwargs["trainer"] == "nnUNetTrainerCLoss_ft" and kwargs["pretrained"] == ckpt
    assert "nnUNetTrainerCLoss_ft" in result.output


def test_train_bad_loss(calls: list) -> None:
    result = runner.invoke(app, ["nnunet", "train", "1", "2d", "0", "--loss", "focal"])
    assert result.exit_code == 2 and "unknown loss" in result.output and not calls


def test_train_short_run_and_device_auto(calls: list) -> None:
    result = runner.invoke(app, ["nnunet", "train", "1", "2d", "0", "--epochs", "2",
                                 "--iterations", "10"])
    assert result.exit_code == 0, result.output
    (_, kwargs), = calls
    assert kwargs["trainer"] == "nnUNetTrainerCLoss_2epochs_10iters"
    assert kwargs["device"] == "auto"


def test_resolve_device() -> None:
    pytest.importorskip("torch")
    import torch

    from topobench.errors import InvalidParameterError
    from topobench.nnunet.launch import resolve_device

    auto = resolve_device("auto")
    assert auto in ("cuda", "mps", "cpu") and (auto == "cuda") == torch.cuda.is_available()
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(InvalidParameterError, match="auto, cuda, cpu or mps"):
        resolve_device("tpu")


def test_evaluate_takes_named_folders_and_an_output_folder(tmp_path: Path) -> None:
    result = runner.invoke(app, ["nnunet", "evaluate", str(tmp_path), str(tmp_path)])
    assert result.exit_code == 2  # the folders are named options now, never positional
    result = runner.invoke(app, ["nnunet", "evaluate", "-ref", str(tmp_path)])
    assert result.exit_code == 2 and "-pred" in result.output
    result = runner.invoke(app, ["nnunet", "evaluate", "-ref", str(tmp_path), "-pred",
                                 str(tmp_path)])
    assert result.exit_code == 2 and "-o OUT" in result.output

"""nnU-Net really trains with the topobench trainers (slow: plans, preprocesses and trains).

A tiny synthetic 2D dataset (8 cases of 64x64 thin lines) is planned and preprocessed with
nnU-Net's own command under tmp_path; training is cut to one epoch of three iterations.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from typer.testing import CliRunner

pytestmark = pytest.mark.slow

pytest.importorskip("nnunetv2")
torch = pytest.importorskip("torch")

import nnunetv2.training.nnUNetTrainer.nnUNetTrainer as nnunet_trainer_module  # noqa: E402
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer  # noqa: E402

import topobench.nnunet.trainers as trainers  # noqa: E402
from topobench.cli import app  # noqa: E402
from topobench.io import read_mask  # noqa: E402
from topobench.nnunet.deep_supervision import DeepSupervisionTopologyLoss  # noqa: E402
from topobench.results.records import read_run  # noqa: E402

DATASET_ID = 991
DATASET = f"Dataset{DATASET_ID}_TopoLines"


def _write_dataset(raw: Path, n: int = 8, size: int = 64) -> None:
    folder = raw / DATASET
    (folder / "imagesTr").mkdir(parents=True)
    (folder / "labelsTr").mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        label = np.zeros((size, size), np.uint8)
        for _ in range(3):
            start = int(rng.integers(4, size - 6))
            if rng.random() < 0.5:
                label[start:start + 2, :] = 1
            else:
                label[:, start:start + 2] = 1
        image = np.clip(label * 150 + rng.normal(60, 20, label.shape), 0, 255).astype(np.uint8)
        iio.imwrite(folder / "imagesTr" / f"lines_{i:03d}_0000.png", image)
        iio.imwrite(folder / "labelsTr" / f"lines_{i:03d}.png", label)
    (folder / "dataset.json").write_text(json.dumps({
        "channel_names": {"0": "grey"},
        "labels": {"background": 0, "line": 1},
        "numTraining": n,
        "file_ending": ".png",
    }))


@pytest.fixture(scope="module")
def nnunet_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("nnunet")
    dirs = {k: root / k for k in ("raw", "preprocessed", "results")}
    _write_dataset(dirs["raw"])
    env = dict(os.environ)
    env.update({
        "nnUNet_raw": str(dirs["raw"]), "nnUNet_preprocessed": str(dirs["preprocessed"]),
        "nnUNet_results": str(dirs["results"]), "nnUNet_def_n_proc": "1",
        "nnUNet_n_proc_DA": "1",
    })
    subprocess.run(
        [sys.executable, "-m", "nnunetv2.experiment_planning.plan_and_preprocess_entrypoints",
         "-d", str(DATASET_ID), "-c", "2d", "-np", "1", "-npfp", "1"],
        env=env, check=True, capture_output=True, timeout=300,
    )
    return dirs


@pytest.fixture
def short_training(nnunet_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """nnU-Net's environment, and every training cut to 1 epoch of 3 iterations, on CPU."""
    monkeypatch.setenv("nnUNet_raw", str(nnunet_dirs["raw"]))
    monkeypatch.setenv("nnUNet_preprocessed", str(nnunet_dirs["preprocessed"]))
    monkeypatch.setenv("nnUNet_results", str(nnunet_dirs["results"]))
    monkeypatch.setenv("nnUNet_n_proc_DA", "0")
    monkeypatch.setattr(nnunet_trainer_module, "default_num_processes", 1)
    original = nnUNetTrainer.on_train_start

    def on_train_start(self: nnUNetTrainer) -> None:
        self.num_epochs = min(self.num_epochs, 1)
        self.num_iterations_per_epoch = 3
        self.num_val_iterations_per_epoch = 1
        original(self)

    monkeypatch.setattr(nnUNetTrainer, "on_train_start", on_train_start)
    torch.manual_seed(0)


def _instantiate(cls: type, nnunet_dirs: dict[str, Path]) -> nnUNetTrainer:
    pre = nnunet_dirs["preprocessed"] / DATASET
    plans = json.loads((pre / "nnUNetPlans.json").read_text())
    plans["continue_training"] = False  # what nnU-Net's get_trainer_from_args adds
    dataset_json = json.loads((pre / "dataset.json").read_text())
    return cls(plans=plans, configuration="2d", fold=0, dataset_json=dataset_json,
               device=torch.device("cpu"))


@pytest.mark.parametrize("name", [
    "nnUNetTrainerCLoss",
    "nnUNetTrainerCLoss_g0p08",
    "nnUNetTrainerCLoss_g0p1_ft",
    "nnUNetTrainerCLossDice",
    "nnUNetTrainerThinCLoss",
    "nnUNetTrainerClDice",
    "nnUNetTrainerCompoundClDice",
    "nnUNetTrainerDiceCE_ft",
])
def test_trainer_trains(name: str, nnunet_dirs: dict[str, Path], short_training: None) -> None:
    trainer = _instantiate(trainers.trainer_class(name), nnunet_dirs)
    if trainer.spec.finetune:
        assert trainer.num_epochs == 50  # 5% of nnU-Net's 1000, before the cut
    trainer.run_training()
    assert isinstance(trainer.loss, DeepSupervisionTopologyLoss)
    assert len(trainer.loss.weights) == 4 and trainer.loss.weights[-1] == 0
    log = getattr(trainer.logger, "local_logger", trainer.logger).my_fantastic_logging
    assert len(log["train_losses"]) == 1 and math.isfinite(log["train_losses"][0])
    assert math.isfinite(log["val_losses"][0])
    config = json.loads((Path(trainer.output_folder) / trainers.CONFIG_FILE).read_text())
    assert config["trainer"] == name and config["loss"] == trainer.spec.loss
    assert config["gamma"] == trainer.spec.gamma and config["dataset"] == DATASET
    checkpoint = torch.load(Path(trainer.output_folder) / "checkpoint_final.pth",
                            map_location="cpu", weights_only=False)
    assert checkpoint["trainer_name"] == name


def test_pretrain_finetune_predict_evaluate(
    nnunet_dirs: dict[str, Path], short_training: None, tmp_path: Path
) -> None:
    """The paper's protocol through topobench's commands only."""
    runner = CliRunner()
    results = nnunet_dirs["results"] / DATASET
    raw = nnunet_dirs["raw"] / DATASET

    def invoke(*args: str) -> None:
        result = runner.invoke(app, ["nnunet", *args])
        assert result.exit_code == 0, result.output + repr(result.exception)

    invoke("train", str(DATASET_ID), "2d", "0", "--trainer", "nnUNetTrainer", "--device", "cpu")
    pretrained = results / "nnUNetTrainer__nnUNetPlans__2d" / "fold_0" / "checkpoint_final.pth"
    assert pretrained.is_file()

    invoke("train", str(DATASET_ID), "2d", "0", "--loss", "closs", "--pretrained",
           str(pretrained), "--device", "cpu")
    name = "nnUNetTrainerCLoss_ft_1epochs"  # 5% of the 1 epoch the pretraining ran
    fold = results / f"{name}__nnUNetPlans__2d" / "fold_0"
    assert (fold / "checkpoint_final.pth").is_file()
    assert sorted(p.name for p in (fold / "validation").glob("*.png"))

    for trainer, out in (("nnUNetTrainer", "pred_pre"), (name, "pred_ft")):
        invoke("predict", "-i", str(raw / "imagesTr"), "-o", str(tmp_path / out),
               "-d", str(DATASET_ID), "-c", "2d", "-f", "0", "-tr", trainer,
               "-device", "cpu", "-npp", "1", "-nps", "1", "--disable_tta")
    predicted = sorted(p.name for p in (tmp_path / "pred_ft").glob("*.png"))
    assert len(predicted) == 8

    invoke("evaluate", "-ref", str(raw / "labelsTr"), "-pred", str(tmp_path / "pred_ft"),
           "--pretrained", str(tmp_path / "pred_pre"), "--out", str(tmp_path / "eval"))
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert summary["n_cases"] == 8
    assert set(summary["mean"]) == {"raw", "pretrained", "postprocessed"}
    for variant in summary["mean"].values():
        assert 0.0 <= variant["dice"] <= 1.0 and variant["e"] >= 0.0
    for file_name in predicted:
        post = read_mask(tmp_path / "eval" / "postprocessed" / file_name)
        ft = iio.imread(tmp_path / "pred_ft" / file_name) == 1
        assert not (post & ~ft).any()  # the post-processing never adds a pixel

    # The validation folders: references found in nnUNet_preprocessed, a run record written.
    pre_validation = pretrained.parent / "validation"
    invoke("evaluate", "-pred", str(fold / "validation"), "--pretrained", str(pre_validation),
           "-o", str(fold / "validation" / "topobench"))
    rows = read_run(fold / "validation" / "topobench")
    assert set(rows["method"]) == {"nnU-Net", "CLoss"}
    assert set(rows["case"]) == {p.stem for p in (fold / "validation").glob("*.png")}

"""A whole nnU-Net training step with the topobench trainers, against nnU-Net's own trainer.

Makes a synthetic 2D dataset (8 vessel images of ``--size`` pixels, ``topobench.synth``) in a
temporary folder, plans and preprocesses it with nnU-Net, then times ``train_step`` (forward,
deep-supervision loss, backward, SGD step) of ``nnUNetTrainer`` and of the topobench trainers on
the same batch. The network is first trained for ``--warmup`` steps with nnU-Net's loss, so that
its prediction, and with it the critical mask, is not the blank output of a fresh network.

Median process CPU time over ``--repeats`` steps, interleaved; ratios against ``nnUNetTrainer``
in the same run (the paper, Table 7, on an A100: clDice 2.9x and CLoss 3.5x Dice & CE per epoch).
Needs nnU-Net. Usage::

    python benchmarks/bench_nnunet_train.py --size 256 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

from topobench.synth import make_case

TRAINERS = ("nnUNetTrainer", "nnUNetTrainerCLoss", "nnUNetTrainerClDice",
            "nnUNetTrainerCompoundClDice")


def make_dataset(raw: Path, size: int) -> str:
    name = "Dataset990_BenchVessels"
    folder = raw / name
    (folder / "imagesTr").mkdir(parents=True)
    (folder / "labelsTr").mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        label = make_case("vessels2d", seed=i, shape=(size, size)).target.astype(np.uint8)
        image = np.clip(label * 120 + rng.normal(70, 25, label.shape), 0, 255).astype(np.uint8)
        iio.imwrite(folder / "imagesTr" / f"v_{i:03d}_0000.png", image)
        iio.imwrite(folder / "labelsTr" / f"v_{i:03d}.png", label)
    (folder / "dataset.json").write_text(json.dumps({
        "channel_names": {"0": "grey"}, "labels": {"background": 0, "vessel": 1},
        "numTraining": 8, "file_ending": ".png",
    }))
    return name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for key in ("raw", "preprocessed", "results"):
            os.environ[f"nnUNet_{key}"] = str(root / key)
        os.environ["nnUNet_n_proc_DA"] = "1"
        name = make_dataset(root / "raw", args.size)
        subprocess.run(
            [sys.executable, "-m", "nnunetv2.experiment_planning.plan_and_preprocess_entrypoints",
             "-d", "990", "-c", "2d", "-np", "1", "-npfp", "1"],
            check=True, capture_output=True,
        )
        os.environ["nnUNet_n_proc_DA"] = "0"

        from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

        from topobench.nnunet.trainers import trainer_class

        pre = root / "preprocessed" / name
        plans = json.loads((pre / "nnUNetPlans.json").read_text())
        dataset_json = json.loads((pre / "dataset.json").read_text())
        config = plans["configurations"]["2d"]

        trainers = {}
        for trainer_name in TRAINERS:
            cls = nnUNetTrainer if trainer_name == "nnUNetTrainer" else trainer_class(trainer_name)
            trainer = cls(plans=dict(plans, continue_training=False), configuration="2d", fold=0,
                          dataset_json=dataset_json, device=torch.device("cpu"))
            trainer.print_to_log_file = lambda *a, **k: None
            trainer.initialize()
            trainers[trainer_name] = trainer
        base = trainers["nnUNetTrainer"]
        base.dataloader_train, _ = base.get_dataloaders()
        batch = next(base.dataloader_train)
        for _ in range(args.warmup):
            base.train_step(batch)
        state = base.network.state_dict()
        for trainer in trainers.values():
            trainer.network.load_state_dict(state)

        times: dict[str, list[float]] = {n: [] for n in trainers}
        for trainer in trainers.values():
            trainer.train_step(batch)  # warm-up
        for _ in range(args.repeats):
            for trainer_name, trainer in trainers.items():
                trainer.network.load_state_dict(state)
                start = time.process_time()
                trainer.train_step(batch)
                times[trainer_name].append(time.process_time() - start)

    medians = {n: statistics.median(t) for n, t in times.items()}
    print(f"nnU-Net 2d plan: patch {config['patch_size']}, batch {config['batch_size']}, "
          f"{len(config['architecture']['arch_kwargs']['features_per_stage'])} stages; "
          f"{torch.get_num_threads()} threads")
    print(f"{'trainer':30s} {'CPU s/step':>10s} {'x nnUNetTrainer':>16s}")
    for trainer_name, t in medians.items():
        print(f"{trainer_name:30s} {t:10.3f} {t / medians['nnUNetTrainer']:16.2f}")


if __name__ == "__main__":
    main()

"""Synthetic run directories following the run-record contract of ``topobench train``."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

METRICS = ("dice", "cldice", "e", "e0", "e1", "e0_gt", "ags")


def write_run(
    root: Path,
    name: str,
    *,
    dataset: str = "Roads",
    loss: str = "closs",
    method: str = "CLoss",
    gamma: float | None = 0.2,
    fold: int = 0,
    seed: int | None = 0,
    epochs: int = 100,
    finetune_epochs: int = 5,
    values: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
    cases: Sequence[str] = ("a", "b", "c"),
    status: str = "complete",
    seconds_per_epoch: float = 2.0,
    seconds_finetune: float = 600.0,
) -> Path:
    """Write ``root/name`` with run.json and the three metric CSVs.

    ``values[kind][metric]`` gives the per-case figures of ``kind`` in
    (pretrained, raw, postprocessed); metrics left out are 0.5 for every case.
    """
    run_dir = root / name
    run_dir.mkdir(parents=True)
    record: dict[str, Any] = {
        "format": "topobench-run/1",
        "topobench_version": "0.1.0",
        "dataset": dataset,
        "loss": loss,
        "method": method,
        "gamma": gamma,
        "alpha": 0.5,
        "critical_mask": None,
        "epochs": epochs,
        "finetune_epochs": finetune_epochs,
        "fold": fold,
        "seed": seed,
        "protocol": {"name": "roads", "betti_window": 375},
        "device": "cpu",
        "versions": {"topobench": "0.1.0"},
        "seconds_per_epoch": {"pretrain": 1.0, "finetune": seconds_per_epoch},
        "seconds_total": {"pretrain": 100.0, "finetune": seconds_finetune, "inference": 1.0,
                          "evaluation": 1.0},
        "peak_memory_mb": 10.0,
        "pretrained_from": None,
        "status": status,
    }
    (run_dir / "run.json").write_text(json.dumps(record))
    values = values or {}
    for kind in ("pretrained", "raw", "postprocessed"):
        given = values.get(kind, {})
        frame = pd.DataFrame({"case": list(cases)})
        for metric in METRICS:
            frame[metric] = list(given.get(metric, [0.5] * len(cases)))
        frame["seconds"] = 0.1
        frame.to_csv(run_dir / f"metrics_{kind}.csv", index=False)
    return run_dir


@pytest.fixture
def make_run(tmp_path: Path) -> Callable[..., Path]:
    """``make_run(name, **options)`` writes a run under ``tmp_path / "runs"``."""

    def make(name: str, **options: Any) -> Path:
        return write_run(tmp_path / "runs", name, **options)

    return make

"""Smoke run of the gap-closing benchmark: the whole pipeline at toy sizes, and its resume."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("torch")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_gap_closing.py"


def _load():
    spec = importlib.util.spec_from_file_location("bench_gap_closing", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_gap_closing"] = module
    spec.loader.exec_module(module)
    return module


def test_smoke_run_writes_paired_comparisons_and_resumes(tmp_path: Path, capsys) -> None:
    bench = _load()
    out = tmp_path / "gaps"
    assert bench.main(["--smoke", "--out", str(out), "--workers", "1", "--seeds", "2"]) == 0
    frame = pd.concat([pd.read_csv(out / f"seed{s}.csv") for s in (0, 1)])
    configs = {c.name for c in bench.MAIN} | {"pretrained"}
    assert set(frame["config"]) == configs
    assert frame["fade_recall"].between(0, 1).all() and frame["dice"].between(0, 1).all()
    table = pd.read_csv(out / "comparison_with.csv")
    assert set(table["config"]) == {c.name for c in bench.MAIN}
    closs = table.set_index("config").loc["closs"]
    assert 0.0 <= closs["e0_gt_p"] <= 1.0 and closs["e0_gt_seeds_better"].endswith("/2")
    # post-processing never adds a pixel: Dice & CE "with" covers no more of the fades
    rows = frame[frame["config"] == "dice_ce"].pivot_table(
        index=["seed", "case"], columns="post", values="fade_recall")
    assert (rows["with"] <= rows["without"] + 1e-12).all()
    before = (out / "seed0.csv").read_text()
    assert bench.main(["--smoke", "--out", str(out), "--workers", "1", "--seeds", "2"]) == 0
    assert (out / "seed0.csv").read_text() == before  # resumed: nothing re-trained
    assert "fine-tuning step" in capsys.readouterr().out


def test_another_setup_in_the_same_folder_is_refused(tmp_path: Path) -> None:
    bench = _load()
    out = tmp_path / "gaps"
    out.mkdir()
    (out / "setup.json").write_text('{"size": 1}')
    assert bench.main(["--smoke", "--out", str(out), "--workers", "1", "--seeds", "1"]) == 2

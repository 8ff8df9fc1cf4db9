"""The ``topobench train`` command."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from topobench.cli import app

runner = CliRunner()
TINY = ["--epochs", "2", "--iterations", "2", "--batch-size", "2", "--depth", "2", "--width",
        "4", "--patch-size", "16x16", "--threads", "1"]


def test_train_then_finetune_from_it(tiny2d: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    res = runner.invoke(app, ["train", str(tiny2d), "--loss", "dice_ce", "--out", str(out),
                              *TINY])
    assert res.exit_code == 0, res.output
    base = out / "tiny2d__dice_ce__fold0__seed0"
    assert "run written to" in res.output
    assert "e0_gt" in res.output or "e0-Gt" in res.output
    res = runner.invoke(app, ["train", str(tiny2d), "--loss", "closs_dice", "--gamma", "0.2",
                              "--pretrained", str(base), "--out", str(out), *TINY])
    assert res.exit_code == 0, res.output
    record = json.loads((out / "tiny2d__closs_dice_g0.2__fold0__seed0" / "run.json").read_text())
    assert (record["method"], record["alpha"], record["gamma"]) == ("CLoss (Dice)", 0.0, 0.2)
    assert record["pretrained_from"] == str(base)
    # the results commands read the new runs (evaluation stores, run.json through RunRecord)
    res = runner.invoke(app, ["table", str(out), "--table", "1", "--format", "md"])
    assert res.exit_code == 0, res.output
    assert "CLoss (Dice)" in res.output


def test_errors_are_messages_with_exit_2(tiny2d: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, ["train", str(tiny2d), "--loss", "focal", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "loss must be one of" in res.output
    (tiny2d / "labelsTr" / "case_003.png").unlink()
    res = runner.invoke(app, ["train", str(tiny2d), "--out", str(tmp_path), *TINY])
    assert res.exit_code == 2 and "case_003_0000.png" in res.output
    res = runner.invoke(app, ["train", str(tiny2d), "--patch-size", "1x2y", "--out",
                              str(tmp_path)])
    assert res.exit_code == 2
    res = runner.invoke(app, ["train", str(tiny2d), "--network", "vnet", "--workers", "-1",
                              "--out", str(tmp_path)])
    assert res.exit_code == 2 and "network must be one of unet, plainconv" in res.output
    assert "num_workers must be an integer >= 0" in res.output


def test_resume_with_a_changed_option_and_unavailable_device_exit_2(
        tiny2d: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    args = ["train", str(tiny2d), "--loss", "dice_ce", "--out", str(out), *TINY]
    assert runner.invoke(app, args).exit_code == 0
    run = out / "tiny2d__dice_ce__fold0__seed0"
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    res = runner.invoke(app, [*args, "--resume", "--connectivity", "4"])
    assert res.exit_code == 2, res.output
    assert "connectivity: None -> 4" in res.output and "never overwritten" in res.output
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    res = runner.invoke(app, [*args, "--run-name", "other", "--device", "mps"])
    assert res.exit_code == 2 and "device 'mps'" in res.output
    assert "Traceback" not in res.output

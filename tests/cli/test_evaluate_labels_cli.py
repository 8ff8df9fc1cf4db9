"""topobench evaluate --labels / --spacing / --format json."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from typer.testing import CliRunner

from topobench.cli import app
from topobench.metrics import evaluate_case, evaluate_labels

runner = CliRunner()


@pytest.fixture
def folders(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    out = {k: tmp_path / "Dataset" / k for k in ("pred", "labelsTr")}
    for f in out.values():
        f.mkdir(parents=True)
    for i in range(2):
        target = np.zeros((20, 24), np.uint8)
        target[4, 2:22] = 1
        target[12, 2:22] = 2
        pred = target.copy()
        pred[12, 8 + i] = 0
        pred[rng.random(pred.shape) < 0.02] = 1
        iio.imwrite(out["labelsTr"] / f"c{i}.png", target)
        iio.imwrite(out["pred"] / f"c{i}.png", pred)
    (tmp_path / "Dataset" / "dataset.json").write_text(
        json.dumps({"labels": {"background": 0, "artery": 1, "vein": 2}})
    )
    return out


def test_labels_by_name_from_dataset_json(folders, tmp_path):
    out = tmp_path / "res"
    result = runner.invoke(app, [
        "evaluate", str(folders["pred"]), str(folders["labelsTr"]), "--labels", "artery,vein",
        "--metrics", "dice,e0,hd95", "--spacing", "0.5x2", "-o", str(out), "--format", "json",
    ])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert set(summary["labels"]) == {"artery", "vein", "merged", "class_average"}
    with open(out / "cases.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [(r["case"], r["label"]) for r in rows] == [
        (c, label) for c in ("c0", "c1") for label in ("artery", "vein", "merged")
    ]
    pred = iio.imread(folders["pred"] / "c0.png")
    target = iio.imread(folders["labelsTr"] / "c0.png")
    want = evaluate_labels(pred, target, labels={"artery": 1, "vein": 2},
                           metrics=["dice", "e0", "hd95"], spacing=(0.5, 2.0))
    for m in ("dice", "e0", "hd95"):
        assert float(rows[1][m]) == want["vein"][m]
    assert json.loads((out / "summary.json").read_text()) == summary


def test_labels_table_and_refusals(folders, tmp_path):
    args = ["evaluate", str(folders["pred"]), str(folders["labelsTr"]), "--labels", "1,2"]
    result = runner.invoke(app, [*args, "-o", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    assert "merged" in result.output and "artery" in result.output  # names from dataset.json
    result = runner.invoke(app, [*args, "-o", str(tmp_path / "b"), "--format", "md",
                                 "--no-merged"])
    assert result.exit_code == 0 and "| label |" in result.output
    assert "| class average |" in result.stdout and "merged" not in result.stdout
    assert (tmp_path / "b" / "summary.md").read_text() == result.stdout
    result = runner.invoke(app, [*args, "-o", str(tmp_path / "c"), "--threshold", "0.5"])
    assert result.exit_code == 2 and "--threshold" in result.output
    result = runner.invoke(app, [*args, "-o", str(tmp_path / "d"), "--spacing", "0x1"])
    assert result.exit_code == 2 and "--spacing" in result.output
    result = runner.invoke(app, ["evaluate", str(folders["pred"]), str(folders["labelsTr"]),
                                 "--labels", "aorta", "-o", str(tmp_path / "e")])
    assert result.exit_code == 2 and "aorta" in result.output


def test_binary_json_summary_and_spacing(tmp_path):
    folders = {k: tmp_path / k for k in ("pred", "gt")}
    for f in folders.values():
        f.mkdir()
    target = np.zeros((16, 16), np.uint8)
    target[4:10, 4:10] = 255
    pred = np.roll(target, 2, axis=1)
    iio.imwrite(folders["gt"] / "a.png", target)
    iio.imwrite(folders["pred"] / "a.png", pred)
    out = tmp_path / "res"
    result = runner.invoke(app, [
        "evaluate", str(folders["pred"]), str(folders["gt"]), "-o", str(out),
        "--metrics", "dice,hd95", "--spacing", "1x0.25", "--format", "json",
    ])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    want = evaluate_case(pred > 0, target > 0, metrics=["dice", "hd95"], spacing=(1.0, 0.25))
    assert summary["metrics"]["hd95"]["mean"] == pytest.approx(want["hd95"]) == 0.5
    assert summary["config"]["spacing"] == [1.0, 0.25]

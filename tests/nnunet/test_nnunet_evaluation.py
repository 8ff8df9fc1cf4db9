"""Topology metrics and post-processing on nnU-Net-style prediction folders (PNG, labels 0/1)."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from typer.testing import CliRunner

from topobench.catalog import RUN_FORMAT
from topobench.cli import app
from topobench.errors import TopobenchError
from topobench.io import read_mask
from topobench.metrics import evaluate_case
from topobench.nnunet import evaluate_predictions
from topobench.nnunet.evaluation import reference_folder


def _lines(shape: tuple[int, int] = (48, 48)) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    m[10:12, 4:44] = 1
    m[30:32, 4:44] = 1
    return m


def _cases() -> dict[str, dict[str, np.ndarray]]:
    """Per case: reference, pretrained (a gap), fine-tuned (gap closed, plus a spurious blob)."""
    out = {}
    for i, shift in enumerate((0, 3)):
        gt = np.roll(_lines(), shift, axis=0)
        pre = gt.copy()
        pre[:, 20:23] = 0  # both lines cut
        ft = gt.copy()
        ft[40:44, 40:44] = 1  # not supported by the pretrained prediction
        out[f"case_{i:03d}"] = {"gt": gt, "pre": pre, "ft": ft}
    return out


@pytest.fixture
def folders(tmp_path: Path) -> dict[str, Path]:
    dirs = {k: tmp_path / k for k in ("gt", "pre", "ft")}
    for d in dirs.values():
        d.mkdir()
    for case, masks in _cases().items():
        for key, mask in masks.items():
            iio.imwrite(dirs[key] / f"{case}.png", mask)  # nnU-Net writes labels 0/1
    (dirs["ft"] / "summary.json").write_text(json.dumps({"foreground_mean": {"Dice": 0.9}}))
    return dirs


def test_metrics_and_postprocessing(folders: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    seen: list[tuple[str, int, int]] = []
    result = evaluate_predictions(
        folders["ft"], folders["gt"], pretrained_dir=folders["pre"], out_dir=out,
        progress=lambda *args: seen.append(args),
    )
    assert [done for _, done, _ in seen] == [1, 2, 3, 4, 5, 6]  # 2 cases x 3 variants
    assert {case for case, _, _ in seen} == {"case_000", "case_001"}
    assert {total for _, _, total in seen} == {6}
    assert set(result.rows) == {"raw", "pretrained", "postprocessed"}
    for variant, key in (("raw", "ft"), ("pretrained", "pre")):
        for row, masks in zip(result.rows[variant], _cases().values()):
            expected = evaluate_case(masks[key], masks["gt"])
            assert {k: row[k] for k in expected} == pytest.approx(expected)
    raw = result.means()["raw"]
    post = result.means()["postprocessed"]
    pre = result.means()["pretrained"]
    assert raw["e0"] == 1.0 and post["e0"] == 0.0  # the blob is gone
    assert pre["e0_gt"] == 2.0 and post["e0_gt"] == 0.0  # the closed gaps stay closed
    assert post["dice"] == 1.0

    for case, masks in _cases().items():
        written = out / "postprocessed" / f"{case}.png"
        assert np.array_equal(read_mask(written), masks["gt"].astype(bool))

    with open(out / "evaluation" / "postprocessed" / "cases.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == [
        "case", "shape", "dice", "cldice", "e", "e0", "e1", "e0_gt", "ags", "seconds"
    ]
    assert [r[0] for r in rows[1:]] == ["case_000", "case_001"]
    assert [r[1] for r in rows[1:]] == ["48x48", "48x48"]
    store = json.loads((out / "evaluation" / "postprocessed" / "summary.json").read_text())
    assert store["status"] == "complete" and store["provenance"]["variant"] == "postprocessed"
    assert store["metrics"]["e0"]["mean"] == 0.0
    assert not list(out.glob("metrics_*.csv"))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_cases"] == 2 and summary["postprocessing"] == "keep_supported"
    assert summary["protocol"]["name"] == "default"
    assert summary["mean"]["postprocessed"]["e0"] == 0.0
    assert summary["nnunet_foreground_mean"] == {"Dice": 0.9}


def test_default_output_folder_and_no_pretrained(folders: dict[str, Path]) -> None:
    result = evaluate_predictions(folders["ft"], folders["gt"], protocol="hrf")
    assert result.out_dir == folders["ft"] / "topobench"
    assert set(result.rows) == {"raw"}
    assert (result.out_dir / "evaluation" / "raw" / "cases.csv").is_file()
    assert not (result.out_dir / "postprocessed").exists()
    assert result.protocol["betti_window"] == 292 and result.protocol["name"] == "hrf"


def test_other_label(tmp_path: Path) -> None:
    gt_dir, pred_dir = tmp_path / "gt", tmp_path / "pred"
    gt_dir.mkdir(), pred_dir.mkdir()
    gt = _lines() * 2
    gt[0:3, 0:3] = 1  # another class, not evaluated
    pred = gt.copy()
    pred[:, 20:23] = 0
    iio.imwrite(gt_dir / "a.png", gt)
    iio.imwrite(pred_dir / "a.png", pred)
    row = evaluate_predictions(pred_dir, gt_dir, label=2).rows["raw"][0]
    assert row["e0"] == 2.0 and row["e0_gt"] == 2.0


def test_missing_files(folders: dict[str, Path], tmp_path: Path) -> None:
    (folders["gt"] / "case_001.png").unlink()
    with pytest.raises(TopobenchError, match="without a reference file: case_001"):
        evaluate_predictions(folders["ft"], folders["gt"])
    with pytest.raises(TopobenchError, match="no such folder"):
        evaluate_predictions(tmp_path / "absent", folders["gt"])


def test_shape_mismatch(folders: dict[str, Path]) -> None:
    iio.imwrite(folders["gt"] / "case_000.png", np.zeros((20, 20), np.uint8))
    with pytest.raises(TopobenchError, match="case_000: prediction shape"):
        evaluate_predictions(folders["ft"], folders["gt"])


def test_cli(folders: dict[str, Path], tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli-out"
    result = runner.invoke(app, [
        "nnunet", "evaluate", "-ref", str(folders["gt"]), "-pred", str(folders["ft"]),
        "--pretrained", str(folders["pre"]), "--out", str(out), "--window", "24",
    ])
    assert result.exit_code == 0, result.output
    assert "postprocessed" in result.output and (out / "summary.json").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["protocol"]["betti_window"] == summary["protocol"]["e0_gt_window"] == 24
    rows = (out / "evaluation" / "raw" / "cases.csv").read_text()
    result = runner.invoke(app, [
        "nnunet", "evaluate", "-ref", str(folders["gt"]), "-pred", str(folders["ft"]),
        "--pretrained", str(folders["pre"]), "--out", str(out), "--window", "24", "--resume",
        "-j", "2",
    ])
    assert result.exit_code == 0, result.output
    assert (out / "evaluation" / "raw" / "cases.csv").read_text() == rows  # kept, not redone
    store = json.loads((out / "evaluation" / "raw" / "summary.json").read_text())
    assert store["resume"] == {"kept": 2, "reevaluated": [], "dropped": []}
    result = runner.invoke(app, ["nnunet", "evaluate", "-ref", str(folders["gt"]), "-pred",
                                 str(tmp_path / "no"), "-o", str(out)])
    assert result.exit_code == 2 and "no such folder" in result.output


def test_reference_folder_of_a_validation_folder(
    folders: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset = "Dataset042_Lines"
    fold = tmp_path / "results" / dataset / "nnUNetTrainerCLoss__nnUNetPlans__2d" / "fold_0"
    fold.mkdir(parents=True)
    validation = folders["ft"].rename(fold / "validation")
    gt = tmp_path / "preprocessed" / dataset / "gt_segmentations"
    gt.parent.mkdir(parents=True)
    folders["gt"].rename(gt)
    monkeypatch.setenv("nnUNet_preprocessed", str(tmp_path / "preprocessed"))
    assert reference_folder(validation) == gt
    out = tmp_path / "eval"
    result = CliRunner().invoke(
        app, ["nnunet", "evaluate", "-pred", str(validation), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert (out / "evaluation" / "raw" / "cases.csv").is_file()
    assert not (validation / "topobench").exists()

    monkeypatch.delenv("nnUNet_preprocessed")
    with pytest.raises(TopobenchError, match="nnUNet_preprocessed is not set"):
        reference_folder(validation)
    with pytest.raises(TopobenchError, match="give the reference folder"):
        evaluate_predictions(folders["pre"])


def test_run_record_for_the_results_aggregator(folders: dict[str, Path], tmp_path: Path) -> None:
    from topobench.results.records import read_run

    fold = tmp_path / "Dataset042_Lines" / "nnUNetTrainerCLoss_ft__nnUNetPlans__2d" / "fold_0"
    fold.mkdir(parents=True)
    validation = folders["ft"].rename(fold / "validation")
    (fold / "topobench.json").write_text(json.dumps({
        "loss": "closs", "gamma": 0.2, "finetune": True, "epochs": None,
        "trainer": "nnUNetTrainerCLoss_ft", "method": "CLoss", "alpha": 0.5,
        "critical_mask": "context", "dataset": "Dataset042_Lines", "configuration": "2d",
        "fold": 0, "num_epochs": 50, "versions": {"topobench": "0.1.0"},
    }))
    out = tmp_path / "eval"
    evaluate_predictions(validation, folders["gt"], pretrained_dir=folders["pre"], out_dir=out)
    record = json.loads((out / "run.json").read_text())
    assert record["format"] == RUN_FORMAT and record["finetune_epochs"] == 50
    rows = read_run(out)
    methods = set(zip(rows["method"], rows["postprocessing"]))
    assert methods == {("nnU-Net", ""), ("CLoss", "without"), ("CLoss", "with")}
    e0 = rows[(rows["metric"] == "e0") & (rows["postprocessing"] == "with")]["value"]
    assert list(e0) == [0.0, 0.0]

    evaluate_predictions(validation, folders["gt"], out_dir=tmp_path / "eval2")
    assert not (tmp_path / "eval2" / "run.json").exists()  # no pretrained: not a protocol run


def test_nifti_volumes_keep_their_geometry(tmp_path: Path) -> None:
    nibabel = pytest.importorskip("nibabel")
    affine = np.diag([0.5, 0.7, 2.0, 1.0])
    dirs = {k: tmp_path / k for k in ("gt", "pre", "ft")}
    gt = np.zeros((24, 20, 16), np.uint8)  # stored (X, Y, Z)
    gt[2:22, 9:11, 7:9] = 1
    pre = gt.copy()
    pre[11:13] = 0  # a gap
    ft = gt.copy()
    ft[1:3, 1:3, 1:3] = 1  # an unsupported piece
    for key, vol in (("gt", gt), ("pre", pre), ("ft", ft)):
        dirs[key].mkdir()
        nibabel.save(nibabel.Nifti1Image(vol, affine), str(dirs[key] / "vol.nii.gz"))
    out = tmp_path / "out"
    result = evaluate_predictions(
        dirs["ft"], dirs["gt"], pretrained_dir=dirs["pre"], out_dir=out, protocol="vessap"
    )
    assert result.rows["pretrained"][0]["e0_gt"] == 1.0
    assert result.rows["raw"][0]["e0_gt"] == 0.0 and result.rows["raw"][0]["dice"] < 1.0
    assert result.rows["postprocessed"][0]["dice"] == 1.0
    written = nibabel.load(str(out / "postprocessed" / "vol.nii.gz"))
    assert np.array_equal(np.asarray(written.dataobj) > 0, gt > 0)
    if importlib.util.find_spec("nnunetv2") is not None:  # nnU-Net's writer keeps the geometry
        np.testing.assert_allclose(written.header.get_zooms()[:3], (0.5, 0.7, 2.0))

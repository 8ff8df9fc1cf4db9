"""Folders of label maps per label, and results as a DataFrame: equal to the library calls."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from topobench.errors import InvalidParameterError
from topobench.label_evaluation import (
    CLASS_AVERAGE,
    evaluate_folders,
    read_label_file,
    run_label_evaluation,
)
from topobench.metrics import evaluate_case, evaluate_labels, label_average

METRICS = ["dice", "e0", "e1", "hd95", "vi_merge"]


def label_map(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    m[(slice(None),) * (len(shape) - 2) + (slice(3, 5), slice(2, shape[-1] - 2))] = 1
    m[(slice(None),) * (len(shape) - 2) + (slice(9, 11), slice(2, shape[-1] - 2))] = 2
    noise = rng.random(shape) < 0.05
    m[noise] = rng.integers(0, 3, int(noise.sum()))
    return m


@pytest.fixture
def png_folders(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    folders = {k: tmp_path / k for k in ("pred", "gt")}
    for f in folders.values():
        f.mkdir()
    for i in range(3):
        target = label_map(rng, (16, 20))
        pred = label_map(rng, (16, 20))
        iio.imwrite(folders["gt"] / f"case_{i}.png", target)
        iio.imwrite(folders["pred"] / f"case_{i}.png", pred)
    return folders


def test_frame_of_label_maps_equals_evaluate_labels(png_folders: dict[str, Path]) -> None:
    frame = evaluate_folders(png_folders["pred"], png_folders["gt"], labels={"a": 1, "b": 2},
                             metrics=METRICS, spacing=(0.5, 2.0))
    assert list(frame.columns) == ["case", "label", "shape", *METRICS, "seconds", "error"]
    assert len(frame) == 3 * 3 and frame["error"].isna().all()
    for i in range(3):
        pred = iio.imread(png_folders["pred"] / f"case_{i}.png")
        target = iio.imread(png_folders["gt"] / f"case_{i}.png")
        want = evaluate_labels(pred, target, labels={"a": 1, "b": 2}, metrics=METRICS,
                               spacing=(0.5, 2.0))
        rows = frame[frame["case"] == f"case_{i}"].set_index("label")
        for label, values in want.items():
            assert {m: rows.loc[label, m] for m in METRICS} == values


def test_frame_of_binary_masks_equals_evaluate_case(png_folders: dict[str, Path]) -> None:
    for folder in png_folders.values():  # binary copies: label 1 as the structure
        for path in folder.glob("*.png"):
            binary = (iio.imread(path) == 1).astype(np.uint8) * 255
            iio.imwrite(path.with_name("bin_" + path.name), binary)
            path.unlink()
    frame = evaluate_folders(png_folders["pred"], png_folders["gt"], protocol="topomortar")
    assert list(frame.columns) == ["case", "shape", "dice", "cldice", "e", "e0", "e1", "hd95",
                                   "seconds", "error"]
    row = frame.set_index("case").loc["bin_case_0"]
    want = evaluate_case(iio.imread(png_folders["pred"] / "bin_case_0.png") > 0,
                         iio.imread(png_folders["gt"] / "bin_case_0.png") > 0,
                         protocol="topomortar")
    assert {k: row[k] for k in want} == want
    assert not list(Path.cwd().glob("cases.csv"))


def test_runner_writes_long_cases_and_label_summaries(png_folders, tmp_path):
    out = tmp_path / "out"
    (png_folders["gt"] / "lonely.png").write_bytes(
        (png_folders["gt"] / "case_0.png").read_bytes())
    report = run_label_evaluation(png_folders["pred"], png_folders["gt"], out,
                                  labels=[1, 2], metrics=METRICS, workers=1)
    assert report.n_cases == 3 and [c for c, _ in report.failures] == ["lonely"]
    with open(out / "cases.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [(r["case"], r["label"]) for r in rows] == [
        (f"case_{i}", label) for i in range(3) for label in ("1", "2", "merged")
    ]
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["labels"]) == {"1", "2", "merged", CLASS_AVERAGE}
    per_case = []
    for i in range(3):
        pred = iio.imread(png_folders["pred"] / f"case_{i}.png")
        target = iio.imread(png_folders["gt"] / f"case_{i}.png")
        per_case.append(evaluate_labels(pred, target, labels=[1, 2], metrics=METRICS))
    for m in METRICS:
        assert summary["labels"]["2"][m]["mean"] == pytest.approx(
            np.mean([r["2"][m] for r in per_case]))
        assert summary["labels"][CLASS_AVERAGE][m]["mean"] == pytest.approx(
            np.mean([label_average(r)[m] for r in per_case]))
        assert float(rows[0][m]) == per_case[0]["1"][m]  # full precision in cases.csv
    with pytest.raises(InvalidParameterError, match="already holds results"):
        run_label_evaluation(png_folders["pred"], png_folders["gt"], out, labels=[1])
    run_label_evaluation(png_folders["pred"], png_folders["gt"], out, labels=[1],
                         overwrite=True)


def test_nifti_spacing_wins_over_the_given_one(tmp_path: Path) -> None:
    nib = pytest.importorskip("nibabel")
    rng = np.random.default_rng(1)
    folders = {k: tmp_path / k for k in ("pred", "gt")}
    for f in folders.values():
        f.mkdir()
    target = label_map(rng, (6, 16, 18))
    pred = label_map(rng, (6, 16, 18))
    affine = np.diag([0.4, 0.7, 2.0, 1.0])  # (X, Y, Z) voxel sizes
    for name, arr in (("gt", target), ("pred", pred)):
        nib.save(nib.Nifti1Image(np.ascontiguousarray(arr.T), affine), folders[name] / "c.nii.gz")
    read = read_label_file(folders["gt"] / "c.nii.gz")
    assert read.spacing == pytest.approx((2.0, 0.7, 0.4)) and read.labels.shape == (6, 16, 18)
    frame = evaluate_folders(folders["pred"], folders["gt"], labels=[1], merged=False,
                             metrics=["hd95"], spacing=(1.0, 1.0, 1.0))
    want = evaluate_labels(read_label_file(folders["pred"] / "c.nii.gz", canonical=True).labels,
                           read_label_file(folders["gt"] / "c.nii.gz", canonical=True).labels,
                           labels=[1], merged=False, metrics=["hd95"], spacing=read.spacing)
    assert frame.loc[0, "hd95"] == want["1"]["hd95"]


def test_bad_cases_are_rows_with_an_error(png_folders: dict[str, Path]) -> None:
    iio.imwrite(png_folders["gt"] / "case_1.png", np.zeros((5, 5), np.uint8))
    frame = evaluate_folders(png_folders["pred"], png_folders["gt"], labels=[1])
    bad = frame[frame["case"] == "case_1"]
    assert bad["error"].str.contains("shape").all() and bad["dice"].isna().all()
    with pytest.raises(InvalidParameterError, match="threshold"):
        evaluate_folders(png_folders["pred"], png_folders["gt"], labels=[1], threshold=0.5)


def test_engine_pool_gives_the_rows_of_one_process_in_case_order(png_folders, tmp_path):
    """workers=2 runs the cases in the engine's process pool: same rows, same order."""
    frames = [
        evaluate_folders(png_folders["pred"], png_folders["gt"], labels=[1, 2], metrics=METRICS,
                         workers=w).drop(columns="seconds")
        for w in (1, 2)
    ]
    assert frames[0].equals(frames[1])
    assert list(frames[1]["case"]) == [f"case_{i}" for i in range(3) for _ in range(3)]
    reports = [run_label_evaluation(png_folders["pred"], png_folders["gt"], tmp_path / f"o{w}",
                                    labels=[1, 2], metrics=METRICS, workers=w) for w in (1, 2)]
    assert reports[0].summary["labels"] == reports[1].summary["labels"]

"""Real labels (../shared/data, skipped when absent) against degraded copies with known gaps."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from topobench.evaluate import run_evaluation
from topobench.io import read_mask, write_mask
from topobench.metrics import evaluate_case
from topobench.synth import degrade


def test_chase_vessels_e0_gt_counts_the_gaps(shared_data, tmp_path):
    labels = sorted((shared_data / "chase_db1-mini" / "labels").glob("*.png"))[:2]
    expected = {}
    for i, path in enumerate(labels):
        target = read_mask(path)
        case = degrade(target, seed=i, gaps=4, bridges=1, blobs=1, noise=10, thinning=False)
        assert case.errors.gaps == 4
        write_mask(tmp_path / "pred" / path.name, case.pred)
        write_mask(tmp_path / "gt" / path.name, target)
        expected[path.stem] = case.expected_e0_gt
    report = run_evaluation(tmp_path / "pred", tmp_path / "gt", tmp_path / "out", workers=1)
    assert report.ok
    with open(tmp_path / "out" / "cases.csv", newline="") as f:
        got = {r["case"]: float(r["e0_gt"]) for r in csv.DictReader(f)}
    assert got == expected


def test_isbi_membranes_gaps_within_tiles(shared_data):
    # A dense membrane mesh: a cut splits nothing in the whole image, only inside a tile.
    target = read_mask(shared_data / "isbi2012-membranes" / "labels" / "00.png")
    case = degrade(target, seed=0, gaps=4, bridges=0, blobs=0, noise=0, window=64)
    assert case.errors.gaps == 4
    got = evaluate_case(case.pred, case.target, e0_gt_window=64, metrics=["e0_gt"])
    assert got["e0_gt"] == pytest.approx(case.expected_e0_gt) == pytest.approx(4 / 64)


def test_identical_prediction_scores_perfectly(shared_data):
    target = read_mask(shared_data / "vesselexpress-3d" / "label.tif")
    scores = evaluate_case(target, target, protocol="vessap")
    assert scores["dice"] == scores["cldice"] == scores["ags"] == 1.0
    assert np.allclose([scores[k] for k in ("e", "e0", "e1", "e0_gt")], 0.0)

"""``evaluate_cases``: the engine over in-memory masks (``ArrayCase``) and files (``CasePair``)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from topobench.errors import InvalidParameterError
from topobench.evaluate import (
    ArrayCase,
    CasePair,
    ResumeError,
    evaluate_cases,
    run_evaluation,
)
from topobench.evaluate.case import array_fingerprint
from topobench.io import write_mask
from topobench.metrics import evaluate_case


def _rows(out: Path, name: str = "cases.csv") -> list[dict[str, str]]:
    with open(out / name, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _ring(shape=(32, 32), cut: int | None = None) -> np.ndarray:
    """A square ring (one component, one hole); ``cut``: a gap at that column of its top side."""
    mask = np.zeros(shape, bool)
    mask[6:26, 6:26] = True
    mask[9:23, 9:23] = False
    if cut is not None:
        mask[6:9, cut] = False
    return mask


def _cases(n: int, seed: int = 0) -> list[ArrayCase]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        target = _ring()
        pred = _ring(cut=10 + i) | (rng.random(target.shape) > 0.97)
        out.append(ArrayCase(f"a{i}", pred, target))
    return out


@pytest.mark.parametrize("workers", [1, 2])
def test_array_cases_equal_evaluate_case_on_the_same_arrays(tmp_path, workers):
    cases = _cases(3)
    report = evaluate_cases(cases, tmp_path / "out", protocol="default", workers=workers)
    assert report.ok and report.n_evaluated == 3
    rows = {r["case"]: r for r in _rows(tmp_path / "out")}
    for case in cases:
        expected = evaluate_case(case.pred, case.target, protocol="default")
        got = rows[case.case]
        assert got["shape"] == "32x32"
        for metric, value in expected.items():
            assert float(got[metric]) == pytest.approx(value, abs=0, rel=1e-15), metric
    means = report.summary["metrics"]
    for metric in ("dice", "e0", "e0_gt"):
        values = [evaluate_case(c.pred, c.target)[metric] for c in cases]
        assert means[metric]["mean"] == pytest.approx(np.mean(values))
    inputs = _rows(tmp_path / "out", "inputs.csv")
    assert [r["pred_fingerprint"] for r in inputs] == [array_fingerprint(c.pred) for c in cases]
    assert {r["pred"] for r in inputs} == {""}


def test_a_3d_array_case_with_spacing_has_an_e2_column_and_records_its_spacing(tmp_path):
    target = np.zeros((6, 12, 12), bool)
    target[1:5, 2:10, 2:10] = True
    target[2:4, 4:8, 4:8] = False  # a cavity: one e2 feature
    pred = target.copy()
    pred[2:4, 4:8, 4:8] = True
    case = ArrayCase("v", pred, target, spacing=(2.0, 1.0, 1.0))
    report = evaluate_cases([case], tmp_path / "out", metrics=["dice", "e2", "hd95"])
    row = _rows(tmp_path / "out")[0]
    expected = evaluate_case(pred, target, metrics=["dice", "e2", "hd95"], spacing=(2.0, 1.0, 1.0))
    assert float(row["e2"]) == expected["e2"] == 1.0
    assert float(row["hd95"]) == pytest.approx(expected["hd95"])
    assert report.summary["spacing"] == {"v": [2.0, 1.0, 1.0]}


def test_resume_keeps_unchanged_arrays_and_re_evaluates_changed_ones(tmp_path):
    out = tmp_path / "out"
    cases = _cases(3)
    evaluate_cases(cases, out, provenance={"model": "m1"})
    seconds = {r["case"]: r["seconds"] for r in _rows(out)}
    changed = ArrayCase("a1", _ring(), cases[1].target)  # now a perfect prediction
    retyped = ArrayCase("a2", cases[2].pred.astype(np.uint8), cases[2].target)  # same values
    seen: list[str] = []
    report = evaluate_cases(
        [cases[0], changed, retyped], out, resume=True, provenance={"model": "m1"},
        on_result=lambda r: seen.append(r.case),
    )
    assert report.n_skipped == 1 and sorted(seen) == ["a1", "a2"]
    assert report.reevaluated == ("a1", "a2")
    rows = {r["case"]: r for r in _rows(out)}
    assert rows["a0"]["seconds"] == seconds["a0"]  # the kept row, not recomputed
    assert float(rows["a1"]["dice"]) == 1.0 and float(rows["a1"]["e0_gt"]) == 0.0
    assert float(rows["a2"]["dice"]) == evaluate_case(cases[2].pred, cases[2].target)["dice"]
    assert report.summary["resume"] == {"kept": 1, "reevaluated": ["a1", "a2"], "dropped": []}
    assert report.summary["provenance"] == {"model": "m1"}


def test_resume_with_other_provenance_is_refused_naming_the_key(tmp_path):
    out = tmp_path / "out"
    cases = _cases(2)
    evaluate_cases(cases, out, provenance={"model": "m1", "epoch": 3})
    with pytest.raises(ResumeError, match=r"provenance\.epoch: 3 -> 4") as info:
        evaluate_cases(cases, out, resume=True, provenance={"model": "m1", "epoch": 4})
    assert "provenance.model" not in str(info.value)
    with pytest.raises(ResumeError, match=r"provenance\.model: 'm1' -> None"):
        evaluate_cases(cases, out, resume=True, provenance={"epoch": 3})
    with pytest.raises(InvalidParameterError, match="already holds results"):
        evaluate_cases(cases, out, provenance={"model": "m1", "epoch": 3})
    evaluate_cases(cases, out, overwrite=True, provenance={"model": "m2"})
    assert json.loads((out / "summary.json").read_text())["provenance"] == {"model": "m2"}


def test_files_and_arrays_mix_and_match_run_evaluation(tmp_path):
    masks = {c.case: c for c in _cases(2)}
    for name, case in masks.items():
        write_mask(tmp_path / "pred" / f"{name}.png", case.pred)
        write_mask(tmp_path / "gt" / f"{name}.png", case.target)
    by_folder = run_evaluation(tmp_path / "pred", tmp_path / "gt", tmp_path / "r1", workers=1)
    pair = CasePair("a0", tmp_path / "pred" / "a0.png", tmp_path / "gt" / "a0.png")
    mixed = evaluate_cases([pair, masks["a1"]], tmp_path / "r2")
    assert mixed.summary["metrics"] == by_folder.summary["metrics"]
    assert [r["pred"] for r in _rows(tmp_path / "r2", "inputs.csv")] == ["a0.png", ""]


def test_bad_cases_fail_alone_and_bad_lists_are_refused(tmp_path):
    good = _cases(1)[0]
    bad = ArrayCase("b", np.full((8, 8), 0.7), np.zeros((8, 8), bool))  # a probability map
    report = evaluate_cases([good, bad], tmp_path / "out")
    assert [case for case, _ in report.failures] == ["b"] and "b" in report.hint
    assert evaluate_cases([bad], tmp_path / "t", threshold=0.5).ok
    with pytest.raises(InvalidParameterError, match="given twice"):
        evaluate_cases([good, good], tmp_path / "dup")
    with pytest.raises(InvalidParameterError, match="expected CasePair or ArrayCase"):
        evaluate_cases([("a", good.pred, good.target)], tmp_path / "tuple")

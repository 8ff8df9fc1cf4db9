"""Pairing prediction and target files by name stem."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from topobench.errors import InvalidParameterError
from topobench.evaluate import pair_files


def _touch(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")


def test_pairs_across_formats_and_lists_the_rest(tmp_path):
    _touch(
        tmp_path / "pred", "case_001.png", "case_002.npy", "extra.tif", "notes.txt", ".hidden.png"
    )
    _touch(tmp_path / "gt", "case_001.nii.gz", "case_002.png", "lonely.png")
    pairing = pair_files(tmp_path / "pred", tmp_path / "gt")
    assert [(p.case, p.pred.name, p.target.name) for p in pairing.pairs] == [
        ("case_001", "case_001.png", "case_001.nii.gz"),
        ("case_002", "case_002.npy", "case_002.png"),
    ]
    assert [p.name for p in pairing.unmatched_pred] == ["extra.tif"]
    assert [p.name for p in pairing.unmatched_target] == ["lonely.png"]
    assert [p.name for p in pairing.ignored] == ["notes.txt"]
    reasons = dict(pairing.problems())
    assert "no target file" in reasons["extra"]
    assert "no prediction file" in reasons["lonely"]


def test_configured_suffixes_are_removed(tmp_path):
    _touch(tmp_path / "pred", "a_pred.png", "b_pred.png")
    _touch(tmp_path / "gt", "a_mask.png", "b_mask.tif")
    pairing = pair_files(
        tmp_path / "pred", tmp_path / "gt", pred_suffix="_pred", target_suffix="_mask"
    )
    assert [p.case for p in pairing.pairs] == ["a", "b"]
    assert not pairing.problems()


def test_without_suffixes_nothing_pairs(tmp_path):
    _touch(tmp_path / "pred", "a_pred.png")
    _touch(tmp_path / "gt", "a_mask.png")
    pairing = pair_files(tmp_path / "pred", tmp_path / "gt")
    assert pairing.pairs == ()
    assert len(pairing.problems()) == 2


def test_two_files_for_one_case_are_ambiguous(tmp_path):
    _touch(tmp_path / "pred", "a.png", "a.npy", "b.png")
    _touch(tmp_path / "gt", "a.png", "b.png")
    pairing = pair_files(tmp_path / "pred", tmp_path / "gt")
    assert [p.case for p in pairing.pairs] == ["b"]
    ((case, reason),) = pairing.problems()
    assert case == "a" and "ambiguous" in reason and "a.npy" in reason


def test_missing_folder(tmp_path):
    _touch(tmp_path / "gt", "a.png")
    with pytest.raises(InvalidParameterError, match="no such folder"):
        pair_files(tmp_path / "absent", tmp_path / "gt")


def test_sorted_by_case_name(tmp_path):
    names = [f"c{i}.npy" for i in np.random.default_rng(0).permutation(12)]
    _touch(tmp_path / "pred", *names)
    _touch(tmp_path / "gt", *names)
    cases = [p.case for p in pair_files(tmp_path / "pred", tmp_path / "gt").pairs]
    assert cases == sorted(f"c{i}" for i in range(12))

"""``topobench train`` on the ISBI 2012 membranes from the shared data (skipped without it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from topobench.training import TrainConfig, load_or_create_splits, scan_dataset, train


def _isbi_folder(shared_data: Path, root: Path) -> Path:
    src = shared_data / "isbi2012-membranes"
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    for image in sorted((src / "images").glob("*.png")):
        (root / "imagesTr" / f"isbi_{image.stem}_0000.png").symlink_to(image)
        (root / "labelsTr" / f"isbi_{image.stem}.png").symlink_to(src / "labels" / image.name)
    (root / "dataset.json").write_text(json.dumps({"name": "isbi2012"}))
    return root


@pytest.mark.shared_data
def test_isbi_scans_and_splits(shared_data: Path, tmp_path: Path) -> None:
    ds = scan_dataset(_isbi_folder(shared_data, tmp_path / "isbi"))
    assert (ds.name, ds.ndim, ds.in_channels, len(ds.training)) == ("isbi2012", 2, 1, 30)
    splits, _ = load_or_create_splits(ds, tmp_path / "runs")
    assert [len(s["val"]) for s in splits] == [6] * 5


@pytest.mark.slow
@pytest.mark.shared_data
def test_isbi_short_run(shared_data: Path, tmp_path: Path) -> None:
    data = _isbi_folder(shared_data, tmp_path / "isbi")
    result = train(TrainConfig(data=data, out=tmp_path / "runs", loss="closs", gamma=0.1,
                               epochs=4, iterations_per_epoch=10, threads=1))
    summary = result.summary
    assert len(result.record["eval_cases"]) == 6
    assert summary["pretrained"]["dice"] > 0.5  # membranes are 20% of the pixels
    assert summary["raw"]["dice"] > 0.5 and summary["postprocessed"]["dice"] > 0.5

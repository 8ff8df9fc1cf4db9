"""Dataset scanning, splits, normalisation and patch sampling."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from topobench.io import write_mask
from topobench.training import (
    DatasetError,
    PatchSampler,
    load_case,
    load_or_create_splits,
    make_splits,
    normalize_intensity,
    scan_dataset,
)


def test_scan_pairs_channel_suffix_and_reads_metadata(tiny2d: Path) -> None:
    ds = scan_dataset(tiny2d)
    assert ds.name == "tiny2d"
    assert ds.ndim == 2 and ds.in_channels == 1
    assert ds.case_names == [f"case_{i:03d}" for i in range(5)]
    image, label = load_case(ds.training[0])
    assert image.shape == (1, 32, 32) and image.dtype == np.float32
    assert label.shape == (32, 32) and label.dtype == bool and label.any()


def test_scan_3d_nifti(tiny3d: Path) -> None:
    ds = scan_dataset(tiny3d)
    image, label = load_case(ds.training[0])
    assert ds.ndim == 3
    assert image.shape == (1, 8, 16, 16) and label.shape == (8, 16, 16)


def test_multichannel_and_rgb_cases(tmp_path: Path) -> None:
    import imageio.v3 as iio

    root = tmp_path / "ds"
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    label = np.zeros((8, 8), bool)
    label[2:4] = True
    write_mask(root / "labelsTr" / "a.png", label)
    iio.imwrite(root / "imagesTr" / "a_0000.png", np.full((8, 8), 10, np.uint8))
    iio.imwrite(root / "imagesTr" / "a_0001.png", np.full((8, 8), 20, np.uint8))
    ds = scan_dataset(root)
    image, _ = load_case(ds.training[0])
    assert ds.in_channels == 2
    assert image[:, 0, 0].tolist() == [10.0, 20.0]
    # an RGB image is three channels
    (root / "imagesTr" / "a_0001.png").unlink()
    iio.imwrite(root / "imagesTr" / "a_0000.png", np.dstack([np.full((8, 8), v, np.uint8)
                                                             for v in (1, 2, 3)]))
    ds = scan_dataset(root)
    image, _ = load_case(ds.training[0])
    assert ds.in_channels == 3 and image[:, 5, 5].tolist() == [1.0, 2.0, 3.0]


def test_every_problem_is_reported_by_name(tiny2d: Path) -> None:
    import imageio.v3 as iio

    (tiny2d / "labelsTr" / "case_001.png").unlink()  # image without label
    write_mask(tiny2d / "labelsTr" / "orphan.png", np.ones((32, 32), bool))  # label alone
    (tiny2d / "labelsTr" / "case_002.png").write_bytes(b"not a png")  # unreadable
    iio.imwrite(tiny2d / "labelsTr" / "case_003.png", np.full((32, 32), 7, np.uint8))  # not binary
    write_mask(tiny2d / "labelsTr" / "case_004.png", np.ones((16, 16), bool))  # wrong shape
    with pytest.raises(DatasetError) as info:
        scan_dataset(tiny2d)
    msg = str(info.value)
    for name in ("case_001_0000.png", "orphan.png", "case_002.png", "case_003.png", "case_004"):
        assert name in msg
    assert "5 problem(s)" in msg


def test_missing_folders(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="imagesTr"):
        scan_dataset(tmp_path)


def test_splits_are_disjoint_covering_and_deterministic() -> None:
    names = [f"c{i:02d}" for i in range(13)]
    splits = make_splits(names)
    vals = [n for s in splits for n in s["val"]]
    assert sorted(vals) == names and len(splits) == 5
    for s in splits:
        assert set(s["train"]).isdisjoint(s["val"])
        assert sorted(s["train"] + s["val"]) == names
    assert make_splits(list(reversed(names))) == splits
    assert make_splits(names, seed=1) != splits
    with pytest.raises(DatasetError, match="at least 5"):
        make_splits(names[:4])


@pytest.mark.parametrize("n_cases", [20, 13, 5])
def test_splits_are_nnunets_folds(n_cases: int) -> None:
    """The folds nnU-Net's trainer writes to splits_final.json, fold by fold, for names given
    in any order (nnU-Net sorts its case identifiers first)."""
    pytest.importorskip("sklearn")
    crossval = pytest.importorskip("nnunetv2.utilities.crossval_split")
    rng = np.random.default_rng(7)
    names = [f"case_{i:03d}" for i in rng.choice(1000, n_cases, replace=False)]
    expected = crossval.generate_crossval_split(sorted(names), seed=12345, n_splits=5)
    ours = make_splits(list(rng.permutation(names)))
    assert len(ours) == len(expected) == 5
    for k in range(5):
        assert ours[k]["val"] == [str(n) for n in expected[k]["val"]], k
        assert ours[k]["train"] == [str(n) for n in expected[k]["train"]], k
    # and scikit-learn's KFold itself, with another seed and number of folds
    from sklearn.model_selection import KFold

    idx = [sorted(test) for _, test in KFold(3, shuffle=True, random_state=1).split(names)]
    assert [s["val"] for s in make_splits(names, n_folds=3, seed=1)] == [
        [sorted(names)[i] for i in fold] for fold in idx
    ]


def test_splits_are_stored_and_reused(tiny2d: Path, tmp_path: Path) -> None:
    ds = scan_dataset(tiny2d)
    runs = tmp_path / "runs"
    splits, path = load_or_create_splits(ds, runs)
    assert path == runs / "splits_tiny2d.json"
    stored = [{"train": s["train"], "val": s["val"]} for s in reversed(splits)]
    path.write_text(json.dumps(stored))
    assert load_or_create_splits(ds, runs)[0] == stored  # the file wins over a new split
    path.write_text(json.dumps([{"train": [], "val": ["x"]}]))
    with pytest.raises(DatasetError, match="differ"):
        load_or_create_splits(ds, runs)
    # nnU-Net's splits_final.json in the dataset folder wins
    (tiny2d / "splits_final.json").write_text(json.dumps(stored))
    assert load_or_create_splits(ds, runs) == (stored, tiny2d / "splits_final.json")
    # training folds that name unknown cases are refused by name, not with a KeyError later
    bad = [dict(s, train=[*s["train"], "ghost_case"]) for s in stored]
    (tiny2d / "splits_final.json").write_text(json.dumps(bad))
    with pytest.raises(DatasetError, match="not in the dataset: ghost_case"):
        load_or_create_splits(ds, runs)


def test_normalize_intensity_per_channel() -> None:
    rng = np.random.default_rng(0)
    image = np.stack([rng.normal(5, 3, (20, 20)), np.full((20, 20), 7.0)]).astype(np.float32)
    out = normalize_intensity(image)
    assert np.allclose(out[0].mean(), 0, atol=1e-5) and np.allclose(out[0].std(), 1, atol=1e-5)
    assert np.all(out[1] == 0)  # constant channel: std 0 -> only centred
    assert image[1, 0, 0] == 7.0  # input untouched


@pytest.mark.parametrize("ndim", [2, 3])
def test_patches_keep_image_and_label_aligned(ndim: int) -> None:
    rng = np.random.default_rng(1)
    shape = (40, 36) if ndim == 2 else (12, 20, 20)
    label = rng.random(shape) < 0.1
    image = label[None].astype(np.float32)  # image equals the label
    patch = (16, 16) if ndim == 2 else (8, 16, 16)
    sampler = PatchSampler([image], [label], patch, foreground_fraction=0.5)
    x, y = sampler.batch(8, np.random.default_rng(2))
    assert x.shape == (8, 1, *patch) and y.shape == (8, 1, *patch)
    assert x.dtype == np.float32 and y.dtype == np.int64
    for xb, yb in zip(x, y, strict=True):
        # jitter is x * scale + shift: the two grey values must map to the label exactly
        lo, hi = xb.min(), xb.max()
        assert np.array_equal(xb[0] > (lo + hi) / 2, yb[0] == 1) or not yb.any()


def test_foreground_fraction_centres_patches_on_foreground() -> None:
    label = np.zeros((200, 200), bool)
    label[150, 150] = True  # a single foreground pixel
    image = label[None].astype(np.float32)
    sampler = PatchSampler([image], [label], (16, 16), foreground_fraction=1.0, augment=False)
    _, y = sampler.batch(6, np.random.default_rng(0))
    assert all(yb[0, 8, 8] == 1 for yb in y)  # centred on it
    sampler = PatchSampler([image], [label], (16, 16), foreground_fraction=0.0, augment=False)
    _, y = sampler.batch(20, np.random.default_rng(0))
    assert y.sum() < 20  # random patches rarely hit it


def test_small_images_are_padded_to_the_patch() -> None:
    label = np.ones((5, 7), bool)
    sampler = PatchSampler([label[None].astype(np.float32)], [label], (8, 8), augment=False)
    x, y = sampler.batch(2, np.random.default_rng(0))
    assert x.shape == (2, 1, 8, 8) and int(y[0].sum()) == 35


def test_mixed_dimensions_are_reported(tiny2d: Path) -> None:
    import nibabel

    nibabel.save(nibabel.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4)),
                 str(tiny2d / "imagesTr" / "vol_0000.nii.gz"))
    write_mask(tiny2d / "labelsTr" / "vol.nii.gz", np.zeros((4, 4, 4), bool))
    with pytest.raises(DatasetError, match=r"mix dimensions: 2D: 5 \(case_000, case_001, "
                                           r"case_002, \.\.\.\); 3D: 1 \(vol\)"):
        scan_dataset(tiny2d)

"""Tiny synthetic nnU-Net-style datasets (thin lines in 2D, tubes in 3D), made per test."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.draw import line_nd

from topobench.io import write_mask


def _lines(shape: tuple[int, ...], n: int, rng: np.random.Generator) -> np.ndarray:
    label = np.zeros(shape, bool)
    for _ in range(n):
        a = [int(rng.integers(s)) for s in shape]
        b = [int(rng.integers(s)) for s in shape]
        label[line_nd(a, b, endpoint=True)] = True
    return label


def make_tiny_dataset(root: Path, ndim: int, *, n_cases: int = 5, seed: int = 0) -> Path:
    """Write ``n_cases`` cases of random thin lines; image = label + Gaussian noise."""
    rng = np.random.default_rng(seed)
    shape = (32, 32) if ndim == 2 else (8, 16, 16)
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    for i in range(n_cases):
        label = _lines(shape, 4 if ndim == 2 else 3, rng)
        image = label * 1.0 + rng.normal(0.0, 0.3, shape)
        name = f"case_{i:03d}"
        if ndim == 2:
            img8 = np.clip(image * 100 + 60, 0, 255).astype(np.uint8)
            import imageio.v3 as iio

            iio.imwrite(root / "imagesTr" / f"{name}_0000.png", img8)
            write_mask(root / "labelsTr" / f"{name}.png", label)
        else:
            import nibabel

            nibabel.save(nibabel.Nifti1Image(image.astype(np.float32).T, np.eye(4)),
                         str(root / "imagesTr" / f"{name}_0000.nii.gz"))
            write_mask(root / "labelsTr" / f"{name}.nii.gz", label)
    (root / "dataset.json").write_text(json.dumps({"name": f"tiny{ndim}d"}))
    return root


@pytest.fixture
def tiny2d(tmp_path: Path) -> Path:
    return make_tiny_dataset(tmp_path / "tiny2d", 2)


@pytest.fixture
def tiny3d(tmp_path: Path) -> Path:
    return make_tiny_dataset(tmp_path / "tiny3d", 3)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One torch thread: much faster on a shared machine; restored afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)

"""Lee's 3D thinning without rescans equals scikit-image's ``skeletonize`` voxel for voxel."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage
from skimage.morphology import skeletonize

from topobench.metrics._thinning import thin_3d

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from thin_structures import degrade, sheets, tubes  # noqa: E402


def test_random_volumes_equal_scikit_image():
    rng = np.random.default_rng(0)
    for k in range(150):
        shape = tuple(int(s) for s in rng.integers(1, 12, size=3))
        if k % 3:
            mask = rng.random(shape) < rng.uniform(0.1, 0.9)
        else:  # thick blobs: many rounds, candidates rechecked after deletions
            mask = ndimage.binary_dilation(rng.random(shape) < 0.05, iterations=2)
        assert np.array_equal(thin_3d(mask), skeletonize(mask)), shape


@given(arrays(bool, st.tuples(st.integers(1, 7), st.integers(1, 7), st.integers(1, 7))))
def test_property_equal_scikit_image(mask):
    assert np.array_equal(thin_3d(mask), skeletonize(mask))


@pytest.mark.parametrize("shape", [(1, 9, 11), (5, 1, 9), (6, 7, 1), (1, 1, 8)])
def test_volumes_with_an_axis_of_length_one(shape):
    """One slice: scikit-image thins in the four in-plane directions only."""
    rng = np.random.default_rng(sum(shape))
    for p in (0.3, 0.6, 0.9):
        mask = rng.random(shape) < p
        assert np.array_equal(thin_3d(mask), skeletonize(mask))


def test_sheets_and_tubes_equal_scikit_image():
    for mask in (sheets((24, 48, 48), 5, 1, seed=1), sheets((20, 40, 40), 3, 2, seed=2),
                 tubes((24, 48, 48), 8, 2, seed=3),
                 degrade(sheets((24, 48, 48), 4, 2, seed=4), 10, 10, seed=5)):
        assert np.array_equal(thin_3d(mask), skeletonize(mask))


def test_restored_components_equal_a_labelling_of_the_whole_volume():
    """skeleton() finds the components thinning erased from their last voxel; the reference
    labels the whole volume (scipy) and restores every component without skeleton voxels."""
    from topobench.metrics.overlap import _restore_one, skeleton

    rng = np.random.default_rng(3)
    for k in range(12):
        shape = (int(rng.integers(6, 16)), 24, 24)
        mask = np.zeros(shape, bool)
        for _ in range(6):  # 2x2 bars and 2x2x2 cubes (they vanish) beside noise
            z, y, x = (int(rng.integers(0, s - 2)) for s in shape)
            mask[z: z + 2, y: y + 2, x:] = k % 2 == 0
            mask[z: z + 2, y: y + 2, x: x + 2] = True
        mask |= rng.random(shape) < 0.03
        ref = skeletonize(mask).astype(bool)
        labels, n = ndimage.label(mask, np.ones((3, 3, 3)))
        boxes = ndimage.find_objects(labels)
        for label in range(1, n + 1):
            if not ref[labels == label].any():
                box = tuple(slice(max(b.start - 1, 0), b.stop + 1) for b in boxes[label - 1])
                _restore_one(labels[box] == label, ref, box)
        assert np.array_equal(skeleton(mask), ref)

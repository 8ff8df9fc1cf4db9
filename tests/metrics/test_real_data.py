"""Metrics on the real labels in ../shared/data (skipped when the folder is absent)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from topobench.io import read_mask
from topobench.metrics import betti_numbers, e0_gt, evaluate_case

pytestmark = pytest.mark.shared_data


def cut_gaps(mask: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Remove ``n`` cubes of side 5 centred on foreground voxels."""
    rng = np.random.default_rng(seed)
    out = mask.copy()
    for idx in rng.choice(np.flatnonzero(mask), size=n, replace=False):
        c = np.unravel_index(idx, mask.shape)
        out[tuple(slice(max(x - 2, 0), x + 3) for x in c)] = False
    return out


@pytest.mark.parametrize("c", [4, 8])
def test_membrane_betti_numbers_match_gudhi(shared_data, oracle, c):
    label = read_mask(shared_data / "isbi2012-membranes" / "labels" / "00.png")
    assert label.shape == (512, 512)
    b = betti_numbers(label, connectivity=c)
    assert b == oracle(label, c)
    assert b[1] > 50  # membranes enclose many cells


@pytest.mark.parametrize("c", [6, 26])
def test_vesselexpress_betti_numbers_match_gudhi(shared_data, oracle, c):
    label = read_mask(shared_data / "vesselexpress-3d" / "label.tif")
    assert label.shape == (100, 100, 100)
    crop = label[:30]
    assert betti_numbers(crop, connectivity=c) == oracle(crop, c)


def test_chase_vessels_against_a_copy_with_gaps(shared_data):
    label = read_mask(shared_data / "chase_db1-mini" / "labels" / "Image_01L.png")
    perfect = evaluate_case(label, label, protocol="hrf")
    assert perfect["e"] == perfect["e0_gt"] == 0.0 and perfect["ags"] == 1.0
    broken = cut_gaps(label, 20, seed=0)
    r = evaluate_case(broken, label, protocol="hrf")
    assert r["e0_gt"] > 0 and r["ags"] < 1.0 and r["dice"] > 0.9
    # Adding blobs far from vessels changes e0 but never e0-Gt.
    blobs = broken.copy()
    blobs[ndimage.binary_dilation(np.random.default_rng(1).random(label.shape) < 1e-4)] = True
    blobs &= ~ndimage.binary_dilation(label, iterations=3) | broken
    assert e0_gt(blobs, label, window=292) == r["e0_gt"]


@pytest.mark.slow
def test_vessap_protocol_on_the_vessap_label(shared_data):
    label = read_mask(shared_data / "labels-3d" / "vessap_label.nii.gz")
    broken = cut_gaps(label, 200, seed=2)
    r = evaluate_case(broken, label, protocol="vessap")
    assert r["e0_gt"] > 0 and r["ags"] < 1.0 and r["e0"] > 0
    assert set(r) == {"dice", "cldice", "e", "e0", "e1", "e0_gt", "ags"}

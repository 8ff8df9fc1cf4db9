"""The mask validator and the connectivity resolver reject bad input with clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from topobench.errors import InvalidMaskError, InvalidMaskTypeError, InvalidParameterError
from topobench.masks import as_mask, as_mask_pair, dual_connectivity, resolve_connectivity
from topobench.metrics import betti_errors, betti_numbers, cldice, dice, e0_gt, evaluate_case

METRICS = [
    lambda p, t: betti_errors(p, t),
    lambda p, t: dice(p, t),
    lambda p, t: cldice(p, t),
    lambda p, t: e0_gt(p, t),
    lambda p, t: evaluate_case(p, t),
]


def test_accepted_encodings_are_equivalent():
    b = np.array([[0, 1], [1, 1]], bool)
    for arr in (b, b.astype(np.uint8), b.astype(np.int32), b.astype(np.uint8) * 255,
                b.astype(np.uint16) * 255):
        assert as_mask(arr).dtype == bool and (as_mask(arr) == b).all()
    assert as_mask(np.zeros((2, 2), np.uint8)).sum() == 0


@pytest.mark.parametrize(
    "bad,error,match",
    [
        (np.zeros((3, 3), np.float32), InvalidMaskTypeError, "float32"),
        (np.array([[0, 2], [1, 0]]), InvalidMaskError, "values"),
        (np.array([[0, 1], [255, 0]]), InvalidMaskError, "values"),
        (np.array([[0, -1], [1, 0]]), InvalidMaskError, "values"),
        (np.array([[0.0, np.nan]]), InvalidMaskError, "NaN"),
        (np.zeros(5, bool), InvalidMaskError, "1D"),
        (np.zeros((2, 2, 2, 2), bool), InvalidMaskError, "4D"),
        (np.zeros((0, 4), bool), InvalidMaskError, "non-empty"),
        (np.array([["a", "b"]]), InvalidMaskTypeError, "dtype"),
    ],
)
def test_bad_masks_are_rejected_by_every_metric(bad, error, match):
    with pytest.raises(error, match=match):
        as_mask(bad)
    good = np.zeros(bad.shape if bad.ndim in (2, 3) and bad.size else (2, 2), bool)
    for metric in METRICS:
        with pytest.raises(error, match=match):
            metric(bad, good)
        with pytest.raises(error, match=match):
            metric(good, bad)
    with pytest.raises((ValueError, TypeError)):
        betti_numbers(bad)


def test_error_messages_name_what_they_got():
    with pytest.raises(TypeError, match=r"pred: expected a bool or integer .* got dtype float64"):
        dice(np.zeros((2, 2)), np.zeros((2, 2), bool))
    with pytest.raises(ValueError, match=r"got pred \(2, 3\) and target \(3, 2\)"):
        dice(np.zeros((2, 3), bool), np.zeros((3, 2), bool))


def test_threshold_binarises_probability_maps_explicitly():
    prob = np.array([[0.2, 0.7], [0.5, 0.9]])
    assert as_mask(prob, threshold=0.5).tolist() == [[False, True], [False, True]]
    with pytest.raises(InvalidMaskError, match="NaN"):
        as_mask(np.array([[np.nan, 1.0]]), threshold=0.5)
    p, t = as_mask_pair(prob, np.ones((2, 2), np.uint8), threshold=0.5)
    assert p.sum() == 2 and t.all()


def test_connectivity_resolution():
    assert resolve_connectivity(None, 2) == 8 and resolve_connectivity(None, 3) == 26
    assert resolve_connectivity(4, 2) == 4 and resolve_connectivity(6, 3) == 6
    for c, ndim in ((26, 2), (6, 2), (8, 3), (4, 3), (18, 3), (0, 2)):
        with pytest.raises(InvalidParameterError, match=f"connectivity {c} is not valid"):
            resolve_connectivity(c, ndim)
    with pytest.raises(InvalidParameterError, match="integer"):
        resolve_connectivity("8", 2)
    assert [dual_connectivity(c) for c in (4, 8, 6, 26)] == [8, 4, 26, 6]
    with pytest.raises(ValueError, match="connectivity 26 is not valid for a 2D"):
        betti_numbers(np.zeros((3, 3), bool), connectivity=26)
    with pytest.raises(ValueError, match="connectivity 8 is not valid for a 3D"):
        betti_errors(np.zeros((2, 3, 3), bool), np.zeros((2, 3, 3), bool), connectivity=8)


def test_map_mask_pairs_handles_one_pair_and_batches():
    from topobench.masks import map_mask_pairs

    a = np.zeros((3, 1, 4, 5), bool)
    a[1, 0, 2, 3] = True
    b = np.ones_like(a)
    out = map_mask_pairs(lambda x, y: x & y, a, b)
    assert out.shape == a.shape and out.dtype == bool and (out == a).all()
    assert (map_mask_pairs(lambda x, y: x | y, a[1, 0], ~b[1, 0]) == a[1, 0]).all()
    with pytest.raises(InvalidMaskError, match="first and second must have the same shape"):
        map_mask_pairs(lambda x, y: x, a, b[:2], names=("first", "second"))
    with pytest.raises(InvalidMaskError, match=r"\(B, 1, H, W\)"):
        map_mask_pairs(lambda x, y: x, np.zeros((2, 2, 4, 4)), np.zeros((2, 2, 4, 4)))

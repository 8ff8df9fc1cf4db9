"""HD95, ASSD and NSD against a brute-force reference (and MONAI where it imports)."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from topobench.errors import InvalidParameterError
from topobench.metrics import assd, evaluate_case, hd95, nsd, surface_distances
from topobench.metrics.distance import mask_surface


def brute_surface(mask: np.ndarray) -> np.ndarray:
    """Foreground pixels with a face neighbour outside the mask or outside the image."""
    padded = np.pad(mask, 1, constant_values=False)
    out = np.zeros_like(mask)
    for idx in zip(*np.nonzero(mask)):
        for axis, step in itertools.product(range(mask.ndim), (-1, 1)):
            q = [i + 1 for i in idx]
            q[axis] += step
            if not padded[tuple(q)]:
                out[idx] = True
                break
    return out


def brute_distances(pred, target, spacing):
    a = np.argwhere(brute_surface(pred)) * np.asarray(spacing)
    b = np.argwhere(brute_surface(target)) * np.asarray(spacing)
    d = cdist(a, b)
    return d.min(axis=1), d.min(axis=0)


def random_pair(rng, shape, density=0.25):
    pred = rng.random(shape) < density
    # A blob-like target: a thresholded smoothed field, so surfaces are not all pixels.
    from scipy import ndimage as ndi

    target = ndi.gaussian_filter(rng.random(shape), 1.5) > 0.5
    return pred | (ndi.binary_erosion(target) & (rng.random(shape) < 0.5)), target


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("shape", [(23, 19), (9, 11, 8)])
def test_against_brute_force(seed, shape):
    rng = np.random.default_rng(seed)
    pred, target = random_pair(rng, shape)
    spacing = tuple(rng.uniform(0.3, 2.5, len(shape)))
    assert np.array_equal(mask_surface(pred), brute_surface(pred))
    d_pt, d_tp = brute_distances(pred, target, spacing)
    want_hd = max(np.percentile(d_pt, 95), np.percentile(d_tp, 95))
    want_assd = (d_pt.sum() + d_tp.sum()) / (d_pt.size + d_tp.size)
    tol = 1.3
    want_nsd = ((d_pt <= tol).sum() + (d_tp <= tol).sum()) / (d_pt.size + d_tp.size)
    assert hd95(pred, target, spacing=spacing) == pytest.approx(want_hd, rel=1e-9)
    assert assd(pred, target, spacing=spacing) == pytest.approx(want_assd, rel=1e-9)
    assert nsd(pred, target, tolerance=tol, spacing=spacing) == pytest.approx(want_nsd)
    dist = surface_distances(pred, target, spacing=spacing)
    assert np.sort(dist.pred_to_target) == pytest.approx(np.sort(d_pt))
    assert np.sort(dist.target_to_pred) == pytest.approx(np.sort(d_tp))


@pytest.mark.slow  # importing torch and MONAI takes seconds
def test_against_monai():
    try:
        import torch
        from monai.metrics import (
            compute_average_surface_distance,
            compute_hausdorff_distance,
            compute_surface_dice,
        )
    except Exception:  # MONAI is optional (pip install --no-deps monai)
        pytest.skip("MONAI is not importable")
    rng = np.random.default_rng(7)
    for shape in [(31, 27), (12, 10, 14)]:
        pred, target = random_pair(rng, shape)
        spacing = list(rng.uniform(0.5, 2.0, len(shape)))
        p = torch.from_numpy(pred[None, None].astype(np.float32))
        t = torch.from_numpy(target[None, None].astype(np.float32))
        with warnings.catch_warnings():  # MONAI's own deprecation notes
            warnings.simplefilter("ignore")
            m_hd = compute_hausdorff_distance(p, t, percentile=95, spacing=spacing).item()
            m_assd = compute_average_surface_distance(p, t, symmetric=True, spacing=spacing)
            m_nsd = compute_surface_dice(
                p, t, class_thresholds=[1.0], spacing=spacing, include_background=True
            )
        assert hd95(pred, target, spacing=spacing) == pytest.approx(m_hd, rel=1e-5)
        assert assd(pred, target, spacing=spacing) == pytest.approx(m_assd.item(), rel=1e-5)
        assert nsd(pred, target, tolerance=1.0, spacing=spacing) == pytest.approx(
            m_nsd.item(), rel=1e-5
        )


def test_known_answers_and_spacing():
    target = np.zeros((12, 12), bool)
    target[2:8, 2:8] = True
    shifted = np.roll(target, 3, axis=1)
    assert hd95(shifted, target) == 3.0
    assert hd95(shifted, target, spacing=(1.0, 0.5)) == 1.5
    assert hd95(shifted, target, spacing=(7.0, 0.5)) == 1.5  # a shift along W only
    assert hd95(target, target) == assd(target, target) == 0.0
    assert nsd(target, target, tolerance=0.0) == 1.0
    assert nsd(shifted, target, tolerance=3.0) == 1.0
    assert nsd(shifted, target, tolerance=2.9) < 1.0
    # symmetric in its arguments
    rng = np.random.default_rng(3)
    a, b = random_pair(rng, (20, 20))
    assert hd95(a, b) == hd95(b, a) and assd(a, b) == pytest.approx(assd(b, a))


@pytest.mark.parametrize("shape", [(10, 7), (4, 6, 5)])
def test_empty_rules_never_nan(shape):
    empty = np.zeros(shape, bool)
    full = np.zeros(shape, bool)
    full[(slice(1, 3),) * len(shape)] = True
    spacing = (2.0,) * len(shape)
    diagonal = math.sqrt(sum((2.0 * n) ** 2 for n in shape))
    assert hd95(empty, empty) == assd(empty, empty) == 0.0
    assert nsd(empty, empty, tolerance=1) == 1.0
    for a, b in [(empty, full), (full, empty)]:
        assert hd95(a, b, spacing=spacing) == pytest.approx(diagonal)
        assert assd(a, b, spacing=spacing) == pytest.approx(diagonal)
        assert nsd(a, b, tolerance=100.0) == 0.0
    # the diagonal is larger than any distance in the image
    corner = np.zeros(shape, bool)
    corner[(0,) * len(shape)] = True
    far = np.zeros(shape, bool)
    far[tuple(n - 1 for n in shape)] = True
    assert hd95(corner, far, spacing=spacing) < diagonal


def test_bad_parameters():
    m = np.zeros((5, 5), bool)
    with pytest.raises(InvalidParameterError, match="spacing"):
        hd95(m, m, spacing=(1.0, 2.0, 3.0))
    with pytest.raises(InvalidParameterError, match="spacing"):
        assd(m, m, spacing=(1.0, 0.0))
    with pytest.raises(InvalidParameterError, match="tolerance"):
        nsd(m, m, tolerance=-1)
    with pytest.raises(InvalidParameterError, match="spacing"):
        evaluate_case(m, m, spacing=(1.0, -1.0))


def test_evaluate_case_distances_and_presets():
    rng = np.random.default_rng(5)
    pred, target = random_pair(rng, (40, 36))
    spacing = (0.5, 1.5)
    r = evaluate_case(
        pred, target, metrics=["dice", "hd95", "assd", "nsd"], nsd_tolerance=2.0,
        spacing=spacing,
    )
    assert list(r) == ["dice", "hd95", "assd", "nsd"]
    assert r["hd95"] == hd95(pred, target, spacing=spacing)
    assert r["assd"] == assd(pred, target, spacing=spacing)
    assert r["nsd"] == nsd(pred, target, tolerance=2.0, spacing=spacing)
    # the default protocol keeps the paper's metrics only
    assert "hd95" not in evaluate_case(pred, target)
    mortar = evaluate_case(pred, target, protocol="topomortar")
    assert list(mortar) == ["dice", "cldice", "e", "e0", "e1", "hd95"]
    assert mortar["hd95"] == hd95(pred, target)


def test_catalog_entries():
    from topobench.catalog import METRICS

    for name in ("hd95", "assd"):
        assert METRICS[name].kind == "distance" and not METRICS[name].higher_is_better
    assert METRICS["nsd"].kind == "fraction" and METRICS["nsd"].higher_is_better
    assert METRICS["are"].kind == "fraction" and not METRICS["are"].higher_is_better
    assert METRICS["are"].high == 1.0 and METRICS["nsd"].percent
    for name in ("vi_split", "vi_merge"):
        assert METRICS[name].kind == "bits" and not METRICS[name].higher_is_better

"""Sliding windows, windowed Betti errors and e0-Gt against brute-force loops."""

from __future__ import annotations

import numpy as np
import pytest

from topobench.errors import InvalidParameterError
from topobench.metrics import betti_errors, betti_numbers, e0_gt, sliding_windows


def test_windows_cover_the_array_once_with_clipped_last_tiles():
    shape = (10, 7, 5)
    tiles = sliding_windows(shape, (4, 3, 5))
    assert len(tiles) == 3 * 3 * 1
    count = np.zeros(shape, int)
    for t in tiles:
        count[t] += 1
    assert (count == 1).all()
    assert tiles[-1] == (slice(8, 10), slice(6, 7), slice(0, 5))  # clipped at the border


def test_window_larger_than_image_is_one_tile_and_none_is_whole():
    assert sliding_windows((5, 6), 100) == [(slice(0, 5), slice(0, 6))]
    assert sliding_windows((5, 6), None) == [(slice(0, 5), slice(0, 6))]


@pytest.mark.parametrize(
    "window", [0, -3, (3,), (3, 3, 3), (3, 0), 2.5, "8", True, (3, 2.0)]
)
def test_bad_windows_are_rejected(window):
    with pytest.raises(InvalidParameterError, match="window"):
        sliding_windows((8, 8), window)
    with pytest.raises(ValueError, match="window"):
        betti_errors(np.zeros((8, 8), bool), np.zeros((8, 8), bool), window=window)


def brute_force_errors(pred, target, window, connectivity, slices=False):
    """Reference: an explicit loop over tiles (and slices), no shared code but betti_numbers."""
    if slices and pred.ndim == 3:
        c2 = {26: 8, 6: 4}[connectivity]
        rows = []
        for z in range(pred.shape[0]):
            rows += brute_force_errors(pred[z], target[z], window, c2)
        return rows
    ws = window if isinstance(window, tuple) else (window,) * pred.ndim
    rows = []
    for corner in np.ndindex(*[int(np.ceil(n / w)) for n, w in zip(pred.shape, ws)]):
        sl = tuple(slice(i * w, min((i + 1) * w, n)) for i, w, n in zip(corner, ws, pred.shape))
        bp = betti_numbers(pred[sl], connectivity=connectivity)
        bt = betti_numbers(target[sl], connectivity=connectivity)
        rows.append([abs(a - b) for a, b in zip(bp, bt)])
    return rows


@pytest.mark.parametrize(
    "shape,window,connectivity",
    [((30, 23), 7, 8), ((30, 23), (10, 6), 4), ((9, 14, 11), (4, 5, 6), 26), ((9, 14, 11), 5, 6)],
)
def test_windowed_errors_equal_brute_force(shape, window, connectivity):
    rng = np.random.default_rng(sum(shape))
    pred = rng.random(shape) < 0.35
    target = rng.random(shape) < 0.35
    rows = np.array(brute_force_errors(pred, target, window, connectivity), float)
    result = betti_errors(pred, target, window=window, connectivity=connectivity)
    assert result.n_windows == len(rows)
    assert result.e0 == pytest.approx(rows[:, 0].mean())
    assert result.e1 == pytest.approx(rows[:, 1].mean())
    assert result.e == pytest.approx(rows.sum(axis=1).mean())
    if len(shape) == 3:
        assert result.e2 == pytest.approx(rows[:, 2].mean())
    else:
        assert result.e2 is None and "e2" not in result.to_dict()


@pytest.mark.parametrize("connectivity", [6, 26])
def test_slices_equal_brute_force_over_2d_slices(connectivity):
    rng = np.random.default_rng(connectivity)
    pred = rng.random((6, 20, 17)) < 0.4
    target = rng.random((6, 20, 17)) < 0.4
    for window in (None, 8):
        ws = window if window is not None else 20
        rows = np.array(brute_force_errors(pred, target, ws, connectivity, slices=True), float)
        result = betti_errors(pred, target, slices=True, window=window, connectivity=connectivity)
        assert result.n_windows == len(rows)
        assert result.e2 is None
        assert (result.e0, result.e1) == pytest.approx((rows[:, 0].mean(), rows[:, 1].mean()))


def test_2d_metrics_equal_slices_protocol_on_one_slice_volume():
    rng = np.random.default_rng(11)
    pred = rng.random((25, 31)) < 0.4
    target = rng.random((25, 31)) < 0.4
    for c2, c3 in ((8, 26), (4, 6)):
        flat = betti_errors(pred, target, connectivity=c2, window=9)
        sliced = betti_errors(pred[None], target[None], slices=True, connectivity=c3, window=9)
        assert flat == sliced


def test_gap_and_bridge_errors_by_hand():
    target = np.zeros((9, 20), bool)
    target[2, 1:19] = True
    target[6, 1:19] = True
    gap = target.copy()
    gap[2, 9:11] = False  # one line cut: one more component
    r = betti_errors(gap, target)
    assert (r.e0, r.e1, r.e) == (1.0, 0.0, 1.0)
    bridge = target.copy()
    bridge[2:7, 3] = True
    bridge[2:7, 15] = True  # two bridges: lines merge (-1 component) and close a loop (+1 hole)
    r = betti_errors(bridge, target)
    assert (r.e0, r.e1) == (1.0, 1.0)
    # windows: a gap inside one of the two tiles along x counts in that tile only ...
    inside = target.copy()
    inside[2, 4:6] = False
    r = betti_errors(inside, target, window=(9, 10))
    assert r.n_windows == 2 and r.e0 == 0.5
    # ... while a gap exactly on the tile border is invisible to windowed e0 (a known artifact)
    assert betti_errors(gap, target, window=(9, 10)).e0 == 0.0


def test_e0_gt_counts_missed_connections_and_ignores_false_positives():
    target = np.zeros((9, 30), bool)
    target[4, 1:29] = True
    pred = target.copy()
    pred[4, [6, 14, 22]] = False  # three gaps: four pieces
    assert e0_gt(pred, target) == 3.0
    noisy = pred.copy()
    noisy[0, ::3] = True  # ten spurious blobs: e0 changes, e0-Gt does not
    assert e0_gt(noisy, target) == 3.0
    assert betti_errors(noisy, target).e0 != 3.0
    assert e0_gt(target, target) == 0.0
    assert e0_gt(np.zeros_like(target), np.zeros_like(target)) == 0.0
    assert e0_gt(np.zeros_like(target), target) == 1.0  # the one target piece is lost
    # windowed: mean over the three 10-wide tiles; tile 0 holds the gap at 6, tile 1 at 14 ...
    assert e0_gt(pred, target, window=(9, 10)) == pytest.approx(1.0)


def test_e0_gt_matches_brute_force_in_3d():
    rng = np.random.default_rng(2)
    pred = rng.random((8, 12, 10)) < 0.5
    target = rng.random((8, 12, 10)) < 0.5
    for c in (6, 26):
        ref = []
        for sl in sliding_windows(pred.shape, 5):
            ref.append(abs(betti_numbers(pred[sl] & target[sl], connectivity=c)[0]
                           - betti_numbers(target[sl], connectivity=c)[0]))
        assert e0_gt(pred, target, window=5, connectivity=c) == pytest.approx(np.mean(ref))


def test_perfect_prediction_has_no_errors():
    rng = np.random.default_rng(4)
    for shape in ((33, 40), (7, 20, 21)):
        m = rng.random(shape) < 0.3
        for kw in ({}, {"window": 6}, {"slices": True}):
            r = betti_errors(m, m, **kw)
            assert r.e == r.e0 == r.e1 == 0.0
        assert e0_gt(m, m) == 0.0


def test_errors_are_invariant_under_flips_and_rotations():
    rng = np.random.default_rng(8)
    pred = rng.random((24, 24)) < 0.4
    target = rng.random((24, 24)) < 0.4
    ref = betti_errors(pred, target, window=8)
    ref_gt = e0_gt(pred, target, window=8)
    for f in (lambda a: a[::-1], lambda a: a[:, ::-1], np.rot90, lambda a: np.rot90(a, 3)):
        assert betti_errors(f(pred), f(target), window=8) == ref
        assert e0_gt(f(pred), f(target), window=8) == ref_gt


def test_workers_do_not_change_results():
    rng = np.random.default_rng(9)
    pred = rng.random((6, 30, 30)) < 0.4
    target = rng.random((6, 30, 30)) < 0.4
    assert betti_errors(pred, target, slices=True, workers=1) == betti_errors(
        pred, target, slices=True, workers=2
    )
    with pytest.raises(InvalidParameterError, match="workers"):
        betti_errors(pred, target, workers=0)


def test_skeletons_use_threads_and_component_counts_do_not(monkeypatch):
    """scikit-image's thinning releases the GIL (2D and 3D); cc3d holds it (metrics._parallel)."""
    import threading

    import topobench.metrics.overlap as overlap
    import topobench.metrics.window_errors as window_errors

    seen = []
    real_skeleton, real_betti = overlap.skeleton, window_errors._betti_validated

    def spy_skeleton(mask):
        seen.append(("skeleton", threading.get_ident()))
        return real_skeleton(mask)

    def spy_betti(mask, c):
        seen.append(("betti", threading.get_ident()))
        return real_betti(mask, c)

    monkeypatch.setattr(overlap, "skeleton", spy_skeleton)
    monkeypatch.setattr(window_errors, "_betti_validated", spy_betti)
    image = np.zeros((40, 40), bool)
    image[5:35, 10:13] = True
    plain = overlap.skeleton_window_stats(image, image, window=10, workers=1)
    assert np.array_equal(overlap.skeleton_window_stats(image, image, window=10, workers=2), plain)
    main = threading.get_ident()
    assert {t for kind, t in seen if kind == "skeleton"} - {main}  # worker threads ran them
    seen.clear()
    window_errors.betti_window_stats(image, image, window=10, workers=2)
    assert {t for kind, t in seen if kind == "betti"} == {main}

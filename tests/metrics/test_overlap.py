"""Dice, clDice and AGS: textbook formulas, empty-mask rules, windows, no NaN."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from skimage.morphology import skeletonize

from topobench.metrics import (
    ags,
    betti_numbers,
    cldice,
    dice,
    skeleton,
    skeleton_window_stats,
    sliding_windows,
)


def line(n=12, length=10, start=1):
    m = np.zeros((5, n), bool)
    m[2, start:start + length] = True
    return m


def textbook_cldice(pred, target):
    sp, st_ = skeletonize(pred), skeletonize(target)
    tprec = (sp & target).sum() / sp.sum()
    tsens = (st_ & pred).sum() / st_.sum()
    return 2 * tprec * tsens / (tprec + tsens)


def test_dice_by_hand():
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    a[0, :3] = True
    b[0, 1:] = True
    assert dice(a, b) == pytest.approx(2 * 2 / 6)
    assert dice(a, a) == 1.0
    assert dice(a, ~a) == 0.0


def test_cldice_on_a_truncated_line_by_hand():
    target = line(length=10)
    pred = line(length=6)
    # S(line) = line: Tprec = 6/6 = 1, Tsens = 6/10; clDice = 2 * 0.6 / 1.6 = 0.75
    assert cldice(pred, target) == pytest.approx(0.75)
    assert ags(pred, target) == pytest.approx(0.6)


def test_cldice_equals_textbook_formula_on_thick_shapes():
    rng = np.random.default_rng(0)
    for _ in range(10):
        target = np.zeros((40, 40), bool)
        pred = np.zeros((40, 40), bool)
        for m in (target, pred):
            for _ in range(3):
                r, c = rng.integers(3, 37, size=2)
                m[r - 2:r + 3, 3:37] = True
                m[3:37, c - 1:c + 2] = True
        assert cldice(pred, target) == pytest.approx(textbook_cldice(pred, target))


def test_cldice_3d_equals_textbook_formula():
    target = np.zeros((12, 14, 14), bool)
    target[2:10, 5:8, 5:8] = True
    target[4:7, 1:13, 5:8] = True
    pred = target.copy()
    pred[:, :, :6] = False
    assert cldice(pred, target) == pytest.approx(textbook_cldice(pred, target))


def test_3d_skeleton_never_loses_a_component():
    """scikit-image's 3D thinning erases 2-voxel-thick objects; topobench's skeleton does not."""
    cross = np.zeros((10, 12, 12), bool)
    cross[2:8, 5:7, 5:7] = True
    cross[4:6, 1:11, 5:7] = True
    assert skeletonize(cross).sum() == 0  # the upstream behaviour this guards against
    for mask in (cross, np.pad(np.ones((6, 2, 2), bool), 2), np.pad(np.ones((2, 2, 2), bool), 1)):
        sk = skeleton(mask)
        assert sk.any() and not (sk & ~mask).any()
        assert betti_numbers(sk)[0] == betti_numbers(mask)[0]
        assert cldice(mask, mask) == ags(mask, mask) == 1.0
    bar = np.pad(np.ones((6, 2, 2), bool), 2)
    assert skeleton(bar).sum() >= 4  # a line along the bar, not a single voxel


def test_empty_mask_rules():
    empty = np.zeros((6, 6), bool)
    full = line(6, 4)
    full = np.pad(full, ((0, 1), (0, 0)))[:6]
    assert (dice(empty, empty), cldice(empty, empty), ags(empty, empty)) == (1.0, 1.0, 1.0)
    assert (dice(empty, full), cldice(empty, full), ags(empty, full)) == (0.0, 0.0, 0.0)
    # A prediction without any target: overlap scores 0; AGS has no centreline to cover -> 1.
    assert (dice(full, empty), cldice(full, empty), ags(full, empty)) == (0.0, 0.0, 1.0)


def test_windowed_cldice_leaves_out_windows_where_both_are_empty():
    target = np.zeros((10, 40), bool)
    target[5, 1:9] = True  # only in the first 10-wide tile
    pred = target.copy()
    pred[5, 5:9] = False
    per_tile = cldice(pred[:, :10], target[:, :10])
    assert cldice(pred, target, window=10) == pytest.approx(per_tile)  # 3 empty tiles left out
    pred2 = pred.copy()
    pred2[5, 31:35] = True  # a false positive alone in the last tile: that tile scores 0
    assert cldice(pred2, target, window=10) == pytest.approx(per_tile / 2)
    assert ags(pred2, target, window=10) == pytest.approx(ags(pred, target))


def test_skeleton_window_stats_are_shared_sufficient_statistics():
    rng = np.random.default_rng(1)
    pred = rng.random((30, 30)) < 0.5
    target = rng.random((30, 30)) < 0.5
    stats = skeleton_window_stats(pred, target, window=10)
    assert stats.shape == (9, 6)
    for row, sl in zip(stats, sliding_windows(pred.shape, 10)):
        sp, st_ = skeletonize(pred[sl]), skeletonize(target[sl])
        expected = [pred[sl].any(), target[sl].any(), sp.sum(), (sp & target[sl]).sum(),
                    st_.sum(), (st_ & pred[sl]).sum()]
        assert row.tolist() == [int(v) for v in expected]


def test_perfect_prediction_scores_one():
    rng = np.random.default_rng(2)
    for shape in ((30, 31), (6, 15, 16)):
        m = rng.random(shape) < 0.3
        assert dice(m, m) == cldice(m, m) == ags(m, m) == 1.0
        assert cldice(m, m, window=5) == ags(m, m, window=5) == 1.0


def test_overlap_invariant_under_flips_and_rotations():
    """Exact invariance on 1-pixel-wide line drawings, whose skeleton is the drawing itself.

    (On thick shapes, Zhang-Suen thinning depends on orientation by a pixel here and there, so
    clDice and AGS are invariant only up to that; Dice is always exact.)
    """
    from skimage.draw import line

    rng = np.random.default_rng(3)
    for _ in range(5):
        pred = np.zeros((40, 40), bool)
        target = np.zeros((40, 40), bool)
        for m in (pred, target):
            for _ in range(4):
                r0, c0, r1, c1 = rng.integers(1, 39, size=4)
                if rng.random() < 0.5:
                    m[line(r0, c0, r0, c1)] = True
                else:
                    m[line(r0, c0, r1, c0)] = True
        ref = (dice(pred, target), cldice(pred, target), ags(pred, target))
        for f in (lambda a: a[::-1], lambda a: a[:, ::-1], np.rot90, lambda a: np.rot90(a, 3)):
            got = (dice(f(pred), f(target)), cldice(f(pred), f(target)),
                   ags(f(pred), f(target)))
            assert got == pytest.approx(ref)
    thick_p = rng.random((20, 20)) < 0.5
    thick_t = rng.random((20, 20)) < 0.5
    assert dice(thick_p[::-1], thick_t[::-1]) == dice(thick_p, thick_t)


masks_2d = arrays(bool, st.tuples(st.integers(1, 12), st.integers(1, 12)))


@given(masks_2d, st.data())
def test_overlap_scores_are_fractions_never_nan(pred, data):
    target = data.draw(arrays(bool, pred.shape))
    window = data.draw(st.one_of(st.none(), st.integers(1, 6)))
    for value in (dice(pred, target), cldice(pred, target, window=window),
                  ags(pred, target, window=window)):
        assert 0.0 <= value <= 1.0 and not np.isnan(value)
    assert dice(pred, target) == dice(target, pred)


def test_skeleton_of_the_bounding_box_is_the_skeleton():
    """Windows are thinned on their foreground's bounding box: the same skeleton as thinning
    the whole window (2D and 3D, with margins and touching the border)."""
    from scipy import ndimage

    from topobench.metrics.overlap import _foreground_box, _skeleton_counts

    rng = np.random.default_rng(7)
    for k in range(40):
        shape = tuple(rng.integers(6, 24, size=2 + k % 2))
        mask = ndimage.binary_dilation(rng.random(shape) < 0.03, iterations=int(k % 3))
        mask[: k % 4] = False
        if not mask.any():
            continue
        box = _foreground_box(mask)
        whole = skeleton(mask)
        assert not whole[tuple(slice(0, b.start) for b in box)].any()
        cropped = np.zeros_like(whole)
        cropped[box] = skeleton(mask[box])
        assert np.array_equal(cropped, whole)
        other = rng.random(shape) < 0.5
        assert _skeleton_counts(mask, other) == (whole.sum(), (whole & other).sum())

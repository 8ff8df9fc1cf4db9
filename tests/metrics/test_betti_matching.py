"""Betti matching error against Betti-Matching-3D, shapes with known answers, and conventions.

The reference is the compiled Betti-Matching-3D module that ships inside the ``topolosses``
wheel (``pip install --no-deps topolosses``); the tests that need it skip when it is absent.
"""

from __future__ import annotations

import numpy as np
import pytest

from topobench.errors import InvalidMaskError, InvalidParameterError
from topobench.metrics import (
    betti_matching_counts,
    betti_matching_error,
    betti_numbers,
    evaluate_case,
    sliding_windows,
)
from topobench.metrics._bm_reference import load_reference, reference_counts, reference_inputs
from topobench.metrics.betti_matching import subdivide


@pytest.fixture(scope="module")
def reference():
    """``counts(x, y)``: Betti-Matching-3D's (matched, unmatched x, unmatched y) per dimension
    for the V-construction masks x, y, as a (3, ndim) array; skips when it is not installed."""
    module = load_reference()
    if module is None:
        pytest.skip("Betti-Matching-3D (the topolosses wheel) is not installed")

    def counts(x: np.ndarray, y: np.ndarray, connectivity: int = 6) -> np.ndarray:
        return reference_counts(module, *reference_inputs(x, y, connectivity))

    return counts


def _reference_for(reference, x, y, connectivity):
    """The reference's counts in topobench's convention: 4/6 directly, 8/26 subdivided."""
    return reference(x, y, connectivity)


def _random_pairs(rng, ndim, n, low, high):
    for _ in range(n):
        shape = tuple(int(s) for s in rng.integers(low, high, size=ndim))
        p1, p2 = rng.uniform(0.15, 0.85, 2)
        x = rng.random(shape) < p1
        if rng.random() < 0.5:  # a perturbed copy: many matched features
            y = x.copy()
            y[rng.random(shape) < 0.15] ^= True
        else:
            y = rng.random(shape) < p2
        yield x, y


@pytest.mark.parametrize("connectivity", [4, 8])
def test_equals_reference_on_random_2d_masks(reference, connectivity):
    rng = np.random.default_rng(connectivity)
    n = 150 if connectivity == 4 else 60
    for x, y in _random_pairs(rng, 2, n, 1, 11):
        got = betti_matching_counts(x, y, connectivity=connectivity)
        want = _reference_for(reference, x, y, connectivity)
        assert np.array_equal(got, want), (x.astype(int), y.astype(int), got, want)


@pytest.mark.parametrize("connectivity", [6, 26])
def test_equals_reference_on_random_3d_masks(reference, connectivity):
    rng = np.random.default_rng(connectivity)
    n, high = (80, 7) if connectivity == 6 else (30, 5)
    for x, y in _random_pairs(rng, 3, n, 1, high):
        got = betti_matching_counts(x, y, connectivity=connectivity)
        want = _reference_for(reference, x, y, connectivity)
        assert np.array_equal(got, want), (x.astype(int), y.astype(int), got, want)


def _sparse_pairs(rng, n, low, high):
    """Small shapes (blobs, rings, tubes) in a larger empty grid: most of the grid is far from
    both masks, where the dimension-1 reductions take the constant grid's columns unvisited."""
    from scipy import ndimage

    for _ in range(n):
        shape = tuple(int(s) for s in rng.integers(low, high, size=3))
        x = ndimage.binary_dilation(rng.random(shape) < 0.01, iterations=int(rng.integers(1, 3)))
        x[tuple(rng.integers(0, s) for s in shape)] = True
        x &= ~(rng.random(shape) < 0.15)  # holes, tunnels and loose ends
        y = x.copy()
        y[rng.random(shape) < 0.03] ^= True
        yield x, y


@pytest.mark.parametrize("connectivity", [6, 26])
def test_equals_reference_on_sparse_3d_masks(reference, connectivity):
    rng = np.random.default_rng(40 + connectivity)
    n, high = (25, 16) if connectivity == 6 else (8, 10)
    for x, y in _sparse_pairs(rng, n, 6, high):
        got = betti_matching_counts(x, y, connectivity=connectivity)
        want = _reference_for(reference, x, y, connectivity)
        assert np.array_equal(got, want), (np.argwhere(x), np.argwhere(y), got, want)


@pytest.mark.slow
@pytest.mark.parametrize("ndim,connectivity", [(2, 4), (2, 8), (3, 6), (3, 26)])
def test_equals_reference_on_many_random_masks(reference, ndim, connectivity):
    rng = np.random.default_rng(100 + connectivity)
    high = {4: 16, 8: 10, 6: 9, 26: 6}[connectivity]
    for x, y in _random_pairs(rng, ndim, 400, 1, high):
        got = betti_matching_counts(x, y, connectivity=connectivity)
        assert np.array_equal(got, _reference_for(reference, x, y, connectivity))
    if ndim == 3:
        n, high = (100, 28) if connectivity == 6 else (20, 14)
        for x, y in _sparse_pairs(rng, n, 8, high):
            got = betti_matching_counts(x, y, connectivity=connectivity)
            assert np.array_equal(got, _reference_for(reference, x, y, connectivity))


# ------------------------------------------------------------------ shapes with known answers


def _ring(shape, top, left, size):
    m = np.zeros(shape, bool)
    m[top:top + size, left:left + size] = True
    m[top + 1:top + size - 1, left + 1:left + size - 1] = False
    return m


def _blob(shape, top, left, size):
    m = np.zeros(shape, bool)
    m[top:top + size, left:left + size] = True
    return m


@pytest.mark.parametrize("connectivity", [4, 8])
def test_two_loops_swapped_in_position(reference, connectivity):
    """Target: a loop left, a blob right; prediction: the other way round. The Betti errors see
    nothing (one loop and two components each); the matching sees two unmatched loops."""
    shape = (12, 24)
    target = _ring(shape, 2, 2, 7) | _blob(shape, 2, 14, 7)
    pred = _blob(shape, 2, 2, 7) | _ring(shape, 2, 14, 7)
    assert betti_numbers(pred, connectivity=connectivity) == betti_numbers(
        target, connectivity=connectivity)
    r = betti_matching_error(pred, target, connectivity=connectivity)
    assert r.per_dim == (0.0, 2.0)
    assert r.matched == (1.0, 0.0)  # the two components are matched to each other
    assert (r.unmatched_pred, r.unmatched_target) == ((0.0, 1.0), (0.0, 1.0))
    assert np.array_equal(betti_matching_counts(pred, target, connectivity=connectivity),
                          _reference_for(reference, pred, target, connectivity))


def test_same_loop_is_matched_and_a_moved_loop_is_not():
    shape = (12, 24)
    loop = _ring(shape, 2, 2, 7)
    assert betti_matching_error(loop, loop).total == 0.0
    moved = _ring(shape, 2, 14, 7)
    r = betti_matching_error(moved, loop)
    assert r.per_dim == (0.0, 2.0)
    assert r.matched == (0.0, 0.0)


@pytest.mark.parametrize("connectivity", [4, 8])
def test_split_component(connectivity):
    """A bar cut in two: the prediction has one finite component pair the target lacks."""
    target = np.zeros((7, 20), bool)
    target[3, 2:18] = True
    pred = target.copy()
    pred[3, 9:11] = False
    r = betti_matching_error(pred, target, connectivity=connectivity)
    assert r.per_dim == (1.0, 0.0)
    assert r.unmatched_pred == (1.0, 0.0) and r.unmatched_target == (0.0, 0.0)


def test_split_of_one_of_two_components_is_one_error(reference):
    target = np.zeros((9, 20), bool)
    target[2, 2:18] = True
    target[6, 2:18] = True
    pred = target.copy()
    pred[2, 9:11] = False
    r = betti_matching_error(pred, target)
    # target: one finite pair (two bars); prediction: two (three pieces), one of them matched
    assert r.matched[0] == 1.0 and r.per_dim[0] == 1.0
    assert np.array_equal(betti_matching_counts(pred, target, connectivity=4),
                          _reference_for(reference, pred, target, 4))


@pytest.mark.parametrize("connectivity", [6, 26])
def test_hollow_cube_against_solid_cube(reference, connectivity):
    solid = np.zeros((7, 7, 7), bool)
    solid[1:6, 1:6, 1:6] = True
    hollow = solid.copy()
    hollow[2:5, 2:5, 2:5] = False
    r = betti_matching_error(solid, hollow, connectivity=connectivity)
    assert r.per_dim == (0.0, 0.0, 1.0)
    assert r.unmatched_target == (0.0, 0.0, 1.0)
    assert betti_matching_error(hollow, hollow, connectivity=connectivity).total == 0.0
    assert np.array_equal(betti_matching_counts(solid, hollow, connectivity=connectivity),
                          _reference_for(reference, solid, hollow, connectivity))


@pytest.mark.parametrize("connectivity", [6, 26])
def test_tunnel_against_solid_block(reference, connectivity):
    block = np.zeros((5, 9, 9), bool)
    block[1:4, 1:8, 1:8] = True
    tunnel = block.copy()
    tunnel[1:4, 3:6, 3:6] = False  # a hole through the block: one tunnel
    assert betti_numbers(tunnel, connectivity=connectivity) == (1, 1, 0)
    r = betti_matching_error(tunnel, block, connectivity=connectivity)
    assert r.per_dim == (0.0, 1.0, 0.0)
    assert r.unmatched_pred == (0.0, 1.0, 0.0)
    assert np.array_equal(betti_matching_counts(tunnel, block, connectivity=connectivity),
                          _reference_for(reference, tunnel, block, connectivity))


@pytest.mark.parametrize("connectivity", [4, 8])
def test_features_touching_the_border(connectivity):
    """A loop closed only by the image border is no loop (the image is padded with background);
    a loop drawn on the border pixels is one."""
    u_shape = np.zeros((8, 8), bool)
    u_shape[0:6, 2] = u_shape[0:6, 6] = True
    u_shape[5, 2:7] = True  # open towards row 0
    frame = np.zeros((8, 8), bool)
    frame[0, :] = frame[-1, :] = frame[:, 0] = frame[:, -1] = True
    empty = np.zeros((8, 8), bool)
    assert betti_matching_error(u_shape, empty, connectivity=connectivity).per_dim == (0.0, 0.0)
    assert betti_matching_error(frame, empty, connectivity=connectivity).per_dim == (0.0, 1.0)
    r = betti_matching_error(frame, frame | u_shape, connectivity=connectivity)
    assert r.per_dim[1] == 1.0  # the U closes a second loop against the frame


def test_connectivity_decides_what_is_connected():
    diagonal = np.eye(6, dtype=bool)
    empty = np.zeros((6, 6), bool)
    # 4-connected: six pixels, five finite pairs; 8-connected: one component
    assert betti_matching_error(diagonal, empty, connectivity=4).per_dim == (5.0, 0.0)
    assert betti_matching_error(diagonal, empty, connectivity=8).per_dim == (0.0, 0.0)


@pytest.mark.parametrize("ndim,connectivity", [(2, 4), (2, 8), (3, 6), (3, 26)])
def test_unmatched_counts_against_an_empty_mask_are_betti_numbers(ndim, connectivity):
    """With nothing to match, the pairs are the Betti numbers (the oldest component excluded):
    checks the subdivision (8/26) and the pair counts against topobench's Betti numbers, which
    are themselves checked against gudhi."""
    rng = np.random.default_rng(ndim * 100 + connectivity)
    for _ in range(40):
        shape = tuple(int(s) for s in rng.integers(2, 9 if ndim == 2 else 6, size=ndim))
        x = rng.random(shape) < rng.uniform(0.2, 0.8)
        empty = np.zeros(shape, bool)
        betti = list(betti_numbers(x, connectivity=connectivity))
        betti[0] = max(betti[0] - 1, 0)
        got = betti_matching_counts(x, empty, connectivity=connectivity)
        assert got[1].tolist() == betti
        assert got[0].sum() == 0 and got[2].sum() == 0
        flipped = betti_matching_counts(empty, x, connectivity=connectivity)
        assert flipped[2].tolist() == betti


@pytest.mark.parametrize("ndim,connectivity", [(2, 8), (3, 26), (3, 6)])
def test_swapping_prediction_and_target_swaps_the_counts(ndim, connectivity):
    rng = np.random.default_rng(7)
    for x, y in _random_pairs(rng, ndim, 20, 2, 9 if ndim == 2 else 6):
        a = betti_matching_counts(x, y, connectivity=connectivity)
        b = betti_matching_counts(y, x, connectivity=connectivity)
        assert np.array_equal(a[[0, 2, 1]], b)


def test_identical_masks_have_no_error():
    rng = np.random.default_rng(3)
    for ndim in (2, 3):
        x = rng.random((7,) * ndim) < 0.5
        r = betti_matching_error(x, x)
        assert r.total == 0.0 and sum(r.unmatched_pred) == 0.0


# ------------------------------------------------------------------ windows, slices, protocol


def test_windows_and_slices_average_the_per_window_errors():
    rng = np.random.default_rng(11)
    x = rng.random((4, 10, 13)) < 0.4
    y = rng.random((4, 10, 13)) < 0.4
    tiles = sliding_windows(x.shape, (3, 6, 6))
    want = np.mean([betti_matching_error(x[w], y[w]).total for w in tiles])
    r = betti_matching_error(x, y, window=(3, 6, 6))
    assert r.n_windows == len(tiles) and r.total == pytest.approx(want)
    per_slice = [betti_matching_error(x[z], y[z], connectivity=8) for z in range(4)]
    s = betti_matching_error(x, y, slices=True)
    assert s.n_windows == 4 and len(s.per_dim) == 2
    assert s.per_dim == pytest.approx(tuple(np.mean([p.per_dim for p in per_slice], axis=0)))
    s6 = betti_matching_error(x, y, slices=True, connectivity=6)
    assert s6.total == pytest.approx(np.mean(
        [betti_matching_error(x[z], y[z], connectivity=4).total for z in range(4)]))


def test_result_fields_and_dict():
    target = np.zeros((9, 9), bool)
    target[1:4, 1:4] = True
    target[2, 2] = False
    r = betti_matching_error(np.zeros((9, 9), bool), target)
    assert r.to_dict() == {
        "bm": 1.0, "bm0": 0.0, "bm1": 1.0,
        "matched0": 0.0, "matched1": 0.0,
        "unmatched_pred0": 0.0, "unmatched_pred1": 0.0,
        "unmatched_target0": 0.0, "unmatched_target1": 1.0,
        "n_windows": 1,
    }
    with pytest.raises(AttributeError):
        r.total = 3.0  # frozen
    v = betti_matching_error(np.zeros((3, 4, 5), bool), np.zeros((3, 4, 5), bool))
    assert v.per_dim == (0.0, 0.0, 0.0) and "bm2" in v.to_dict()


def test_evaluate_case_computes_bm_only_when_asked():
    target = _ring((12, 24), 2, 2, 7)
    pred = _ring((12, 24), 2, 14, 7)
    assert not any(k.startswith("bm") for k in evaluate_case(pred, target))
    r = evaluate_case(pred, target, metrics=["e", "bm", "bm0", "bm1", "bm2"])
    assert r == {"e": 0.0, "bm": 2.0, "bm0": 0.0, "bm1": 2.0}  # no bm2 for 2D windows
    vol = np.zeros((4, 12, 24), bool)
    vol[1:3] = target
    r3 = evaluate_case(vol, vol, metrics=["bm", "bm2"])
    assert r3 == {"bm": 0.0, "bm2": 0.0}
    sliced = evaluate_case(np.zeros_like(vol), vol, protocol="vessap", metrics=["bm", "bm2"])
    assert sliced == {"bm": 0.5}  # two of four slices hold one unmatched loop


def test_invalid_inputs_are_refused():
    with pytest.raises(InvalidParameterError):
        betti_matching_error(np.zeros((4, 4), bool), np.zeros((4, 4), bool), connectivity=26)
    with pytest.raises(InvalidMaskError):
        betti_matching_error(np.zeros((4, 4), bool), np.zeros((4, 5), bool))
    with pytest.raises(InvalidParameterError, match="window"):
        betti_matching_error(np.zeros((4, 4), bool), np.zeros((4, 4), bool), window=0)


def test_subdivision_is_the_closed_pixel_complex():
    x = np.zeros((3, 3), bool)
    x[0, 0] = x[1, 1] = True
    assert betti_numbers(subdivide(x), connectivity=4) == betti_numbers(x, connectivity=8)
    ring = np.ones((3, 3), bool)
    ring[1, 1] = False
    assert betti_numbers(subdivide(ring), connectivity=4) == (1, 1)


@pytest.mark.slow
def test_vessap_crop_equals_reference(reference, shared_data):
    import nibabel as nib
    from scipy import ndimage

    vol = np.asarray(nib.load(shared_data / "labels-3d" / "vessap_label.nii.gz").dataobj)
    target = vol.transpose(2, 1, 0)[:24, :96, :96].astype(bool)
    rng = np.random.default_rng(0)
    pred = target.copy()
    pred[rng.random(target.shape) < 0.02] ^= True
    pred = ndimage.binary_opening(pred)
    got = betti_matching_counts(pred, target, connectivity=6)
    assert np.array_equal(got, reference(pred, target))


def _rings(shape, centres):
    """Square rings (3x3 with a hole) in planes x = const, one per centre (x, y, z)."""
    m = np.zeros(shape, bool)
    for x, y, z in centres:
        m[x, y - 1:y + 2, z - 1:z + 2] = True
        m[x, y, z] = False
    return m


def test_more_classes_than_one_word_equals_reference(reference):
    # 90 tunnels in x and 80 in y (two 64-bit words each); 70 of them at the same places
    rng = np.random.default_rng(3)
    grid = [(x, y, z) for x in (1, 4, 7) for y in range(2, 40, 4) for z in range(2, 40, 4)]
    order = rng.permutation(len(grid))
    shared = [grid[i] for i in order[:70]]
    x = _rings((9, 41, 41), shared + [grid[i] for i in order[70:90]])
    y = _rings((9, 41, 41), shared + [grid[i] for i in order[90:100]])
    got = betti_matching_counts(x, y, connectivity=6)
    assert got[0, 1] == 70 and got[1, 1] == 20 and got[2, 1] == 10
    assert np.array_equal(got, reference(x, y))


def test_sweep_renumbering_its_node_pool_gives_the_same_counts():
    """The dimension-1 sweep keeps set nodes of retired planes in a pool and renumbers it when
    it could overflow; the smallest pool renumbers at almost every plane."""
    from topobench.metrics import _bm_linking

    module = load_reference()
    rng = np.random.default_rng(11)
    for _ in range(40):
        shape = tuple(int(s) for s in rng.integers(4, 10, size=3))
        x8, y8 = ((rng.random(shape) < 0.6).astype(np.uint8) for _ in range(2))
        (kx, ix, lx), (ky, iy, ly) = (_bm_linking.class_labels(m) for m in (x8, y8))
        if not (kx and ky):
            continue
        wtag = (0,) * (lx.shape[1] + ly.shape[1])
        counts = {_bm_linking.linking_sweep(x8 | y8, ix, lx, kx, iy, ly, ky, wtag, planes)
                  for planes in (1, 2, 4)}
        assert len(counts) == 1
        if module is not None:  # and it is the reference's number of matched tunnels
            ref = reference_counts(module, *reference_inputs(x8 != 0, y8 != 0, 6))
            assert counts == {int(ref[0, 1])}


def test_merge_flags_are_positive_squares_only():
    """Skipping a flagged square must not change the births: with and without the flags, the
    same birth edges (the flags are faces that merge in the dual pass, whose columns reduce to
    zero), on masks with and without cavities."""
    from topobench.metrics import _bm_kernels, _bm_linking, _bm_reduction

    rng = np.random.default_rng(5)
    for _ in range(40):
        shape = tuple(int(s) for s in rng.integers(3, 9, size=3))
        m = (rng.random(shape) < rng.uniform(0.5, 0.9)).astype(np.uint8)
        vox = np.flatnonzero(m.ravel()).astype(np.int64)
        rank = np.zeros(m.size, np.int32)
        rank[vox] = np.arange(vox.size)
        births = []
        for flags in (_bm_kernels.merge_flags(m, vox, rank), np.zeros(3 * vox.size, np.uint8)):
            cycles, owner = _bm_reduction.finite_births(m, vox, rank, flags)
            births.append(_bm_linking._birth_edges(vox, cycles, owner).tolist())
        assert births[0] == births[1]

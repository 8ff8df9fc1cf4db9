"""Betti numbers and Euler characteristic against gudhi and shapes with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from topobench.metrics import betti_numbers, euler_characteristic

CASES = [(2, 4), (2, 8), (3, 6), (3, 26)]


def random_masks(ndim: int, n: int, seed: int):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        shape = tuple(rng.integers(3, 10, size=ndim)) if ndim == 2 else tuple(
            rng.integers(2, 7, size=3)
        )
        yield rng.random(shape) < rng.uniform(0.15, 0.85)


@pytest.mark.parametrize("ndim,connectivity", CASES)
def test_betti_matches_gudhi_on_random_masks(ndim, connectivity, oracle):
    for mask in random_masks(ndim, 150, seed=connectivity):
        expected = oracle(mask, connectivity)
        assert betti_numbers(mask, connectivity=connectivity) == expected
        chi = sum((-1) ** i * b for i, b in enumerate(expected))
        assert euler_characteristic(mask, connectivity=connectivity) == chi


@pytest.mark.parametrize("ndim,connectivity", CASES)
def test_betti_matches_gudhi_on_thin_structures(ndim, connectivity, oracle):
    """Random walks: thin, branching, loop-forming structures like vessels."""
    rng = np.random.default_rng(ndim * 100 + connectivity)
    shape = (40, 40) if ndim == 2 else (12, 16, 16)
    for _ in range(12):
        mask = np.zeros(shape, bool)
        pos = np.array([s // 2 for s in shape])
        for _ in range(400):
            pos = np.clip(pos + rng.integers(-1, 2, size=ndim), 0, np.array(shape) - 1)
            mask[tuple(pos)] = True
        assert betti_numbers(mask, connectivity=connectivity) == oracle(mask, connectivity)


@given(arrays(bool, st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(1, 6))))
def test_betti_3d_matches_gudhi_property(oracle, mask):
    for c in (6, 26):
        assert betti_numbers(mask, connectivity=c) == oracle(mask, c)


def ring(n: int = 5) -> np.ndarray:
    m = np.zeros((n + 2, n + 2), bool)
    m[1:-1, 1:-1] = True
    m[2:-2, 2:-2] = False
    return m


@pytest.mark.parametrize("c", [4, 8])
def test_known_2d_shapes(c):
    assert betti_numbers(ring(), connectivity=c) == (1, 1)
    frame = np.ones((6, 7), bool)
    frame[1:-1, 1:-1] = False  # the frame IS the image border: the inside is still a hole
    assert betti_numbers(frame, connectivity=c) == (1, 1)
    open_hole = ring()
    open_hole[3, 0:2] = False  # cut the ring open towards the border
    open_hole[3, 1] = False
    assert betti_numbers(open_hole, connectivity=c) == (1, 0)
    u_to_border = np.zeros((4, 5), bool)
    u_to_border[:, 0] = u_to_border[:, 4] = u_to_border[3, :] = True  # open at the top border
    assert betti_numbers(u_to_border, connectivity=c) == (1, 0)
    assert betti_numbers(np.zeros((4, 4), bool), connectivity=c) == (0, 0)
    assert betti_numbers(np.ones((4, 4), bool), connectivity=c) == (1, 0)


def test_diagonal_pairs_depend_on_connectivity():
    diag = np.array([[1, 0], [0, 1]], bool)
    assert betti_numbers(diag, connectivity=8) == (1, 0)
    assert betti_numbers(diag, connectivity=4) == (2, 0)
    diamond = np.zeros((3, 3), bool)
    diamond[0, 1] = diamond[1, 0] = diamond[1, 2] = diamond[2, 1] = True
    assert betti_numbers(diamond, connectivity=8) == (1, 1)  # the 4-connected centre is enclosed
    assert betti_numbers(diamond, connectivity=4) == (4, 0)  # centre leaks out diagonally


def test_checkerboard():
    board = (np.add.outer(np.arange(5), np.arange(5)) % 2 == 0)
    # 8: one component; the 4 odd interior pixels are enclosed holes
    assert betti_numbers(board, connectivity=8) == (1, 4)
    assert betti_numbers(board, connectivity=4) == (13, 0)


@pytest.mark.parametrize("c", [6, 26])
def test_known_3d_shapes(c):
    hollow = np.ones((5, 5, 5), bool)
    hollow[1:-1, 1:-1, 1:-1] = False
    assert betti_numbers(hollow, connectivity=c) == (1, 0, 1)
    torus = np.repeat(ring()[None], 3, axis=0)  # a solid square torus
    assert betti_numbers(torus, connectivity=c) == (1, 1, 0)
    two_tori = np.concatenate([torus, np.zeros((2, 7, 7), bool), torus])
    assert betti_numbers(two_tori, connectivity=c) == (2, 2, 0)
    open_box = hollow.copy()
    open_box[0, 2, 2] = False  # a hole in the lid: the cavity opens, no tunnel appears
    assert betti_numbers(open_box, connectivity=c) == (1, 0, 0)
    assert betti_numbers(np.zeros((2, 3, 4), bool), connectivity=c) == (0, 0, 0)
    assert betti_numbers(np.ones((2, 3, 4), bool), connectivity=c) == (1, 0, 0)


def test_corner_and_edge_connected_voxels():
    corner = np.zeros((2, 2, 2), bool)
    corner[0, 0, 0] = corner[1, 1, 1] = True
    assert betti_numbers(corner, connectivity=26) == (1, 0, 0)
    assert betti_numbers(corner, connectivity=6) == (2, 0, 0)
    edge = np.zeros((1, 2, 2), bool)
    edge[0, 0, 0] = edge[0, 1, 1] = True
    assert betti_numbers(edge, connectivity=26) == (1, 0, 0)
    assert betti_numbers(edge, connectivity=6) == (2, 0, 0)
    # A 3D diamond loop of edge-connected voxels: a tunnel under 26, four pieces under 6.
    loop = np.zeros((1, 3, 3), bool)
    loop[0, 0, 1] = loop[0, 1, 0] = loop[0, 1, 2] = loop[0, 2, 1] = True
    assert betti_numbers(loop, connectivity=26) == (1, 1, 0)
    assert betti_numbers(loop, connectivity=6) == (4, 0, 0)


def test_default_connectivity_is_full():
    diag = np.array([[1, 0], [0, 1]], bool)
    assert betti_numbers(diag) == betti_numbers(diag, connectivity=8)
    corner = np.zeros((2, 2, 2), bool)
    corner[0, 0, 0] = corner[1, 1, 1] = True
    assert betti_numbers(corner) == (1, 0, 0)


@pytest.mark.parametrize("ndim,connectivity", CASES)
def test_betti_invariant_under_flips_and_rotations(ndim, connectivity):
    for mask in random_masks(ndim, 20, seed=7 + connectivity):
        ref = betti_numbers(mask, connectivity=connectivity)
        for axis in range(ndim):
            assert betti_numbers(np.flip(mask, axis), connectivity=connectivity) == ref
        assert betti_numbers(np.rot90(mask, axes=(ndim - 2, ndim - 1)),
                             connectivity=connectivity) == ref
        if ndim == 3:
            assert betti_numbers(np.rot90(mask, axes=(0, 2)), connectivity=connectivity) == ref


def test_dtypes_and_memory_orders_agree():
    rng = np.random.default_rng(3)
    mask = rng.random((9, 11, 7)) < 0.4
    ref = betti_numbers(mask)
    assert betti_numbers(mask.astype(np.uint8)) == ref
    assert betti_numbers(mask.astype(np.int64) * 255) == ref
    assert betti_numbers(np.asfortranarray(mask)) == ref
    big = np.zeros((18, 22, 14), bool)
    big[::2, ::2, ::2] = mask
    view = big[::2, ::2, ::2]  # non-contiguous view
    assert betti_numbers(view) == ref


def test_large_volume_euler_uses_slabs_exactly(monkeypatch):
    import topobench.metrics.topology as topology

    rng = np.random.default_rng(5)
    mask = rng.random((23, 9, 10)) < 0.5
    expected = [euler_characteristic(mask, connectivity=c) for c in (6, 26)]
    for slab in (200, 300, 500, 1000):  # many slabs, of 1, 2, 3 and 7 corner slices
        monkeypatch.setattr(topology, "_EULER_SLAB_VOXELS", slab)
        assert [euler_characteristic(mask, connectivity=c) for c in (6, 26)] == expected


DEGENERATE = [(1, 1, 7), (1, 7, 1), (7, 1, 1), (1, 1, 1), (1, 6, 5), (6, 1, 5), (6, 5, 1)]


@pytest.mark.parametrize("shape", DEGENERATE)
@pytest.mark.parametrize("connectivity", [6, 26])
def test_volumes_with_axes_of_length_one_match_gudhi(shape, connectivity, oracle):
    """cc3d fails on 1x1xN volumes under 26-connectivity; a clipped last tile can be one."""
    rng = np.random.default_rng(sum(shape) + connectivity)
    masks = [np.ones(shape, bool), np.zeros(shape, bool)]
    masks += [rng.random(shape) < p for p in (0.3, 0.5, 0.7) for _ in range(8)]
    for mask in masks:
        assert betti_numbers(mask, connectivity=connectivity) == oracle(mask, connectivity)
    line = np.zeros(shape, bool)
    line.flat[0] = line.flat[-1] = True
    expected = (1, 0, 0) if line.size == 1 else (2, 0, 0)
    assert betti_numbers(line, connectivity=connectivity) == expected


def test_issue_example_two_voxels_in_a_row():
    assert betti_numbers(np.array([[[1, 0, 1]]], bool)) == (2, 0, 0)
    assert betti_numbers(np.array([[[1, 0, 1]]], bool), connectivity=6) == (2, 0, 0)


@pytest.mark.parametrize("connectivity", [6, 26])
def test_euler_of_thin_and_sheet_volumes_matches_gudhi(connectivity, oracle):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from thin_structures import sheets, tubes

    for mask in (tubes((20, 24, 28), 6, 1, seed=1), sheets((20, 24, 28), 4, 1, seed=2)):
        expected = oracle(mask, connectivity)
        assert betti_numbers(mask, connectivity=connectivity) == expected
        chi = expected[0] - expected[1] + expected[2]
        assert euler_characteristic(mask, connectivity=connectivity) == chi

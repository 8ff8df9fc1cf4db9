"""Large-volume paths: slab labelling equals whole-volume labelling; read-only and memory-mapped
inputs go through every metric without a copy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from skimage.morphology import skeletonize

import topobench.metrics.topology as topology
from topobench.metrics import (
    ags,
    betti_errors,
    betti_numbers,
    cldice,
    dice,
    e0_gt,
    euler_characteristic,
    evaluate_case,
    skeleton,
)
from topobench.metrics.topology import count_components, label_components, slab_components


def _scipy_count(mask: np.ndarray, connectivity: int) -> int:
    structure = ndimage.generate_binary_structure(3, 1 if connectivity == 6 else 3)
    return int(ndimage.label(mask, structure)[1])


@pytest.mark.parametrize("connectivity", [6, 26])
def test_slab_components_equal_scipy(connectivity):
    rng = np.random.default_rng(connectivity)
    for _ in range(25):
        shape = tuple(int(s) for s in rng.integers(1, 13, size=3))
        mask = rng.random(shape) < rng.uniform(0.1, 0.7)
        expected = _scipy_count(mask, connectivity)
        for slab in (1, 30, 100, 10**6):  # one slice per slab up to the whole volume
            assert slab_components(mask, shape, connectivity, slab_voxels=slab).n == expected


def test_label_components_background_is_zero_in_2d_views():
    """cc3d's 2D path can write labels onto background pixels; label_components must not."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        shape = (1, *(int(s) for s in rng.integers(1, 15, size=2)))
        mask = rng.random(shape) < 0.4
        for c in (6, 26):
            labels, n = label_components(mask, c)
            assert not labels[~mask].any()
            assert n == _scipy_count(mask, c)


def _tubes_with_vanishing_parts(seed: int) -> np.ndarray:
    """Noise and tubes on one side; on the other, 2x2-voxel bars and cubes, which
    scikit-image's thinning erases, some cut by the slab faces."""
    rng = np.random.default_rng(seed)
    shape = (24, 20, 22)
    mask = np.zeros(shape, bool)
    mask[:, :, :9] = rng.random((24, 20, 9)) < 0.08
    mask[:, 3:5, 2:4] = True
    for k in range(4):
        z, y = int(rng.integers(0, 20)), 2 + 5 * k
        mask[z: z + 2, y: y + 2, 12:14] = True  # a 2x2x2 cube
        mask[:, y: y + 2, 17:19] = k % 2 == 0  # a 2x2 bar through every slab
    return mask


@pytest.mark.parametrize("seed", range(4))
def test_slab_paths_give_the_whole_volume_results(seed, monkeypatch):
    mask = _tubes_with_vanishing_parts(seed)
    pred = mask & (np.random.default_rng(seed + 10).random(mask.shape) < 0.8)
    labels, n = label_components(mask, 26)
    assert len(np.unique(labels[skeletonize(mask).astype(bool)])) < n  # some thin away
    whole = (skeleton(mask), betti_numbers(mask), betti_numbers(mask, connectivity=6),
             e0_gt(pred, mask), evaluate_case(pred, mask))
    monkeypatch.setattr(topology, "_LABEL_SLAB_VOXELS", 60)  # slabs of a few slices
    assert topology.uses_slabs(mask.shape)
    slabs = (skeleton(mask), betti_numbers(mask), betti_numbers(mask, connectivity=6),
             e0_gt(pred, mask), evaluate_case(pred, mask))
    assert np.array_equal(whole[0], slabs[0])
    assert whole[1:] == slabs[1:]
    # every component keeps a skeleton, the vanished ones included
    assert len(np.unique(labels[slabs[0]])) == n


def _every_metric(pred: np.ndarray, target: np.ndarray) -> list:
    out = [betti_numbers(target), euler_characteristic(target), dice(pred, target),
           cldice(pred, target), ags(pred, target), betti_errors(pred, target).to_dict(),
           e0_gt(pred, target), evaluate_case(pred, target), skeleton(target).sum()]
    if target.ndim == 3:
        out += [evaluate_case(pred, target, protocol="vessap"),
                betti_numbers(target, connectivity=6),
                evaluate_case(pred, target, protocol="cld", cldice_window=(4, 8, 8))]
    else:
        out.append(evaluate_case(pred, target, protocol="roads"))
    return out


@pytest.mark.parametrize("shape", [(30, 40), (10, 14, 16)])
def test_read_only_and_memory_mapped_inputs(shape, tmp_path, monkeypatch):
    rng = np.random.default_rng(len(shape))
    target = ndimage.binary_dilation(rng.random(shape) < 0.05, iterations=1)
    pred = target ^ (rng.random(shape) < 0.03)
    expected = _every_metric(pred, target)

    ro_pred, ro_target = pred.copy(), target.copy()
    ro_pred.setflags(write=False)
    ro_target.setflags(write=False)
    np.save(tmp_path / "p.npy", pred)
    np.save(tmp_path / "t.npy", target)
    np.save(tmp_path / "t8.npy", target.astype(np.uint8))
    mm_pred = np.load(tmp_path / "p.npy", mmap_mode="r")
    mm_target = np.load(tmp_path / "t.npy", mmap_mode="r")

    # cc3d gets the caller's memory, not a copy
    seen = []
    real = topology.cc3d.connected_components

    def spy(data, *args, **kwargs):
        seen.append(data)
        return real(data, *args, **kwargs)

    monkeypatch.setattr(topology.cc3d, "connected_components", spy)
    for p, t in ((ro_pred, ro_target), (mm_pred, mm_target)):
        seen.clear()
        assert count_components(t, 8 if t.ndim == 2 else 26) == count_components(target, 8
                                                                              if t.ndim == 2
                                                                              else 26)
        assert any(np.may_share_memory(s, t) for s in seen)
        assert _every_metric(p, t) == expected
    assert not ro_target.flags.writeable and not mm_target.flags.writeable
    assert np.array_equal(np.load(tmp_path / "t.npy"), target)  # never written to
    mm8 = np.load(tmp_path / "t8.npy", mmap_mode="r")
    assert betti_numbers(mm8) == expected[0]
    # a reversed, strided read-only view
    view = mm_target[::-1, ::2]
    assert betti_numbers(view) == betti_numbers(np.ascontiguousarray(view))

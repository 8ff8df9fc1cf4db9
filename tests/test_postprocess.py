"""Topological post-processing: keep the fine-tuned components the pretrained model supports."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage as ndi

from topobench.errors import InvalidMaskError, InvalidParameterError
from topobench.postprocess import keep_supported


def _reference(ft: np.ndarray, pre: np.ndarray, connectivity: int) -> np.ndarray:
    """scipy labelling with the element of the given neighbour count."""
    rank = {4: 1, 8: 2, 6: 1, 26: 3}[connectivity]
    labels, _ = ndi.label(ft, ndi.generate_binary_structure(ft.ndim, rank))
    return np.isin(labels, np.unique(labels[ft & pre])) & ft


@given(
    arrays(bool, st.sampled_from([(9, 11), (4, 6, 7)])),
    st.integers(0, 2**31 - 1),
    st.booleans(),
)
def test_matches_scipy_and_never_adds_a_pixel(ft, seed, full):
    pre = np.random.default_rng(seed).random(ft.shape) > 0.9
    connectivity = (8 if full else 4) if ft.ndim == 2 else (26 if full else 6)
    out = keep_supported(ft, pre, connectivity=connectivity)
    assert out.dtype == bool and out.shape == ft.shape
    assert not (out & ~ft).any()
    assert np.array_equal(out, _reference(ft, pre, connectivity))


def test_removes_unsupported_and_keeps_supported_components():
    ft = np.zeros((20, 20), bool)
    ft[2:5, 2:15] = True  # supported, grown by fine-tuning
    ft[10:12, 3:6] = True  # new, unsupported blob
    ft[15:18, 15:18] = True  # supported by a single pixel
    pre = np.zeros_like(ft)
    pre[3, 4:8] = True
    pre[16, 16] = True
    pre[0, 19] = True  # pretrained-only pixel: never added
    out = keep_supported(ft, pre)
    expected = ft.copy()
    expected[10:12, 3:6] = False
    assert np.array_equal(out, expected)


def test_connectivity_decides_what_a_component_is():
    ft = np.zeros((6, 6), bool)
    ft[1, 1] = ft[2, 2] = True  # diagonal neighbours
    pre = np.zeros_like(ft)
    pre[1, 1] = True
    assert keep_supported(ft, pre)[2, 2]  # 8-connected: one component
    assert not keep_supported(ft, pre, connectivity=4)[2, 2]
    vol = np.zeros((4, 4, 4), bool)
    vol[1, 1, 1] = vol[2, 2, 2] = True
    pre3 = np.zeros_like(vol)
    pre3[1, 1, 1] = True
    assert keep_supported(vol, pre3)[2, 2, 2]
    assert not keep_supported(vol, pre3, connectivity=6)[2, 2, 2]


def test_empty_and_batched_and_torch_inputs():
    ft = np.zeros((2, 1, 8, 8), np.uint8)
    ft[0, 0, 2:4, 2:4] = 1
    ft[1, 0, 5:7, 5:7] = 1
    pre = np.zeros_like(ft)
    pre[0, 0, 3, 3] = 1
    out = keep_supported(ft, pre)
    assert out.shape == ft.shape and out[0].sum() == 4 and out[1].sum() == 0
    assert not keep_supported(np.zeros((5, 5), bool), np.ones((5, 5), bool)).any()
    torch = pytest.importorskip("torch")
    t_out = keep_supported(torch.from_numpy(ft), torch.from_numpy(pre))
    assert isinstance(t_out, torch.Tensor) and t_out.dtype == torch.bool
    assert np.array_equal(t_out.numpy(), out)


def test_bad_inputs_raise():
    with pytest.raises(InvalidMaskError):
        keep_supported(np.zeros((4, 4), bool), np.zeros((4, 5), bool))
    with pytest.raises(InvalidMaskError):
        keep_supported(np.zeros((2, 2, 4, 4), bool), np.zeros((2, 2, 4, 4), bool))
    with pytest.raises(InvalidParameterError):
        keep_supported(np.zeros((4, 4), bool), np.zeros((4, 4), bool), connectivity=26)
    with pytest.raises(InvalidMaskError):
        keep_supported(np.full((4, 4), 3), np.zeros((4, 4), bool))


def test_bool_input_never_gains_background_pixels():
    # cc3d 4.1.1 labels background pixel (1, 0) of this bool mask (8-connected) as part of a
    # component; keep_supported hands cc3d uint8 and must return a subset of the input
    ft = np.array(
        [[0, 1, 0, 1, 1, 0, 0], [0, 0, 0, 0, 0, 1, 1],
         [0, 0, 0, 0, 1, 1, 1], [0, 1, 0, 0, 1, 0, 0]],
        dtype=bool,
    )
    pre = np.zeros_like(ft)
    pre[0, 4] = pre[3, 3] = True
    out = keep_supported(ft, pre)
    assert not (out & ~ft).any()
    assert np.array_equal(out, _reference(ft, pre, 8))


@pytest.mark.parametrize("connectivity", [4, 8, 6, 26])
def test_torch_backend_equals_the_reference(connectivity):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(connectivity)
    shape = (2, 1, 17, 23) if connectivity in (4, 8) else (2, 1, 6, 9, 11)
    for density in (0.3, 0.5, 0.7):
        ft = rng.random(shape) < density
        pre = rng.random(shape) > 0.95
        got = keep_supported(torch.from_numpy(ft), torch.from_numpy(pre),
                             connectivity=connectivity, backend="torch")
        expected = np.stack([_reference(f[0], p[0], connectivity) for f, p in zip(ft, pre)])
        assert np.array_equal(got.numpy(), expected[:, None])

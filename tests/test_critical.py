"""Critical mask of ContextLoss (topobench.critical): hand-built cases and a brute-force check."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import ndimage as ndi

from topobench.critical import (
    CriticalMask,
    binary_soft_skeleton,
    critical_components,
    critical_mask,
)
from topobench.errors import InvalidMaskError, InvalidParameterError


def _line_2d() -> np.ndarray:
    y = np.zeros((40, 60), bool)
    y[18:23, 5:55] = True  # a horizontal line 5 pixels wide
    return y


def _line_3d() -> np.ndarray:
    y = np.zeros((12, 40, 40), bool)
    y[4:9, 18:23, 3:37] = True  # a 5x5 rod along x
    return y


@pytest.mark.parametrize("make", [_line_2d, _line_3d])
def test_gap_marks_the_label_around_the_gap_only(make):
    y = make()
    x = y.copy()
    x[..., 18:23] = False  # cut a 5-pixel gap through the full width
    parts = critical_components(x, y)
    gap = y & ~x
    # the context of the missed connection: exactly the label pixels of the gap, full width
    assert np.array_equal(parts.missed, gap)
    assert not parts.false.any()
    assert not (parts.mask & x).any()  # nothing of the intact line
    assert parts.to_dict() == {"missed": int(gap.sum()), "false": 0, "mask": int(gap.sum())}


@pytest.mark.parametrize("make", [_line_2d, _line_3d])
def test_spurious_bridge_is_covered(make):
    one = make()
    y = one | np.roll(one, 12, axis=-2)  # two parallel lines
    x = y.copy()
    bridge = np.zeros_like(y)
    bridge[..., 21:33, 27:32] = True  # joins the two lines across the background
    if y.ndim == 3:
        bridge[:4] = bridge[9:] = False
    bridge &= ~y
    x |= bridge
    parts = critical_components(x, y)
    assert not parts.missed.any()
    # M lies on the bridge (the rows next to the lines are closer to the intact skeleton) ...
    assert not (parts.false & ~bridge).any()
    assert parts.false.sum() >= bridge.sum() // 2
    # ... and covers it across: without M the prediction falls apart into the two lines again
    connectivity = np.ones((3,) * y.ndim)
    assert ndi.label(x, connectivity)[1] == 1
    assert ndi.label(x & ~parts.mask, connectivity)[1] == 2


@pytest.mark.parametrize("make", [_line_2d, _line_3d])
def test_perfect_prediction_gives_an_empty_mask(make):
    y = make()
    for kind in ("context", "thin"):
        assert not critical_mask(y.copy(), y, mask=kind).any()


@pytest.mark.parametrize("make", [_line_2d, _line_3d])
def test_empty_prediction_or_target(make):
    y = make()
    empty = np.zeros_like(y)
    missed_all = critical_components(empty, y)  # nothing intact: the whole label is context
    assert np.array_equal(missed_all.missed, y) and not missed_all.false.any()
    false_all = critical_components(y, empty)  # all of it is a false positive
    assert np.array_equal(false_all.false, y) and not false_all.missed.any()
    assert not critical_mask(empty, empty).any()


def test_thin_mask_is_the_error_skeleton():
    y = _line_2d()
    x = y.copy()
    x[:, 28:33] = False
    thin = critical_components(x, y, mask="thin")
    expected = binary_soft_skeleton(y) & ~x
    assert expected.any()
    assert np.array_equal(thin.missed, expected)
    assert np.array_equal(thin.mask, expected)
    context = critical_mask(x, y)
    assert thin.mask.sum() < context.sum() and not (thin.mask & ~context).any()


def _brute_force(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The critical mask of docs/losses.md, built with scipy's EDT and skeletons from a direct
    max/min-filter loop."""

    def skel(a: np.ndarray) -> np.ndarray:
        cross = ndi.generate_binary_structure(a.ndim, 1)

        def erode(b):
            return ndi.minimum_filter(b, footprint=cross, mode="constant", cval=1)

        def dilate(b):
            return ndi.maximum_filter(b, size=3, mode="constant", cval=0)

        out = a & ~dilate(erode(a))
        for _ in range(50):
            a = erode(a)
            out |= a & ~dilate(erode(a))
        return out

    def dist(a):
        return ndi.distance_transform_edt(~a) if a.any() else np.full(a.shape, np.inf)

    def side(s, covered, region):
        return region & (dist(s & ~covered) < dist(s & covered))

    return side(skel(y), x, y) | side(skel(x), y, x)


@pytest.mark.parametrize("shape", [(48, 48), (10, 24, 24)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_a_brute_force_reference(shape, seed):
    rng = np.random.default_rng(seed)
    y = ndi.binary_dilation(rng.random(shape) > 0.985, iterations=2)
    noisy = y ^ (rng.random(shape) > 0.97)
    x = ndi.binary_dilation(noisy, iterations=1) & (rng.random(shape) > 0.1)
    assert np.array_equal(critical_mask(x, y), _brute_force(x, y))


def _thin_case(shape, seed):
    """Random 3-pixel-wide segments; the prediction has gaps cut into them and extra blobs."""
    rng = np.random.default_rng(seed)
    y = np.zeros(shape, bool)
    for _ in range(6):
        a, b = rng.integers(0, shape, size=(2, len(shape)))
        for t in np.linspace(0, 1, 4 * max(shape)):
            y[tuple(np.round(a + t * (b - a)).astype(int))] = True
    y = ndi.binary_dilation(y, iterations=1)
    x = y.copy()
    for centre in rng.integers(0, shape, size=(4, len(shape))):
        x[tuple(slice(max(c - 3, 0), c + 3) for c in centre)] = False
    for centre in rng.integers(0, shape, size=(3, len(shape))):
        x[tuple(slice(max(c - 2, 0), c + 2) for c in centre)] = True
    return x, y


@pytest.mark.parametrize("shape", [(96, 96), (24, 48, 48)])
def test_local_boxes_match_the_whole_array_computation(shape, monkeypatch):
    import topobench.critical as critical

    used = []
    boxes = critical._error_boxes

    def spy(error, margin):
        out = boxes(error, margin)
        used.append(out is not None)
        return out

    monkeypatch.setattr(critical, "_error_boxes", spy)
    for seed in range(6):
        x, y = _thin_case(shape, seed)
        assert np.array_equal(critical_mask(x, y), _brute_force(x, y)), seed
    assert any(used)  # the box path did run


@pytest.mark.parametrize("shape", [(96, 96), (24, 48, 48)])
def test_large_array_distance_transform_matches_the_reference(shape, monkeypatch):
    """Arrays above the small-array size use the ``edt`` package; every other test array is
    below it, so force that path here and compare with the scipy-based reference."""
    import topobench.critical as critical

    calls = []
    edt = critical._edt.edt

    def spy(*args, **kwargs):
        calls.append(1)
        return edt(*args, **kwargs)

    monkeypatch.setattr(critical, "_SMALL", 0)
    monkeypatch.setattr(critical._edt, "edt", spy)
    rng = np.random.default_rng(7)
    features = rng.random(shape) > 0.995
    np.testing.assert_allclose(
        critical._distance_to(features), ndi.distance_transform_edt(~features), atol=1e-4
    )
    for seed in range(3):
        x, y = _thin_case(shape, seed)
        assert np.array_equal(critical_mask(x, y), _brute_force(x, y)), seed
    assert calls  # the edt path did run


def test_batches_and_dtypes():
    y = _line_2d()
    x = y.copy()
    x[:, 28:33] = False
    batch_x = np.stack([x, y])[:, None].astype(np.uint8)
    batch_y = np.stack([y, y])[:, None].astype(np.uint8) * 255
    out = critical_mask(batch_x, batch_y)
    assert out.shape == batch_x.shape and out.dtype == bool
    assert np.array_equal(out[0, 0], critical_mask(x, y)) and not out[1].any()


def test_torch_tensors_round_trip():
    torch = pytest.importorskip("torch")
    y = _line_2d()
    x = y.copy()
    x[:, 28:33] = False
    out = critical_mask(torch.from_numpy(x)[None, None], torch.from_numpy(y)[None, None])
    assert isinstance(out, torch.Tensor) and out.dtype == torch.bool
    assert out.shape == (1, 1, *y.shape) and not out.requires_grad
    assert np.array_equal(out[0, 0].numpy(), critical_mask(x, y))


@pytest.mark.parametrize(
    ("x", "y", "kwargs"),
    [
        (np.zeros((4, 4), bool), np.zeros((4, 5), bool), {}),
        (np.zeros(5, bool), np.zeros(5, bool), {}),
        (np.zeros((2, 2, 4, 4), bool), np.zeros((2, 2, 4, 4), bool), {}),
        (np.full((4, 4), 0.5), np.zeros((4, 4), bool), {}),
        (np.full((4, 4), 2), np.zeros((4, 4), bool), {}),
    ],
)
def test_invalid_inputs_raise(x, y, kwargs):
    with pytest.raises((InvalidMaskError, TypeError)):
        critical_mask(x, y, **kwargs)


def test_invalid_options_raise():
    y = _line_2d()
    with pytest.raises(InvalidParameterError):
        critical_mask(y, y, mask="skeleton")
    with pytest.raises(InvalidParameterError):
        binary_soft_skeleton(y, iterations=-1)


def test_dataclass_is_frozen():
    parts = critical_components(_line_2d(), _line_2d())
    assert isinstance(parts, CriticalMask)
    with pytest.raises(AttributeError):
        parts.missed = None  # type: ignore[misc]


def test_metrics_core_imports_without_torch():
    code = (
        "import sys; import topobench.critical, topobench.postprocess, topobench.metrics; "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_torch_backend_gives_the_same_mask():
    torch = pytest.importorskip("torch")
    y = _line_3d()
    x = y.copy()
    x[..., 18:23] = False
    x[0, :5, :5] = True  # a spurious blob
    for mask in ("context", "thin"):
        expected = critical_mask(x, y, mask=mask)
        got = critical_mask(torch.from_numpy(x), torch.from_numpy(y), mask=mask, backend="torch")
        assert isinstance(got, torch.Tensor) and np.array_equal(got.numpy(), expected)


def test_error_boxes_of_bool_masks_hold_only_their_pieces():
    # cc3d 4.1.1 mislabels background pixels of 2D bool input (8-connected); the boxes around
    # the pieces of E are built from uint8 labels
    from topobench.critical import _error_boxes

    error = np.zeros((40, 60), bool)
    error[2, 2] = error[30, 50] = True
    boxes = _error_boxes(error, 1)
    assert boxes is not None and len(boxes) == 2

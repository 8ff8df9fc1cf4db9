"""The torch (on-device) critical mask, skeleton and keep_supported equal the numpy reference.

Everything here runs on CPU tensors; the same code runs unchanged on CUDA (docs/losses.md,
"Losses on the device").
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from scipy.spatial.distance import cdist

torch = pytest.importorskip("torch")

from topobench.critical import (  # noqa: E402
    binary_soft_skeleton,
    critical_mask,
    resolve_backend,
    set_backend,
    use_backend,
)
from topobench.errors import InvalidMaskError, InvalidParameterError  # noqa: E402
from topobench.losses import LOSS_NAMES, DiceCELoss, make_loss, soft_skeleton  # noqa: E402
from topobench.losses.device import (  # noqa: E402
    binary_skeleton,
    critical_mask_torch,
    keep_supported_torch,
    nearest_part_keys,
)
from topobench.postprocess import keep_supported  # noqa: E402
from topobench.synth import make_case  # noqa: E402

GAMMA = {name: (None if name == "dice_ce" else 0.3) for name in LOSS_NAMES}


def _loss(name: str):
    """The loss ``name``; the clDice losses with 10 soft-skeleton iterations (fast tests)."""
    extra = {"iterations": 10} if name in ("cldice", "compound_cldice") else {}
    return make_loss(name, gamma=GAMMA[name], **extra)


def _random_pair(rng, shape):
    """A target and a prediction that differs from it in gaps, bridges and noise (bool)."""
    kind = rng.integers(3)
    if kind == 0:  # independent random masks: many ties, empty skeleton parts
        return rng.random(shape) < rng.random(), rng.random(shape) < rng.random()
    y = ndi.binary_dilation(rng.random(shape) < 0.04, iterations=int(rng.integers(1, 3)))
    flips = ndi.binary_dilation(rng.random(shape) < 0.02) if kind == 1 else rng.random(shape) < 0.1
    x = y ^ flips
    return x, y


def _brute_keys(error: np.ndarray, correct: np.ndarray) -> np.ndarray:
    """``min(2 dE^2 + 1, 2 dK^2)`` by the distance to every seed (exact integers, inf if none)."""
    pts = np.argwhere(np.ones(error.shape, bool))

    def sq(seeds):
        if not seeds.any():
            return np.full(error.shape, np.inf)
        return cdist(pts, np.argwhere(seeds), "sqeuclidean").min(1).reshape(error.shape)

    return np.minimum(2 * sq(error) + 1, 2 * sq(correct))


# --- exact nearest-part test ---------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("window", ["adaptive", "full"])
def test_keys_equal_a_brute_force_distance(seed, window):
    rng = np.random.default_rng(seed)
    shape = (2, 1, 23, 37) if seed % 2 == 0 else (2, 1, 7, 19, 11)
    nd = len(shape) - 2
    error = rng.random(shape) < 0.004 * (seed + 1)  # sparse seeds: distances up to ~20
    correct = rng.random(shape) < 0.01
    correct[1] = False  # an empty K in the second sample
    keys = nearest_part_keys(torch.from_numpy(error), torch.from_numpy(correct), nd, window=window)
    for b in range(2):
        expected = _brute_keys(error[b, 0], correct[b, 0])
        assert np.array_equal(keys[b, 0].numpy(), expected), (seed, b)


def test_ties_are_not_critical():
    # E and K one pixel each, 4 apart: the middle column is equally far from both
    error = np.zeros((9, 9), bool)
    correct = np.zeros((9, 9), bool)
    error[4, 2] = correct[4, 6] = True
    keys = nearest_part_keys(torch.from_numpy(error), torch.from_numpy(correct), 2).numpy()
    closer = keys % 2 == 1
    assert not closer[:, 4].any() and closer[:, :4].all() and not closer[:, 5:].any()
    # the same tie through the whole critical mask, both implementations: a 9-pixel line whose
    # skeleton is cut at one end pixel; the pixel equally far from both parts is not critical
    y = np.zeros((3, 9), bool)
    y[1, :] = True
    x = y.copy()
    x[1, 0:2] = False  # E = columns 0-1, K = columns 2-8 of the centre line
    reference = critical_mask(x, y)
    assert np.array_equal(reference[1], [1, 1, 0, 0, 0, 0, 0, 0, 0])
    torch_mask = critical_mask(torch.from_numpy(x), torch.from_numpy(y), backend="torch")
    assert np.array_equal(torch_mask.numpy(), reference)


def test_adaptive_window_grows_until_exact(monkeypatch):
    # pixels ~40 from the nearest seed along the windowed (first) axis: beyond the first
    # windows of 8 and 32 offsets
    import topobench.losses.device as device

    error = np.zeros((1, 1, 90, 8), bool)
    correct = np.zeros_like(error)
    error[0, 0, 0, 0] = correct[0, 0, 89, 7] = True
    e, k = torch.from_numpy(error), torch.from_numpy(correct)
    windows = []
    original = device._parabola_pass

    def spy(h, dim, window):
        windows.append(window)
        return original(h, dim, window)

    monkeypatch.setattr(device, "_parabola_pass", spy)
    keys = nearest_part_keys(e, k, 2, window="adaptive")
    assert windows == [8, 32, 89]
    assert torch.equal(keys, nearest_part_keys(e, k, 2, window="full"))
    assert np.array_equal(keys[0, 0].numpy(), _brute_keys(error[0, 0], correct[0, 0]))


# --- the critical mask ---------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("nd", [2, 3])
def test_critical_mask_equals_the_numpy_reference_on_random_batches(channels, nd):
    rng = np.random.default_rng(channels * 10 + nd)
    for _ in range(12):
        spatial = tuple(rng.integers(4, 28, nd)) if nd == 2 else tuple(rng.integers(3, 12, nd))
        x, y = _random_pair(rng, (3, 1, *spatial))
        # binarised from logits as the loss does: C = 2 argmax (ties to background), C = 1 > 0
        z = np.where(x, 1.0, -1.0) * rng.integers(0, 2, x.shape)  # zero logits where 0
        logits = torch.from_numpy(np.concatenate([np.zeros_like(z), z], 1) if channels == 2 else z)
        xb = (logits[:, 1:2] > logits[:, 0:1]) if channels == 2 else logits > 0
        target = torch.from_numpy(y.astype(np.int64))
        for mask in ("context", "thin"):
            reference = critical_mask(xb.numpy(), y, mask=mask)
            for window in ("adaptive", "full"):
                got = critical_mask_torch(xb, target, mask=mask, window=window)
                assert got.dtype == torch.bool and got.shape == xb.shape
                assert np.array_equal(got.numpy(), reference), (mask, window, spatial)


@pytest.mark.parametrize(("kind", "shape"), [("vessels2d", (96, 128)), ("tubes3d", (24, 40, 40))])
def test_critical_mask_equals_the_reference_on_thin_structures(kind, shape):
    cases = [make_case(kind, seed=seed, shape=shape) for seed in (0, 1)]
    x = np.stack([c.pred for c in cases])[:, None].astype(bool)
    y = np.stack([c.target for c in cases])[:, None].astype(bool)
    expected = critical_mask(x, y)
    assert expected.any()
    got = critical_mask(torch.from_numpy(x), torch.from_numpy(y), backend="torch")
    assert np.array_equal(got.numpy(), expected)
    # a pair (no batch axes) and uint8 {0, 255} inputs too
    pair = critical_mask_torch(torch.from_numpy(x[0, 0].astype(np.uint8) * 255),
                               torch.from_numpy(y[0, 0]))
    assert np.array_equal(pair.numpy(), expected[0, 0])


def test_perfect_and_empty_predictions():
    y = np.zeros((1, 1, 12, 20), bool)
    y[0, 0, 5:8, 2:18] = True
    for x in (y.copy(), np.zeros_like(y), np.ones_like(y)):
        got = critical_mask(torch.from_numpy(x), torch.from_numpy(y), backend="torch")
        assert np.array_equal(got.numpy(), critical_mask(x, y))


def test_critical_mask_on_shared_labels(shared_data):
    from topobench.io import read_mask

    rng = np.random.default_rng(0)
    paths = sorted((shared_data / "chase_db1-mini" / "labels").glob("*.png"))[:1]
    paths += sorted((shared_data / "deepglobe-roads" / "labels").glob("*.png"))[:1]
    for path in paths:
        y = read_mask(path)[:256, :256]
        x = y.copy()
        cuts = rng.integers(0, 256, size=(20, 2))
        for r, c in cuts:  # gaps, and a few spurious blobs
            x[r : r + 6, c : c + 6] = ~y[r : r + 6, c : c + 6] if r % 3 == 0 else False
        got = critical_mask(torch.from_numpy(x), torch.from_numpy(y), backend="torch")
        expected = critical_mask(x, y)
        assert expected.any() and np.array_equal(got.numpy(), expected), path.name
    vol = read_mask(shared_data / "vesselexpress-3d" / "label.tif")[:40, :64, :64]
    pred = ndi.binary_erosion(vol) | (rng.random(vol.shape) < 0.01)
    got = critical_mask(torch.from_numpy(pred), torch.from_numpy(vol), backend="torch")
    assert np.array_equal(got.numpy(), critical_mask(pred, vol))


def test_invalid_inputs_raise():
    with pytest.raises(InvalidMaskError):
        critical_mask_torch(torch.zeros(4, 4, dtype=torch.bool),
                            torch.zeros(4, 5, dtype=torch.bool))
    with pytest.raises(InvalidMaskError):
        critical_mask_torch(torch.zeros(2, 2, 4, 4, dtype=torch.bool),
                            torch.zeros(2, 2, 4, 4, dtype=torch.bool))
    with pytest.raises(InvalidMaskError):
        critical_mask_torch(torch.full((4, 4), 2), torch.zeros(4, 4, dtype=torch.bool))
    with pytest.raises(TypeError):
        critical_mask_torch(torch.full((4, 4), 0.5), torch.zeros(4, 4, dtype=torch.bool))
    with pytest.raises(InvalidParameterError):
        critical_mask_torch(torch.zeros(4, 4, dtype=torch.bool),
                            torch.zeros(4, 4, dtype=torch.bool), mask="skeleton")
    with pytest.raises(InvalidParameterError):
        critical_mask(np.zeros((4, 4), bool), np.zeros((4, 4), bool), backend="gpu")


# --- skeleton ------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(3, 1, 40, 52), (2, 1, 12, 20, 18)])
def test_binary_skeleton_equals_numpy_and_soft_skeleton(shape):
    rng = np.random.default_rng(len(shape))
    mask = ndi.binary_dilation(rng.random(shape) > 0.96, iterations=2)
    mask[0] = True  # a full sample: erosion never empties it
    t = torch.from_numpy(mask)
    got = binary_skeleton(t, 50)
    for b in range(shape[0]):
        assert np.array_equal(got[b, 0].numpy(), binary_soft_skeleton(mask[b, 0]))
    assert torch.equal(got, soft_skeleton(t.float(), 50) > 0)
    assert torch.equal(binary_skeleton(t, 50, early_stop=False), got)
    assert torch.equal(binary_skeleton(t, 0), soft_skeleton(t.float(), 0) > 0)


# --- keep_supported ------------------------------------------------------------------------------


@pytest.mark.parametrize("nd", [2, 3])
def test_keep_supported_equals_the_numpy_reference(nd):
    rng = np.random.default_rng(nd)
    for _ in range(15):
        spatial = tuple(rng.integers(3, 30, nd)) if nd == 2 else tuple(rng.integers(2, 12, nd))
        ft = rng.random((2, 1, *spatial)) < rng.random()
        pre = rng.random(ft.shape) < rng.random() * 0.2
        for connectivity in ((4, 8) if nd == 2 else (6, 26)):
            expected = keep_supported(ft, pre, connectivity=connectivity)
            got = keep_supported(torch.from_numpy(ft), torch.from_numpy(pre),
                                 connectivity=connectivity, backend="torch")
            assert np.array_equal(got.numpy(), expected), (spatial, connectivity)


def test_keep_supported_follows_a_long_winding_component():
    # a serpentine of 12 rows: the reconstruction must travel its whole length
    ft = np.zeros((25, 30), bool)
    ft[::2, 1:29] = True
    for i, r in enumerate(range(1, 24, 2)):
        ft[r, 28 if i % 2 == 0 else 1] = True
    pre = np.zeros_like(ft)
    pre[0, 1] = True
    got = keep_supported_torch(torch.from_numpy(ft), torch.from_numpy(pre), connectivity=4)
    assert torch.equal(got, torch.from_numpy(ft))
    with pytest.raises(InvalidParameterError):
        keep_supported_torch(torch.from_numpy(ft), torch.from_numpy(pre), connectivity=6)


# --- backends ------------------------------------------------------------------------------------


def test_backend_resolution():
    cpu = torch.zeros(2, 2, dtype=torch.bool)
    assert resolve_backend(None, np.zeros((2, 2))) == "numpy"
    assert resolve_backend("auto", cpu) == "numpy"  # the numpy path is faster on the CPU
    assert resolve_backend("torch", cpu) == "torch"
    assert resolve_backend("torch", np.zeros((2, 2))) == "numpy"
    with use_backend("torch"):
        assert resolve_backend(None, cpu) == "torch"
    assert resolve_backend(None, cpu) == "numpy"
    meta = torch.empty(2, 2, device="meta")
    assert resolve_backend("auto", meta) == "torch"  # any device but the CPU
    with pytest.raises(InvalidParameterError):
        set_backend("cuda")


# --- no host round-trip --------------------------------------------------------------------------


def _forbid_host_copies(monkeypatch, *, syncs: bool = False):
    def refuse(*_args, **_kwargs):
        raise AssertionError("host round-trip")

    names = ["numpy", "cpu", "tolist", "item"]
    if syncs:  # any read of a tensor value on the host
        names += ["__bool__", "__int__", "__float__", "__index__"]
    for name in names:
        monkeypatch.setattr(torch.Tensor, name, refuse)


@pytest.mark.parametrize("nd", [2, 3])
def test_losses_and_keep_supported_make_no_host_copy(monkeypatch, nd):
    shape = (2, 1, 24, 32) if nd == 2 else (2, 1, 8, 16, 16)
    rng = np.random.default_rng(nd)
    x, y = _random_pair(rng, shape)
    logits = torch.from_numpy(np.concatenate([np.zeros(shape), np.where(x, 2.0, -2.0)], 1))
    target = torch.from_numpy(y.astype(np.int64))
    losses = {name: _loss(name) for name in LOSS_NAMES}
    with use_backend("numpy"):
        reference = {name: loss(logits, target) for name, loss in losses.items()}
    _forbid_host_copies(monkeypatch)
    with use_backend("torch"):
        for name, loss in losses.items():
            z = logits.clone().requires_grad_(True)
            value = loss(z, target)
            value.backward()
            assert torch.isfinite(z.grad).all()
            torch.testing.assert_close(value.detach(), reference[name])
        keep_supported(torch.from_numpy(x), torch.from_numpy(y))
    monkeypatch.undo()
    with pytest.raises(AssertionError):  # the trap works: the numpy path is caught
        _forbid_host_copies(monkeypatch)
        critical_mask(torch.from_numpy(x), torch.from_numpy(y), backend="numpy")


def test_full_window_critical_mask_reads_nothing_back(monkeypatch):
    rng = np.random.default_rng(5)
    x, y = _random_pair(rng, (2, 1, 30, 30))
    expected = critical_mask(x, y)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    _forbid_host_copies(monkeypatch, syncs=True)
    got = critical_mask_torch(xt, yt, window="full", early_stop=False)
    monkeypatch.undo()
    assert np.array_equal(got.numpy(), expected)


# --- tensor subclasses, mixed precision, deep supervision ----------------------------------------


class _Tagged(torch.Tensor):
    """A local tensor subclass (as MONAI's MetaTensor is one)."""


def _subclass_inputs(cls_or_fn):
    rng = np.random.default_rng(3)
    x, y = _random_pair(rng, (2, 1, 16, 20))
    logits = torch.from_numpy(np.concatenate([np.zeros(x.shape), np.where(x, 2.0, -2.0)], 1))
    target = torch.from_numpy(y.astype(np.int64))
    return cls_or_fn(logits), cls_or_fn(target), x, y


def _check_subclass(wrap):
    logits, target, x, y = _subclass_inputs(wrap)
    plain = make_loss("closs", gamma=0.3)(logits.as_subclass(torch.Tensor),
                                          target.as_subclass(torch.Tensor))
    for backend in ("numpy", "torch"):
        with use_backend(backend):
            for name in ("cldice", "closs"):  # the target skeleton and the critical mask
                z = logits.clone().requires_grad_(True)
                _loss(name)(z, target).backward()
            value = make_loss("closs", gamma=0.3)(logits, target)
            torch.testing.assert_close(value.as_subclass(torch.Tensor), plain)
            mask = critical_mask(wrap(torch.from_numpy(x)), wrap(torch.from_numpy(y)))
            assert isinstance(mask, torch.Tensor)
            assert np.array_equal(mask.as_subclass(torch.Tensor).numpy(), critical_mask(x, y))
            kept = keep_supported(wrap(torch.from_numpy(x)), wrap(torch.from_numpy(y)))
            assert isinstance(kept, torch.Tensor)


def test_tensor_subclasses_are_tensors():
    _check_subclass(lambda t: t.as_subclass(_Tagged))


def test_monai_meta_tensors_are_tensors():
    monai_data = pytest.importorskip("monai.data")
    _check_subclass(monai_data.MetaTensor)


@pytest.mark.parametrize("name", ["compound_cldice", "closs", "thin_closs"])
def test_bf16_autocast_on_both_paths(name):
    torch.manual_seed(0)
    rng = np.random.default_rng(7)
    x, y = _random_pair(rng, (2, 1, 24, 24))
    conv = torch.nn.Conv2d(1, 2, 3, padding=1)
    image = torch.from_numpy(np.where(x, 1.0, -1.0).astype(np.float32))
    target = torch.from_numpy(y.astype(np.int64))
    loss = _loss(name)
    values = {}
    for backend in ("numpy", "torch"):
        conv.zero_grad()
        with use_backend(backend), torch.autocast("cpu", dtype=torch.bfloat16):
            logits = conv(image)
            assert logits.dtype == torch.bfloat16
            value = loss(logits, target)
        value.backward()
        assert value.dtype == torch.float32 and torch.isfinite(conv.weight.grad).all()
        values[backend] = (value.detach(), conv.weight.grad.clone())
    torch.testing.assert_close(values["numpy"], values["torch"])


def test_deep_supervision_on_both_paths():
    from topobench.nnunet.deep_supervision import (
        DeepSupervisionTopologyLoss,
        deep_supervision_weights,
    )

    rng = np.random.default_rng(8)
    x, y = _random_pair(rng, (2, 1, 32, 32))
    full = torch.from_numpy(np.concatenate([np.zeros(x.shape), np.where(x, 2.0, -2.0)], 1)).float()
    outputs = [full, full[..., ::2, ::2].contiguous(), full[..., ::4, ::4].contiguous()]
    target = torch.from_numpy(y.astype(np.int64))
    targets = [target, target[..., ::2, ::2], target[..., ::4, ::4]]
    loss = DeepSupervisionTopologyLoss(make_loss("closs", gamma=0.2), DiceCELoss(),
                                       deep_supervision_weights(3), topology_scales="all")
    values = {}
    for backend in ("numpy", "torch"):
        zs = [o.clone().requires_grad_(True) for o in outputs]
        with use_backend(backend):
            value = loss(zs, targets)
        value.backward()
        values[backend] = (value.detach(), *[z.grad for z in zs])
    torch.testing.assert_close(values["numpy"], values["torch"])

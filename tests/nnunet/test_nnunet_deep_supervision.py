"""The deep-supervision loss: topology term at full resolution, pixel part below."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from topobench.errors import InvalidParameterError  # noqa: E402
from topobench.losses import make_loss  # noqa: E402
from topobench.nnunet.deep_supervision import (  # noqa: E402
    DeepSupervisionTopologyLoss,
    deep_supervision_weights,
)

HAS_NNUNET = importlib.util.find_spec("nnunetv2") is not None


def _nnunet_weights(n: int, keep_lowest: bool) -> np.ndarray:
    """nnU-Net's formula (nnUNetTrainer._build_loss), written out independently."""
    w = np.array([1 / (2**i) for i in range(n)])
    w[-1] = 1e-6 if keep_lowest else 0
    return w / w.sum()


@pytest.mark.parametrize("n", [1, 2, 4, 5, 7])
@pytest.mark.parametrize("keep_lowest", [False, True])
def test_weights_match_nnunet(n: int, keep_lowest: bool) -> None:
    expected = np.array([1.0]) if n == 1 else _nnunet_weights(n, keep_lowest)
    np.testing.assert_allclose(deep_supervision_weights(n, keep_lowest=keep_lowest), expected)


def _pyramid(ndim: int, seed: int, n_scales: int = 4):
    """Random logits and nearest-downsampled thin-line labels, full resolution first."""
    gen = torch.Generator().manual_seed(seed)
    size = 32 if ndim == 2 else 16
    shape = (2, 1) + (size,) * ndim
    labels = torch.zeros(shape)
    labels[(slice(None), 0) + (slice(None),) * (ndim - 1) + (slice(size // 2, size // 2 + 2),)] = 1
    labels[(slice(None), 0) + (slice(size // 3, size // 3 + 2),)] = 1
    outputs, targets = [], []
    for i in range(n_scales):
        step = 2**i
        index = (slice(None), slice(None)) + (slice(None, None, step),) * ndim
        target = labels[index]
        outputs.append(torch.randn((2, 2) + target.shape[2:], generator=gen, requires_grad=True))
        targets.append(target)
    return outputs, targets


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("name", ["closs", "cldice", "compound_cldice"])
def test_full_scale_topology_lower_scales_pixel(ndim: int, name: str) -> None:
    outputs, targets = _pyramid(ndim, seed=ndim)
    loss = make_loss(name, gamma=0.3)
    pixel = make_loss("dice_ce", alpha=float(getattr(loss, "alpha", 0.0)))
    weights = deep_supervision_weights(len(outputs))
    wrapped = DeepSupervisionTopologyLoss(loss, pixel, weights)
    value = wrapped(outputs, targets)
    expected = weights[0] * loss(outputs[0], targets[0]) + sum(
        w * pixel(o, t) for w, o, t in zip(weights[1:], outputs[1:], targets[1:]) if w
    )
    torch.testing.assert_close(value, expected)
    value.backward()
    assert all(torch.isfinite(o.grad).all() for o in outputs[:-1])
    assert outputs[-1].grad is None  # weight 0: never evaluated


@pytest.mark.skipif(not HAS_NNUNET, reason="nnunetv2 is not installed")
def test_all_scales_equals_nnunet_wrapper() -> None:
    from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper

    outputs, targets = _pyramid(2, seed=7)
    loss = make_loss("closs", gamma=0.2)
    weights = deep_supervision_weights(len(outputs))
    ours = DeepSupervisionTopologyLoss(loss, make_loss("dice_ce"), weights, topology_scales="all")
    theirs = DeepSupervisionWrapper(loss, weights)
    torch.testing.assert_close(ours(outputs, targets), theirs(outputs, targets))


def test_topology_differs_from_pixel_only() -> None:
    """A sanity check that the full-resolution output really gets the topology term."""
    outputs, targets = _pyramid(2, seed=3)
    weights = deep_supervision_weights(len(outputs))
    pixel = make_loss("dice_ce")
    topo = DeepSupervisionTopologyLoss(make_loss("cldice", gamma=0.9), pixel, weights)
    plain = DeepSupervisionTopologyLoss(pixel, pixel, weights)
    with torch.no_grad():
        assert abs(topo(outputs, targets).item() - plain(outputs, targets).item()) > 1e-4


def test_single_output_and_autocast() -> None:
    outputs, targets = _pyramid(2, seed=1, n_scales=1)
    wrapped = DeepSupervisionTopologyLoss(make_loss("closs", gamma=0.2), make_loss("dice_ce"), [1])
    plain = wrapped(outputs[0], targets[0])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = wrapped(outputs[0].bfloat16(), targets[0])
    assert plain.dtype == mixed.dtype == torch.float32
    torch.testing.assert_close(plain, make_loss("closs", gamma=0.2)(outputs[0], targets[0]))


def test_bad_arguments() -> None:
    loss, pixel = make_loss("closs", gamma=0.2), make_loss("dice_ce")
    with pytest.raises(InvalidParameterError):
        DeepSupervisionTopologyLoss(loss, pixel, [0, 0])
    with pytest.raises(InvalidParameterError):
        DeepSupervisionTopologyLoss(loss, pixel, [1, -1])
    with pytest.raises(InvalidParameterError):
        DeepSupervisionTopologyLoss(loss, pixel, [1], topology_scales="some")
    with pytest.raises(InvalidParameterError):
        deep_supervision_weights(0)
    outputs, targets = _pyramid(2, seed=0)
    with pytest.raises(InvalidParameterError, match="as many outputs as targets"):
        DeepSupervisionTopologyLoss(loss, pixel, [1, 1, 1, 1])(outputs, targets[:2])

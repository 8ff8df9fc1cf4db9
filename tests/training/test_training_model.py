"""U-Net shapes and sliding-window inference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from topobench.errors import InvalidParameterError
from topobench.training import UNet, UNetConfig, predict_case, sliding_window_positions


@pytest.mark.parametrize(("ndim", "shape"), [(2, (2, 1, 32, 48)), (3, (1, 2, 8, 16, 16))])
@pytest.mark.parametrize("norm", ["instance", "batch", "group", "none"])
def test_unet_shapes(ndim: int, shape: tuple[int, ...], norm: str) -> None:
    torch.manual_seed(0)
    net = UNet(UNetConfig(ndim=ndim, in_channels=shape[1], depth=3, width=4, norm=norm))
    out = net(torch.randn(*shape))
    assert out.shape == (shape[0], 2, *shape[2:])
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_unet_config_and_overrides() -> None:
    net = UNet(depth=2, width=3, out_channels=1)
    assert net.config.divisor == 2 and net.head.out_channels == 1
    with pytest.raises(InvalidParameterError, match="ndim"):
        UNet(ndim=4)
    with pytest.raises(InvalidParameterError, match="norm"):
        UNet(norm="layer")


@pytest.mark.parametrize(("shape", "patch"), [((50, 37), (16, 16)), ((9, 30, 20), (4, 8, 8))])
def test_windows_cover_every_pixel(shape: tuple[int, ...], patch: tuple[int, ...]) -> None:
    for overlap in (0.0, 0.5):
        covered = np.zeros(shape, int)
        for start in sliding_window_positions(shape, patch, overlap):
            covered[tuple(slice(s, s + p) for s, p in zip(start, patch, strict=True))] += 1
        assert covered.min() >= 1
        if overlap == 0.5:
            assert covered.max() >= 2


class _Identity(nn.Module):
    """Softmax logits (-x, x): the foreground probability is sigmoid(2x)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([-x[:, :1], x[:, :1]], dim=1)


@pytest.mark.parametrize("shape", [(1, 40, 33), (1, 5, 6), (1, 6, 20, 18)])
def test_predict_case_reassembles_exactly(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(0)
    image = rng.normal(size=shape).astype(np.float32)
    patch = (16, 16) if len(shape) == 3 else (4, 8, 8)
    prob = predict_case(_Identity(), image, patch_size=patch, overlap=0.5, batch_size=3)
    assert prob.shape == shape[1:]
    np.testing.assert_allclose(prob, 1 / (1 + np.exp(-2 * image[0])), rtol=1e-5, atol=1e-6)


def test_predict_case_sigmoid_head_and_restores_mode() -> None:
    class One(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x[:, :1] * 0 + 10.0

    net = One().train()
    prob = predict_case(net, np.zeros((1, 10, 10), np.float32), patch_size=(8, 8))
    assert np.all(prob > 0.99) and net.training


def test_predict_case_accumulates_on_the_device(monkeypatch) -> None:
    rng = np.random.default_rng(1)
    image = rng.normal(size=(1, 21, 30)).astype(np.float32)
    expected = predict_case(_Identity(), image, patch_size=(16, 16), batch_size=2)

    def refuse(*_args, **_kwargs):
        raise AssertionError("host round-trip")

    for name in ("numpy", "cpu", "tolist", "item"):
        monkeypatch.setattr(torch.Tensor, name, refuse)
    prob = predict_case(_Identity(), torch.from_numpy(image), patch_size=(16, 16), batch_size=2)
    monkeypatch.undo()
    assert isinstance(prob, torch.Tensor) and prob.shape == (21, 30)
    np.testing.assert_array_equal(prob.numpy(), expected)

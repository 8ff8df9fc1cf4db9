"""The recomputing soft skeleton equals the plain loop of Alg. 1 (values and gradients)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from topobench.losses import functional, make_loss  # noqa: E402
from topobench.losses.skeleton import _chunk_length, soft_skeleton  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from references import plain_soft_skeleton  # noqa: E402  (the shared reference loop)


def _value_and_grad(fn, x: torch.Tensor, weight: torch.Tensor, iterations: int):
    leaf = x.detach().clone().requires_grad_(True)
    out = fn(leaf, iterations)
    (out.float() * weight).sum().backward()
    return out.detach(), leaf.grad


@pytest.mark.parametrize("shape", [(2, 1, 23, 31), (1, 2, 7, 9, 11)])
@pytest.mark.parametrize("iterations", [0, 1, 5, 13])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_values_and_gradients_equal_the_plain_loop(shape, iterations, dtype):
    gen = torch.Generator().manual_seed(sum(shape) + iterations)
    x = torch.rand(shape, generator=gen, dtype=dtype)
    weight = torch.rand(shape, generator=gen)
    ref, ref_grad = _value_and_grad(plain_soft_skeleton, x, weight, iterations)
    out, grad = _value_and_grad(soft_skeleton, x, weight, iterations)
    assert out.dtype == ref.dtype
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-6, atol=1e-6)
    assert grad.abs().sum() > 0 or iterations == 0


@pytest.mark.parametrize("shape", [(1, 1, 20, 20), (1, 1, 6, 8, 9)])
def test_equal_under_autocast(shape):
    """bf16 autocast on the CPU (the pools and arithmetic keep their input dtype there)."""
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(shape, generator=gen)
    weight = torch.rand(shape, generator=gen)
    for inp in (x, x.to(torch.bfloat16)):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            ref, ref_grad = _value_and_grad(plain_soft_skeleton, inp, weight, 10)
            out, grad = _value_and_grad(soft_skeleton, inp, weight, 10)
        assert out.dtype == ref.dtype and grad.dtype == ref_grad.dtype
        torch.testing.assert_close(out, ref, rtol=0, atol=0)
        torch.testing.assert_close(grad.float(), ref_grad.float(), rtol=1e-2, atol=1e-2)


def test_gradcheck_double_precision():
    gen = torch.Generator().manual_seed(5)
    # distinct values: the min/max pools are differentiable away from ties
    x = torch.randperm(4 * 5 * 6, generator=gen).double().reshape(1, 1, 4, 5, 6) / 120
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: soft_skeleton(t, 3), (x,), eps=1e-4, atol=1e-6)


def test_no_grad_and_binary_input_unchanged():
    mask = torch.zeros(1, 1, 12, 12, 12)
    mask[:, :, 3:9, 3:9, 2:10] = 1
    with torch.no_grad():
        torch.testing.assert_close(soft_skeleton(mask), plain_soft_skeleton(mask), rtol=0,
                                   atol=0)


@pytest.mark.slow
@pytest.mark.parametrize("shape", [(1, 1, 40, 41), (1, 1, 8, 9, 10)])
def test_fifty_iterations_equal_the_plain_loop(shape):
    gen = torch.Generator().manual_seed(11)
    x = torch.rand(shape, generator=gen)
    weight = torch.rand(shape, generator=gen)
    ref, ref_grad = _value_and_grad(plain_soft_skeleton, x, weight, 50)
    out, grad = _value_and_grad(soft_skeleton, x, weight, 50)
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name,gamma", [("cldice", 0.5), ("compound_cldice", 0.3)])
def test_losses_equal_the_plain_loop(name, gamma, monkeypatch):
    gen = torch.Generator().manual_seed(7)
    logits = torch.randn(2, 2, 5, 9, 10, generator=gen)
    target = (torch.rand(2, 1, 5, 9, 10, generator=gen) > 0.6).long()
    loss_fn = make_loss(name, gamma=gamma, iterations=6)
    a = logits.clone().requires_grad_(True)
    loss = loss_fn(a, target)
    loss.backward()
    monkeypatch.setattr(functional, "soft_skeleton", plain_soft_skeleton)
    b = logits.clone().requires_grad_(True)
    ref = loss_fn(b, target)
    ref.backward()
    torch.testing.assert_close(loss, ref, rtol=0, atol=0)
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-6, atol=1e-9)


def test_chunk_length():
    assert [_chunk_length(n) for n in (0, 1, 12, 50, 200)] == [1, 1, 1, 2, 4]
    assert np.all([1 <= _chunk_length(n) <= max(n, 1) for n in range(300)])

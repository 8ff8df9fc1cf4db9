"""The clDice soft skeleton (Shit et al., CVPR 2021), differentiable, 2D and 3D."""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F

from topobench.errors import InvalidMaskError, InvalidParameterError

__all__ = ["soft_dilate", "soft_erode", "soft_open", "soft_skeleton"]


def soft_erode(x: torch.Tensor) -> torch.Tensor:
    """Min-pool erosion with the cross (face-neighbour) element; outside counts as foreground.

    ``x``: ``(B, C, H, W)`` or ``(B, C, D, H, W)``, values in [0, 1]. Same shape out.
    """
    if x.ndim == 4:
        a = -F.max_pool2d(-x, (3, 1), 1, (1, 0))
        b = -F.max_pool2d(-x, (1, 3), 1, (0, 1))
        return torch.minimum(a, b)
    if x.ndim == 5:
        a = -F.max_pool3d(-x, (3, 1, 1), 1, (1, 0, 0))
        b = -F.max_pool3d(-x, (1, 3, 1), 1, (0, 1, 0))
        c = -F.max_pool3d(-x, (1, 1, 3), 1, (0, 0, 1))
        return torch.minimum(torch.minimum(a, b), c)
    raise InvalidMaskError(f"expected (B, C, H, W) or (B, C, D, H, W), got shape {tuple(x.shape)}")


def soft_dilate(x: torch.Tensor) -> torch.Tensor:
    """Max-pool dilation with the 3x3(x3) box; outside counts as background. Same shape out."""
    if x.ndim == 4:
        return F.max_pool2d(x, 3, 1, 1)
    if x.ndim == 5:
        return F.max_pool3d(x, 3, 1, 1)
    raise InvalidMaskError(f"expected (B, C, H, W) or (B, C, D, H, W), got shape {tuple(x.shape)}")


def soft_open(x: torch.Tensor) -> torch.Tensor:
    """Soft opening ``dilate(erode(x))``."""
    return soft_dilate(soft_erode(x))


def _skeleton_steps(
    eroded: torch.Tensor, skel: torch.Tensor, steps: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``steps`` iterations of Alg. 1 from the state ``(erode^k(x), skel_k)``."""
    for _ in range(steps):
        x = eroded
        eroded = soft_erode(x)
        delta = F.relu(x - soft_dilate(eroded))
        skel = skel + F.relu(delta - skel * delta)
    return eroded, skel


def _first_step(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    eroded = soft_erode(x)
    return eroded, F.relu(x - soft_dilate(eroded))


def _chunk_length(iterations: int) -> int:
    """Iterations per recomputed chunk: balances the states kept between chunks (two tensors
    each) against the intermediates of one chunk (about 24 tensors per iteration in 3D)."""
    return max(1, min(iterations, round(math.sqrt(iterations / 12))))


class _CheckpointedSkeleton(torch.autograd.Function):
    """Alg. 1 with the state ``(erode^k(x), skel_k)`` kept only at chunk starts.

    The states live in one preallocated tensor (one allocation: no long-lived small blocks
    pinned between the iterations' temporaries, which fragments the heap); the backward pass
    recomputes one chunk at a time, under the autocast state of the forward pass, and
    back-propagates through the very operations of the plain loop.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, iterations: int, chunk: int) -> torch.Tensor:
        starts = list(range(0, iterations, chunk))
        device = x.device.type
        ctx.autocast = (device, torch.is_autocast_enabled(device),
                        torch.get_autocast_dtype(device))
        with torch.no_grad():
            eroded, skel = _first_step(x)
            states = eroded.new_empty((len(starts), 2, *eroded.shape))
            for k, start in enumerate(starts):
                states[k, 0] = eroded
                states[k, 1] = skel
                eroded, skel = _skeleton_steps(eroded, skel, min(chunk, iterations - start))
                skel = skel.to(states.dtype)
        ctx.save_for_backward(x, states)
        ctx.steps = [min(chunk, iterations - s) for s in starts]
        return skel

    @staticmethod
    def backward(ctx, grad_skel: torch.Tensor):
        x, states = ctx.saved_tensors
        device, enabled, dtype = ctx.autocast
        grad_eroded = None
        with torch.enable_grad(), torch.autocast(device, dtype=dtype, enabled=enabled):
            for k in range(len(ctx.steps) - 1, -1, -1):
                eroded = states[k, 0].detach().requires_grad_(True)
                skel = states[k, 1].detach().requires_grad_(True)
                out_eroded, out_skel = _skeleton_steps(eroded, skel, ctx.steps[k])
                outs, grads = [out_skel], [grad_skel]
                if grad_eroded is not None:
                    outs.append(out_eroded)
                    grads.append(grad_eroded)
                grad_eroded, grad_skel = torch.autograd.grad(outs, (eroded, skel), grads)
                del out_eroded, out_skel, outs, grads, eroded, skel
            del states
            xg = x.detach().requires_grad_(True)
            eroded, skel = _first_step(xg)
            outs, grads = [skel], [grad_skel]
            if grad_eroded is not None:
                outs.append(eroded)
                grads.append(grad_eroded)
            (grad_x,) = torch.autograd.grad(outs, (xg,), grads)
        return grad_x, None, None


def soft_skeleton(x: torch.Tensor, iterations: int = 50) -> torch.Tensor:
    """Soft skeleton of a probability map (Shit et al. 2021, Alg. 1).

    ``skel = relu(x - open(x))``; then ``iterations`` times: ``x = erode(x)``,
    ``delta = relu(x - open(x))``, ``skel = skel + relu(delta - skel * delta)``.
    Differentiable; on a {0, 1} input it equals
    :func:`topobench.critical.binary_soft_skeleton`.

    When a gradient is needed, the iterations run in chunks under activation checkpointing
    (:func:`torch.utils.checkpoint.checkpoint`): the forward pass keeps only the state between
    chunks (two tensors of the input's size per chunk, about ``sqrt(12 * iterations)`` chunks),
    and the backward pass recomputes one chunk at a time. Values and gradients are those of the
    plain loop (the same operations run again on the same inputs), while the memory of the
    backward pass drops from about 24 tensors of the input's size per iteration (with the 50
    iterations of the papers, roughly 1250 input-sized tensors; 19.5 GiB for logits
    (2, 2, 32, 256, 256)) to under 100. See ``benchmarks/bench_soft_skeleton.py``.

    Parameters
    ----------
    x : torch.Tensor, shape (B, C, H, W) or (B, C, D, H, W)
        Probabilities in [0, 1].
    iterations : int
        Number of erosion steps (50 in the clDice and ContextLoss papers).

    Returns
    -------
    torch.Tensor, same shape and dtype, values in [0, 1].
    """
    integer = isinstance(iterations, numbers.Integral) and not isinstance(iterations, bool)
    if not integer or iterations < 0:
        raise InvalidParameterError(f"iterations must be an integer >= 0, got {iterations!r}")
    iterations = int(iterations)
    if x.ndim not in (4, 5):
        raise InvalidMaskError(
            f"expected (B, C, H, W) or (B, C, D, H, W), got shape {tuple(x.shape)}"
        )
    if not (torch.is_grad_enabled() and x.requires_grad):
        return _skeleton_steps(*_first_step(x), iterations)[1]
    return _CheckpointedSkeleton.apply(x, iterations, _chunk_length(iterations))

"""The clDice soft skeleton (Shit et al., CVPR 2021), differentiable, 2D and 3D."""

from __future__ import annotations

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


def soft_skeleton(x: torch.Tensor, iterations: int = 50) -> torch.Tensor:
    """Soft skeleton of a probability map (Shit et al. 2021, Alg. 1).

    ``skel = relu(x - open(x))``; then ``iterations`` times: ``x = erode(x)``,
    ``delta = relu(x - open(x))``, ``skel = skel + relu(delta - skel * delta)``.
    Differentiable; on a {0, 1} input it equals
    :func:`topobench.critical.binary_soft_skeleton`.

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
    eroded = soft_erode(x)
    skel = F.relu(x - soft_dilate(eroded))
    for _ in range(iterations):
        x = eroded
        eroded = soft_erode(x)
        delta = F.relu(x - soft_dilate(eroded))
        skel = skel + F.relu(delta - skel * delta)
    return skel

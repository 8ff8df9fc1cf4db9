"""Sliding-window inference with Gaussian weighting of overlapping patches."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["sliding_window_positions", "predict_case"]


def sliding_window_positions(shape: Sequence[int], patch: Sequence[int],
                             overlap: float) -> list[tuple[int, ...]]:
    """Start corners of patches covering ``shape`` with the given overlap (0 <= overlap < 1).

    ``shape`` must be at least ``patch`` along every axis. The last patch along an axis is
    placed flush with the border.
    """
    starts = []
    for s, p in zip(shape, patch, strict=True):
        step = max(1, int(p * (1.0 - overlap)))
        n = int(np.ceil((s - p) / step)) + 1 if s > p else 1
        axis = sorted({min(i * step, s - p) for i in range(n)})
        starts.append(axis)
    return list(itertools.product(*starts))


def _gaussian(patch: Sequence[int], sigma_scale: float = 0.125) -> np.ndarray:
    grids = np.meshgrid(*[np.arange(p) - (p - 1) / 2 for p in patch], indexing="ij")
    sigmas = [max(p * sigma_scale, 1e-3) for p in patch]
    g = np.exp(-0.5 * sum((x / s) ** 2 for x, s in zip(grids, sigmas, strict=True)))
    g = g / g.max()
    return np.maximum(g, 1e-3).astype(np.float32)


@torch.no_grad()
def predict_case(
    model: nn.Module,
    image: np.ndarray | torch.Tensor,
    *,
    patch_size: Sequence[int],
    overlap: float = 0.5,
    batch_size: int = 4,
    device: torch.device | str = "cpu",
    amp: bool = False,
) -> np.ndarray | torch.Tensor:
    """Foreground probability of one case by sliding-window inference.

    The image is moved to ``device`` once; patches are cut, predicted and accumulated there
    (Gaussian-weighted sums on the device), so nothing returns to the host until the end.

    Parameters
    ----------
    model : torch.nn.Module
        Maps ``(B, C, *patch_size)`` to logits ``(B, K, *patch_size)``: ``K = 2`` softmax
        (foreground channel 1) or ``K = 1`` sigmoid.
    image : numpy.ndarray or torch.Tensor of float32, shape (C, H, W) or (C, Z, H, W)
        Normalised image; padded (zeros) where smaller than the patch.
    patch_size : tuple of int
    overlap : float
        Fraction of the patch shared by neighbouring windows; overlapping predictions are
        averaged with a Gaussian weight centred on each patch.
    device : torch.device or str
        Where the model runs and the predictions are accumulated.
    amp : bool
        Autocast on CUDA.

    Returns
    -------
    numpy.ndarray of float32 (for a numpy ``image``: one copy to the host at the end) or
    torch.Tensor of float32 on ``device`` (for a tensor ``image``), shape (H, W) or (Z, H, W):
    foreground probability in [0, 1].
    """
    device = torch.device(device)
    as_tensor = isinstance(image, torch.Tensor)
    x_all = image if as_tensor else torch.from_numpy(np.ascontiguousarray(image))
    x_all = x_all.to(device=device, dtype=torch.float32)
    spatial = tuple(x_all.shape[1:])
    patch = tuple(int(p) for p in patch_size)
    pad = [max(0, p - s) for p, s in zip(patch, spatial, strict=True)]
    if any(pad):
        x_all = torch.nn.functional.pad(x_all, [v for b in reversed(pad) for v in (0, b)])
    shape = tuple(x_all.shape[1:])
    weight = torch.from_numpy(_gaussian(patch)).to(device)
    acc = torch.zeros(shape, dtype=torch.float32, device=device)
    norm = torch.zeros(shape, dtype=torch.float32, device=device)
    positions = sliding_window_positions(shape, patch, overlap)
    was_training = model.training
    model.eval()
    try:
        for i in range(0, len(positions), batch_size):
            chunk = positions[i : i + batch_size]
            slices = [tuple(slice(s, s + p) for s, p in zip(st, patch, strict=True))
                      for st in chunk]
            x = torch.stack([x_all[(slice(None),) + sl] for sl in slices])
            with torch.autocast(device.type, enabled=amp and device.type == "cuda"):
                logits = model(x)
            logits = logits.float()
            if logits.shape[1] == 1:
                prob = torch.sigmoid(logits[:, 0])
            else:
                prob = torch.softmax(logits, dim=1)[:, 1]
            for sl, p in zip(slices, prob, strict=True):
                acc[sl] += p * weight
                norm[sl] += weight
    finally:
        model.train(was_training)
    out = (acc / norm)[tuple(slice(0, s) for s in spatial)]
    return out if as_tensor else out.cpu().numpy()

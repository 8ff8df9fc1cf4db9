"""A topology loss over nnU-Net's deep-supervision outputs.

nnU-Net's U-Net returns one output per decoder scale (full resolution first, then 1/2, 1/4, ...)
and its data loader downsamples the target to each of them. Its own wrapper applies the same
loss at every scale. Here the topology loss (critical mask, soft skeleton) is applied to the
full-resolution output only, and the lower scales get the loss's pixel part (Dice & CE with the
same ``alpha``), with nnU-Net's scale weights:

- the topology that is evaluated is that of the full-resolution output, so that is where the
  critical mask should be found;
- thin structures one to three pixels wide break apart or vanish when nnU-Net downsamples the
  target (nearest neighbour) to 1/4 or 1/8, so skeletons and critical masks of the coarse
  targets mark downsampling artefacts as topology errors;
- the critical mask (CPU work) and the 50-iteration soft skeleton run once per step, not once
  per scale.

``topology_scales="all"`` applies the topology loss at every scale instead, as nnU-Net's own
wrapper would.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from typing import Literal

import torch
from torch import nn

from topobench.errors import InvalidParameterError

__all__ = ["DeepSupervisionTopologyLoss", "deep_supervision_weights"]

TopologyScales = Literal["full", "all"]


def deep_supervision_weights(n_outputs: int, *, keep_lowest: bool = False) -> tuple[float, ...]:
    """nnU-Net's weights for ``n_outputs`` scales: ``1 / 2**i``, the lowest scale 0, sum 1.

    Parameters
    ----------
    n_outputs : int
        Number of decoder outputs (full resolution first).
    keep_lowest : bool
        Give the lowest scale a weight of 1e-6 instead of 0 (nnU-Net does so under DDP without
        ``torch.compile``, where a parameter without gradient is an error).
    """
    if n_outputs < 1:
        raise InvalidParameterError(f"n_outputs: expected at least 1, got {n_outputs}")
    if n_outputs == 1:
        return (1.0,)
    weights = [1.0 / 2**i for i in range(n_outputs)]
    weights[-1] = 1e-6 if keep_lowest else 0.0
    total = sum(weights)
    return tuple(w / total for w in weights)


class DeepSupervisionTopologyLoss(nn.Module):
    """Weighted sum of a topology loss (full resolution) and a pixel loss (lower scales).

    Parameters
    ----------
    loss : nn.Module
        Topology loss ``loss(pred_logits, target)`` (e.g. :class:`topobench.losses.ContextLoss`).
    pixel_loss : nn.Module
        Loss for the lower scales, normally the pixel part of ``loss``
        (:class:`topobench.losses.DiceCELoss` with the same ``alpha``).
    weights : sequence of float
        One weight per output, full resolution first (:func:`deep_supervision_weights`).
        Outputs with weight 0 are skipped.
    topology_scales : {"full", "all"}
        Where ``loss`` is applied: the full-resolution output only, or every output.

    Notes
    -----
    ``forward(outputs, targets)`` takes lists of logits ``(B, C, ...)`` and of labels
    ``(B, 1, ...)`` (one per scale, as nnU-Net passes them) or a single pair of tensors (deep
    supervision off). Logits are cast to float32 and the loss runs outside autocast, so that
    mixed-precision training computes the topology terms at full precision.
    """

    def __init__(
        self,
        loss: nn.Module,
        pixel_loss: nn.Module,
        weights: Sequence[float],
        *,
        topology_scales: TopologyScales = "full",
    ):
        super().__init__()
        if topology_scales not in ("full", "all"):
            raise InvalidParameterError(
                f"topology_scales: expected 'full' or 'all', got {topology_scales!r}"
            )
        weights = tuple(float(w) for w in weights)
        if not weights or not any(w != 0 for w in weights) or any(w < 0 for w in weights):
            raise InvalidParameterError(
                f"weights: expected non-negative numbers, at least one non-zero, got {weights}"
            )
        self.loss = loss
        self.pixel_loss = pixel_loss
        self.weights = weights
        self.topology_scales = topology_scales

    def forward(
        self,
        outputs: torch.Tensor | Sequence[torch.Tensor],
        targets: torch.Tensor | Sequence[torch.Tensor],
    ) -> torch.Tensor:
        """Loss of the outputs (full resolution first) against the targets (same order)."""
        if isinstance(outputs, torch.Tensor):
            outputs = [outputs]
        if isinstance(targets, torch.Tensor):
            targets = [targets]
        if len(outputs) != len(targets) or len(outputs) > len(self.weights):
            raise InvalidParameterError(
                f"expected as many outputs as targets and at most {len(self.weights)} "
                f"(one per weight), got {len(outputs)} outputs and {len(targets)} targets"
            )
        device_type = outputs[0].device.type
        total = outputs[0].new_zeros((), dtype=torch.float32)
        # nnU-Net autocasts on CUDA only; other devices (mps) may not know autocast at all.
        full_precision = (
            torch.autocast(device_type=device_type, enabled=False)
            if device_type in ("cuda", "cpu") else nullcontext()
        )
        with full_precision:
            for i, (logits, target) in enumerate(zip(outputs, targets)):
                weight = self.weights[i]
                if weight == 0:
                    continue
                fn = self.loss if i == 0 or self.topology_scales == "all" else self.pixel_loss
                total = total + weight * fn(logits.float(), target)
        return total

    def extra_repr(self) -> str:
        weights = ", ".join(f"{w:.4g}" for w in self.weights)
        return f"weights=({weights}), topology_scales={self.topology_scales!r}"

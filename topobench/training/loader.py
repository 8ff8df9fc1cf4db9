"""Training batches through a ``torch.utils.data.DataLoader``, the same for any worker count.

Batch ``step`` of epoch ``epoch`` of a phase is drawn by :class:`PatchSampler` from a numpy
generator seeded by ``(seed, phase, epoch, step)`` alone, so it does not depend on which
process draws it, in which order, or whether the run was resumed: ``num_workers=0`` (drawn in
the training process) and ``num_workers=2`` give the same batches, and a resumed run picks up
at the batch it stopped at. The batches of a phase are one map-style dataset indexed by
``epoch * iterations + step``; one loader serves the whole phase (workers persist across its
epochs and prefetch across epoch ends).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from topobench.training.data import PatchSampler

__all__ = ["PHASE_ID", "PhaseBatches", "batch_seed", "phase_batches"]

Phase = Literal["pretrain", "finetune"]
PHASE_ID = {"pretrain": 0, "finetune": 1}


def batch_seed(seed: int, phase: Phase, epoch: int, step: int) -> list[int]:
    """Entropy of the generator of one batch: ``[seed, phase id, epoch, step]``."""
    return [int(seed), PHASE_ID[phase], int(epoch), int(step)]


class PhaseBatches(Dataset):
    """The batches of one phase: item ``i`` is step ``i % iterations`` of epoch
    ``i // iterations``, as ``(x, y)`` tensors ``(B, C, *patch)`` float32 and
    ``(B, 1, *patch)`` int64."""

    def __init__(self, sampler: PatchSampler, *, phase: Phase, seed: int, epochs: int,
                 iterations: int, batch_size: int) -> None:
        self.sampler = sampler
        self.phase: Phase = phase
        self.seed = int(seed)
        self.epochs = int(epochs)
        self.iterations = int(iterations)
        self.batch_size = int(batch_size)

    def __len__(self) -> int:
        return self.epochs * self.iterations

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, step = divmod(int(index), self.iterations)
        rng = np.random.default_rng(batch_seed(self.seed, self.phase, epoch, step))
        x, y = self.sampler.batch(self.batch_size, rng)
        return torch.from_numpy(x), torch.from_numpy(y)


def phase_batches(batches: PhaseBatches, *, start_epoch: int, num_workers: int,
                  pin_memory: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The batches from ``start_epoch`` to the end of the phase, in order.

    ``num_workers`` processes draw them (0: this process). The loader's own generator is
    seeded from the phase so that it never draws from torch's global generator (which the
    epoch loop seeds and checkpoints).
    """
    generator = torch.Generator().manual_seed(batches.seed * 2 + PHASE_ID[batches.phase])
    loader = DataLoader(
        batches,
        batch_size=None,  # items are whole batches
        sampler=range(start_epoch * batches.iterations, len(batches)),
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=False,
        generator=generator,
        prefetch_factor=2 if num_workers > 0 else None,
    )
    return iter(loader)

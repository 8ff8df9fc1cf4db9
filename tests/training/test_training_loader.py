"""Batches through the DataLoader: the same for any worker count, epoch, resume point; the
logged loss is the plain sum of the step losses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from topobench.training import PatchSampler
from topobench.training.loader import PhaseBatches, batch_seed, phase_batches
from topobench.training.loop import PhaseSettings, run_phase


def _sampler(seed: int = 0) -> PatchSampler:
    rng = np.random.default_rng(seed)
    images = [rng.normal(size=(1, 24, 20)).astype(np.float32) for _ in range(3)]
    labels = [rng.random((24, 20)) > 0.8 for _ in range(3)]
    return PatchSampler(images, labels, (16, 16), foreground_fraction=0.5)


def _all(batches: PhaseBatches, *, start_epoch: int = 0, workers: int = 0) -> list:
    return [(x.clone(), y.clone()) for x, y in
            phase_batches(batches, start_epoch=start_epoch, num_workers=workers)]


def test_workers_give_the_batches_of_the_training_process() -> None:
    batches = PhaseBatches(_sampler(), phase="pretrain", seed=3, epochs=3, iterations=4,
                           batch_size=2)
    here = _all(batches)
    assert len(here) == 12 and here[0][0].shape == (2, 1, 16, 16)
    assert here[0][1].dtype == torch.int64 and here[0][0].dtype == torch.float32
    two = _all(batches, workers=2)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
               for a, b in zip(here, two, strict=True))
    # each batch is the sampler's draw from its own generator (independent of the loader)
    x, y = _sampler().batch(2, np.random.default_rng(batch_seed(3, "pretrain", 1, 2)))
    assert np.array_equal(here[1 * 4 + 2][0].numpy(), x)
    assert np.array_equal(here[1 * 4 + 2][1].numpy(), y)
    # a resumed phase starts at its epoch's first batch; batches differ by step and phase
    tail = _all(batches, start_epoch=2)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(here[8:], tail, strict=True))
    assert not torch.equal(here[0][0], here[1][0])
    other = PhaseBatches(_sampler(), phase="finetune", seed=3, epochs=1, iterations=1,
                         batch_size=2)
    assert not torch.equal(_all(other)[0][0], here[0][0])


class _Recorded(torch.nn.Module):
    """Dice & CE that notes each step's loss as a Python float (the reference sum)."""

    def __init__(self) -> None:
        super().__init__()
        from topobench.losses import make_loss

        self.loss = make_loss("dice_ce")
        self.seen: list[float] = []

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        value = self.loss(logits, target)
        self.seen.append(float(value.detach()))
        return value


@pytest.mark.parametrize("workers", [0, 2])
def test_logged_loss_is_the_mean_of_the_step_losses(tmp_path: Path, workers: int) -> None:
    torch.manual_seed(0)
    model = torch.nn.Conv2d(1, 2, 3, padding=1)
    loss = _Recorded()
    settings = PhaseSettings("pretrain", 2, 3, 2, 1e-2, "adam", 0.0, 0, torch.device("cpu"),
                             False, workers)
    log = run_phase(model, _sampler(), loss, settings, checkpoint=tmp_path / "ck.pt", log=[])
    for epoch, row in enumerate(log):
        total = 0.0
        for value in loss.seen[3 * epoch: 3 * epoch + 3]:
            total += value
        assert row["loss"] == total / 3  # exactly: the sum of the same float64 additions

"""The epoch loop of one training phase, with per-epoch checkpoints and exact resume.

Every epoch draws its patches from a generator seeded by ``(seed, phase, epoch)`` and reseeds
torch the same way, and the checkpoint written after each epoch holds the model, optimizer,
scheduler, gradient scaler, RNG states and the log so far. A run interrupted at any point and
resumed from its last checkpoint therefore ends with the same weights as an uninterrupted run
(on the same device and thread count).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from topobench.training.data import PatchSampler

__all__ = ["TrainEvent", "PhaseSettings", "run_phase", "save_atomic", "poly_lr"]

Phase = Literal["pretrain", "finetune"]
_PHASE_ID = {"pretrain": 0, "finetune": 1}


@dataclass(frozen=True)
class TrainEvent:
    """Progress of a run, passed to the ``progress`` callback of :func:`topobench.training.train`.

    ``kind`` is "step" (after each optimiser step), "epoch" (after each epoch and its
    checkpoint) or "stage" (a new stage starts: ``phase`` names it: pretrain, finetune,
    inference, evaluation). ``loss`` is the running mean of the epoch; ``throughput`` is in
    patches per second; ``eta`` in seconds for the rest of the phase.
    """

    kind: Literal["step", "epoch", "stage"]
    phase: str
    epoch: int = 0
    epochs: int = 0
    step: int = 0
    steps: int = 0
    loss: float = float("nan")
    seconds: float = 0.0
    throughput: float = 0.0
    eta: float = 0.0
    lr: float = 0.0


ProgressCallback = Callable[[TrainEvent], None]


@dataclass(frozen=True)
class PhaseSettings:
    """What one phase needs beyond the model and the data (see ``TrainConfig``)."""

    phase: Phase
    epochs: int
    iterations: int
    batch_size: int
    lr: float
    optimizer: Literal["adam", "sgd"]
    weight_decay: float
    seed: int
    device: torch.device
    amp: bool


def poly_lr(epochs: int, exponent: float = 0.9) -> Callable[[int], float]:
    """nnU-Net's polynomial decay factor ``(1 - epoch / epochs) ** exponent``."""
    return lambda epoch: (1.0 - min(epoch, epochs - 1) / epochs) ** exponent


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file and rename it, so a kill never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _make_optimizer(model: nn.Module, s: PhaseSettings) -> torch.optim.Optimizer:
    if s.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=s.lr, momentum=0.99, nesterov=True,
                               weight_decay=s.weight_decay)
    return torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)


def _rng_states() -> dict:
    states = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _epoch_seed(seed: int, phase: Phase, epoch: int) -> list[int]:
    return [int(seed), _PHASE_ID[phase], int(epoch)]


def run_phase(
    model: nn.Module,
    sampler: PatchSampler,
    loss_fn: nn.Module,
    settings: PhaseSettings,
    *,
    checkpoint: Path,
    log: list[dict],
    progress: ProgressCallback | None = None,
) -> list[dict]:
    """Train ``model`` for one phase, resuming from ``checkpoint`` when it belongs to this phase.

    Parameters
    ----------
    model : torch.nn.Module
        Already on ``settings.device``; its weights are the phase's start (or are replaced by the
        checkpoint's when resuming).
    sampler : PatchSampler
    loss_fn : torch.nn.Module
        ``loss_fn(logits, target)`` with target ``(B, 1, *patch)`` int64 labels.
    checkpoint : Path
        Written after every epoch; read at the start when its phase is ``settings.phase``.
    log : list of dict
        Rows of the earlier phases (kept in the checkpoint); this phase's rows are appended.

    Returns
    -------
    list of dict
        The full log: rows with epoch, phase, loss, seconds, lr.
    """
    s = settings
    optimizer = _make_optimizer(model, s)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, poly_lr(s.epochs))
    scaler = torch.amp.GradScaler(s.device.type, enabled=s.amp)
    start = 0
    log = list(log)
    if checkpoint.is_file():
        state = torch.load(checkpoint, map_location=s.device, weights_only=False)
        if state["phase"] == s.phase:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            scaler.load_state_dict(state["scaler"])
            _set_rng_states(state["rng"])
            start = int(state["epoch"])
            log = list(state["log"])
    model.train()
    for epoch in range(start, s.epochs):
        rng = np.random.default_rng(_epoch_seed(s.seed, s.phase, epoch))
        torch.manual_seed(int(np.random.default_rng(_epoch_seed(s.seed, s.phase, epoch))
                              .integers(2**62)))
        lr = optimizer.param_groups[0]["lr"]
        t0 = time.perf_counter()
        total = 0.0
        for step in range(s.iterations):
            x_np, y_np = sampler.batch(s.batch_size, rng)
            x = torch.from_numpy(x_np).to(s.device, non_blocking=True)
            y = torch.from_numpy(y_np).to(s.device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(s.device.type, enabled=s.amp):
                logits = model(x)
            loss = loss_fn(logits.float(), y)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 12.0)
            scaler.step(optimizer)
            scaler.update()
            total += float(loss.detach())
            if progress is not None:
                elapsed = time.perf_counter() - t0
                rate = (step + 1) / elapsed if elapsed > 0 else 0.0
                remaining = (s.epochs - epoch) * s.iterations - (step + 1)
                progress(TrainEvent(
                    "step", s.phase, epoch + 1, s.epochs, step + 1, s.iterations,
                    total / (step + 1), elapsed, rate * s.batch_size,
                    remaining / rate if rate > 0 else 0.0, lr,
                ))
        scheduler.step()
        seconds = time.perf_counter() - t0
        row = {"epoch": epoch + 1, "phase": s.phase, "loss": total / s.iterations,
               "seconds": seconds, "lr": lr}
        log.append(row)
        save_atomic({
            "phase": s.phase,
            "epoch": epoch + 1,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(),
            "rng": _rng_states(),
            "log": log,
        }, checkpoint)
        if progress is not None:
            mean_s = float(np.mean([r["seconds"] for r in log if r["phase"] == s.phase]))
            progress(TrainEvent(
                "epoch", s.phase, epoch + 1, s.epochs, s.iterations, s.iterations, row["loss"],
                seconds, s.iterations * s.batch_size / seconds if seconds > 0 else 0.0,
                mean_s * (s.epochs - epoch - 1), lr,
            ))
    return log

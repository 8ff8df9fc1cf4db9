"""The epoch loop of one training phase, with per-epoch checkpoints and exact resume.

Every batch is drawn from a generator seeded by ``(seed, phase, epoch, step)``
(:mod:`topobench.training.loader`), every epoch reseeds torch from ``(seed, phase, epoch)``, and
the checkpoint written after each epoch holds the model, optimizer, scheduler, gradient scaler,
RNG states and the log so far. A run interrupted at any point and resumed from its last
checkpoint therefore ends with the same weights as an uninterrupted run (on the same device and
thread count), whatever the number of data-loading workers.

The loss is summed on the device and read once per epoch (and, for the progress display, at
most once a second), so a step does not wait for the device to finish.

The learning rate follows nnU-Net's polynomial decay in closed form (:func:`poly_lr` through
``LambdaLR``). ``torch.optim.lr_scheduler.PolynomialLR`` gives the same schedule but multiplies
the rate up step by step, so its rates differ from nnU-Net's formula by about 4e-15 (relative
1e-12 at most, tests/training: ``test_poly_lr_equals_torchs_polynomial_lr_to_rounding``); the
closed form is kept so that runs stay bit for bit what they were and equal nnU-Net's rates.
"""

from __future__ import annotations

import io
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from topobench.atomic import atomic_write_bytes
from topobench.training.data import PatchSampler
from topobench.training.loader import PHASE_ID, PhaseBatches, phase_batches

__all__ = ["TrainEvent", "PhaseSettings", "run_phase", "save_atomic", "poly_lr"]

Phase = Literal["pretrain", "finetune"]
# Seconds between two reads of the running loss for the progress display (each read waits for
# the device).
PROGRESS_READ_INTERVAL = 1.0


@dataclass(frozen=True)
class TrainEvent:
    """Progress of a run, passed to the ``progress`` callback of :func:`topobench.training.train`.

    ``kind`` is "step" (after each optimiser step), "epoch" (after each epoch and its
    checkpoint) or "stage" (a new stage starts: ``phase`` names it: pretrain, finetune,
    inference, evaluation). ``loss`` is the mean loss of the epoch: for "epoch" events exact,
    for "step" events the running mean as last read from the device (read at the first step of
    an epoch and then at most once a second, so that steps do not wait for the device);
    ``throughput`` is in patches per second; ``eta`` in seconds for the rest of the phase.
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
    num_workers: int = 0


def poly_lr(epochs: int, exponent: float = 0.9) -> Callable[[int], float]:
    """nnU-Net's polynomial decay factor ``(1 - epoch / epochs) ** exponent``."""
    return lambda epoch: (1.0 - min(epoch, epochs - 1) / epochs) ** exponent


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` through :func:`topobench.atomic.atomic_write_bytes`: a kill never leaves
    half a file."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


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
    return [int(seed), PHASE_ID[phase], int(epoch)]


@dataclass
class _PhaseState:
    """The optimiser, schedule and gradient scaler of a phase, with the epoch to start at."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    start: int
    log: list[dict]


def _start_phase(model: nn.Module, s: PhaseSettings, checkpoint: Path,
                 log: list[dict]) -> _PhaseState:
    """A fresh optimiser and schedule, or those of ``checkpoint`` when it belongs to the phase
    (then the model, RNG states and log are restored too)."""
    optimizer = _make_optimizer(model, s)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, poly_lr(s.epochs))
    scaler = torch.amp.GradScaler(s.device.type, enabled=s.amp)
    state = _PhaseState(optimizer, scheduler, scaler, 0, list(log))
    if checkpoint.is_file():
        saved = torch.load(checkpoint, map_location=s.device, weights_only=False)
        if saved["phase"] == s.phase:
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            scheduler.load_state_dict(saved["scheduler"])
            scaler.load_state_dict(saved["scaler"])
            _set_rng_states(saved["rng"])
            state.start = int(saved["epoch"])
            state.log = list(saved["log"])
    return state


def _save_checkpoint(model: nn.Module, state: _PhaseState, s: PhaseSettings, epoch: int,
                     checkpoint: Path) -> None:
    save_atomic({
        "phase": s.phase,
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": state.optimizer.state_dict(),
        "scheduler": state.scheduler.state_dict(),
        "scaler": state.scaler.state_dict(),
        "rng": _rng_states(),
        "log": state.log,
    }, checkpoint)


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
        Draws the batches (in ``settings.num_workers`` worker processes, or in this one).
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
    state = _start_phase(model, s, checkpoint, log)
    model.train()
    batches = phase_batches(
        PhaseBatches(sampler, phase=s.phase, seed=s.seed, epochs=s.epochs,
                     iterations=s.iterations, batch_size=s.batch_size),
        start_epoch=state.start, num_workers=s.num_workers, pin_memory=s.device.type == "cuda")
    for epoch in range(state.start, s.epochs):
        torch.manual_seed(int(np.random.default_rng(_epoch_seed(s.seed, s.phase, epoch))
                              .integers(2**62)))
        lr = state.optimizer.param_groups[0]["lr"]
        t0 = time.perf_counter()
        mean_loss = _train_epoch(model, batches, loss_fn, state, s, epoch, lr, progress)
        state.scheduler.step()
        seconds = time.perf_counter() - t0
        row = {"epoch": epoch + 1, "phase": s.phase, "loss": mean_loss, "seconds": seconds,
               "lr": lr}
        state.log.append(row)
        _save_checkpoint(model, state, s, epoch + 1, checkpoint)
        if progress is not None:
            mean_s = float(np.mean([r["seconds"] for r in state.log if r["phase"] == s.phase]))
            progress(TrainEvent(
                "epoch", s.phase, epoch + 1, s.epochs, s.iterations, s.iterations, row["loss"],
                seconds, s.iterations * s.batch_size / seconds if seconds > 0 else 0.0,
                mean_s * (s.epochs - epoch - 1), lr,
            ))
    return state.log


def _train_epoch(model: nn.Module, batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
                 loss_fn: nn.Module, state: _PhaseState, s: PhaseSettings, epoch: int,
                 lr: float, progress: ProgressCallback | None) -> float:
    """``s.iterations`` optimiser steps; returns the epoch's mean loss.

    The losses are summed on the device in float64 (float32 where the device has no float64),
    which gives the same sum as adding them up as Python floats, and read once at the end.
    """
    dtype = torch.float32 if s.device.type == "mps" else torch.float64
    total = torch.zeros((), dtype=dtype, device=s.device)
    shown, last_read = float("nan"), -float("inf")
    t0 = time.perf_counter()
    for step in range(s.iterations):
        x, y = next(batches)
        x = x.to(s.device, non_blocking=True)
        y = y.to(s.device, non_blocking=True)
        state.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(s.device.type, enabled=s.amp):
            logits = model(x)
        loss = loss_fn(logits.float(), y)
        state.scaler.scale(loss).backward()
        state.scaler.unscale_(state.optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 12.0)
        state.scaler.step(state.optimizer)
        state.scaler.update()
        total += loss.detach().to(dtype)
        if progress is not None:
            elapsed = time.perf_counter() - t0
            if elapsed - last_read >= PROGRESS_READ_INTERVAL or step == 0:
                shown, last_read = float(total) / (step + 1), elapsed
            rate = (step + 1) / elapsed if elapsed > 0 else 0.0
            remaining = (s.epochs - epoch) * s.iterations - (step + 1)
            progress(TrainEvent(
                "step", s.phase, epoch + 1, s.epochs, step + 1, s.iterations, shown, elapsed,
                rate * s.batch_size, remaining / rate if rate > 0 else 0.0, lr,
            ))
    return float(total) / s.iterations

"""The paper's training protocol as one call: pretrain, fine-tune, predict, post-process, evaluate.

:func:`train` runs the steps of :mod:`topobench.training.protocol` for one fold of a dataset
and writes a run directory (format :data:`topobench.catalog.RUN_FORMAT`, read by the results
aggregator; see ``docs/training.md``)::

    RUNS/<run name>/
        run.json                    the run record (topobench.run_record.RunRecord)
        log.csv                     epoch, phase, loss, seconds, lr
        checkpoint.pt               last finished epoch (resume point)
        model_pretrained.pt         weights after pretraining (reusable with ``pretrained=``)
        model_finetuned.pt          weights after fine-tuning
        predictions/{pretrained,raw,postprocessed}/<case>.png|.tif
        evaluation/{pretrained,raw,postprocessed}/   evaluation stores (cases.csv, summary.json)
"""

from __future__ import annotations

import time

import torch
from torch import nn

from topobench.catalog import LOSSES, RUN_FORMAT
from topobench.catalog import finetune_epoch_count as finetune_epochs
from topobench.training import protocol as steps
from topobench.training.config import TrainConfig, run_name
from topobench.training.loop import ProgressCallback
from topobench.training.rundir import RunError, TrainResult

__all__ = [
    "LOSSES", "RUN_FORMAT", "TrainConfig", "TrainResult", "RunError", "train", "run_name",
    "finetune_epochs",
]


def train(
    config: TrainConfig,
    *,
    model: nn.Module | None = None,
    progress: ProgressCallback | None = None,
) -> TrainResult:
    """Run the paper's training protocol (docs/training.md) for one fold and write the run record.

    Pretrain with Dice & CE (``L_pixel``) for ``config.epochs`` (or reuse
    ``config.pretrained``), fine-tune with ``config.loss`` for ``finetune_epochs`` epochs,
    predict the held-out cases with both models (sliding window), post-process with
    :func:`topobench.postprocess.keep_supported` and evaluate pretrained, raw and post-processed
    predictions with the protocol. Every step is idempotent
    (:mod:`topobench.training.protocol`): with ``resume`` a run continues where it stopped.

    Parameters
    ----------
    config : TrainConfig
        Validated when it was made.
    model : torch.nn.Module, optional
        Any network mapping ``(B, C, *patch)`` to ``(B, 2, *patch)`` softmax logits (or
        ``(B, 1, ...)`` sigmoid logits); default: the network ``config.network`` built from the
        config. Its initial weights are the caller's.
    progress : callable, optional
        Receives a :class:`~topobench.training.loop.TrainEvent` after every step, epoch and
        stage change. An exception raised there interrupts the run; ``resume=True`` continues
        it from the last epoch.

    Returns
    -------
    TrainResult
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"train: expected a TrainConfig, got {type(config).__name__}")
    previous_threads = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    try:
        started = time.time()
        run = steps.prepare(config, model)
        if isinstance(run, TrainResult):  # a complete run, resumed with its options
            return run
        pretrained = steps.pretrain(run, progress)
        finetuned, record = steps.finetune(run, progress)
        predictions, record = steps.predict(run, record, pretrained, finetuned, progress)
        record = steps.evaluate(run, record, predictions, progress)
        return steps.finish(run, record, started)
    finally:
        torch.set_num_threads(previous_threads)

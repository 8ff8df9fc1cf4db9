"""``topobench nnunet train`` / ``predict``: nnU-Net's own entry points with topobench's trainers.

:func:`train` calls nnU-Net's ``run_training`` (what ``nnUNetv2_train`` runs) in this process and
:func:`predict` its ``predict_entry_point`` (``nnUNetv2_predict``); while they run,
:func:`serve_trainers` hands nnU-Net the trainer class when it looks a name up, so no file is
copied into nnU-Net and no variable needs to be set. Everything nnU-Net does
(``-pretrained_weights``, ``--c``, ``--val``, the final validation with exported predictions)
works as with its own commands.
"""

from __future__ import annotations

import os
import pickle
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from topobench.catalog import finetune_epoch_count
from topobench.errors import InvalidParameterError, TopobenchError
from topobench.nnunet.lookup import EXT_TRAINER_VARIABLE, ext_trainer_environment
from topobench.nnunet.naming import parse_trainer_name, trainer_class_name

__all__ = [
    "TrainRequest",
    "finetune_epochs_for_checkpoint",
    "predict",
    "resolve_device",
    "resolve_trainer_name",
    "serve_trainers",
    "train",
]


@dataclass(frozen=True)
class TrainRequest:
    """What :func:`train` ran: the trainer's class name and nnU-Net's arguments."""

    trainer: str
    dataset: str
    configuration: str
    fold: str
    plans: str
    pretrained: str | None
    device: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dict(self.__dict__)


def finetune_epochs_for_checkpoint(checkpoint: str | Path) -> int | None:
    """Fine-tuning length after a pretrained nnU-Net checkpoint: the epochs it was trained for,
    read from the file, through :func:`topobench.catalog.finetune_epoch_count` (5%, rounded
    half up, at least 1); None when the checkpoint does not say.

    Raises
    ------
    TopobenchError
        The checkpoint cannot be read.
    """
    try:
        import torch
    except ImportError as exc:
        raise TopobenchError(f"reading an nnU-Net checkpoint needs torch ({exc})") from exc
    try:
        state = torch.load(Path(checkpoint), map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as exc:
        raise TopobenchError(f"{checkpoint}: cannot read the nnU-Net checkpoint ({exc})") from exc
    epochs = state.get("current_epoch") if isinstance(state, dict) else None
    if not isinstance(epochs, int) or epochs < 1:
        return None
    return finetune_epoch_count(epochs)


def resolve_trainer_name(
    *,
    trainer: str | None = None,
    loss: str = "closs",
    gamma: float | None = None,
    pretrained: str | Path | None = None,
    finetune: bool | None = None,
    epochs: int | None = None,
    iterations: int | None = None,
) -> str:
    """The trainer class name for a request (see :mod:`topobench.nnunet.naming`).

    ``trainer`` wins when given (any nnU-Net trainer name). Otherwise the name is built from
    ``loss`` and ``gamma``; ``finetune`` defaults to whether a ``pretrained`` checkpoint is given,
    and a fine-tuning run without ``epochs`` lasts 5% of the checkpoint's epochs (the ``_ft``
    default of 50 when the checkpoint ran nnU-Net's 1000).
    """
    if trainer is not None:
        if gamma is not None or epochs is not None or finetune is not None or iterations:
            raise InvalidParameterError(
                "a trainer name fixes loss, gamma, epochs and iterations; got "
                "gamma/epochs/iterations/finetune too"
            )
        return trainer
    finetune = pretrained is not None if finetune is None else finetune
    if finetune and epochs is None and pretrained is not None:
        epochs = finetune_epochs_for_checkpoint(pretrained)
        if epochs == finetune_epoch_count(1000):
            epochs = None  # the plain "_ft" name says the same
    return trainer_class_name(
        loss, gamma, finetune=finetune, epochs=epochs, iterations=iterations
    )


_LOOKUP_MODULES = ("nnunetv2.run.run_training", "nnunetv2.inference.predict_from_raw_data")


@contextmanager
def serve_trainers(extra: type | None = None) -> Iterator[None]:
    """While active, nnU-Net's training and prediction entries find topobench's trainers (and
    ``extra``, any trainer class) by name without searching any folder.

    The ``_ext`` folder is also added to ``nnUNet_extTrainer`` for the processes nnU-Net starts.
    """
    import importlib

    from topobench.nnunet.trainers import trainer_class

    modules = [importlib.import_module(name) for name in _LOOKUP_MODULES]
    originals = [m.recursive_find_trainer_class_by_name for m in modules]
    fallback = originals[0]

    def find(name: str) -> type:
        if extra is not None and name == extra.__name__:
            return extra
        if parse_trainer_name(name) is not None:
            return trainer_class(name)
        return fallback(name)

    previous = os.environ.get(EXT_TRAINER_VARIABLE)
    os.environ[EXT_TRAINER_VARIABLE] = ext_trainer_environment()[EXT_TRAINER_VARIABLE]
    for module in modules:
        module.recursive_find_trainer_class_by_name = find
    try:
        yield
    finally:
        for module, original in zip(modules, originals):
            module.recursive_find_trainer_class_by_name = original
        if previous is None:
            os.environ.pop(EXT_TRAINER_VARIABLE, None)
        else:
            os.environ[EXT_TRAINER_VARIABLE] = previous


def predict(args: Sequence[str]) -> None:
    """Run ``nnUNetv2_predict`` with ``args`` (its own options, e.g. ``-i IN -o OUT -d 1 -c 2d
    -tr nnUNetTrainerCLoss_ft -f 0``) so that it finds topobench's trainers.

    Raises
    ------
    TopobenchError
        nnU-Net is not installed.
    """
    try:
        from nnunetv2.inference.predict_from_raw_data import predict_entry_point
    except ImportError as exc:
        raise TopobenchError(
            f"nnU-Net v2 is needed for prediction ({exc}); install it with "
            "pip install \"topobench[nnunet]\""
        ) from exc
    saved = sys.argv
    sys.argv = ["nnUNetv2_predict", *args]
    try:
        with serve_trainers():
            predict_entry_point()
    finally:
        sys.argv = saved


def resolve_device(device: str) -> str:
    """nnU-Net's device name for ``device``: ``auto`` is CUDA when available, else MPS, else the
    CPU (as ``topobench train --device auto``); names other than auto, cuda, cpu and mps are
    refused.
    """
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    if device not in ("cuda", "cpu", "mps"):
        raise InvalidParameterError(f"device: expected auto, cuda, cpu or mps, got {device!r}")
    return device


def train(
    dataset: str | int,
    configuration: str,
    fold: str | int,
    *,
    trainer: str | type | None = None,
    loss: str = "closs",
    gamma: float | None = None,
    pretrained: str | Path | None = None,
    finetune: bool | None = None,
    epochs: int | None = None,
    iterations: int | None = None,
    plans: str = "nnUNetPlans",
    device: str = "auto",
    continue_training: bool = False,
    validation_only: bool = False,
    save_probabilities: bool = False,
    disable_checkpointing: bool = False,
    val_best: bool = False,
) -> TrainRequest:
    """Train one fold with nnU-Net and a topobench trainer (``nnUNetv2_train`` equivalent).

    Parameters
    ----------
    dataset, configuration, fold
        As for ``nnUNetv2_train`` (``Dataset001_Roads`` or ``1``; ``2d``, ``3d_fullres``;
        ``0``-``4`` or ``all``). nnU-Net's ``nnUNet_raw``/``nnUNet_preprocessed``/
        ``nnUNet_results`` variables must be set, as for nnU-Net itself.
    trainer : str or class, optional
        A trainer class name (nnU-Net looks it up as usual) or a class (e.g. your subclass of
        a topobench trainer). Overrides ``loss``/``gamma``/``finetune``/``epochs``.
    loss, gamma : str, float
        A :func:`topobench.losses.make_loss` name and its weight (None: the default weight).
    pretrained : path, optional
        nnU-Net checkpoint to start from (``-pretrained_weights``); implies fine-tuning.
    finetune : bool, optional
        Use the ``_ft`` trainer (5% of the epochs); default: whether ``pretrained`` is given.
    epochs : int, optional
        Number of epochs; default nnU-Net's 1000, or 5% of the pretrained checkpoint's epochs.
    iterations : int, optional
        Training iterations per epoch (default nnU-Net's 250; validation iterations in
        proportion). With ``epochs``, a short run: ``epochs=2, iterations=10``.
    device : {"auto", "cuda", "cpu", "mps"}
        ``auto`` (default, as ``topobench train``): CUDA when available, else MPS, else the CPU.
    plans, continue_training, validation_only, save_probabilities,
    disable_checkpointing, val_best
        nnU-Net's ``-p``, ``--c``, ``--val``, ``--npz``,
        ``--disable_checkpointing`` and ``--val_best``.

    Returns
    -------
    TrainRequest
        The trainer name and arguments that nnU-Net ran.

    Raises
    ------
    TopobenchError
        nnU-Net missing, a bad trainer name, an unreadable checkpoint.
    """
    try:
        import torch
        from nnunetv2.run.run_training import run_training
    except ImportError as exc:
        raise TopobenchError(
            f"nnU-Net v2 is needed for training ({exc}); install it with "
            "pip install \"topobench[nnunet]\""
        ) from exc
    cls, request = _train_request(
        dataset, configuration, fold, trainer=trainer, loss=loss, gamma=gamma,
        pretrained=pretrained, finetune=finetune, epochs=epochs, iterations=iterations,
        plans=plans, device=device,
    )
    if torch.device(request.device).type == "cuda":
        torch.set_num_threads(1)  # as nnUNetv2_train: threads do not help a GPU run
    with serve_trainers(cls):
        run_training(
            str(dataset), configuration, str(fold),
            trainer_class_name=request.trainer,
            plans_identifier=plans,
            pretrained_weights=request.pretrained,
            num_gpus=1,
            export_validation_probabilities=save_probabilities,
            continue_training=continue_training,
            only_run_validation=validation_only,
            disable_checkpointing=disable_checkpointing,
            val_with_best=val_best,
            device=torch.device(request.device),
        )
    return request


def _train_request(
    dataset: str | int,
    configuration: str,
    fold: str | int,
    *,
    trainer: str | type | None,
    loss: str,
    gamma: float | None,
    pretrained: str | Path | None,
    finetune: bool | None,
    epochs: int | None,
    iterations: int | None,
    plans: str,
    device: str,
) -> tuple[type | None, TrainRequest]:
    """The trainer class to serve (None: nnU-Net looks the name up) and what :func:`train` runs."""
    device = resolve_device(device)
    if pretrained is not None and not Path(pretrained).is_file():
        raise TopobenchError(f"{pretrained}: no such checkpoint file")
    if isinstance(trainer, type):
        cls, name = trainer, trainer.__name__
    else:
        name = resolve_trainer_name(
            trainer=trainer, loss=loss, gamma=gamma, pretrained=pretrained,
            finetune=finetune, epochs=epochs, iterations=iterations,
        )
        cls = None
    request = TrainRequest(
        trainer=name, dataset=str(dataset), configuration=configuration, fold=str(fold),
        plans=plans, pretrained=None if pretrained is None else str(pretrained), device=device,
    )
    return cls, request

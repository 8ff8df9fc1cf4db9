"""The runner's configuration: one frozen, validated dataclass (:class:`TrainConfig`).

A :class:`TrainConfig` is checked when it is made: every invalid option is reported at once, by
its name (``InvalidParameterError("epochs must be >= 1, got 0; fold must be in 0..4, got 7")``),
before anything is read or trained. It is frozen: :func:`dataclasses.replace` gives a changed
copy. :meth:`TrainConfig.to_dict` is the JSON form recorded in ``run.json`` (``config``) and
compared on resume; :meth:`TrainConfig.from_dict` reads it back (unknown keys are refused by
name).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from topobench.catalog import FINETUNE_FRACTION, LOSSES
from topobench.errors import InvalidParameterError

__all__ = ["NETWORKS", "NORMS", "TrainConfig", "run_name"]

#: Networks the runner builds itself: topobench's :class:`~topobench.training.model.UNet`, or
#: nnU-Net's ``PlainConvUNet`` (``dynamic_network_architectures``, installed with nnU-Net).
NETWORKS: tuple[str, ...] = ("unet", "plainconv")
NORMS: tuple[str, ...] = ("instance", "batch", "group", "none")

# Options that do not take part in the resume comparison: ``resume`` itself; the run
# directory's location (``out`` and ``run_name`` name the directory being resumed); and
# ``num_workers``, which changes who draws the patches but not which patches are drawn (every
# batch is seeded by its own index), so a run may be resumed with another worker count.
NOT_COMPARED_ON_RESUME = frozenset({"resume", "out", "run_name", "num_workers"})
# Options holding paths, compared after resolving them (``data`` vs ``./data``).
PATH_OPTIONS = frozenset({"data", "pretrained"})


@dataclass(frozen=True)
class TrainConfig:
    """Everything :func:`topobench.training.train` needs; the defaults are sized for a CPU.

    Made once and never changed (frozen); invalid options raise
    :class:`~topobench.errors.InvalidParameterError` naming each of them.

    Attributes
    ----------
    data : path
        nnU-Net-style dataset folder (``imagesTr/``, ``labelsTr/``, ...).
    out : path
        Runs folder; the run is written to ``out / run_name``.
    loss : str
        Fine-tuning loss, a ``topobench.losses.make_loss`` name: dice_ce, cldice,
        compound_cldice, closs, closs_dice, thin_closs.
    gamma : float, optional
        Weight of the topological term in [0, 1] (None: the loss's default; unused by dice_ce).
    epochs : int
        Pretraining epochs N (ignored with ``pretrained``: the pretrained run's N is used).
    finetune_fraction : float
        Fine-tuning epochs as a share of N (:data:`topobench.catalog.FINETUNE_FRACTION`), rounded
        half up (:func:`topobench.catalog.finetune_epoch_count`), at least 1 epoch.
    finetune_epochs : int, optional
        Explicit number of fine-tuning epochs; overrides ``finetune_fraction``.
    fold, n_folds : int
        Cross-validation fold evaluated (0-based) and number of folds.
    seed : int
        Seeds the model initialisation, patch sampling and augmentation.
    pretrained : path, optional
        An earlier run directory (or its ``model_pretrained.pt``) to fine-tune from instead of
        pretraining; it must use the same dataset, fold and network.
    protocol : str, optional
        Evaluation protocol (``topobench.metrics.PROTOCOLS``); None: ``dataset.json``'s
        ``"protocol"`` if given, else "default" for 2D and "vessap" (Betti errors per z slice)
        for 3D data.
    connectivity : int, optional
        Foreground connectivity for evaluation and post-processing (None: 8 / 26).
    device : str
        "auto" (CUDA when present), "cpu", "cuda", "cuda:1", ...
    amp : bool, optional
        Mixed precision (None: on for CUDA, off on CPU).
    patch_size : tuple of int, optional
        Training and inference patch, one size per axis or one for all (None: 128x128 in 2D,
        32x64x64 in 3D, clipped to the data).
    batch_size : int, optional
        Patches per step (None: 4 in 2D, 2 in 3D).
    iterations_per_epoch : int
        Optimiser steps per epoch.
    lr, finetune_lr : float
        Initial learning rates of pretraining and fine-tuning (``finetune_lr`` None: ``lr``);
        both decay with nnU-Net's polynomial schedule over their phase.
    optimizer : {"adam", "sgd"}
        AdamW, or nnU-Net's SGD (momentum 0.99, Nesterov).
    weight_decay : float
    foreground_fraction : float
        Share of patches centred on a foreground pixel, in [0, 1].
    augment : bool
        Flips, 90-degree rotations, intensity jitter.
    network : {"unet", "plainconv"}
        "unet": topobench's :class:`~topobench.training.model.UNet`; "plainconv": nnU-Net's
        ``PlainConvUNet`` laid out as nnU-Net plans it for the patch (needs
        ``dynamic_network_architectures``, installed with ``topobench[nnunet]``).
    depth, width : int
        Resolution levels (for "plainconv": at most this many; fewer where the patch is too
        small to halve) and first-level channels.
    norm : {"instance", "batch", "group", "none"}
        Normalisation ("group" with "unet" only).
    overlap : float
        Sliding-window overlap at inference, in [0, 1).
    threads : int, optional
        CPU threads torch may use during the run (None: torch's default). On a shared or busy
        machine, 1 is often much faster than oversubscribed cores.
    num_workers : int
        Worker processes drawing and augmenting the training patches (0: in the training
        process). The batches are the same for every count.
    eval_set : {"fold", "test"}
        Evaluate the held-out cases of ``fold`` or ``imagesTs``/``labelsTs``.
    run_name : str, optional
        Default ``<dataset>__<loss>[_g<gamma>]__fold<k>__seed<s>[__plainconv]``.
    resume : bool
        Continue an interrupted run in place (same configuration required).
    save_predictions : bool
        Write the predicted masks under ``predictions/``.
    """

    data: Path
    out: Path
    loss: str = "closs"
    gamma: float | None = None
    epochs: int = 20
    finetune_fraction: float = FINETUNE_FRACTION
    finetune_epochs: int | None = None
    fold: int = 0
    n_folds: int = 5
    seed: int = 0
    pretrained: Path | None = None
    protocol: str | None = None
    connectivity: int | None = None
    device: str = "auto"
    amp: bool | None = None
    patch_size: tuple[int, ...] | None = None
    batch_size: int | None = None
    iterations_per_epoch: int = 50
    lr: float = 1e-3
    finetune_lr: float | None = None
    optimizer: Literal["adam", "sgd"] = "adam"
    weight_decay: float = 3e-5
    foreground_fraction: float = 0.33
    augment: bool = True
    network: Literal["unet", "plainconv"] = "unet"
    depth: int = 4
    width: int = 16
    norm: Literal["instance", "batch", "group", "none"] = "instance"
    overlap: float = 0.5
    threads: int | None = None
    num_workers: int = 0
    eval_set: Literal["fold", "test"] = "fold"
    run_name: str | None = None
    resume: bool = False
    save_predictions: bool = True

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise in place once, before validation
        for name in ("data", "out", "pretrained"):
            value = getattr(self, name)
            if isinstance(value, str):
                set_(self, name, Path(value))
        if isinstance(self.patch_size, (list, int)):
            sizes = self.patch_size if isinstance(self.patch_size, list) else [self.patch_size]
            set_(self, "patch_size", tuple(sizes))
        problems = _problems(self)
        if problems:
            raise InvalidParameterError("; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (paths as strings, tuples as lists), every option by name."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        for k, v in d.items():
            if isinstance(v, Path):
                d[k] = str(v)
            elif isinstance(v, tuple):
                d[k] = list(v)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """The configuration of :meth:`to_dict`'s form (e.g. ``run.json``'s ``config``).

        Raises
        ------
        InvalidParameterError
            Naming unknown keys, missing ``data``/``out``, or invalid values.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidParameterError(
                f"TrainConfig: unknown option(s) {', '.join(unknown)}; known: "
                f"{', '.join(sorted(known))}")
        missing = [k for k in ("data", "out") if k not in data]
        if missing:
            raise InvalidParameterError(f"TrainConfig: missing option(s) {', '.join(missing)}")
        return cls(**dict(data))

    def replace(self, **changes: Any) -> TrainConfig:
        """A validated copy with ``changes`` (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _problems(cfg: TrainConfig) -> list[str]:
    """Every invalid option of ``cfg``, each message naming it."""
    p: list[str] = []
    for name in ("data", "out"):
        if not isinstance(getattr(cfg, name), Path):
            p.append(f"{name} must be a path, got {getattr(cfg, name)!r}")
    if cfg.pretrained is not None and not isinstance(cfg.pretrained, Path):
        p.append(f"pretrained must be a path or None, got {cfg.pretrained!r}")
    if cfg.loss not in LOSSES:
        p.append(f"loss must be one of {', '.join(LOSSES)}, got {cfg.loss!r}")
    if cfg.loss == "dice_ce" and cfg.gamma is not None:
        p.append("dice_ce has no gamma; leave gamma unset")
    if cfg.gamma is not None and not (_is_number(cfg.gamma) and 0.0 <= cfg.gamma <= 1.0):
        p.append(f"gamma must be in [0, 1], got {cfg.gamma}")
    positive = {"epochs": cfg.epochs, "n_folds": cfg.n_folds,
                "iterations_per_epoch": cfg.iterations_per_epoch, "depth": cfg.depth,
                "width": cfg.width}
    optional_positive = {"finetune_epochs": cfg.finetune_epochs, "batch_size": cfg.batch_size,
                         "threads": cfg.threads}
    for name, value in {**positive, **optional_positive}.items():
        if (value is not None or name in positive) and not (_is_int(value) and value >= 1):
            p.append(f"{name} must be an integer >= 1, got {value!r}")
    for name in ("seed", "fold", "num_workers"):
        value = getattr(cfg, name)
        if not (_is_int(value) and value >= 0):
            p.append(f"{name} must be an integer >= 0, got {value!r}")
    if _is_int(cfg.fold) and _is_int(cfg.n_folds) and not 0 <= cfg.fold < cfg.n_folds:
        p.append(f"fold must be in 0..{cfg.n_folds - 1}, got {cfg.fold}")
    if not (_is_number(cfg.finetune_fraction) and 0.0 < cfg.finetune_fraction <= 1.0):
        p.append(f"finetune_fraction must be in (0, 1], got {cfg.finetune_fraction}")
    for name in ("lr", "finetune_lr"):
        value = getattr(cfg, name)
        if (value is not None or name == "lr") and not (_is_number(value) and value > 0):
            p.append(f"{name} must be > 0, got {value!r}")
    if not (_is_number(cfg.weight_decay) and cfg.weight_decay >= 0):
        p.append(f"weight_decay must be >= 0, got {cfg.weight_decay!r}")
    if not (_is_number(cfg.overlap) and 0.0 <= cfg.overlap < 1.0):
        p.append(f"overlap must be in [0, 1), got {cfg.overlap}")
    if not (_is_number(cfg.foreground_fraction) and 0.0 <= cfg.foreground_fraction <= 1.0):
        p.append(f"foreground_fraction must be in [0, 1], got {cfg.foreground_fraction}")
    choices = {"optimizer": ("adam", "sgd"), "eval_set": ("fold", "test"),
               "network": NETWORKS, "norm": NORMS}
    for name, allowed in choices.items():
        if getattr(cfg, name) not in allowed:
            p.append(f"{name} must be one of {', '.join(allowed)}, got {getattr(cfg, name)!r}")
    if cfg.network == "plainconv" and cfg.norm == "group":
        p.append("norm 'group' is not available with network 'plainconv'; use instance, batch "
                 "or none")
    if cfg.connectivity is not None and cfg.connectivity not in (4, 8, 6, 26):
        p.append(f"connectivity must be 4 or 8 (2D), 6 or 26 (3D), got {cfg.connectivity!r}")
    if cfg.patch_size is not None and not (
            isinstance(cfg.patch_size, tuple) and cfg.patch_size
            and all(_is_int(s) and s >= 1 for s in cfg.patch_size)):
        p.append(f"patch_size must be positive integers, got {cfg.patch_size!r}")
    if cfg.amp is not None and not isinstance(cfg.amp, bool):
        p.append(f"amp must be True, False or None, got {cfg.amp!r}")
    for name in ("augment", "resume", "save_predictions"):
        if not isinstance(getattr(cfg, name), bool):
            p.append(f"{name} must be True or False, got {getattr(cfg, name)!r}")
    if not (isinstance(cfg.device, str) and cfg.device):
        p.append(f"device must be a name such as auto, cpu or cuda:0, got {cfg.device!r}")
    if cfg.run_name is not None and not (isinstance(cfg.run_name, str) and cfg.run_name
                                         and "/" not in cfg.run_name):
        p.append(f"run_name must be a folder name without '/', got {cfg.run_name!r}")
    return p


def run_name(dataset: str, loss: str, gamma: float | None, fold: int, seed: int,
             network: str = "unet") -> str:
    """Default run directory name, e.g. ``isbi__closs_g0.1__fold0__seed0`` (with
    ``__plainconv`` at the end for nnU-Net's network)."""
    g = f"_g{gamma:g}" if gamma is not None else ""
    net = "" if network == "unet" else f"__{network}"
    return f"{dataset}__{loss}{g}__fold{fold}__seed{seed}{net}"

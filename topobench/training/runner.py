"""The paper's training protocol as one call: pretrain, fine-tune, predict, post-process, evaluate.

:func:`train` runs the paper's protocol for one fold of a dataset and writes a run directory
(the run record read by the results aggregator; see ``docs/training.md``)::

    RUNS/<run name>/
        run.json                    configuration, versions, timings, status
        log.csv                     epoch, phase, loss, seconds, lr
        checkpoint.pt               last finished epoch (resume point)
        model_pretrained.pt         weights after pretraining (reusable with ``pretrained=``)
        model_finetuned.pt          weights after fine-tuning
        predictions/{pretrained,raw,postprocessed}/<case>.png|.tif
        metrics_pretrained.csv      per-case metrics of the pretrained model
        metrics_raw.csv             ... of the fine-tuned model
        metrics_postprocessed.csv   ... of the fine-tuned model after keep_supported
"""

from __future__ import annotations

import copy
import csv
import json
import platform
import resource
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from topobench import __version__
from topobench.catalog import FINETUNE_FRACTION, LOSSES, RUN_FORMAT
from topobench.catalog import finetune_epoch_count as finetune_epochs
from topobench.errors import InvalidParameterError, TopobenchError
from topobench.io import write_mask
from topobench.training.data import (
    Case,
    Dataset,
    PatchSampler,
    load_case,
    load_or_create_splits,
    normalize_intensity,
    scan_dataset,
)
from topobench.training.inference import predict_case
from topobench.training.loop import (
    PhaseSettings,
    ProgressCallback,
    TrainEvent,
    run_phase,
    save_atomic,
)
from topobench.training.model import UNet, UNetConfig

__all__ = [
    "LOSSES", "TrainConfig", "TrainResult", "RunError", "train", "run_name", "finetune_epochs",
]


# Options that do not take part in the resume comparison: ``resume`` itself, and the run
# directory's location (``out`` and ``run_name`` name the directory being resumed).
_NOT_COMPARED_ON_RESUME = frozenset({"resume", "out", "run_name"})
# Options holding paths, compared after resolving them (``data`` vs ``./data``).
_PATH_OPTIONS = frozenset({"data", "pretrained"})


class RunError(TopobenchError, ValueError):
    """A run directory cannot be used as asked (exists, mismatched resume or pretraining)."""


@dataclass
class TrainConfig:
    """Everything :func:`train` needs; the defaults are sized for a CPU.

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
        Weight of the topological term (None: the loss's default; unused by dice_ce).
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
        pretraining; it must use the same dataset, fold and architecture.
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
    lr, finetune_lr : float
        Initial learning rates of pretraining and fine-tuning (``finetune_lr`` None: ``lr``);
        both decay with nnU-Net's polynomial schedule over their phase.
    optimizer : {"adam", "sgd"}
        AdamW, or nnU-Net's SGD (momentum 0.99, Nesterov).
    weight_decay : float
    foreground_fraction : float
        Share of patches centred on a foreground pixel.
    augment : bool
        Flips, 90-degree rotations, intensity jitter.
    depth, width : int
        U-Net levels and first-level channels.
    norm : {"instance", "batch", "group", "none"}
    overlap : float
        Sliding-window overlap at inference.
    threads : int, optional
        CPU threads torch may use during the run (None: torch's default). On a shared or busy
        machine, 1 is often much faster than oversubscribed cores.
    eval_set : {"fold", "test"}
        Evaluate the held-out cases of ``fold`` or ``imagesTs``/``labelsTs``.
    run_name : str, optional
        Default ``<dataset>__<loss>[_g<gamma>]__fold<k>__seed<s>``.
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
    depth: int = 4
    width: int = 16
    norm: Literal["instance", "batch", "group", "none"] = "instance"
    overlap: float = 0.5
    threads: int | None = None
    eval_set: Literal["fold", "test"] = "fold"
    run_name: str | None = None
    resume: bool = False
    save_predictions: bool = True

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (paths as strings, tuples as lists)."""
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, Path):
                d[k] = str(v)
            elif isinstance(v, tuple):
                d[k] = list(v)
        return d


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` returns: the run directory, its record and mean metrics per stage.

    ``summary`` maps "pretrained", "raw" and "postprocessed" to the mean of each metric over the
    evaluated cases.
    """

    run_dir: Path
    record: dict[str, Any]
    summary: dict[str, dict[str, float]] = field(default_factory=dict)


def run_name(dataset: str, loss: str, gamma: float | None, fold: int, seed: int) -> str:
    """Default run directory name, e.g. ``isbi__closs_g0.1__fold0__seed0``."""
    g = f"_g{gamma:g}" if gamma is not None else ""
    return f"{dataset}__{loss}{g}__fold{fold}__seed{seed}"


def _resolve_device(name: str) -> torch.device:
    """The torch device of ``--device``; refused by name when it is not available here."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise InvalidParameterError(f"unknown device {name!r}: {exc}") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InvalidParameterError(
                f"device {name!r} requested, but CUDA is not available; use cpu or auto")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise InvalidParameterError(
                f"device {name!r} requested, but only {count} CUDA device(s) are visible")
        return device
    backend = getattr(torch.backends, device.type, None) or getattr(torch, device.type, None)
    is_available = getattr(backend, "is_available", None)
    if not callable(is_available) or not is_available():
        raise InvalidParameterError(
            f"device {name!r} requested, but it is not available in this torch build or on "
            "this machine; use cpu, cuda or auto")
    return device


def _make_loss(name: str, gamma: float | None) -> nn.Module:
    from topobench.losses import make_loss

    if name == "dice_ce":
        return make_loss(name)
    return make_loss(name, gamma=gamma)


def _loss_options(name: str, gamma: float | None) -> dict[str, Any]:
    """The fine-tuning loss's options as built (smoothing, skeleton iterations, CLoss's masked-CE
    normalisation), recorded so that runs with other loss options are told apart."""
    loss = _make_loss(name, gamma)
    keys = ("alpha", "iterations", "smooth", "ce_normalization", "mask_smooth")
    return {k: getattr(loss, k) for k in keys if hasattr(loss, k)}


def _validate(cfg: TrainConfig) -> None:
    problems = []
    if cfg.loss not in LOSSES:
        problems.append(f"loss must be one of {', '.join(LOSSES)}, got {cfg.loss!r}")
    if cfg.loss == "dice_ce" and cfg.gamma is not None:
        problems.append("dice_ce has no gamma; leave gamma unset")
    if cfg.gamma is not None and not 0.0 <= cfg.gamma <= 1.0:
        problems.append(f"gamma must be in [0, 1], got {cfg.gamma}")
    if cfg.epochs < 1:
        problems.append(f"epochs must be >= 1, got {cfg.epochs}")
    if not 0.0 < cfg.finetune_fraction <= 1.0:
        problems.append(f"finetune_fraction must be in (0, 1], got {cfg.finetune_fraction}")
    if cfg.finetune_epochs is not None and cfg.finetune_epochs < 1:
        problems.append(f"finetune_epochs must be >= 1, got {cfg.finetune_epochs}")
    if not 0 <= cfg.fold < cfg.n_folds:
        problems.append(f"fold must be in 0..{cfg.n_folds - 1}, got {cfg.fold}")
    if cfg.iterations_per_epoch < 1 or (cfg.batch_size is not None and cfg.batch_size < 1):
        problems.append("iterations_per_epoch and batch_size must be >= 1")
    if not 0.0 <= cfg.overlap < 1.0:
        problems.append(f"overlap must be in [0, 1), got {cfg.overlap}")
    if not 0.0 <= cfg.foreground_fraction <= 1.0:
        problems.append(f"foreground_fraction must be in [0, 1], got {cfg.foreground_fraction}")
    if cfg.optimizer not in ("adam", "sgd"):
        problems.append(f"optimizer must be adam or sgd, got {cfg.optimizer!r}")
    if cfg.threads is not None and cfg.threads < 1:
        problems.append(f"threads must be >= 1, got {cfg.threads}")
    if cfg.eval_set not in ("fold", "test"):
        problems.append(f"eval_set must be fold or test, got {cfg.eval_set!r}")
    if problems:
        raise InvalidParameterError("; ".join(problems))


def _patch_size(cfg: TrainConfig, ds: Dataset, shapes: Sequence[tuple[int, ...]],
                divisor: int) -> tuple[int, ...]:
    if cfg.patch_size is not None:
        patch = tuple(int(p) for p in cfg.patch_size)
        if len(patch) == 1:  # one size: a square (cube) patch
            patch = patch * ds.ndim
        if len(patch) != ds.ndim:
            raise InvalidParameterError(
                f"patch_size must have {ds.ndim} sides for {ds.ndim}D data, got {patch}"
            )
    else:
        default = (128, 128) if ds.ndim == 2 else (32, 64, 64)
        smallest = np.min(np.array(shapes), axis=0)
        # clip to the data, rounded up to the network's divisor
        patch = tuple(int(min(d, -(-int(s) // divisor) * divisor))
                      for d, s in zip(default, smallest, strict=True))
    bad = [p for p in patch if p % divisor or p < divisor]
    if bad:
        raise InvalidParameterError(
            f"patch sides must be positive multiples of {divisor} (2 ** (depth - 1)), got {patch}"
        )
    return patch


def _default_protocol(ds: Dataset) -> str:
    named = ds.metadata.get("protocol")
    if isinstance(named, str):
        return named
    return "default" if ds.ndim == 2 else "vessap"


def _versions() -> dict[str, str]:
    return {"topobench": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    tmp.replace(path)


def _write_log(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["epoch", "phase", "loss", "seconds", "lr"])
        w.writeheader()
        for r in rows:
            w.writerow({"epoch": r["epoch"], "phase": r["phase"], "loss": f"{r['loss']:.6g}",
                        "seconds": f"{r['seconds']:.4f}", "lr": f"{r['lr']:.6g}"})


def _write_metrics(path: Path, rows: list[dict]) -> None:
    names = [k for k in rows[0] if k not in ("case", "seconds")]
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["case", *names, "seconds"])
        for r in rows:
            w.writerow([r["case"], *(f"{r[k]:.10g}" for k in names), f"{r['seconds']:.4f}"])


def _load_pretrained(path: Path) -> dict:
    file = path / "model_pretrained.pt" if path.is_dir() else path
    if not file.is_file():
        raise RunError(f"{path}: no model_pretrained.pt; is it a finished pretraining run?")
    return torch.load(file, map_location="cpu", weights_only=False)


def _prepare_run_dir(cfg: TrainConfig, run_dir: Path) -> dict | None:
    """Return the previous run.json when resuming, else None; refuse to overwrite."""
    record_path = run_dir / "run.json"
    if not record_path.is_file():
        if cfg.resume and run_dir.exists() and any(run_dir.iterdir()):
            raise RunError(f"{run_dir}: no run.json to resume from")
        return None
    previous = json.loads(record_path.read_text())
    if not cfg.resume:
        status = previous.get("status")
        hint = "pass resume to continue it" if status == "running" else "choose another run name"
        raise RunError(f"{run_dir}: a run ({status}) is already there; {hint}")
    diff = _changed_options(previous.get("config", {}), cfg.to_dict())
    if diff:
        details = ", ".join(f"{k}: {old!r} -> {new!r}" for k, old, new in diff)
        what = ("a finished run is never overwritten" if previous.get("status") == "complete"
                else "resume needs the same configuration")
        raise RunError(f"{run_dir}: {what}; differs in {details} (resume with the recorded "
                       "options, or choose another run name)")
    return previous


def _changed_options(stored: dict[str, Any], mine: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(option, recorded value, new value) for every recorded option that differs.

    Every option of :class:`TrainConfig` is compared except those that locate the run
    directory; options missing from an older record are not compared.
    """
    diff = []
    for key, new in mine.items():
        if key in _NOT_COMPARED_ON_RESUME or key not in stored:
            continue
        old = stored[key]
        if key in _PATH_OPTIONS:
            same = (old is None) == (new is None) and (
                old is None or Path(old).resolve() == Path(new).resolve())
        else:
            same = old == new
        if not same:
            diff.append((key, old, new))
    return diff


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
    predictions with the protocol.

    Parameters
    ----------
    config : TrainConfig
    model : torch.nn.Module, optional
        Any network mapping ``(B, C, *patch)`` to ``(B, 2, *patch)`` softmax logits (or
        ``(B, 1, ...)`` sigmoid logits); default: a :class:`UNet` built from the config. Its
        initial weights are the caller's.
    progress : callable, optional
        Receives a :class:`TrainEvent` after every step, epoch and stage change. An exception
        raised there interrupts the run; ``resume=True`` continues it from the last epoch.

    Returns
    -------
    TrainResult
    """
    _validate(config)
    previous_threads = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    try:
        return _train(config, model, progress)
    finally:
        torch.set_num_threads(previous_threads)


def _train(cfg: TrainConfig, model: nn.Module | None,
           progress: ProgressCallback | None) -> TrainResult:
    from topobench.metrics import resolve_protocol

    device = _resolve_device(cfg.device)
    amp = (device.type == "cuda") if cfg.amp is None else bool(cfg.amp)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    ds = scan_dataset(cfg.data)
    out = Path(cfg.out)
    splits, splits_path = load_or_create_splits(ds, out, n_folds=cfg.n_folds)
    if len(splits) != cfg.n_folds:
        raise InvalidParameterError(f"{splits_path} holds {len(splits)} folds, not {cfg.n_folds}")
    split = splits[cfg.fold]
    info = LOSSES[cfg.loss]
    display, alpha, critical, default_gamma = (
        info.display, info.alpha, info.critical_mask, info.default_gamma
    )
    gamma = cfg.gamma if cfg.gamma is not None else default_gamma
    name = cfg.run_name or run_name(ds.name, cfg.loss, gamma, cfg.fold, cfg.seed)
    run_dir = out / name
    previous = _prepare_run_dir(cfg, run_dir)
    if previous is not None and previous.get("status") == "complete":
        # Resuming a finished run with the recorded options: nothing to do, nothing rewritten.
        return TrainResult(run_dir, previous, dict(previous.get("summary") or {}))
    started = time.time()

    by_name = {c.name: c for c in ds.training}
    train_cases = [by_name[n] for n in split["train"]]
    if cfg.eval_set == "test":
        eval_cases = [c for c in ds.test if c.label is not None]
        if not eval_cases:
            raise InvalidParameterError(f"{ds.root}: eval_set='test' needs imagesTs/ and labelsTs/")
    else:
        eval_cases = [by_name[n] for n in split["val"]]
    images, labels = [], []
    for case in train_cases:
        image, label = load_case(case)
        images.append(normalize_intensity(image))
        labels.append(label)

    pre_state = _load_pretrained(Path(cfg.pretrained)) if cfg.pretrained is not None else None
    if pre_state is not None:
        if pre_state["dataset"] != ds.name or pre_state["val"] != split["val"]:
            raise RunError(
                f"{cfg.pretrained}: pretrained on dataset {pre_state['dataset']!r} with other "
                f"held-out cases; it must use the same dataset and fold (fold {cfg.fold})"
            )
        n_epochs = int(pre_state["epochs"])
    else:
        n_epochs = cfg.epochs
    ft_epochs = cfg.finetune_epochs or finetune_epochs(n_epochs, cfg.finetune_fraction)

    if model is None:
        unet_config = (UNetConfig(**pre_state["unet"]) if pre_state is not None and
                       pre_state.get("unet") else
                       UNetConfig(ndim=ds.ndim, in_channels=ds.in_channels, depth=cfg.depth,
                                  width=cfg.width, norm=cfg.norm))
        torch.manual_seed(cfg.seed)
        model = UNet(unet_config)
        divisor = unet_config.divisor
    else:
        unet_config = model.config if isinstance(model, UNet) else None
        divisor = unet_config.divisor if unet_config is not None else 1
    model = model.to(device)
    patch = (tuple(pre_state["patch_size"]) if pre_state is not None and cfg.patch_size is None
             else _patch_size(cfg, ds, [lb.shape for lb in labels], divisor))
    batch_size = cfg.batch_size or (4 if ds.ndim == 2 else 2)
    sampler = PatchSampler(images, labels, patch, foreground_fraction=cfg.foreground_fraction,
                           augment=cfg.augment)

    proto_name = cfg.protocol or _default_protocol(ds)
    proto_overrides = {"connectivity": cfg.connectivity} if cfg.connectivity is not None else {}
    protocol = resolve_protocol(proto_name, **proto_overrides)
    record: dict[str, Any] = {
        "format": RUN_FORMAT,
        "topobench_version": __version__,
        "dataset": ds.name,
        "loss": cfg.loss,
        "method": display,
        "gamma": gamma,
        "alpha": alpha,
        "critical_mask": critical,
        "loss_options": _loss_options(cfg.loss, gamma),
        "epochs": n_epochs,
        "finetune_epochs": ft_epochs,
        "fold": cfg.fold,
        "seed": cfg.seed,
        "protocol": protocol.to_dict(),
        "postprocessing": "keep_supported",
        "device": str(device),
        "amp": amp,
        "versions": _versions(),
        "seconds_per_epoch": {"pretrain": None, "finetune": None},
        "seconds_total": {"pretrain": None, "finetune": None, "inference": None,
                          "evaluation": None},
        "peak_memory_mb": None,
        "pretrained_from": str(cfg.pretrained) if cfg.pretrained is not None else None,
        "status": "running",
        "eval_set": cfg.eval_set,
        "eval_cases": [c.name for c in eval_cases],
        "splits_file": str(splits_path),
        "patch_size": list(patch),
        "batch_size": batch_size,
        "model": unet_config.to_dict() if unet_config is not None else type(model).__name__,
        "config": cfg.to_dict(),
        "started": (previous or {}).get("started", time.strftime("%Y-%m-%dT%H:%M:%S%z")),
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_json(run_dir / "run.json", record)

    checkpoint = run_dir / "checkpoint.pt"
    log: list[dict] = []
    if checkpoint.is_file():
        log = list(torch.load(checkpoint, map_location="cpu", weights_only=False)["log"])

    def settings(phase: Literal["pretrain", "finetune"], epochs: int, lr: float) -> PhaseSettings:
        return PhaseSettings(phase, epochs, cfg.iterations_per_epoch, batch_size, lr,
                             cfg.optimizer, cfg.weight_decay, cfg.seed, device, amp)

    # 1. pretraining with L_pixel (Dice & CE)
    pre_file = run_dir / "model_pretrained.pt"
    if pre_state is not None:
        model.load_state_dict(pre_state["model"])
    elif pre_file.is_file():
        model.load_state_dict(torch.load(pre_file, map_location=device,
                                         weights_only=False)["model"])
    else:
        if progress is not None:
            progress(TrainEvent("stage", "pretrain", epochs=n_epochs))
        log = run_phase(model, sampler, _make_loss("dice_ce", None).to(device),
                        settings("pretrain", n_epochs, cfg.lr), checkpoint=checkpoint, log=log,
                        progress=progress)
        _write_log(run_dir / "log.csv", log)
        save_atomic({"model": model.state_dict(), "unet": record["model"]
                     if unet_config is not None else None, "dataset": ds.name,
                     "fold": cfg.fold, "val": split["val"], "seed": cfg.seed, "epochs": n_epochs,
                     "patch_size": list(patch)}, pre_file)
    pretrained_model = copy.deepcopy(model)

    # 2. fine-tuning with the chosen loss
    ft_file = run_dir / "model_finetuned.pt"
    if ft_file.is_file():
        model.load_state_dict(torch.load(ft_file, map_location=device,
                                         weights_only=False)["model"])
    else:
        if progress is not None:
            progress(TrainEvent("stage", "finetune", epochs=ft_epochs))
        log = run_phase(model, sampler, _make_loss(cfg.loss, gamma).to(device),
                        settings("finetune", ft_epochs, cfg.finetune_lr or cfg.lr),
                        checkpoint=checkpoint, log=log, progress=progress)
        save_atomic({"model": model.state_dict(), "loss": cfg.loss, "gamma": gamma}, ft_file)
    _write_log(run_dir / "log.csv", log)
    pre_rows = [r for r in log if r["phase"] == "pretrain"]
    ft_rows = [r for r in log if r["phase"] == "finetune"]
    if pre_rows:
        record["seconds_per_epoch"]["pretrain"] = float(np.mean([r["seconds"] for r in pre_rows]))
        record["seconds_total"]["pretrain"] = float(np.sum([r["seconds"] for r in pre_rows]))
    record["seconds_per_epoch"]["finetune"] = float(np.mean([r["seconds"] for r in ft_rows]))
    record["seconds_total"]["finetune"] = float(np.sum([r["seconds"] for r in ft_rows]))

    # 3. inference with both models, post-processing
    t0 = time.perf_counter()
    predictions, targets = _predict(
        eval_cases, pretrained_model, model, progress=progress, patch_size=patch,
        overlap=cfg.overlap, batch_size=batch_size, device=device, amp=amp,
        connectivity=cfg.connectivity,
    )
    record["seconds_total"]["inference"] = time.perf_counter() - t0
    if cfg.save_predictions:
        suffix = ".png" if ds.ndim == 2 else ".tif"
        for case_name, preds in predictions.items():
            for kind, mask in preds.items():
                write_mask(run_dir / "predictions" / kind / f"{case_name}{suffix}", mask)

    # 4. evaluation with and without post-processing
    t0 = time.perf_counter()
    summary = _evaluate(predictions, targets, protocol, run_dir, progress)
    record["seconds_total"]["evaluation"] = time.perf_counter() - t0
    record["peak_memory_mb"] = _peak_memory_mb(device)
    record["summary"] = summary
    record["status"] = "complete"
    record["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    record["wall_seconds_last_session"] = time.time() - started
    _write_json(run_dir / "run.json", record)
    return TrainResult(run_dir, record, summary)


def _predict(
    cases: Sequence[Case],
    pretrained_model: nn.Module,
    model: nn.Module,
    *,
    progress: ProgressCallback | None,
    connectivity: int | None,
    **predict_options: Any,
) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """Binary predictions of both models and the post-processed one, with the targets."""
    from topobench.postprocess import keep_supported

    if progress is not None:
        progress(TrainEvent("stage", "inference", steps=len(cases)))
    t0 = time.perf_counter()
    predictions: dict[str, dict[str, np.ndarray]] = {}
    targets: dict[str, np.ndarray] = {}
    for i, case in enumerate(cases):
        image, label = load_case(case)
        if label is None:
            raise RunError(f"case {case.name}: no label to evaluate against")
        image = normalize_intensity(image)
        targets[case.name] = label
        pre = predict_case(pretrained_model, image, **predict_options) > 0.5
        raw = predict_case(model, image, **predict_options) > 0.5
        post = keep_supported(raw, pre, connectivity=connectivity)
        predictions[case.name] = {"pretrained": pre, "raw": raw, "postprocessed": post}
        if progress is not None:
            progress(TrainEvent("step", "inference", step=i + 1, steps=len(cases),
                                seconds=time.perf_counter() - t0))
    return predictions, targets


def _evaluate(
    predictions: dict[str, dict[str, np.ndarray]],
    targets: dict[str, np.ndarray],
    protocol: Any,
    run_dir: Path,
    progress: ProgressCallback | None,
) -> dict[str, dict[str, float]]:
    """Write ``metrics_<kind>.csv`` for the three prediction kinds; return the mean metrics."""
    from topobench.metrics import evaluate_case

    steps = 3 * len(predictions)
    if progress is not None:
        progress(TrainEvent("stage", "evaluation", steps=steps))
    t0 = time.perf_counter()
    summary: dict[str, dict[str, float]] = {}
    step = 0
    for kind in ("pretrained", "raw", "postprocessed"):
        rows = []
        for case_name, preds in predictions.items():
            t_case = time.perf_counter()
            metrics = evaluate_case(preds[kind], targets[case_name], protocol=protocol)
            rows.append({"case": case_name, **metrics, "seconds": time.perf_counter() - t_case})
            step += 1
            if progress is not None:
                progress(TrainEvent("step", "evaluation", step=step, steps=steps,
                                    seconds=time.perf_counter() - t0))
        _write_metrics(run_dir / f"metrics_{kind}.csv", rows)
        names = [k for k in rows[0] if k not in ("case", "seconds")]
        summary[kind] = {k: float(np.mean([r[k] for r in rows])) for k in names}
    return summary

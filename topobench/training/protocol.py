"""The steps of the paper's protocol, each idempotent: prepare, pretrain, fine-tune, predict,
evaluate, finish.

Each step reads what an earlier session of the same run wrote instead of recomputing it, which
is what resuming a run means:

=========== ======================================= ============================================
step        writes                                  when it is already done
=========== ======================================= ============================================
prepare     ``run.json`` (status "running")          refuses other options; a complete run is
                                                    returned as it is
pretrain    ``model_pretrained.pt``, ``log.csv``,    loads ``model_pretrained.pt`` (or the
            ``checkpoint.pt`` after every epoch      ``pretrained`` run's); an interrupted phase
                                                    continues from ``checkpoint.pt``
fine-tune   ``model_finetuned.pt``, ``log.csv``      loads ``model_finetuned.pt``
predict     ``predictions/<variant>/<case>``         reads the saved predictions when
                                                    ``run.json`` records the step as finished
evaluate    ``evaluation/<variant>/`` (stores of     keeps the rows of unchanged predictions
            :func:`topobench.evaluate.evaluate_cases`) (the store's resume)
finish      ``run.json`` (status "complete")
=========== ======================================= ============================================

A step that recomputes makes the later steps recompute too.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from topobench import __version__
from topobench.catalog import LOSSES, RUN_FORMAT, finetune_epoch_count
from topobench.errors import InvalidParameterError
from topobench.io import read_mask, write_mask
from topobench.run_record import PREDICTION_VARIANTS, RunRecord
from topobench.training.config import TrainConfig, run_name
from topobench.training.data import (
    Case,
    Dataset,
    PatchSampler,
    load_case,
    load_or_create_splits,
    normalize_intensity,
    scan_dataset,
)
from topobench.training.device import peak_memory_mb, resolve_device, versions
from topobench.training.inference import predict_case
from topobench.training.loop import PhaseSettings, ProgressCallback, TrainEvent, run_phase
from topobench.training.loop import save_atomic as save_weights
from topobench.training.networks import build_network, network_spec, patch_size, spec_of
from topobench.training.rundir import (
    RunError,
    TrainResult,
    load_pretrained,
    prepare_run_dir,
    write_log,
    write_record,
)

__all__ = ["Predictions", "Run", "evaluate", "finetune", "finish", "predict", "prepare",
           "pretrain"]

#: variant -> case -> binary mask, and case -> target, of the evaluated cases.
Predictions = tuple[dict[str, dict[str, np.ndarray]], dict[str, np.ndarray]]


@dataclass(frozen=True)
class Run:
    """What :func:`prepare` sets up for the other steps of one run.

    ``model`` is the network to train (on ``device``; initial weights, replaced by the steps);
    ``spec`` how to build it again (None for a caller's module); ``record`` the run record as
    last written; ``reuse`` whether the prediction and evaluation steps of an earlier session
    may be read back (only when no training step is left to run).
    """

    config: TrainConfig
    dataset: Dataset
    run_dir: Path
    device: torch.device
    amp: bool
    split: dict[str, list[str]]
    eval_cases: tuple[Case, ...]
    sampler: PatchSampler
    pre_state: dict | None
    epochs: int
    finetune_epochs: int
    gamma: float | None
    model: nn.Module
    spec: dict[str, Any] | None
    patch: tuple[int, ...]
    batch_size: int
    protocol: Any
    record: RunRecord
    reuse: bool


def make_loss(name: str, gamma: float | None) -> nn.Module:
    """The loss ``name`` with weight ``gamma`` (dice_ce has none)."""
    from topobench.losses import make_loss as build

    return build(name) if name == "dice_ce" else build(name, gamma=gamma)


def loss_options(name: str, gamma: float | None) -> dict[str, Any]:
    """The fine-tuning loss's options as built (smoothing, skeleton iterations, CLoss's masked-CE
    normalisation), recorded so that runs with other loss options are told apart."""
    loss = make_loss(name, gamma)
    keys = ("alpha", "iterations", "smooth", "ce_normalization", "mask_smooth")
    return {k: getattr(loss, k) for k in keys if hasattr(loss, k)}


def _default_protocol(ds: Dataset) -> str:
    named = ds.metadata.get("protocol")
    if isinstance(named, str):
        return named
    return "default" if ds.ndim == 2 else "vessap"


def _cases(cfg: TrainConfig, ds: Dataset, split: dict) -> tuple[list[Case], list[Case]]:
    by_name = {c.name: c for c in ds.training}
    train_cases = [by_name[n] for n in split["train"]]
    if cfg.eval_set == "test":
        eval_cases = [c for c in ds.test if c.label is not None]
        if not eval_cases:
            raise InvalidParameterError(f"{ds.root}: eval_set='test' needs imagesTs/ and labelsTs/")
    else:
        eval_cases = [by_name[n] for n in split["val"]]
    return train_cases, eval_cases


def _pretrained_state(cfg: TrainConfig, ds: Dataset, split: dict) -> dict | None:
    if cfg.pretrained is None:
        return None
    state = load_pretrained(Path(cfg.pretrained))
    if state["dataset"] != ds.name or state["val"] != split["val"]:
        raise RunError(
            f"{cfg.pretrained}: pretrained on dataset {state['dataset']!r} with other "
            f"held-out cases; it must use the same dataset and fold (fold {cfg.fold})")
    stored = state.get("network") or state.get("unet")
    kind = stored.get("network", "unet") if stored is not None else None
    if kind is not None and kind != cfg.network:
        raise RunError(f"{cfg.pretrained}: pretrained with network {kind!r}, this run asks for "
                       f"network {cfg.network!r}; they must be the same")
    return state


def _network(cfg: TrainConfig, ds: Dataset, model: nn.Module | None, pre_state: dict | None,
             shapes: list[tuple[int, ...]]) -> tuple[nn.Module, dict | None, tuple[int, ...]]:
    """The network to train, its spec and the patch size."""
    stored = (pre_state or {}).get("network") or (pre_state or {}).get("unet")
    requested = (tuple(pre_state["patch_size"]) if pre_state is not None and
                 cfg.patch_size is None else cfg.patch_size)
    if model is not None:
        spec = spec_of(model)
        spec = spec if isinstance(spec, dict) else None
        divisor = 2 ** (spec["depth"] - 1) if spec and spec["network"] == "unet" else 1
        return model, spec, patch_size(requested, ds.ndim, shapes, divisor)
    if pre_state is not None and cfg.patch_size is None:
        patch = tuple(pre_state["patch_size"])
    else:
        divisor = 2 ** (cfg.depth - 1) if cfg.network == "unet" else None
        patch = patch_size(cfg.patch_size, ds.ndim, shapes, divisor)
    spec = ({"network": "unet", **stored} if stored is not None and "network" not in stored
            else stored)
    if spec is None:
        spec, patch = network_spec(
            cfg.network, ndim=ds.ndim, in_channels=ds.in_channels, depth=cfg.depth,
            width=cfg.width, norm=cfg.norm, patch=patch, explicit_patch=cfg.patch_size is not None)
    elif spec["network"] == "unet":  # a stored U-Net: its divisor still applies to the patch
        patch = patch_size(patch, ds.ndim, shapes, 2 ** (spec["depth"] - 1))
    else:  # a stored PlainConvUNet: the patch must fit its strides
        divisor = [int(np.prod([s[i] for s in spec["strides"]])) for i in range(ds.ndim)]
        if any(p % d for p, d in zip(patch, divisor, strict=True)):
            raise InvalidParameterError(
                f"patch_size {patch} does not fit the pretrained network 'plainconv': sides "
                f"must be multiples of {tuple(divisor)}")
    torch.manual_seed(cfg.seed)
    return build_network(spec), spec, patch


def prepare(cfg: TrainConfig, model: nn.Module | None = None) -> Run | TrainResult:
    """Read the dataset and its folds, check the run directory, build the network and write
    ``run.json`` (status "running"). A complete run resumed with its recorded options is
    returned as a :class:`TrainResult`, nothing rewritten."""
    from topobench.metrics import resolve_protocol

    device = resolve_device(cfg.device)
    amp = (device.type == "cuda") if cfg.amp is None else bool(cfg.amp)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    ds = scan_dataset(cfg.data)
    splits, splits_path = load_or_create_splits(ds, Path(cfg.out), n_folds=cfg.n_folds)
    if len(splits) != cfg.n_folds:
        raise InvalidParameterError(f"{splits_path} holds {len(splits)} folds, not {cfg.n_folds}")
    split = splits[cfg.fold]
    info = LOSSES[cfg.loss]
    gamma = cfg.gamma if cfg.gamma is not None else info.default_gamma
    run_dir = Path(cfg.out) / (cfg.run_name or run_name(ds.name, cfg.loss, gamma, cfg.fold,
                                                         cfg.seed, cfg.network))
    previous = prepare_run_dir(cfg, run_dir)
    if previous is not None and previous.status == "complete":
        return TrainResult(run_dir, previous.to_dict(), dict(previous.summary or {}))

    train_cases, eval_cases = _cases(cfg, ds, split)
    images, labels = [], []
    for case in train_cases:
        image, label = load_case(case)
        images.append(normalize_intensity(image))
        labels.append(label)
    pre_state = _pretrained_state(cfg, ds, split)
    n_epochs = int(pre_state["epochs"]) if pre_state is not None else cfg.epochs
    ft_epochs = cfg.finetune_epochs or finetune_epoch_count(n_epochs, cfg.finetune_fraction)
    net, spec, patch = _network(cfg, ds, model, pre_state, [lb.shape for lb in labels])
    net = net.to(device)
    batch_size = cfg.batch_size or (4 if ds.ndim == 2 else 2)
    sampler = PatchSampler(images, labels, patch, foreground_fraction=cfg.foreground_fraction,
                           augment=cfg.augment)
    overrides = {"connectivity": cfg.connectivity} if cfg.connectivity is not None else {}
    protocol = resolve_protocol(cfg.protocol or _default_protocol(ds), **overrides)

    # Predictions and evaluations of an earlier session are reused only when both models are
    # already there, i.e. no training step will run again.
    reuse = previous is not None and (run_dir / "model_finetuned.pt").is_file() and (
        pre_state is not None or (run_dir / "model_pretrained.pt").is_file())
    kept = previous.seconds_total if reuse and previous is not None else {}
    record = RunRecord(
        format=RUN_FORMAT, topobench_version=__version__, dataset=ds.name, loss=cfg.loss,
        method=info.display, gamma=gamma, alpha=info.alpha, critical_mask=info.critical_mask,
        loss_options=loss_options(cfg.loss, gamma), epochs=n_epochs, finetune_epochs=ft_epochs,
        fold=cfg.fold, seed=cfg.seed, protocol=protocol.to_dict(),
        postprocessing="keep_supported", device=str(device), amp=amp, versions=versions(),
        seconds_per_epoch={"pretrain": None, "finetune": None},
        seconds_total={"pretrain": None, "finetune": None,
                       "inference": kept.get("inference"), "evaluation": kept.get("evaluation")},
        pretrained_from=str(cfg.pretrained) if cfg.pretrained is not None else None,
        status="running", eval_set=cfg.eval_set, eval_cases=[c.name for c in eval_cases],
        splits_file=str(splits_path), patch_size=list(patch), batch_size=batch_size,
        model=spec if spec is not None else type(net).__name__, config=cfg.to_dict(),
        started=previous.started if previous is not None and previous.started else
        time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    write_record(run_dir, record)
    return Run(cfg, ds, run_dir, device, amp, split, tuple(eval_cases), sampler, pre_state,
               n_epochs, ft_epochs, gamma, net, spec, patch, batch_size, protocol, record, reuse)


def _settings(run: Run, phase: Literal["pretrain", "finetune"], epochs: int,
              lr: float) -> PhaseSettings:
    c = run.config
    return PhaseSettings(phase, epochs, c.iterations_per_epoch, run.batch_size, lr, c.optimizer,
                         c.weight_decay, c.seed, run.device, run.amp, c.num_workers)


def _log(run: Run) -> list[dict]:
    checkpoint = run.run_dir / "checkpoint.pt"
    if not checkpoint.is_file():
        return []
    return list(torch.load(checkpoint, map_location="cpu", weights_only=False)["log"])


def pretrain(run: Run, progress: ProgressCallback | None = None) -> nn.Module:
    """Pretrain ``run.model`` with Dice & CE (``L_pixel``), or load the finished pretraining;
    returns a copy of the pretrained network."""
    model, cfg, file = run.model, run.config, run.run_dir / "model_pretrained.pt"
    if run.pre_state is not None:
        model.load_state_dict(run.pre_state["model"])
    elif file.is_file():
        model.load_state_dict(torch.load(file, map_location=run.device,
                                         weights_only=False)["model"])
    else:
        if progress is not None:
            progress(TrainEvent("stage", "pretrain", epochs=run.epochs))
        log = run_phase(model, run.sampler, make_loss("dice_ce", None).to(run.device),
                        _settings(run, "pretrain", run.epochs, cfg.lr),
                        checkpoint=run.run_dir / "checkpoint.pt", log=_log(run),
                        progress=progress)
        write_log(run.run_dir / "log.csv", log)
        save_weights({"model": model.state_dict(), "network": run.spec, "dataset":
                      run.dataset.name, "fold": cfg.fold, "val": run.split["val"],
                      "seed": cfg.seed, "epochs": run.epochs, "patch_size": list(run.patch)},
                     file)
    return copy.deepcopy(model)


def finetune(run: Run, progress: ProgressCallback | None = None) -> tuple[nn.Module, RunRecord]:
    """Fine-tune the pretrained ``run.model`` with the run's loss, or load the finished
    fine-tuning; returns the network and the record with the training timings from the log."""
    model, cfg, file = run.model, run.config, run.run_dir / "model_finetuned.pt"
    log = _log(run)
    if file.is_file():
        model.load_state_dict(torch.load(file, map_location=run.device,
                                         weights_only=False)["model"])
    else:
        if progress is not None:
            progress(TrainEvent("stage", "finetune", epochs=run.finetune_epochs))
        log = run_phase(model, run.sampler, make_loss(cfg.loss, run.gamma).to(run.device),
                        _settings(run, "finetune", run.finetune_epochs, cfg.finetune_lr or cfg.lr),
                        checkpoint=run.run_dir / "checkpoint.pt", log=log, progress=progress)
        save_weights({"model": model.state_dict(), "loss": cfg.loss, "gamma": run.gamma}, file)
    write_log(run.run_dir / "log.csv", log)
    per_epoch, total = dict(run.record.seconds_per_epoch), dict(run.record.seconds_total)
    for phase in ("pretrain", "finetune"):
        seconds = [r["seconds"] for r in log if r["phase"] == phase]
        if seconds:
            per_epoch[phase], total[phase] = float(np.mean(seconds)), float(np.sum(seconds))
    record = dataclasses.replace(run.record, seconds_per_epoch=per_epoch, seconds_total=total)
    write_record(run.run_dir, record)
    return model, record


def _prediction_file(run: Run, variant: str, case: str) -> Path:
    suffix = ".png" if run.dataset.ndim == 2 else ".tif"
    return run.run_dir / "predictions" / variant / f"{case}{suffix}"


def _saved_predictions(run: Run, record: RunRecord) -> dict[str, dict[str, np.ndarray]] | None:
    """The predictions an earlier session wrote, when it finished the predict step."""
    files = {v: {c.name: _prediction_file(run, v, c.name) for c in run.eval_cases}
             for v in PREDICTION_VARIANTS}
    done = run.reuse and record.seconds_total.get("inference") is not None
    if not (done and run.config.save_predictions
            and all(p.is_file() for by_case in files.values() for p in by_case.values())):
        return None
    return {v: {c: read_mask(p) for c, p in by_case.items()} for v, by_case in files.items()}


def predict(run: Run, record: RunRecord, pretrained: nn.Module, finetuned: nn.Module,
            progress: ProgressCallback | None = None) -> tuple[Predictions, RunRecord]:
    """Predict the evaluated cases with both models (sliding window, ``p > 0.5``) and
    post-process the fine-tuned prediction (``keep_supported``); write the predictions."""
    from topobench.postprocess import keep_supported

    targets: dict[str, np.ndarray] = {}
    images: dict[str, np.ndarray] = {}
    for case in run.eval_cases:
        image, label = load_case(case)
        if label is None:
            raise RunError(f"case {case.name}: no label to evaluate against")
        images[case.name], targets[case.name] = image, label
    saved = _saved_predictions(run, record)
    if saved is not None:
        return (saved, targets), record
    if progress is not None:
        progress(TrainEvent("stage", "inference", steps=len(images)))
    options = dict(patch_size=run.patch, overlap=run.config.overlap, batch_size=run.batch_size,
                   device=run.device, amp=run.amp)
    t0 = time.perf_counter()
    masks: dict[str, dict[str, np.ndarray]] = {v: {} for v in PREDICTION_VARIANTS}
    for i, (name, image) in enumerate(images.items()):
        image = normalize_intensity(image)
        pre = predict_case(pretrained, image, **options) > 0.5
        raw = predict_case(finetuned, image, **options) > 0.5
        post = keep_supported(raw, pre, connectivity=run.config.connectivity)
        for variant, mask in zip(PREDICTION_VARIANTS, (pre, raw, post), strict=True):
            masks[variant][name] = mask
        if progress is not None:
            progress(TrainEvent("step", "inference", step=i + 1, steps=len(images),
                                seconds=time.perf_counter() - t0))
    seconds = time.perf_counter() - t0
    if run.config.save_predictions:
        for variant, by_case in masks.items():
            for name, mask in by_case.items():
                write_mask(_prediction_file(run, variant, name), mask)
    record = dataclasses.replace(record, seconds_total={**record.seconds_total,
                                                        "inference": seconds})
    write_record(run.run_dir, record)
    return (masks, targets), record


def evaluate(run: Run, record: RunRecord, predictions: Predictions,
             progress: ProgressCallback | None = None) -> RunRecord:
    """Evaluate each prediction variant with the run's protocol into ``evaluation/<variant>/``
    (:func:`topobench.evaluate.evaluate_cases`, resumed); the record gets the mean metrics."""
    from topobench.evaluate import ArrayCase, evaluate_cases

    masks, targets = predictions
    steps = len(PREDICTION_VARIANTS) * len(targets)
    if progress is not None:
        progress(TrainEvent("stage", "evaluation", steps=steps))
    t0 = time.perf_counter()
    done = [0]

    def on_result(_: object) -> None:
        done[0] += 1
        if progress is not None:
            progress(TrainEvent("step", "evaluation", step=done[0], steps=steps,
                                seconds=time.perf_counter() - t0))

    summary: dict[str, dict[str, float]] = {}
    cfg = run.config
    for variant in PREDICTION_VARIANTS:
        cases = [ArrayCase(name, masks[variant][name], targets[name]) for name in targets]
        provenance = {"dataset": run.dataset.name, "loss": cfg.loss, "gamma": run.gamma,
                      "fold": cfg.fold, "seed": cfg.seed, "variant": variant}
        report = evaluate_cases(cases, run.run_dir / "evaluation" / variant,
                                protocol=run.protocol, resume=True, dataset=run.dataset.name,
                                provenance=provenance, on_result=on_result)
        if not report.ok:
            listing = "; ".join(f"{case}: {why}" for case, why in report.failures)
            raise RunError(f"{run.run_dir}: evaluation of the {variant} predictions failed "
                           f"({listing})")
        summary[variant] = _means(report.summary)
    if done[0] or record.seconds_total.get("evaluation") is None:
        record = dataclasses.replace(record, seconds_total={
            **record.seconds_total, "evaluation": time.perf_counter() - t0})
    return dataclasses.replace(record, summary=summary)


def _means(store_summary: dict[str, Any]) -> dict[str, float]:
    """Mean of each metric column of an evaluation store's summary, in column order."""
    columns: Sequence[str] = store_summary["columns"]
    metrics = store_summary["metrics"]
    return {m: float(metrics[m]["mean"]) for m in columns if m in metrics}


def finish(run: Run, record: RunRecord, started: float) -> TrainResult:
    """Mark the run complete in ``run.json`` and return it."""
    record = dataclasses.replace(
        record, peak_memory_mb=peak_memory_mb(run.device), status="complete",
        finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        wall_seconds_last_session=time.time() - started)
    write_record(run.run_dir, record)
    return TrainResult(run.run_dir, record.to_dict(), dict(record.summary or {}))

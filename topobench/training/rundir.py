"""The run directory: refusing to overwrite, the resume comparison, the log and the weights.

A run directory holds ``run.json`` (a :class:`topobench.run_record.RunRecord`), ``log.csv``,
``checkpoint.pt``, ``model_pretrained.pt``, ``model_finetuned.pt``, ``predictions/`` and
``evaluation/<variant>/`` (see ``docs/training.md``).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from topobench.atomic import atomic_write_text
from topobench.errors import TopobenchError
from topobench.run_record import RunRecord, write_run_record
from topobench.training.config import NOT_COMPARED_ON_RESUME, PATH_OPTIONS, TrainConfig

__all__ = [
    "RunError", "TrainResult", "changed_options", "load_pretrained", "prepare_run_dir",
    "read_record", "write_log", "write_record",
]


class RunError(TopobenchError, ValueError):
    """A run directory cannot be used as asked (exists, mismatched resume or pretraining)."""


@dataclass(frozen=True)
class TrainResult:
    """What :func:`topobench.training.train` returns: the run directory, its record (the
    content of ``run.json``) and the mean metrics per prediction variant.

    ``summary`` maps "pretrained", "raw" and "postprocessed" to the mean of each metric over
    the evaluated cases.
    """

    run_dir: Path
    record: dict[str, Any]
    summary: dict[str, dict[str, float]] = field(default_factory=dict)


def read_record(run_dir: Path) -> RunRecord | None:
    """The run's ``run.json`` as a record, or None when there is none."""
    path = run_dir / "run.json"
    if not path.is_file():
        return None
    return RunRecord.from_dict(json.loads(path.read_text()), origin=str(path))


def write_record(run_dir: Path, record: RunRecord) -> None:
    """Write ``run.json`` atomically (temporary file, fsync, rename)."""
    write_run_record(run_dir / "run.json", record)


def prepare_run_dir(cfg: TrainConfig, run_dir: Path) -> RunRecord | None:
    """The previous record when resuming, else None; refuse to overwrite.

    Raises
    ------
    RunError
        A run is there and ``resume`` is off; ``resume`` with other options (each named, old
        and new value); ``resume`` of a folder without ``run.json``.
    """
    previous = read_record(run_dir)
    if previous is None:
        if cfg.resume and run_dir.exists() and any(run_dir.iterdir()):
            raise RunError(f"{run_dir}: no run.json to resume from")
        return None
    if not cfg.resume:
        status = previous.status
        hint = "pass resume to continue it" if status == "running" else "choose another run name"
        raise RunError(f"{run_dir}: a run ({status}) is already there; {hint}")
    diff = changed_options(previous.config or {}, cfg.to_dict())
    if diff:
        details = ", ".join(f"{k}: {old!r} -> {new!r}" for k, old, new in diff)
        what = ("a finished run is never overwritten" if previous.status == "complete"
                else "resume needs the same configuration")
        raise RunError(f"{run_dir}: {what}; differs in {details} (resume with the recorded "
                       "options, or choose another run name)")
    return previous


def changed_options(stored: dict[str, Any], mine: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(option, recorded value, new value) for every recorded option that differs.

    Every option of :class:`TrainConfig` is compared except those that locate the run
    directory or do not change the results (:data:`NOT_COMPARED_ON_RESUME`); options missing
    from an older record are not compared.
    """
    diff = []
    for key, new in mine.items():
        if key in NOT_COMPARED_ON_RESUME or key not in stored:
            continue
        old = stored[key]
        if key in PATH_OPTIONS:
            same = (old is None) == (new is None) and (
                old is None or Path(old).resolve() == Path(new).resolve())
        else:
            same = old == new
        if not same:
            diff.append((key, old, new))
    return diff


def write_log(path: Path, rows: list[dict]) -> None:
    """``log.csv``: ``epoch, phase, loss, seconds, lr``, one row per finished epoch."""
    f = io.StringIO()
    w = csv.DictWriter(f, fieldnames=["epoch", "phase", "loss", "seconds", "lr"])
    w.writeheader()
    for r in rows:
        w.writerow({"epoch": r["epoch"], "phase": r["phase"], "loss": f"{r['loss']:.6g}",
                    "seconds": f"{r['seconds']:.4f}", "lr": f"{r['lr']:.6g}"})
    atomic_write_text(path, f.getvalue())


def load_pretrained(path: Path) -> dict:
    """The content of a run's ``model_pretrained.pt`` (``path`` is the run or the file)."""
    file = path / "model_pretrained.pt" if path.is_dir() else path
    if not file.is_file():
        raise RunError(f"{path}: no model_pretrained.pt; is it a finished pretraining run?")
    return torch.load(file, map_location="cpu", weights_only=False)

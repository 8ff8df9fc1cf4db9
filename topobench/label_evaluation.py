"""Folders of label maps evaluated per label, and evaluation results as a pandas DataFrame.

- :func:`evaluate_folders` returns the per-case metrics of two folders as a
  :class:`pandas.DataFrame` without writing any file (binary masks, or integer label maps with
  ``labels=``, one row per case and label);
- :func:`run_label_evaluation` is the file-writing runner for label maps behind ``topobench
  evaluate --labels``: ``cases.csv`` in long form (a ``label`` column: one row per case and
  label, the merged mask included), ``failures.csv`` and ``summary.json`` with the statistics of
  every label and of the class average.

Binary folders go through :func:`topobench.evaluate.evaluate_pair` (the readers, thresholds and
NIfTI checks of ``topobench evaluate``); label maps are read with the same readers and
evaluated with :func:`topobench.metrics.evaluate_labels`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from topobench import __version__
from topobench.atomic import atomic_write_text
from topobench.errors import InvalidMaskError, InvalidParameterError, TopobenchError
from topobench.evaluate.store import rewrite_csv
from topobench.evaluate.summary import statistics
from topobench.metrics import METRIC_NAMES, Protocol, resolve_protocol
from topobench.metrics.distance import resolve_spacing
from topobench.metrics.labels import (
    MERGED,
    LabelNames,
    as_label_map,
    evaluate_labels,
    label_average,
    resolve_labels,
)

__all__ = [
    "CLASS_AVERAGE",
    "LABEL_SUMMARY_FORMAT",
    "LabelCaseResult",
    "LabelEvaluationReport",
    "evaluate_folders",
    "read_label_file",
    "run_label_evaluation",
]

#: Key of the class average (mean over the listed labels) in label summaries.
CLASS_AVERAGE = "class_average"

#: Format name of the ``summary.json`` that :func:`run_label_evaluation` writes.
LABEL_SUMMARY_FORMAT = "topobench-evaluate-labels/1"

Spacing = float | Sequence[float] | None


@dataclass(frozen=True)
class LabelFile:
    """A label map read from a file, with its voxel spacing (None when the file has none)."""

    labels: np.ndarray
    spacing: tuple[float, ...] | None = None
    affine: np.ndarray | None = None


def read_label_file(path: str | Path, *, canonical: bool = False) -> LabelFile:
    """Read an integer label map (any format topobench reads) with its voxel spacing.

    Parameters
    ----------
    path : path
    canonical : bool
        Reorient NIfTI data to RAS+ (as ``topobench evaluate`` does when both files are NIfTI).

    Raises
    ------
    ReadError
        Unreadable or missing file.
    InvalidMaskError, InvalidMaskTypeError
        Not a 2D/3D integer label map (colour images, floats, negative values).
    """
    from topobench.io import _read  # the readers of topobench evaluate, without the binary check

    path = Path(path)
    arr, has_channels, spacing, affine, _ = _read(path, canonical=canonical)
    if has_channels:
        raise InvalidMaskError(f"{path.name}: expected a label map, got a colour image")
    labels = as_label_map(arr, name=path.name)
    if spacing is not None and len(spacing) != labels.ndim:
        spacing = None
    return LabelFile(labels, spacing, affine)


@dataclass(frozen=True)
class _LabelTask:
    case: str
    pred: Path
    target: Path
    labels: tuple[tuple[str, int], ...]
    merged: bool
    protocol: Protocol
    spacing: float | tuple[float, ...] | None  # the user's, used when the files record none
    threads: int = 1


@dataclass(frozen=True)
class LabelCaseResult:
    """The outcome of one case of label maps: metrics per label, or why it failed.

    Attributes
    ----------
    case : str
    shape : tuple of int
    metrics : dict of str to dict of str to float
        ``{label: {metric: value}}`` as :func:`topobench.metrics.evaluate_labels` (empty when
        the case failed).
    seconds : float
    error : str or None
    spacing : float, tuple of float or None
        The spacing the distances used (from the target file, the prediction file, or the
        ``spacing`` given, in that order).
    """

    case: str
    shape: tuple[int, ...] = ()
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None
    spacing: float | tuple[float, ...] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _reason(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, TopobenchError) else f"{type(exc).__name__}: {exc}"


def _evaluate_label_task(task: _LabelTask) -> LabelCaseResult:
    from topobench.io import is_nifti

    start = time.perf_counter()
    shape: tuple[int, ...] = ()
    spacing = None
    try:
        canonical = is_nifti(task.pred) and is_nifti(task.target)
        pred = read_label_file(task.pred, canonical=canonical)
        target = read_label_file(task.target, canonical=canonical)
        shape = tuple(int(s) for s in target.labels.shape)
        if pred.labels.shape != target.labels.shape:
            raise InvalidMaskError(
                f"{task.case}: prediction shape {pred.labels.shape} and target shape "
                f"{target.labels.shape} differ"
            )
        spacing = target.spacing or pred.spacing or task.spacing
        metrics = evaluate_labels(
            pred.labels, target.labels, labels=dict(task.labels), protocol=task.protocol,
            merged=task.merged, spacing=spacing, workers=task.threads,
        )
    except Exception as exc:  # one bad case must not stop the others
        return LabelCaseResult(task.case, shape, seconds=time.perf_counter() - start,
                               error=_reason(exc), spacing=spacing)
    return LabelCaseResult(task.case, shape, metrics, time.perf_counter() - start,
                           spacing=spacing)


def _mapped(fn: Callable[[Any], Any], tasks: Sequence[Any], workers: int) -> Iterator[Any]:
    if workers <= 1 or len(tasks) <= 1:
        yield from map(fn, tasks)
        return
    from topobench.evaluate.backends import map_in_pool

    yield from map_in_pool(fn, tasks, workers)


def _resolve_workers(workers: int | None) -> int:
    if workers is None or workers == 0:
        return os.cpu_count() or 1
    if workers < 0:
        raise InvalidParameterError(f"workers: expected >= 0, got {workers}")
    return int(workers)


def _pairs(pred_dir: str | Path, target_dir: str | Path, pred_suffix: str, target_suffix: str):
    from topobench.evaluate import pair_files

    pairing = pair_files(pred_dir, target_dir, pred_suffix=pred_suffix,
                         target_suffix=target_suffix)
    if not pairing.pairs:
        raise InvalidParameterError(
            f"no case of {pred_dir} has a file of the same name in {target_dir}"
        )
    return pairing


def _metric_order(names: Iterable[str]) -> list[str]:
    seen = set(names)
    return [m for m in METRIC_NAMES if m in seen]


def evaluate_folders(
    pred_dir: str | Path,
    target_dir: str | Path,
    *,
    protocol: str | Protocol = "default",
    labels: Iterable[int | str] | Mapping[str, int] | None = None,
    label_names: LabelNames = None,
    merged: bool = True,
    threshold: float | None = None,
    spacing: Spacing = None,
    pred_suffix: str = "",
    target_suffix: str = "",
    workers: int | None = 1,
    **overrides: Any,
):
    """Per-case metrics of two folders as a :class:`pandas.DataFrame`; no file is written.

    Parameters
    ----------
    pred_dir, target_dir : path
        Folders paired by name (:func:`topobench.evaluate.pair_files`).
    protocol, **overrides
        Metric protocol and parameters, as in :func:`topobench.metrics.evaluate_case`.
    labels : iterable of int or str, or mapping of str to int, optional
        Evaluate integer label maps per label (and ``merged``); names from ``label_names`` (a
        mapping or an nnU-Net ``dataset.json``).
    threshold : float, optional
        Binarise probability-map predictions (binary mode only).
    spacing : float or sequence of float, optional
        Voxel size for the distances of files that record none (NIfTI headers win).
    workers : int, optional
        Processes (1: this process; 0 or None: all cores).

    Returns
    -------
    pandas.DataFrame
        One row per case (binary) or per case and label (column ``label``, the merged mask
        included), with ``case``, ``shape``, the metrics, ``seconds`` and ``error`` (None for a
        case that was evaluated; the metrics of a failed case are NaN). Pairing problems
        (files without a partner) are rows with an ``error`` too.
    """
    proto = resolve_protocol(protocol, **overrides)
    sp = _user_spacing(spacing)
    pairing = _pairs(pred_dir, target_dir, pred_suffix, target_suffix)
    n = _resolve_workers(workers)
    if labels is None:
        if sp is not None:
            raise InvalidParameterError(
                "spacing= applies to label maps here; for binary folders the file headers give it"
            )
        rows = _binary_rows(pairing, proto, threshold, n)
    else:
        if threshold is not None:
            raise InvalidParameterError("threshold applies to binary masks, not to label maps")
        specs = resolve_labels(labels, label_names=label_names)
        rows = _label_rows(pairing, specs, merged, proto, sp, n)
    rows += [{"case": case, "error": reason} for case, reason in pairing.problems()]
    return _frame(rows, labeled=labels is not None, protocol=proto)


def _binary_rows(pairing: Any, proto: Protocol, threshold: float | None, workers: int) -> list:
    """One row per case of binary folders, through the engine's per-case task."""
    from topobench.evaluate import CaseTask, evaluate_pair

    tasks = [CaseTask(pair, proto, threshold=threshold, threads=1) for pair in pairing.pairs]
    return [
        {"case": r.case, "shape": _shape_text(r.shape), **r.metrics, "seconds": r.seconds,
         "error": r.error}
        for r in _mapped(evaluate_pair, tasks, workers)
    ]


def _label_tasks(pairing: Any, specs: Sequence[Any], merged: bool, proto: Protocol,
                 spacing: float | tuple[float, ...] | None) -> tuple[list[_LabelTask], list[str]]:
    """The per-case tasks of label maps, and the label names of their rows (merged last)."""
    label_tuple = tuple((s.name, s.value) for s in specs)
    tasks = [_LabelTask(p.case, p.pred, p.target, label_tuple, merged, proto, spacing)
             for p in pairing.pairs]
    return tasks, [s.name for s in specs] + ([MERGED] if merged else [])


def _label_rows(pairing: Any, specs: Sequence[Any], merged: bool, proto: Protocol,
                spacing: float | tuple[float, ...] | None, workers: int) -> list:
    """One row per case and label."""
    tasks, names = _label_tasks(pairing, specs, merged, proto, spacing)
    return [
        {"case": r.case, "label": name, "shape": _shape_text(r.shape),
         **r.metrics.get(name, {}), "seconds": r.seconds, "error": r.error}
        for r in _mapped(_evaluate_label_task, tasks, workers)
        for name in names
    ]


def _frame(rows: list[dict[str, Any]], *, labeled: bool, protocol: Protocol):
    """The DataFrame of :func:`evaluate_folders`: columns in order, missing ones None."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    metrics = _metric_order(c for c in frame.columns)
    lead = ["case"] + (["label"] if labeled else []) + ["shape"]
    columns = lead + metrics + ["seconds", "error"]
    for col in columns:
        if col not in frame.columns:
            frame[col] = None
    frame = frame[columns]
    frame.attrs["protocol"] = protocol.to_dict()
    return frame


def _shape_text(shape: Sequence[int]) -> str:
    return "x".join(str(s) for s in shape)


def _user_spacing(spacing: Spacing) -> float | tuple[float, ...] | None:
    """The user's spacing, checked: one number (every axis) or one per axis."""
    if spacing is None:
        return None
    if np.isscalar(spacing):
        return resolve_spacing(spacing, 1)[0]
    values = tuple(float(s) for s in spacing)  # type: ignore[union-attr]
    return resolve_spacing(values, len(values))


# --------------------------------------------------------------------------------------------
# The file-writing runner for label maps
# --------------------------------------------------------------------------------------------

CASES_FILE = "cases.csv"
FAILURES_FILE = "failures.csv"
SUMMARY_FILE = "summary.json"


@dataclass(frozen=True)
class LabelEvaluationReport:
    """What :func:`run_label_evaluation` did.

    Attributes
    ----------
    out_dir : Path
    n_cases : int
        Cases evaluated.
    failures : tuple of (str, str)
        ``(case, reason)`` of the cases that failed or could not be paired.
    summary : dict
        The content of ``summary.json``.
    """

    out_dir: Path
    n_cases: int
    failures: tuple[tuple[str, str], ...]
    summary: dict[str, Any]

    @property
    def ok(self) -> bool:
        return not self.failures


def summarize_labels(
    results: Sequence[LabelCaseResult], names: Sequence[str], metrics: Sequence[str]
) -> dict[str, dict[str, dict[str, Any]]]:
    """Statistics per label and of the class average: ``{label: {metric: {mean, std, median,
    n}}}``; the class average of a case is :func:`topobench.metrics.label_average` of it."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    ok = [r for r in results if r.ok]
    for name in names:
        out[name] = {
            m: statistics([r.metrics[name][m] for r in ok if m in r.metrics.get(name, {})])
            for m in metrics
        }
        out[name] = {m: s for m, s in out[name].items() if s["n"]}
    averages = [label_average(r.metrics) for r in ok]
    out[CLASS_AVERAGE] = {
        m: s for m in metrics if (s := statistics([a[m] for a in averages if m in a]))["n"]
    }
    return out


def run_label_evaluation(
    pred_dir: str | Path,
    target_dir: str | Path,
    out_dir: str | Path = "topobench-results",
    *,
    labels: Iterable[int | str] | Mapping[str, int],
    label_names: LabelNames = None,
    merged: bool = True,
    protocol: str | Protocol = "default",
    spacing: Spacing = None,
    pred_suffix: str = "",
    target_suffix: str = "",
    workers: int | None = None,
    overwrite: bool = False,
    dataset: str | None = None,
    on_result: Callable[[LabelCaseResult], None] | None = None,
    **overrides: Any,
) -> LabelEvaluationReport:
    """Evaluate two folders of label maps per label and write the results to ``out_dir``.

    Writes ``cases.csv`` (``case, label, shape, <metrics>, seconds``: one row per case and
    label, ``merged`` included), ``failures.csv`` (``case, reason``) and ``summary.json``
    (format :data:`LABEL_SUMMARY_FORMAT`: version, metric configuration, labels, statistics
    per label and of the class average). Unlike binary evaluation there is no resume: a folder
    that already holds results is refused unless ``overwrite``.

    Parameters
    ----------
    labels, label_names, merged
        As in :func:`topobench.metrics.evaluate_labels`.
    protocol, **overrides
        Metric protocol and parameters.
    spacing : float or sequence of float, optional
        Voxel size for files that record none (NIfTI headers win).
    workers : int, optional
        Processes (default: all cores; 1: this process).
    """
    out = Path(out_dir)
    if (out / CASES_FILE).exists() and not overwrite:
        raise InvalidParameterError(
            f"{out} already holds results ({CASES_FILE}); pass overwrite=True (--overwrite) "
            "to replace them"
        )
    proto = resolve_protocol(protocol, **overrides)
    specs = resolve_labels(labels, label_names=label_names)
    sp = _user_spacing(spacing)
    pairing = _pairs(pred_dir, target_dir, pred_suffix, target_suffix)
    tasks, names = _label_tasks(pairing, specs, merged, proto, sp)
    results: list[LabelCaseResult] = []
    for result in _mapped(_evaluate_label_task, tasks, _resolve_workers(workers)):
        results.append(result)
        if on_result is not None:
            on_result(result)
    metrics = _metric_order(
        m for r in results if r.ok for row in r.metrics.values() for m in row
    )
    failures = tuple(sorted(
        [(r.case, r.error or "") for r in results if not r.ok] + pairing.problems()
    ))
    out.mkdir(parents=True, exist_ok=True)
    _write_label_files(out, results, names, metrics, failures)
    summary = {
        "format": LABEL_SUMMARY_FORMAT,
        "topobench_version": __version__,
        "dataset": dataset,
        "pred_dir": str(pred_dir),
        "target_dir": str(target_dir),
        "config": {"protocol": proto.to_dict(), "labels": {s.name: s.value for s in specs},
                   "merged": merged,
                   "spacing": sp if sp is None or isinstance(sp, float) else list(sp)},
        "n_cases": sum(r.ok for r in results),
        "n_failed": len(failures),
        "labels": summarize_labels(results, names, metrics),
    }
    atomic_write_text(out / SUMMARY_FILE, json.dumps(summary, indent=2))
    return LabelEvaluationReport(out, summary["n_cases"], failures, summary)


def _write_label_files(
    out: Path,
    results: Sequence[LabelCaseResult],
    names: Sequence[str],
    metrics: Sequence[str],
    failures: Sequence[tuple[str, str]],
) -> None:
    """``cases.csv`` in long form (one row per case and label) and ``failures.csv``."""
    rows = [
        [r.case, name, _shape_text(r.shape),
         *(repr(r.metrics.get(name, {})[m]) if m in r.metrics.get(name, {}) else ""
           for m in metrics),
         f"{r.seconds:.4f}"]
        for r in sorted((r for r in results if r.ok), key=lambda r: r.case)
        for name in names
    ]
    rewrite_csv(out / CASES_FILE, ["case", "label", "shape", *metrics, "seconds"], rows)
    rewrite_csv(out / FAILURES_FILE, ["case", "reason"], failures)

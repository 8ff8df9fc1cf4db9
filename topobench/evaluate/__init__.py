"""The evaluation engine: cases in, a durable store of per-case metrics out.

The modules, each usable on its own:

- :mod:`~topobench.evaluate.pairing`: :func:`pair_files` matches two folders' files by name
  stem (``case_001.png`` <-> ``case_001.nii.gz``), optionally after removing a suffix such as
  ``_pred`` / ``_mask``, and lists what it could not match (:class:`Pairing`);
- :mod:`~topobench.evaluate.case`: the per-case task (:class:`CaseTask`) over files
  (:class:`CasePair`) or in-memory masks (:class:`ArrayCase`); :func:`evaluate_pair` computes
  the metrics of :func:`topobench.metrics.evaluate_case` and optionally writes the case's error
  map. It never raises for a bad case: the failure comes back in the :class:`CaseResult`;
- :mod:`~topobench.evaluate.backends`: serial, process pool or Dask, with a bounded number of
  cases in flight;
- :mod:`~topobench.evaluate.store`: the output folder's files: line logs (one whole, fsync'ed
  line per case) and the one atomic whole-file writer;
- :mod:`~topobench.evaluate.lock`: one run per output folder;
- :mod:`~topobench.evaluate.summary`: :func:`summarize`, the one mean reducer, and the settings
  a resumed run must share;
- :mod:`~topobench.evaluate.run`: :func:`evaluate_cases` (any cases) and :func:`run_evaluation`
  (two folders), short compositions of those steps, with resume.

:func:`evaluate_folders` (in :mod:`topobench.label_evaluation`) returns the per-case metrics
as a pandas DataFrame without writing files (binary masks, or label maps per label).

Output folder layout: ``cases.csv`` (``case, shape, <metrics>, seconds``), ``failures.csv``
(``case, pred, target, reason``), ``inputs.csv`` (``case, pred, target, pred_fingerprint,
target_fingerprint, spacing``: what each row of ``cases.csv`` was computed from) and
``summary.json`` (format ``topobench-evaluate/1``: version, full metric configuration, input
folders or the caller's provenance, statistics, failures). ``summary.json`` is written when the
run starts (``status: running``) and replaced atomically when it ends (``status: complete``),
so the configuration of an interrupted run is always on disk. A lock file
(``.topobench-evaluate.lock``) keeps a second run out of the folder while one writes it.
"""

from __future__ import annotations

from typing import Any

from topobench.catalog import METRICS
from topobench.evaluate.case import ArrayCase, CaseResult, CaseTask, evaluate_pair, fingerprint
from topobench.evaluate.errors import DiskFullError, OutputError, OutputLockedError, ResumeError
from topobench.evaluate.pairing import CasePair, Pairing, pair_files
from topobench.evaluate.run import evaluate_cases, run_evaluation
from topobench.evaluate.store import (
    CASES_FILE,
    FAILURES_FILE,
    INPUTS_FILE,
    LOCK_FILE,
    SUMMARY_FILE,
)
from topobench.evaluate.summary import (
    EvaluationReport,
    metric_columns,
    not_binary_hint,
    summarize,
)

__all__ = [
    "CASES_FILE",
    "FAILURES_FILE",
    "INPUTS_FILE",
    "LOCK_FILE",
    "PERCENT_METRICS",
    "SUMMARY_FILE",
    "ArrayCase",
    "CasePair",
    "CaseResult",
    "CaseTask",
    "DiskFullError",
    "EvaluationReport",
    "OutputError",
    "OutputLockedError",
    "Pairing",
    "ResumeError",
    "evaluate_cases",
    "evaluate_folders",
    "evaluate_pair",
    "fingerprint",
    "format_value",
    "metric_columns",
    "metric_label",
    "not_binary_hint",
    "pair_files",
    "run_evaluation",
    "summarize",
    "summary_table",
]

#: Metrics shown in percent in tables (fractions in the files), as in the paper (from the catalog).
PERCENT_METRICS = tuple(m.name for m in METRICS.values() if m.percent)

_RENDERERS = ("format_value", "metric_label", "summary_table")


def __getattr__(name: str) -> Any:
    """The table renderers live in :mod:`topobench.results.render`; imported on first use, so
    that the engine (and each pool worker) does not load the results package."""
    if name in _RENDERERS:
        from topobench.results import render

        return getattr(render, name)
    if name == "evaluate_folders":  # imported on use: topobench.label_evaluation imports the engine
        from topobench.label_evaluation import evaluate_folders

        return evaluate_folders
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

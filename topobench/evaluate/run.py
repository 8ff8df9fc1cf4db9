"""Running an evaluation: :func:`evaluate_cases` (any cases: files or arrays) and
:func:`run_evaluation` (two folders: pairing, then :func:`evaluate_cases`'s steps).

The steps, in order: validate the options (:func:`~topobench.evaluate.plan.resolve_options`),
lock the output folder (:func:`_locked`), decide what resume keeps
(:func:`~topobench.evaluate.plan.make_plan`), open the store, run a backend over the cases left
(:func:`_results`), append each result to the store (:func:`_drain`), and sort the files and
write the final summary (:func:`_finish`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from topobench import __version__
from topobench.errors import InvalidParameterError, TopobenchError
from topobench.evaluate import backends
from topobench.evaluate.case import ArrayCase, CaseResult, CaseTask
from topobench.evaluate.errors import DiskFullError
from topobench.evaluate.lock import OutputLock
from topobench.evaluate.pairing import CasePair, pair_files
from topobench.evaluate.plan import (
    Options,
    Plan,
    Sources,
    checked_cases,
    make_plan,
    resolve_options,
)
from topobench.evaluate.store import (
    CASES_FILE,
    INPUTS_FILE,
    SUMMARY_FILE,
    CaseStore,
    output_error,
    prepare_out,
    read_inputs,
    read_rows,
    write_json_atomic,
)
from topobench.evaluate.summary import EvaluationReport, summarize
from topobench.io import MASK_SUFFIXES
from topobench.metrics import Protocol

__all__ = ["evaluate_cases", "run_evaluation"]

Case = CasePair | ArrayCase
OnStart = Callable[[int, int], None]
OnResult = Callable[[CaseResult], None]


# --------------------------------------------------------------------------------------------
# Step 2: the lock
# --------------------------------------------------------------------------------------------


@contextmanager
def _locked(out: Path) -> Iterator[None]:
    """Hold the output folder's lock; a failed write in it becomes an :class:`OutputError`."""
    prepare_out(out)
    lock = OutputLock(out)
    try:
        lock.acquire()
    except OSError as exc:
        raise output_error(exc, out, "locking the output folder") from None
    try:
        yield
    except TopobenchError:
        raise
    except OSError as exc:  # a write in the output folder failed
        raise output_error(exc, out, "writing the results") from None
    finally:
        lock.release()


# --------------------------------------------------------------------------------------------
# Step 4: the backend
# --------------------------------------------------------------------------------------------


def _results(plan: Plan, options: Options) -> Iterator[CaseResult]:
    """The results of the cases left, from the backend the options ask for."""
    serial = options.dask is None and (options.workers == 1 or len(plan.todo) <= 1)
    # One case (or one worker): its windows use the cores instead, as threads.
    threads = options.workers if serial else 1
    tasks = (
        CaseTask(case, options.protocol, options.threshold, options.maps_dir, threads=threads,
                 channel=options.channel, spacing=options.spacing)
        for case in plan.todo
    )
    if options.dask is not None:
        return backends.dask(tasks, options.dask, options.workers, options.dask_timeout)
    if serial:
        return backends.serial(tasks)
    return backends.process_pool(tasks, min(options.workers, len(plan.todo)))


# --------------------------------------------------------------------------------------------
# Step 5: the store
# --------------------------------------------------------------------------------------------


def _summary(
    out: Path, plan: Plan, options: Options, sources: Sources, status: str
) -> dict[str, Any]:
    """``summary.json``'s content, from the rows on disk."""
    rows = read_rows(out / CASES_FILE, plan.columns, repair=False)
    inputs = read_inputs(out / INPUTS_FILE)
    failed = {case for case, _ in plan.failures}
    spacing = {}
    for row in rows:
        text = inputs.get(row["case"], {}).get("spacing", "")
        if text:
            spacing[row["case"]] = [float(v) for v in text.split("x")]
    pairing = sources.pairing
    summary: dict[str, Any] = {
        "format": "topobench-evaluate/1",
        "topobench_version": __version__,
        "status": status,
        "dataset": options.dataset,
        "config": plan.config,
        "columns": plan.columns,
        **sources.folders,
        "n_cases": len({row["case"] for row in rows} | failed),
        "n_succeeded": len(rows),
        "n_failed": len(failed),
        "metrics": summarize(rows, plan.metrics),
        "failures": [{"case": c, "reason": r} for c, r in plan.failures],
        "unmatched": {
            "pred": [p.name for p in pairing.unmatched_pred] if pairing else [],
            "target": [p.name for p in pairing.unmatched_target] if pairing else [],
        },
        "ignored_files": [str(p) for p in pairing.ignored] if pairing else [],
        "spacing": spacing,
        "seconds": round(time.time() - plan.started, 3),
    }
    if sources.provenance is not None:
        summary["provenance"] = sources.provenance
    if options.resume:
        summary["resume"] = {
            "kept": plan.kept, "reevaluated": plan.reevaluated, "dropped": plan.dropped,
        }
    return summary


def _drain(
    results: Iterator[CaseResult],
    store: CaseStore,
    plan: Plan,
    options: Options,
    on_result: OnResult | None,
) -> None:
    """Append each result to the store as it comes; a full disk for an error map stops."""
    by_case = {c.case: c for c in plan.todo}
    for result in results:
        store.add(result, by_case[result.case])
        if not result.ok:
            plan.failures.append((result.case, result.error or "unknown error"))
            if result.error_kind == "not_binary":
                plan.not_binary.append(result.case)
        if on_result is not None:
            on_result(result)
        if result.error_kind == "no_space":
            raise DiskFullError(
                f"no space left on the device while writing the error map of "
                f"{result.case} ({options.maps_dir}): the run stopped. The finished cases are "
                f"saved in {store.out}; free some space, then continue the run with resume=True"
            )


def _finish(out: Path, store: CaseStore, plan: Plan, options: Options,
            sources: Sources) -> EvaluationReport:
    """Sort the files, write the final summary and report."""
    store.finish()
    final = _summary(out, plan, options, sources, "complete")
    write_json_atomic(out / SUMMARY_FILE, final)
    return EvaluationReport(
        out, final, len(plan.todo), plan.kept, tuple(plan.failures),
        not_binary=tuple(plan.not_binary), reevaluated=tuple(plan.reevaluated),
        dropped=tuple(plan.dropped),
    )


def _run(
    out: Path,
    options: Options,
    sources: Sources,
    on_start: OnStart | None,
    on_result: OnResult | None,
) -> EvaluationReport:
    """The steps of a run, in order, with the output folder locked."""
    with _locked(out):
        plan = make_plan(out, options, sources)
        store = CaseStore(out, plan.columns, keep=plan.keep)
        try:
            for case, reason in sources.pairing.problems() if sources.pairing else ():
                plan.failures.append((case, reason))
                store.add_problem(case, reason)
            write_json_atomic(out / SUMMARY_FILE, _summary(out, plan, options, sources, "running"))
            # A pool starts here, before on_start's threads (a progress display): forked workers.
            results = _results(plan, options)
            try:
                if on_start is not None:
                    on_start(len(plan.todo), plan.kept)
                _drain(results, store, plan, options, on_result)
            finally:
                close = getattr(results, "close", None)  # the pool or cluster shut down
                if close is not None:
                    close()
        finally:
            store.close()
        return _finish(out, store, plan, options, sources)


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------


def evaluate_cases(
    cases: Sequence[CasePair | ArrayCase],
    out_dir: str | Path,
    *,
    protocol: str | Protocol = "default",
    workers: int = 1,
    resume: bool = False,
    overwrite: bool = False,
    dataset: str | None = None,
    provenance: Mapping[str, Any] | None = None,
    maps_dir: str | Path | None = None,
    threshold: float | None = None,
    on_start: OnStart | None = None,
    on_result: OnResult | None = None,
    **overrides: Any,
) -> EvaluationReport:
    """Evaluate cases (files or in-memory masks) and save the results in ``out_dir``.

    The engine behind :func:`run_evaluation`, the nnU-Net driver and the training runner: the
    same store (``cases.csv``, ``inputs.csv``, ``failures.csv``, ``summary.json`` and the lock),
    the same backends and the same resume.

    Parameters
    ----------
    cases : sequence of CasePair or ArrayCase
        Distinct case names. A :class:`CasePair` is read from its files (as
        :func:`run_evaluation` does); an :class:`ArrayCase` holds its masks, shape ``(H, W)``
        or ``(Z, H, W)``, and is fingerprinted by a hash of its bytes, shape and dtype.
    out_dir : path
        The output folder (created), locked for the run.
    protocol : str or Protocol
        Metric protocol; ``**overrides`` change its parameters one by one.
    workers : int
        Processes (1: this process; a process pool pickles the arrays of an ArrayCase).
    resume, overwrite : bool
        As in :func:`run_evaluation`: resume keeps the rows whose inputs are unchanged.
    dataset : str, optional
        Recorded in ``summary.json``.
    provenance : mapping, optional
        JSON-able facts about where the cases come from (a model, a checkpoint, a split),
        recorded as ``summary.json``'s ``provenance`` and compared key by key on resume: a
        difference is refused (:class:`ResumeError`, naming ``provenance.<key>``).
    maps_dir : path, optional
        Write an error map ``<case>.png`` per case there.
    threshold : float, optional
        Binarise the predictions as ``value > threshold``.
    on_start, on_result : callable, optional
        Progress hooks, called in this process: ``on_start(n_to_run, n_kept)`` and
        ``on_result(CaseResult)``.

    Returns
    -------
    EvaluationReport
        ``report.summary["metrics"][m]["mean"]`` is the mean of metric ``m`` over the cases.

    Raises
    ------
    InvalidParameterError
        A bad option or case list, results present without ``resume``/``overwrite``.
    ResumeError, OutputLockedError, OutputError, DiskFullError
        As in :func:`run_evaluation`.
    """
    options = resolve_options(
        protocol, overrides, threshold=threshold, channel=None, spacing=None,
        maps_dir=maps_dir, workers=workers, resume=resume, overwrite=overwrite, dataset=dataset,
    )
    record = None if provenance is None else json.loads(json.dumps(dict(provenance)))
    sources = Sources(checked_cases(cases), provenance=record)
    return _run(Path(out_dir), options, sources, on_start, on_result)


def run_evaluation(
    pred_dir: str | Path,
    target_dir: str | Path,
    out_dir: str | Path = "topobench-results",
    *,
    protocol: str | Protocol = "default",
    threshold: float | None = None,
    channel: int | None = None,
    spacing: float | Sequence[float] | None = None,
    pred_suffix: str = "",
    target_suffix: str = "",
    maps_dir: str | Path | None = None,
    workers: int | None = None,
    dask: str | None = None,
    dask_timeout: float = 30.0,
    resume: bool = False,
    overwrite: bool = False,
    dataset: str | None = None,
    on_start: OnStart | None = None,
    on_result: OnResult | None = None,
    **overrides: Any,
) -> EvaluationReport:
    """Evaluate every paired case of two folders and save the results in ``out_dir``.

    Parameters
    ----------
    pred_dir, target_dir : path
        Folders of prediction and target masks, paired by :func:`pair_files`.
    out_dir : path
        Receives ``cases.csv``, ``failures.csv``, ``inputs.csv`` and ``summary.json``. Locked for
        the whole run: a second run on the same folder is refused (:class:`OutputLockedError`).
    protocol : str or Protocol
        Metric protocol (docs/metrics.md); ``**overrides`` change its parameters one by one
        (``connectivity``, ``betti_window``, ``betti_slices``, ``cldice_window``, ``ags_window``,
        ``e0_gt_window``, ``metrics``).
    threshold : float, optional
        Binarise predictions (probability maps) as ``value > threshold``; integer maps are first
        divided by their dtype's maximum (255 for 8-bit, 65535 for 16-bit, ...).
    channel : int, optional
        Class to read from nnU-Net ``--save_probabilities`` ``.npz`` predictions (key
        ``probabilities``, shape ``(C, ...)``); needs ``threshold`` too.
    spacing : float or sequence of float, optional
        Voxel size (one number, or per axis ``(Z, H, W)``) for the distance metrics of cases
        whose files record none; NIfTI headers win. Recorded in the configuration.
    pred_suffix, target_suffix : str
        Name endings removed before pairing (e.g. ``_pred``, ``_mask``).
    maps_dir : path, optional
        Write an error map ``<case>.png`` per case there. A map that cannot be written fails its
        case; a full disk stops the run (:class:`DiskFullError`).
    workers : int, optional
        Processes (default: all cores). 1 evaluates in this process; so does a run of a single
        case, whose windows (tiles, slices) then use ``workers`` threads.
    dask : str, optional
        Dask scheduler address, or ``"local"`` to start a LocalCluster of ``workers`` processes.
        Workers must see the same file paths.
    dask_timeout : float
        Seconds to wait for the scheduler to answer.
    resume : bool
        Skip the cases already in ``cases.csv`` (a torn last line is cut off first) whose files
        are unchanged since their row was written (``inputs.csv`` fingerprints); rows of changed
        files are evaluated again, rows of files that are gone are dropped. Refused when
        ``summary.json`` records another configuration or other input folders.
    overwrite : bool
        Discard earlier results in ``out_dir``. Without it (and without ``resume``) a folder that
        already holds results is an error, so finished work is never lost by accident.
    dataset : str, optional
        Data set name recorded in ``summary.json`` (the results aggregator groups by it).
    on_start : callable(n_to_run, n_skipped), optional
    on_result : callable(CaseResult), optional
        Progress hooks, called in this process.

    Returns
    -------
    EvaluationReport

    Raises
    ------
    InvalidParameterError
        Missing folder, bad option, results present without ``resume``/``overwrite``.
    ResumeError
        ``resume`` with a different configuration or folders, or an unreadable ``cases.csv``.
    OutputLockedError
        Another process is writing ``out_dir``.
    OutputError, DiskFullError
        ``out_dir`` is a file or not writable, or a write failed (full disk: resume later).
    """
    options = resolve_options(
        protocol, overrides, threshold=threshold, channel=channel, spacing=spacing,
        maps_dir=maps_dir, workers=workers, resume=resume, overwrite=overwrite, dataset=dataset,
        dask=dask, dask_timeout=dask_timeout,
    )
    pairing = pair_files(pred_dir, target_dir, pred_suffix=pred_suffix, target_suffix=target_suffix)
    if not pairing.pairs and not pairing.problems():
        raise InvalidParameterError(
            f"no mask files in {pred_dir} or {target_dir} (formats: {', '.join(MASK_SUFFIXES)})"
        )
    folders = {
        "pred_dir": str(Path(pred_dir).resolve()),
        "target_dir": str(Path(target_dir).resolve()),
        "pred_suffix": pred_suffix,
        "target_suffix": target_suffix,
    }
    sources = Sources(pairing.pairs, folders=folders, pairing=pairing)
    return _run(Path(out_dir), options, sources, on_start, on_result)

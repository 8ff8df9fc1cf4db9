"""Evaluate a folder of predictions against a folder of targets, case by case.

The pieces, each usable on its own:

- :func:`pair_files` matches files by name stem (``case_001.png`` <-> ``case_001.nii.gz``),
  optionally after removing a suffix such as ``_pred`` / ``_mask``, and lists what it could not
  match;
- :func:`evaluate_pair` is the per-case task: it reads both files itself, computes the metrics
  of :func:`topobench.metrics.evaluate_case` and optionally writes the case's error map. It never
  raises for a bad case: the failure comes back in the :class:`CaseResult`;
- :func:`run_evaluation` runs the tasks serially, in a process pool or on a Dask cluster, with a
  bounded number of cases in flight, appends each finished case to ``cases.csv`` as one whole
  line (flush + fsync), records failures in ``failures.csv`` and writes ``summary.json``. It can
  resume an interrupted run;
- :func:`summarize` and :func:`summary_table` reduce ``cases.csv`` to mean, std, median and n.

Output folder layout: ``cases.csv`` (``case, shape, <metrics>, seconds``), ``failures.csv``
(``case, pred, target, reason``) and ``summary.json`` (format ``topobench-evaluate/1``: version,
full metric configuration, statistics, failures). ``summary.json`` is written when the run
starts (``status: running``) and replaced atomically when it ends (``status: complete``), so the
configuration of an interrupted run is always on disk.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from topobench import __version__, catalog
from topobench.catalog import METRICS
from topobench.errors import InvalidParameterError, TopobenchError
from topobench.io import MASK_SUFFIXES, file_stem, is_supported, read_mask
from topobench.metrics import METRIC_NAMES, Protocol, evaluate_case, resolve_protocol

__all__ = [
    "CASES_FILE",
    "FAILURES_FILE",
    "PERCENT_METRICS",
    "SUMMARY_FILE",
    "CasePair",
    "CaseResult",
    "CaseTask",
    "EvaluationReport",
    "Pairing",
    "ResumeError",
    "evaluate_pair",
    "format_value",
    "metric_label",
    "metric_columns",
    "pair_files",
    "run_evaluation",
    "summarize",
    "summary_table",
]

CASES_FILE = "cases.csv"
FAILURES_FILE = "failures.csv"
SUMMARY_FILE = "summary.json"
_FAILURE_COLUMNS = ("case", "pred", "target", "reason")
#: Metrics shown in percent in tables (fractions in the files), as in the paper (from the catalog).
PERCENT_METRICS = tuple(m.name for m in METRICS.values() if m.percent)


class ResumeError(TopobenchError):
    """A run cannot be resumed (different configuration, foreign or corrupt ``cases.csv``)."""


# --------------------------------------------------------------------------------------------
# Pairing
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CasePair:
    """A prediction file and its target file, matched by case name."""

    case: str
    pred: Path
    target: Path


@dataclass(frozen=True)
class Pairing:
    """The outcome of :func:`pair_files`.

    Attributes
    ----------
    pairs : tuple of CasePair
        Sorted by case name.
    unmatched_pred, unmatched_target : tuple of Path
        Files with no partner in the other folder.
    ambiguous : tuple of (str, tuple of Path)
        Case names that several files of one folder map to (e.g. ``a.png`` and ``a.npy``).
    ignored : tuple of Path
        Files whose format topobench does not read (listed, not evaluated).
    """

    pairs: tuple[CasePair, ...]
    unmatched_pred: tuple[Path, ...] = ()
    unmatched_target: tuple[Path, ...] = ()
    ambiguous: tuple[tuple[str, tuple[Path, ...]], ...] = ()
    ignored: tuple[Path, ...] = ()

    def problems(self) -> list[tuple[str, str]]:
        """``(case, reason)`` for every file that could not be paired."""
        out = [
            (file_stem(p), f"no target file for prediction {p.name}") for p in self.unmatched_pred
        ]
        out += [
            (file_stem(p), f"no prediction file for target {p.name}") for p in self.unmatched_target
        ]
        out += [
            (case, "ambiguous: several files map to this case: " + ", ".join(p.name for p in paths))
            for case, paths in self.ambiguous
        ]
        return out


def _case_key(path: Path, suffix: str) -> str:
    stem = file_stem(path)
    if suffix and stem.endswith(suffix) and len(stem) > len(suffix):
        return stem[: -len(suffix)]
    return stem


def _index(folder: Path, suffix: str) -> tuple[dict[str, list[Path]], list[Path]]:
    if not folder.is_dir():
        raise InvalidParameterError(f"{folder}: expected a folder of masks, got no such folder")
    keyed: dict[str, list[Path]] = {}
    ignored: list[Path] = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        if not is_supported(path):
            ignored.append(path)
            continue
        keyed.setdefault(_case_key(path, suffix), []).append(path)
    return keyed, ignored


def pair_files(
    pred_dir: str | Path,
    target_dir: str | Path,
    *,
    pred_suffix: str = "",
    target_suffix: str = "",
) -> Pairing:
    """Match prediction and target files by name stem.

    The case name of a file is its name without the format suffix (``.png``, ``.nii.gz``, ...)
    and, when it ends with it, without ``pred_suffix`` / ``target_suffix`` (``case_1_pred.png``
    -> ``case_1`` with ``pred_suffix="_pred"``). Hidden files and sub-folders are skipped.

    Parameters
    ----------
    pred_dir, target_dir : path
        Flat folders of mask files.
    pred_suffix, target_suffix : str
        Name endings to remove before matching.

    Returns
    -------
    Pairing

    Raises
    ------
    InvalidParameterError
        A folder does not exist.
    """
    preds, ignored_p = _index(Path(pred_dir), pred_suffix)
    targets, ignored_t = _index(Path(target_dir), target_suffix)
    pairs, un_p, un_t, ambiguous = [], [], [], []
    for case in sorted(set(preds) | set(targets)):
        p, t = preds.get(case, []), targets.get(case, [])
        if len(p) > 1 or len(t) > 1:
            ambiguous.append((case, tuple(p + t)))
        elif p and t:
            pairs.append(CasePair(case, p[0], t[0]))
        elif p:
            un_p.append(p[0])
        else:
            un_t.append(t[0])
    return Pairing(
        pairs=tuple(pairs),
        unmatched_pred=tuple(un_p),
        unmatched_target=tuple(un_t),
        ambiguous=tuple(ambiguous),
        ignored=tuple(ignored_p + ignored_t),
    )


# --------------------------------------------------------------------------------------------
# The per-case task
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseTask:
    """Everything a worker needs to evaluate one case (small and picklable).

    Attributes
    ----------
    pair : CasePair
    protocol : Protocol
        Full metric configuration.
    threshold : float or None
        Binarise the prediction as ``value > threshold`` (8-bit images scaled to [0, 1] first).
    maps_dir : Path or None
        Where to write ``<case>.png``, the case's error map.
    threads : int
        Threads over windows inside :func:`~topobench.metrics.evaluate_case` (1 in a pool).
    """

    pair: CasePair
    protocol: Protocol
    threshold: float | None = None
    maps_dir: Path | None = None
    threads: int = 1


@dataclass(frozen=True)
class CaseResult:
    """The outcome of one case: metrics, or the reason it failed.

    Attributes
    ----------
    case : str
    shape : tuple of int
        Mask shape, ``()`` when the files could not be read.
    metrics : dict of str to float
        Empty when the case failed.
    seconds : float
        Wall time of reading and evaluating (the error map not included).
    error : str or None
        Why the case failed (None on success).
    map_error : str or None
        Why its error map could not be written (the metrics still count).
    """

    case: str
    shape: tuple[int, ...] = ()
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None
    map_error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the metrics were computed."""
        return self.error is None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TopobenchError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def evaluate_pair(task: CaseTask) -> CaseResult:
    """Read, validate and evaluate one case; never raises for a bad case.

    Runs in a worker process (or Dask worker): it reads its own files, so the caller never holds
    more than the cases in flight. Metrics use ``task.threads`` threads.

    Returns
    -------
    CaseResult
        With ``error`` set for an unreadable file, non-binary values (without ``threshold``),
        mismatched shapes, a dimension the protocol does not accept, or any other exception.
    """
    pair = task.pair
    start = time.perf_counter()
    shape: tuple[int, ...] = ()
    try:
        pred = read_mask(pair.pred, threshold=task.threshold)
        target = read_mask(pair.target)
        shape = tuple(int(s) for s in target.shape)
        metrics = evaluate_case(pred, target, protocol=task.protocol, workers=task.threads)
    except Exception as exc:  # one bad case must not stop the others
        return CaseResult(pair.case, shape, seconds=time.perf_counter() - start, error=_reason(exc))
    seconds = time.perf_counter() - start
    map_error = None
    if task.maps_dir is not None:
        try:
            from topobench.maps import write_error_map

            write_error_map(Path(task.maps_dir) / f"{pair.case}.png", pred, target)
        except Exception as exc:
            map_error = _reason(exc)
    return CaseResult(pair.case, shape, metrics, seconds, map_error=map_error)


# --------------------------------------------------------------------------------------------
# Durable CSV files
# --------------------------------------------------------------------------------------------


def _csv_line(values: Sequence[Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(values)
    return buf.getvalue()


class _LineLog:
    """An append-only CSV file written one whole, fsync'ed line at a time."""

    def __init__(self, path: Path, columns: Sequence[str], *, keep: bool):
        self.path = path
        if not keep or not path.exists() or path.stat().st_size == 0:
            with open(path, "w", newline="", encoding="utf-8") as f:
                f.write(_csv_line(columns))
                f.flush()
                os.fsync(f.fileno())
        self._file = open(path, "a", newline="", encoding="utf-8")

    def append(self, values: Sequence[Any]) -> None:
        self._file.write(_csv_line(values))
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def _read_cases(path: Path, columns: Sequence[str], *, repair: bool) -> list[dict[str, str]]:
    """Rows of ``cases.csv``; with ``repair``, cut a torn last line off the file first."""
    data = path.read_bytes()
    if repair and data and not data.endswith(b"\n"):
        data = data[: data.rfind(b"\n") + 1]
        with open(path, "r+b") as f:
            f.truncate(len(data))
            os.fsync(f.fileno())
    lines = data.decode("utf-8").splitlines(keepends=True)
    if not lines:
        return []
    header = next(csv.reader([lines[0]]))
    if header != list(columns):
        raise ResumeError(
            f"{path}: expected columns {','.join(columns)}, got {','.join(header)}; this file was "
            "written with another metric selection or is not a topobench cases file"
        )
    rows = []
    for i, line in enumerate(lines[1:], start=2):
        values = next(csv.reader([line]), [])
        if len(values) != len(columns):
            if repair and i == len(lines):  # a torn last line that happens to end in "\n"
                with open(path, "r+b") as f:
                    f.truncate(len(data) - len(line.encode("utf-8")))
                    os.fsync(f.fileno())
                break
            raise ResumeError(f"{path}: line {i} has {len(values)} fields, expected {len(columns)}")
        rows.append(dict(zip(columns, values)))
    return rows


def _sort_cases(path: Path, columns: Sequence[str]) -> None:
    """Rewrite ``cases.csv`` in case-name order (workers finish out of order); atomic."""
    rows = _read_cases(path, columns, repair=False)
    ordered = sorted(rows, key=lambda row: row["case"])
    if ordered == rows:
        return
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        f.write(_csv_line(columns))
        for row in ordered:
            f.write(_csv_line([row[c] for c in columns]))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(obj, indent=2, allow_nan=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------------------------


def metric_columns(protocol: Protocol, ndim: int | None) -> list[str]:
    """The metric columns of ``cases.csv`` for a protocol and data dimension.

    ``e2`` is a column only when the Betti errors use 3D windows (3D data without slices).
    """
    has_e2 = ndim == 3 and not protocol.betti_slices
    return [m for m in METRIC_NAMES if m in protocol.metrics and (m != "e2" or has_e2)]


def summarize(rows: Iterable[dict[str, Any]], metrics: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Mean, std (sample, ddof=1), median and n of each metric over the cases.

    Parameters
    ----------
    rows : iterable of dict
        One per case, metric name -> value (float or its text; empty text is skipped).
    metrics : sequence of str

    Returns
    -------
    dict
        ``{metric: {"mean", "std", "median", "n"}}``; statistics are None when n is 0 (std also
        when n is 1).
    """
    values: dict[str, list[float]] = {m: [] for m in metrics}
    for row in rows:
        for m in metrics:
            v = row.get(m, "")
            if v not in ("", None):
                values[m].append(float(v))
    out: dict[str, dict[str, Any]] = {}
    for m, vs in values.items():
        a = np.asarray(vs, dtype=float)
        out[m] = {
            "mean": float(a.mean()) if a.size else None,
            "std": float(a.std(ddof=1)) if a.size > 1 else None,
            "median": float(np.median(a)) if a.size else None,
            "n": int(a.size),
        }
    return out


def format_value(value: float | None, metric: str) -> str:
    """A statistic as printed in tables: percent with 2 decimals or a count with 3."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{100 * value:.2f}" if metric in PERCENT_METRICS else f"{value:.3f}"


def metric_label(metric: str) -> str:
    """Display name of a metric column (``e0_gt`` -> ``e0-Gt``, ``dice`` -> ``Dice (%)``)."""
    return catalog.metric_label(metric, unit=True)


def summary_table(summary: dict[str, Any], fmt: Literal["md", "latex"] = "md") -> str:
    """Render ``summary.json``'s statistics as a Markdown or LaTeX table.

    Dice, clDice and AGS are shown in percent (as the paper's tables); the first line is a
    comment with the topobench version and the protocol.
    """
    stats = summary["metrics"]
    proto = summary["config"]["protocol"]
    config = ", ".join(
        f"{k}={v}" for k, v in proto.items() if k not in ("topobench_version", "metrics")
    )
    if summary["config"].get("threshold") is not None:
        config += f", threshold={summary['config']['threshold']}"
    note = (
        f"topobench {summary['topobench_version']}; {summary['n_succeeded']} cases, "
        f"{summary['n_failed']} failures; {config}"
    )
    rows = [
        (
            metric_label(m),
            format_value(s["mean"], m),
            format_value(s["std"], m),
            format_value(s["median"], m),
            str(s["n"]),
        )
        for m, s in stats.items()
    ]
    head = ("metric", "mean", "std", "median", "n")
    if fmt == "md":
        lines = [f"<!-- {note} -->", "| " + " | ".join(head) + " |", "|---|---:|---:|---:|---:|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
    elif fmt == "latex":
        lines = [f"% {note}".replace("_", r"\_"), r"\begin{tabular}{lrrrr}", r"\toprule"]
        lines.append(" & ".join(head) + r" \\")
        lines.append(r"\midrule")
        for r in rows:
            lines.append(" & ".join(c.replace("%", r"\%").replace("_", r"\_") for c in r) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}"]
    else:
        raise InvalidParameterError(f"format must be 'md' or 'latex', got {fmt!r}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvaluationReport:
    """What :func:`run_evaluation` did.

    Attributes
    ----------
    out_dir : Path
    summary : dict
        The content of ``summary.json``.
    n_evaluated : int
        Cases evaluated in this run (succeeded or failed).
    n_skipped : int
        Cases skipped because ``cases.csv`` already held them (resume).
    failures : tuple of (str, str)
        ``(case, reason)`` of every failed or unpaired case of this run.
    """

    out_dir: Path
    summary: dict[str, Any]
    n_evaluated: int
    n_skipped: int
    failures: tuple[tuple[str, str], ...]

    @property
    def ok(self) -> bool:
        """True when every case succeeded (the exit status is 0 only then)."""
        return not self.failures


def _config(protocol: Protocol, threshold: float | None) -> dict[str, Any]:
    return {"protocol": protocol.to_dict(), "threshold": threshold}


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    proto = {k: v for k, v in config.get("protocol", {}).items() if k != "topobench_version"}
    return {"protocol": proto, "threshold": config.get("threshold")}


def _peek_ndim(path: Path) -> int:
    """Spatial dimension of a mask file, from its header where the format allows."""
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        import nibabel

        shape = list(nibabel.load(str(path)).shape)
        while len(shape) > 3 and shape[-1] == 1:
            shape.pop()
        return len(shape)
    if name.endswith(".npy"):
        return np.load(path, mmap_mode="r").ndim
    return read_mask(path).ndim


def _data_ndim(pairs: Sequence[CasePair]) -> int | None:
    """Dimension of the first readable target (decides whether there is an ``e2`` column)."""
    for pair in pairs[:5]:
        try:
            return _peek_ndim(pair.target)
        except Exception:  # unreadable: that case will fail on its own, try the next one
            continue
    return None


def _available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _serial(tasks: Iterator[CaseTask]) -> Iterator[CaseResult]:
    for task in tasks:
        yield evaluate_pair(task)


def _process_pool(tasks: Iterator[CaseTask], workers: int) -> Iterator[CaseResult]:
    """Evaluate in ``workers`` processes with at most ``2 * workers`` cases in flight."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    # forkserver: safe beside the threads of a progress display; the server imports the
    # metrics once, so that each worker starts as a cheap fork of it.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["topobench.evaluate"])
    ahead = 2 * workers
    pending: dict[Any, CaseTask] = {}
    executor = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    try:
        exhausted = False
        while True:
            while not exhausted and len(pending) < ahead:
                task = next(tasks, None)
                if task is None:
                    exhausted = True
                    break
                pending[executor.submit(evaluate_pair, task)] = task
            if not pending:
                break
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            broken = False
            for future in done:
                task = pending.pop(future)
                try:
                    yield future.result()
                except BrokenProcessPool:
                    broken = True
                    yield CaseResult(task.pair.case, error="worker process died (out of memory?)")
            if broken:  # every case in flight is lost with the pool: report them, start afresh
                for task in pending.values():
                    yield CaseResult(task.pair.case, error="worker process died (out of memory?)")
                pending.clear()
                executor.shutdown(wait=False, cancel_futures=True)
                executor = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def _dask(
    tasks: Iterator[CaseTask], address: str, workers: int, timeout: float
) -> Iterator[CaseResult]:
    """Evaluate on a Dask cluster (``"local"``: start a LocalCluster of ``workers`` processes)."""
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise TopobenchError(
            "running on Dask needs the optional dependency: pip install 'topobench[dask]'"
        ) from None
    cluster = None
    if address == "local":
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = Client(cluster)
    else:
        try:
            client = Client(address, timeout=timeout)
        except Exception as exc:  # OSError, TimeoutError, ValueError for a bad address...
            raise TopobenchError(
                f"cannot connect to the Dask scheduler at {address}: {exc}"
            ) from exc
    try:
        ahead = 2 * max(sum(client.nthreads().values()), 1)
        futures = as_completed()
        cases: dict[str, str] = {}

        def submit() -> bool:
            task = next(tasks, None)
            if task is None:
                return False
            future = client.submit(evaluate_pair, task, pure=False)
            cases[future.key] = task.pair.case
            futures.add(future)
            return True

        for _ in range(ahead):
            if not submit():
                break
        for future in futures:
            case = cases.pop(future.key)
            try:
                yield future.result()
            except Exception as exc:  # a worker lost, or a task cancelled
                yield CaseResult(case, error=f"Dask task failed: {_reason(exc)}")
            future.release()
            submit()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_evaluation(
    pred_dir: str | Path,
    target_dir: str | Path,
    out_dir: str | Path = "topobench-results",
    *,
    protocol: str | Protocol = "default",
    threshold: float | None = None,
    pred_suffix: str = "",
    target_suffix: str = "",
    maps_dir: str | Path | None = None,
    workers: int | None = None,
    dask: str | None = None,
    dask_timeout: float = 30.0,
    resume: bool = False,
    overwrite: bool = False,
    dataset: str | None = None,
    on_start: Callable[[int, int], None] | None = None,
    on_result: Callable[[CaseResult], None] | None = None,
    **overrides: Any,
) -> EvaluationReport:
    """Evaluate every paired case of two folders and save the results in ``out_dir``.

    Parameters
    ----------
    pred_dir, target_dir : path
        Folders of prediction and target masks, paired by :func:`pair_files`.
    out_dir : path
        Receives ``cases.csv``, ``failures.csv`` and ``summary.json``.
    protocol : str or Protocol
        Metric protocol (docs/metrics.md); ``**overrides`` change its parameters one by one
        (``connectivity``, ``betti_window``, ``betti_slices``, ``cldice_window``, ``ags_window``,
        ``e0_gt_window``, ``metrics``).
    threshold : float, optional
        Binarise predictions (probability maps) as ``value > threshold``.
    pred_suffix, target_suffix : str
        Name endings removed before pairing (e.g. ``_pred``, ``_mask``).
    maps_dir : path, optional
        Write an error map ``<case>.png`` per case there.
    workers : int, optional
        Processes (default: all cores). 1 evaluates in this process; so does a run of a single
        case, whose windows (tiles, slices) then use ``workers`` threads.
    dask : str, optional
        Dask scheduler address, or ``"local"`` to start a LocalCluster of ``workers`` processes.
        Workers must see the same file paths.
    dask_timeout : float
        Seconds to wait for the scheduler to answer.
    resume : bool
        Skip the cases already in ``cases.csv`` (a torn last line is cut off first). Refused when
        ``summary.json`` records another metric configuration.
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
        ``resume`` with a different configuration or an unreadable ``cases.csv``.
    """
    proto = resolve_protocol(protocol, **overrides)
    if threshold is not None and not math.isfinite(threshold):
        raise InvalidParameterError(f"threshold must be a finite number, got {threshold}")
    n_workers = workers if workers is not None else _available_cores()
    if n_workers < 1:
        raise InvalidParameterError(f"workers must be >= 1, got {workers}")
    if resume and overwrite:
        raise InvalidParameterError("resume and overwrite exclude each other")
    pairing = pair_files(pred_dir, target_dir, pred_suffix=pred_suffix, target_suffix=target_suffix)
    if not pairing.pairs and not pairing.problems():
        raise InvalidParameterError(
            f"no mask files in {pred_dir} or {target_dir} (formats: {', '.join(MASK_SUFFIXES)})"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cases_path, summary_path = out / CASES_FILE, out / SUMMARY_FILE
    config = _config(proto, threshold)

    has_results = cases_path.exists() and cases_path.stat().st_size > 0
    if has_results and not (resume or overwrite):
        raise InvalidParameterError(
            f"{out} already holds results ({CASES_FILE}); continue that run with resume "
            "(--resume) or start again with overwrite (--overwrite)"
        )
    previous: dict[str, Any] = {}
    if resume and has_results:
        try:
            previous = json.loads(summary_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise ResumeError(
                f"{out}: cannot resume without a readable {SUMMARY_FILE} recording the metric "
                "configuration"
            ) from None
        if _comparable(previous.get("config", {})) != _comparable(config):
            raise ResumeError(
                f"{out}: the recorded metric configuration differs from this run's; "
                f"recorded {json.dumps(_comparable(previous.get('config', {})))}, "
                f"now {json.dumps(_comparable(config))}"
            )
        ndim = 3 if "e2" in (previous.get("columns") or []) else 2
    else:
        ndim = _data_ndim(pairing.pairs) or 2
    metrics = metric_columns(proto, ndim)
    columns = ["case", "shape", *metrics, "seconds"]

    done_rows = _read_cases(cases_path, columns, repair=True) if resume and has_results else []
    done = {row["case"] for row in done_rows}
    todo = [p for p in pairing.pairs if p.case not in done]
    started = time.time()

    def summary(status: str, failures: list[tuple[str, str]]) -> dict[str, Any]:
        rows = _read_cases(cases_path, columns, repair=False)
        failed = {case for case, _ in failures}
        return {
            "format": "topobench-evaluate/1",
            "topobench_version": __version__,
            "status": status,
            "dataset": dataset,
            "config": config,
            "columns": columns,
            "pred_dir": str(Path(pred_dir).resolve()),
            "target_dir": str(Path(target_dir).resolve()),
            "n_cases": len({row["case"] for row in rows} | failed),
            "n_succeeded": len(rows),
            "n_failed": len(failed),
            "metrics": summarize(rows, metrics),
            "failures": [{"case": c, "reason": r} for c, r in failures],
            "unmatched": {
                "pred": [p.name for p in pairing.unmatched_pred],
                "target": [p.name for p in pairing.unmatched_target],
            },
            "ignored_files": [str(p) for p in pairing.ignored],
            "seconds": round(time.time() - started, 3),
        }

    case_log = _LineLog(cases_path, columns, keep=resume)
    failure_log = _LineLog(out / FAILURES_FILE, _FAILURE_COLUMNS, keep=False)
    failures: list[tuple[str, str]] = []
    by_case = {p.case: p for p in pairing.pairs}
    try:
        for case, reason in pairing.problems():
            failures.append((case, reason))
            failure_log.append([case, "", "", reason])
        _write_json_atomic(summary_path, summary("running", failures))
        if on_start is not None:
            on_start(len(todo), len(done))
        maps = Path(maps_dir) if maps_dir is not None else None
        if dask is not None:
            tasks = (CaseTask(p, proto, threshold, maps) for p in todo)
            results = _dask(tasks, dask, n_workers, dask_timeout)
        elif n_workers == 1 or len(todo) <= 1:  # one case: its windows use the cores instead
            tasks = (CaseTask(p, proto, threshold, maps, threads=n_workers) for p in todo)
            results = _serial(tasks)
        else:
            tasks = (CaseTask(p, proto, threshold, maps) for p in todo)
            results = _process_pool(tasks, min(n_workers, len(todo)))
        for result in results:
            pair = by_case[result.case]
            if result.ok:
                shape = "x".join(map(str, result.shape))
                values = [
                    repr(float(result.metrics[m])) if m in result.metrics else "" for m in metrics
                ]
                case_log.append([result.case, shape, *values, f"{result.seconds:.3f}"])
            else:
                failures.append((result.case, result.error or "unknown error"))
                failure_log.append([result.case, pair.pred, pair.target, result.error])
            if result.map_error is not None:
                reason = f"error map: {result.map_error}"
                failures.append((result.case, reason))
                failure_log.append([result.case, pair.pred, pair.target, reason])
            if on_result is not None:
                on_result(result)
    finally:
        case_log.close()
        failure_log.close()
    _sort_cases(cases_path, columns)
    final = summary("complete", failures)
    _write_json_atomic(summary_path, final)
    return EvaluationReport(out, final, len(todo), len(done), tuple(failures))

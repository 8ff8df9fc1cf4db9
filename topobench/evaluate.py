"""Evaluate a folder of predictions against a folder of targets, case by case.

The pieces, each usable on its own:

- :func:`pair_files` matches files by name stem (``case_001.png`` <-> ``case_001.nii.gz``),
  optionally after removing a suffix such as ``_pred`` / ``_mask``, and lists what it could not
  match;
- :func:`evaluate_pair` is the per-case task: it reads both files itself, computes the metrics
  of :func:`topobench.metrics.evaluate_case` and optionally writes the case's error map. It never
  raises for a bad case: the failure comes back in the :class:`CaseResult`;
- :func:`evaluate_folders` returns the per-case metrics as a pandas DataFrame without writing
  files (binary masks, or label maps per label; :mod:`topobench.label_evaluation`);
- :func:`run_evaluation` runs the tasks serially, in a process pool or on a Dask cluster, with a
  bounded number of cases in flight, appends each finished case to ``cases.csv`` as one whole
  line (flush + fsync), records failures in ``failures.csv`` and writes ``summary.json``. It can
  resume an interrupted run;
- :func:`summarize` and :func:`summary_table` reduce ``cases.csv`` to mean, std, median and n.

Output folder layout: ``cases.csv`` (``case, shape, <metrics>, seconds``), ``failures.csv``
(``case, pred, target, reason``), ``inputs.csv`` (``case, pred, target, pred_fingerprint,
target_fingerprint, spacing``: what each row of ``cases.csv`` was computed from) and
``summary.json`` (format ``topobench-evaluate/1``: version, full metric configuration, input
folders, statistics, failures). ``summary.json`` is written when the run starts (``status:
running``) and replaced atomically when it ends (``status: complete``), so the configuration of an
interrupted run is always on disk. A lock file (``.topobench-evaluate.lock``) keeps a second run
out of the folder while one writes it.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import json
import math
import os
import socket
import stat
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from topobench import __version__, catalog
from topobench.catalog import METRICS
from topobench.errors import InvalidMaskError, InvalidParameterError, TopobenchError
from topobench.io import (
    MASK_SUFFIXES,
    NotBinaryError,
    file_stem,
    is_nifti,
    is_supported,
    peek_ndim,
    read_mask_file,
)
from topobench.metrics import METRIC_NAMES, Protocol, evaluate_case, resolve_protocol

__all__ = [
    "CASES_FILE",
    "FAILURES_FILE",
    "INPUTS_FILE",
    "LOCK_FILE",
    "PERCENT_METRICS",
    "SUMMARY_FILE",
    "CasePair",
    "CaseResult",
    "CaseTask",
    "DiskFullError",
    "EvaluationReport",
    "OutputError",
    "OutputLockedError",
    "Pairing",
    "ResumeError",
    "evaluate_pair",
    "format_value",
    "metric_label",
    "metric_columns",
    "pair_files",
    "evaluate_folders",
    "run_evaluation",
    "summarize",
    "summary_table",
]

CASES_FILE = "cases.csv"
FAILURES_FILE = "failures.csv"
SUMMARY_FILE = "summary.json"
INPUTS_FILE = "inputs.csv"
LOCK_FILE = ".topobench-evaluate.lock"
_FAILURE_COLUMNS = ("case", "pred", "target", "reason")
_INPUT_COLUMNS = ("case", "pred", "target", "pred_fingerprint", "target_fingerprint", "spacing")
#: Metrics shown in percent in tables (fractions in the files), as in the paper (from the catalog).
PERCENT_METRICS = tuple(m.name for m in METRICS.values() if m.percent)


class ResumeError(TopobenchError):
    """A run cannot be resumed (different configuration, foreign or corrupt ``cases.csv``)."""


class OutputError(TopobenchError, OSError):
    """The output folder cannot be written (a file, not writable, a write that failed)."""


class DiskFullError(OutputError):
    """The disk (or quota) holding the output folder or the error maps is full."""


class OutputLockedError(TopobenchError, RuntimeError):
    """Another process is writing the same output folder."""


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
    unreadable : tuple of (str, str)
        ``(case, reason)`` for entries that cannot be read at all: broken symbolic links (their
        target missing, or a loop), entries that are not regular files, and case names holding
        a line break or another control character (which no CSV line could carry).
    """

    pairs: tuple[CasePair, ...]
    unmatched_pred: tuple[Path, ...] = ()
    unmatched_target: tuple[Path, ...] = ()
    ambiguous: tuple[tuple[str, tuple[Path, ...]], ...] = ()
    ignored: tuple[Path, ...] = ()
    unreadable: tuple[tuple[str, str], ...] = ()

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
        return out + list(self.unreadable)


def _case_key(path: Path, suffix: str) -> str:
    stem = file_stem(path)
    if suffix and stem.endswith(suffix) and len(stem) > len(suffix):
        return stem[: -len(suffix)]
    return stem


def _bad_name(case: str) -> str | None:
    """Why a case name cannot be a CSV field that every reader splits the same way, or None.

    Line breaks of any kind (``\\n``, ``\\r``, form feed, U+2028, ...) and other control
    characters are refused; a tab is allowed.
    """
    for char in case:
        if char != "\t" and (
            unicodedata.category(char) in ("Cc", "Zl", "Zp") or len(f"a{char}a".splitlines()) > 1
        ):
            return (
                f"case name {case!r} contains the control or line-break character "
                f"U+{ord(char):04X}, which cases.csv cannot hold on one line; rename the file"
            )
    return None


def _broken(path: Path, exc: OSError) -> str:
    if path.is_symlink():
        try:
            dest = os.readlink(path)
        except OSError:
            dest = "?"
        if exc.errno == errno.ELOOP:
            return f"{path}: symbolic link loop (-> {dest})"
        return f"{path}: broken symbolic link (-> {dest}: {exc.strerror or exc})"
    return f"{path}: cannot be read ({exc.strerror or exc})"


def _index(
    folder: Path, suffix: str
) -> tuple[dict[str, list[Path]], list[Path], dict[str, list[str]]]:
    """``(case -> files, ignored files, case -> reasons its entries cannot be read)``."""
    if not folder.is_dir():
        raise InvalidParameterError(f"{folder}: expected a folder of masks, got no such folder")
    keyed: dict[str, list[Path]] = {}
    ignored: list[Path] = []
    broken: dict[str, list[str]] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        try:
            mode = path.stat().st_mode  # follows symbolic links
        except OSError as exc:  # a dangling link, a loop: never silently left out
            broken.setdefault(_case_key(path, suffix), []).append(_broken(path, exc))
            continue
        if stat.S_ISDIR(mode):
            continue
        if not is_supported(path):
            ignored.append(path)
            continue
        if not stat.S_ISREG(mode):
            broken.setdefault(_case_key(path, suffix), []).append(f"{path}: not a regular file")
            continue
        keyed.setdefault(_case_key(path, suffix), []).append(path)
    return keyed, ignored, broken


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

    Broken symbolic links (and loops) and case names with line breaks or control characters are
    listed in :attr:`Pairing.unreadable`, by name, never left out silently.

    Returns
    -------
    Pairing

    Raises
    ------
    InvalidParameterError
        A folder does not exist.
    """
    preds, ignored_p, broken_p = _index(Path(pred_dir), pred_suffix)
    targets, ignored_t, broken_t = _index(Path(target_dir), target_suffix)
    pairs, un_p, un_t, ambiguous, unreadable = [], [], [], [], []
    for case in sorted(set(preds) | set(targets) | set(broken_p) | set(broken_t)):
        p, t = preds.get(case, []), targets.get(case, [])
        broken = broken_p.get(case, []) + broken_t.get(case, [])
        bad = _bad_name(case)
        if broken or bad:
            unreadable.append((case, "; ".join(([bad] if bad else []) + broken)))
        elif len(p) > 1 or len(t) > 1:
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
        unreadable=tuple(unreadable),
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
        Binarise the prediction as ``value > threshold`` (integer images divided by their
        dtype's maximum first: 255 for 8-bit, 65535 for 16-bit).
    maps_dir : Path or None
        Where to write ``<case>.png``, the case's error map.
    threads : int
        Threads over windows inside :func:`~topobench.metrics.evaluate_case` (1 in a pool).
    channel : int or None
        Class channel of nnU-Net probability files (``.npz`` with ``probabilities``).
    spacing : float, tuple of float or None
        Voxel size for the distance metrics of files whose headers record none (``--spacing``);
        one number for every axis, or one per axis.
    """

    pair: CasePair
    protocol: Protocol
    threshold: float | None = None
    maps_dir: Path | None = None
    threads: int = 1
    channel: int | None = None
    spacing: float | tuple[float, ...] | None = None


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
        Why the case failed (None on success), e.g. because its error map could not be written.
    map_error : str or None
        Why its error map could not be written (then ``error`` says so too: the case failed).
    error_kind : str or None
        ``"not_binary"`` (the prediction is a probability map and no threshold was given),
        ``"map"`` (the error map), ``"no_space"`` (the error map, on a full disk) or None.
    fingerprints : tuple of (str, str)
        ``size:mtime_ns:blake2b`` of the prediction and the target file, taken before reading.
    spacing : tuple of float or None
        Voxel spacing of the case ``(Z, H, W)`` / ``(H, W)``, from the target (or the prediction)
        file; None when neither records one.
    """

    case: str
    shape: tuple[int, ...] = ()
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None
    map_error: str | None = None
    error_kind: str | None = None
    fingerprints: tuple[str, str] = ("", "")
    spacing: tuple[float, ...] | None = None

    @property
    def ok(self) -> bool:
        """True when the metrics were computed."""
        return self.error is None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TopobenchError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def fingerprint(path: str | Path) -> str:
    """``size:mtime_ns:blake2b`` of a file (128-bit BLAKE2b of its bytes, in hex).

    Recorded with each row of ``cases.csv`` (in ``inputs.csv``) so that a resumed run can tell
    whether the file changed since its row was written.
    """
    path = Path(path)
    info = path.stat()
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return f"{info.st_size}:{info.st_mtime_ns}:{digest.hexdigest()}"


def _unchanged(recorded: str, path: Path) -> bool:
    """Whether ``path`` still has the content ``recorded`` by :func:`fingerprint`.

    Size and mtime equal: unchanged, without reading the file. Otherwise the content hash
    decides (a file touched or copied back unchanged keeps its row).
    """
    try:
        size, mtime_ns, digest = recorded.split(":")
        info = path.stat()
    except (ValueError, OSError):
        return False
    if info.st_size != int(size):
        return False
    if info.st_mtime_ns == int(mtime_ns):
        return True
    try:
        return fingerprint(path).rsplit(":", 1)[1] == digest
    except OSError:
        return False


_SPACING_METRICS: bool | None = None


def _metrics_take_spacing() -> bool:
    """Whether :func:`~topobench.metrics.evaluate_case` accepts ``spacing=`` (looked up once)."""
    global _SPACING_METRICS
    if _SPACING_METRICS is None:
        import inspect

        _SPACING_METRICS = "spacing" in inspect.signature(evaluate_case).parameters
    return _SPACING_METRICS


def _same_grid(pred: Any, target: Any, pair: CasePair) -> None:
    """Refuse two NIfTI files whose (canonical) voxel grids are not the same physical grid."""
    if pred.affine is None or target.affine is None:
        return
    if pred.mask.shape == target.mask.shape and np.allclose(
        pred.affine, target.affine, rtol=1e-4, atol=1e-3
    ):
        return
    raise InvalidMaskError(
        f"{pair.pred.name} and {pair.target.name} are not on the same voxel grid (their NIfTI "
        f"affines differ after reorienting both to RAS+: voxel sizes "
        f"{tuple(round(v, 4) for v in (pred.spacing or ()))} and "
        f"{tuple(round(v, 4) for v in (target.spacing or ()))}, origins "
        f"{tuple(np.round(pred.affine[:3, 3], 3).tolist())} and "
        f"{tuple(np.round(target.affine[:3, 3], 3).tolist())}); resample the prediction onto "
        "the target's grid first"
    )


def _given_spacing(task: CaseTask, ndim: int) -> tuple[float, ...] | None:
    """The spacing given by the user (``CaseTask.spacing``) for an ``ndim``-D case."""
    if task.spacing is None:
        return None
    from topobench.metrics.distance import resolve_spacing

    return resolve_spacing(task.spacing, ndim)


def evaluate_pair(task: CaseTask) -> CaseResult:
    """Read, validate and evaluate one case; never raises for a bad case.

    Runs in a worker process (or Dask worker): it reads its own files, so the caller never holds
    more than the cases in flight. Metrics use ``task.threads`` threads. When both files are
    NIfTI, both are reoriented to the closest canonical (RAS+) orientation and must then lie on
    the same voxel grid (same affine); the voxel spacing is passed to the metrics that take one.
    A case whose error map cannot be written fails (so that a resumed run retries it).

    Returns
    -------
    CaseResult
        With ``error`` set for an unreadable file, non-binary values (without ``threshold``),
        mismatched shapes or grids, a dimension the protocol does not accept, an error map that
        could not be written, or any other exception.
    """
    pair = task.pair
    start = time.perf_counter()
    shape: tuple[int, ...] = ()
    fingerprints = ("", "")
    spacing = None
    try:
        fingerprints = (fingerprint(pair.pred), fingerprint(pair.target))
        canonical = is_nifti(pair.pred) and is_nifti(pair.target)
        try:
            pred_file = read_mask_file(
                pair.pred, threshold=task.threshold, channel=task.channel, canonical=canonical
            )
        except NotBinaryError as exc:
            return CaseResult(
                pair.case,
                seconds=time.perf_counter() - start,
                error=_reason(exc),
                error_kind="not_binary",
                fingerprints=fingerprints,
            )
        target_file = read_mask_file(pair.target, canonical=canonical)
        pred, target = pred_file.mask, target_file.mask
        shape = tuple(int(s) for s in target.shape)
        _same_grid(pred_file, target_file, pair)
        spacing = target_file.spacing or pred_file.spacing or _given_spacing(task, target.ndim)
        extra = {"spacing": spacing} if spacing is not None and _metrics_take_spacing() else {}
        metrics = evaluate_case(pred, target, protocol=task.protocol, workers=task.threads, **extra)
    except Exception as exc:  # one bad case must not stop the others
        return CaseResult(
            pair.case,
            shape,
            seconds=time.perf_counter() - start,
            error=_reason(exc),
            fingerprints=fingerprints,
            spacing=spacing,
        )
    seconds = time.perf_counter() - start
    if task.maps_dir is not None:
        map_path = Path(task.maps_dir) / f"{pair.case}.png"
        try:
            from topobench.maps import write_error_map

            write_error_map(map_path, pred, target)
        except Exception as exc:
            full = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
            reason = f"error map {map_path} could not be written: {_reason(exc)}"
            return CaseResult(
                pair.case,
                shape,
                seconds=seconds,
                error=reason,
                map_error=_reason(exc),
                error_kind="no_space" if full else "map",
                fingerprints=fingerprints,
                spacing=spacing,
            )
    return CaseResult(
        pair.case, shape, metrics, seconds, fingerprints=fingerprints, spacing=spacing
    )


# --------------------------------------------------------------------------------------------
# Durable CSV files
# --------------------------------------------------------------------------------------------


def _csv_line(values: Sequence[Any]) -> str:
    buf = io.StringIO()
    # QUOTE_MINIMAL quotes a field with "\n" but not one with a lone "\r" (a failure's case).
    quote_all = any(isinstance(v, str) and "\r" in v for v in values)
    csv.writer(
        buf, lineterminator="\n", quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL
    ).writerow(values)
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

    def append(self, values: Sequence[Any], *, sync: bool = True) -> None:
        """Write one line and flush it; ``sync``: also fsync (durable across a power loss)."""
        self._file.write(_csv_line(values))
        self._file.flush()
        if sync:
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
    # Split at "\n" only: str.splitlines would also split at form feeds, U+2028 and the like.
    lines = [line + "\n" for line in data.decode("utf-8").split("\n")]
    if lines and lines[-1] == "\n":  # after the last line break
        lines.pop()
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
    if ordered != rows:
        _rewrite(path, columns, ordered)


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
    not_binary : tuple of str
        Cases whose prediction is a probability map read without a threshold (also in
        ``failures``); :attr:`hint` says what to do, once for all of them.
    reevaluated : tuple of str
        Resume: cases whose row was dropped and evaluated again because a file of theirs changed
        (or no fingerprint of theirs was recorded).
    dropped : tuple of str
        Resume: cases whose row was removed because their files are gone.
    """

    out_dir: Path
    summary: dict[str, Any]
    n_evaluated: int
    n_skipped: int
    failures: tuple[tuple[str, str], ...]
    not_binary: tuple[str, ...] = ()
    reevaluated: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every case succeeded (the exit status is 0 only then)."""
        return not self.failures

    @property
    def hint(self) -> str | None:
        """One message for every probability-map prediction, naming the parameter to set."""
        if not self.not_binary:
            return None
        return not_binary_hint(self.not_binary)


def not_binary_hint(cases: Sequence[str]) -> str:
    """The message for predictions that are probability maps (Python parameter names)."""
    listed = ", ".join(cases[:5]) + (f" and {len(cases) - 5} more" if len(cases) > 5 else "")
    return (
        f"{len(cases)} prediction{'s are' if len(cases) != 1 else ' is'} not a binary mask but "
        f"a probability map ({listed}): values other than {{0, 1}} / {{0, 255}}, or floats; "
        "binarise the predictions with threshold=... (for example threshold=0.5). Integer maps "
        "are divided by their dtype's maximum first: 255 for 8-bit, 65535 for 16-bit"
    )


def _config(
    protocol: Protocol,
    threshold: float | None,
    channel: int | None = None,
    spacing: float | tuple[float, ...] | None = None,
) -> dict[str, Any]:
    config: dict[str, Any] = {"protocol": protocol.to_dict(), "threshold": threshold}
    if channel is not None:
        config["channel"] = channel
    if spacing is not None:
        config["spacing"] = spacing if isinstance(spacing, float) else list(spacing)
    return config


def _comparable(summary: dict[str, Any]) -> dict[str, Any]:
    """What must agree between a run and its resumption, flat: ``{"protocol.connectivity": 4}``.

    The configuration of the metrics, the threshold and channel, the input folders and the name
    suffixes of pairing (keys an older summary lacks are left out of the comparison).
    """
    config = summary.get("config", {}) or {}
    out: dict[str, Any] = {}
    for key, value in (config.get("protocol") or {}).items():
        if key != "topobench_version":
            out[f"protocol.{key}"] = value
    out["threshold"] = config.get("threshold")
    out["channel"] = config.get("channel")
    out["spacing"] = config.get("spacing")
    for key in ("pred_dir", "target_dir", "pred_suffix", "target_suffix"):
        if key in summary:
            out[key] = summary[key]
    return out


def _shown(value: Any) -> str:
    if value is None:
        return "None"
    return repr(value) if isinstance(value, str) else json.dumps(value)


def _differences(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """``key: old -> new`` for every key of :func:`_comparable` whose value differs.

    Folders and suffixes that an older summary did not record are not compared.
    """
    return [
        f"{key}: {_shown(before.get(key))} -> {_shown(now.get(key))}"
        for key in sorted(set(before) | set(now))
        if (key in before or key.startswith("protocol.") or key in ("threshold", "channel"))
        and before.get(key) != now.get(key)
    ]


def _has_e2(protocol: Protocol, pairs: Sequence[CasePair]) -> bool:
    """Whether ``cases.csv`` has an ``e2`` column: from the protocol and each case's dimension.

    Only when ``e2`` is selected and the Betti errors use 3D windows (no slices): then always
    for a 3D protocol, never for a 2D one, and for a protocol of any dimension when some target
    is 3D (read from the file headers; a file that cannot be read fails on its own later).
    """
    if "e2" not in protocol.metrics or protocol.betti_slices:
        return False
    if protocol.ndim is not None:
        return protocol.ndim == 3
    for pair in pairs:
        try:
            if peek_ndim(pair.target) == 3:
                return True
        except Exception:  # unreadable: that case fails on its own
            continue
    return False


def _available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# --------------------------------------------------------------------------------------------
# The output folder: lock, errors
# --------------------------------------------------------------------------------------------

try:
    import fcntl as _fcntl
except ImportError:  # not on POSIX: a pid file, checked for a live process
    _fcntl = None  # type: ignore[assignment]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    except OSError:
        return False
    return True


class _OutputLock:
    """An exclusive lock on an output folder, held for the whole run.

    POSIX: ``fcntl.flock`` on ``<out>/.topobench-evaluate.lock``, which records the holder's
    pid, host and start time. The kernel drops the lock when its process ends, however it ends,
    so the lock of a dead process is simply taken over. Elsewhere (or on a file system without
    ``flock``), the pid file alone: a lock whose process is not alive on this host is taken over.
    The file stays in the folder after the run (removing it would let two later runs lock two
    different files).
    """

    def __init__(self, out: Path):
        self.path = out / LOCK_FILE
        self._fd: int | None = None

    def _holder(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return {}

    def _refuse(self, holder: dict[str, Any]) -> OutputLockedError:
        who = (
            f"process {holder.get('pid', '?')} on {holder.get('host', '?')}"
            + (f" (started {holder['started']})" if holder.get("started") else "")
            + (f": {holder['command']}" if holder.get("command") else "")
        )
        return OutputLockedError(
            f"{self.path.parent} is being written by another evaluation, {who}; wait until it "
            "ends (or stop it), or write to another output folder"
        )

    def acquire(self) -> None:
        import sys

        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": " ".join(sys.argv)[:300],
        }
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            locked = False
            if _fcntl is not None:
                try:
                    _fcntl.flock(fd, _fcntl.LOCK_EX | _fcntl.LOCK_NB)
                    locked = True
                except BlockingIOError:
                    for _ in range(20):  # the holder may not have written its pid yet
                        holder = self._holder()
                        if holder.get("pid"):
                            break
                        time.sleep(0.05)
                    raise self._refuse(holder) from None
                except OSError as exc:
                    if exc.errno not in (errno.ENOLCK, errno.ENOTSUP, errno.EOPNOTSUPP):
                        raise
            if not locked:
                holder = self._holder()
                pid = holder.get("pid")
                if (
                    isinstance(pid, int)
                    and pid != os.getpid()
                    and holder.get("host") == record["host"]
                    and _pid_alive(pid)
                ):
                    raise self._refuse(holder)
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, (json.dumps(record) + "\n").encode("utf-8"))
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # drops the flock
            self._fd = None


def _output_error(exc: OSError, out: Path, action: str) -> OutputError:
    """A clean error for a failed write in the output folder (full disk: resume later)."""
    where = exc.filename or out
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError(
            f"no space left on the device while {action} ({where}): the run stopped. The "
            f"finished cases are saved in {out}; free some space, then continue the run with "
            "resume=True"
        )
    return OutputError(f"cannot write {where} while {action}: {exc.strerror or exc}")


def _prepare_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: the output folder is a file; choose a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise OutputError(
            f"{out}: cannot create the output folder, a part of its path is a file"
        ) from None
    except OSError as exc:
        raise OutputError(
            f"{out}: cannot create the output folder ({exc.strerror or exc})"
        ) from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise OutputError(f"{out}: the output folder is not writable (permission denied)")


# --------------------------------------------------------------------------------------------
# Runners
# --------------------------------------------------------------------------------------------


def _serial(tasks: Iterator[CaseTask]) -> Iterator[CaseResult]:
    for task in tasks:
        yield evaluate_pair(task)


def _exit_with_parent(death: Any) -> None:
    """Pool worker initializer: end this worker as soon as the main process ends.

    ``death`` is the read end of a pipe whose only write end the main process holds; the
    kernel closes it when that process dies (even by SIGKILL), the read end then reports
    end-of-file and the watcher thread ends the worker. (Without it, workers blocked on their
    task queue, and the forkserver whose pipe they hold, outlive a killed run.)
    """
    import threading

    def watch() -> None:
        try:
            death.poll(None)
        except (OSError, EOFError, ValueError):
            pass
        os._exit(1)

    threading.Thread(target=watch, name="topobench-parent-watch", daemon=True).start()


def _process_pool(tasks: Iterator[CaseTask], workers: int) -> Iterator[CaseResult]:
    """Evaluate in ``workers`` processes with at most ``2 * workers`` cases in flight."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    # forkserver: safe beside the threads of a progress display; the server imports the
    # metrics once, so that each worker starts as a cheap fork of it.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["topobench.evaluate"])
    death_r, death_w = context.Pipe(duplex=False)  # workers end when this process does

    def pool() -> Any:
        return ProcessPoolExecutor(
            max_workers=workers,
            mp_context=context,
            initializer=_exit_with_parent,
            initargs=(death_r,),
        )

    ahead = 2 * workers
    pending: dict[Any, CaseTask] = {}
    executor = pool()
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
                executor = pool()
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
        death_w.close()
        death_r.close()


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
    proto = resolve_protocol(protocol, **overrides)
    if threshold is not None and not math.isfinite(threshold):
        raise InvalidParameterError(f"threshold must be a finite number, got {threshold}")
    if channel is not None and (isinstance(channel, bool) or not isinstance(channel, int)):
        raise InvalidParameterError(f"channel must be an integer, got {channel!r}")
    if spacing is not None:
        from topobench.metrics.distance import resolve_spacing

        values = (spacing,) if np.isscalar(spacing) else tuple(spacing)  # type: ignore[arg-type]
        checked = resolve_spacing(values, len(values))
        spacing = checked[0] if np.isscalar(spacing) else checked
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
    _prepare_out(out)
    lock = _OutputLock(out)
    try:
        lock.acquire()
    except OSError as exc:
        raise _output_error(exc, out, "locking the output folder") from None
    try:
        return _run_locked(
            pairing,
            out,
            proto=proto,
            threshold=threshold,
            channel=channel,
            spacing=spacing,
            pred_dir=Path(pred_dir),
            target_dir=Path(target_dir),
            pred_suffix=pred_suffix,
            target_suffix=target_suffix,
            maps_dir=maps_dir,
            n_workers=n_workers,
            dask=dask,
            dask_timeout=dask_timeout,
            resume=resume,
            overwrite=overwrite,
            dataset=dataset,
            on_start=on_start,
            on_result=on_result,
        )
    except TopobenchError:
        raise
    except OSError as exc:  # a write in the output folder failed
        raise _output_error(exc, out, "writing the results") from None
    finally:
        lock.release()


def _existing_results(out: Path, summary_path: Path, n_rows: int) -> InvalidParameterError:
    try:
        status = json.loads(summary_path.read_text(encoding="utf-8")).get("status", "unknown")
    except (OSError, ValueError, AttributeError):
        status = "unknown"
    if status == "running":
        state = "an interrupted run (summary.json: status running)"
    elif status == "complete":
        state = "a finished run (summary.json: status complete)"
    else:
        state = "an earlier run"
    return InvalidParameterError(
        f"{out} already holds results: {n_rows} cases in {CASES_FILE}, from {state}. If that "
        "run was interrupted and this is the same evaluation (same folders and options), finish "
        "it with resume=True: finished cases are kept, the others evaluated. To discard those "
        "results and evaluate everything again (other predictions, other options), use "
        "overwrite=True. Or write to another output folder"
    )


def _read_inputs(path: Path) -> dict[str, dict[str, str]]:
    """Last ``inputs.csv`` record of each case ({} when the file is absent or unreadable)."""
    if not path.exists():
        return {}
    try:
        rows = _read_cases(path, _INPUT_COLUMNS, repair=True)
    except (ResumeError, csv.Error, UnicodeDecodeError):  # lost to a crash: evaluate again
        return {}
    return {row["case"]: row for row in rows}


def _rewrite(path: Path, columns: Sequence[str], rows: Sequence[dict[str, str]]) -> None:
    """Replace a CSV file by ``rows`` (atomic)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        f.write(_csv_line(columns))
        for row in rows:
            f.write(_csv_line([row[c] for c in columns]))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _spacing_text(spacing: tuple[float, ...] | None) -> str:
    return "" if spacing is None else "x".join(f"{v:.6g}" for v in spacing)


def _closing(results: Iterator[CaseResult]) -> Iterator[CaseResult]:
    """``results``, closed (its pool or cluster shut down) however the loop over it ends."""
    try:
        yield from results
    finally:
        close = getattr(results, "close", None)
        if close is not None:
            close()


def _run_locked(
    pairing: Pairing,
    out: Path,
    *,
    proto: Protocol,
    threshold: float | None,
    channel: int | None,
    spacing: float | tuple[float, ...] | None,
    pred_dir: Path,
    target_dir: Path,
    pred_suffix: str,
    target_suffix: str,
    maps_dir: str | Path | None,
    n_workers: int,
    dask: str | None,
    dask_timeout: float,
    resume: bool,
    overwrite: bool,
    dataset: str | None,
    on_start: Callable[[int, int], None] | None,
    on_result: Callable[[CaseResult], None] | None,
) -> EvaluationReport:
    """The body of :func:`run_evaluation`, with the output folder locked."""
    cases_path, summary_path = out / CASES_FILE, out / SUMMARY_FILE
    inputs_path = out / INPUTS_FILE
    config = _config(proto, threshold, channel, spacing)
    pairing_info = {
        "pred_dir": str(pred_dir.resolve()),
        "target_dir": str(target_dir.resolve()),
        "pred_suffix": pred_suffix,
        "target_suffix": target_suffix,
    }

    # Results: at least one row (a header alone, or a torn first row, holds nothing to lose).
    n_rows = max(cases_path.read_bytes().count(b"\n") - 1, 0) if cases_path.exists() else 0
    has_results = n_rows > 0
    if has_results and not (resume or overwrite):
        raise _existing_results(out, summary_path, n_rows)
    previous: dict[str, Any] = {}
    if resume and has_results:
        try:
            previous = json.loads(summary_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise ResumeError(
                f"{out}: cannot resume without a readable {SUMMARY_FILE} recording the metric "
                "configuration"
            ) from None
        diffs = _differences(_comparable(previous), _comparable({"config": config, **pairing_info}))
        if diffs:
            raise ResumeError(
                f"{out}: cannot resume: the recorded configuration differs from this run's "
                f"({'; '.join(diffs)}). Rows computed with the recorded settings would mix with "
                "this run's. Resume with the recorded settings, or start again with "
                "overwrite=True (or another output folder)"
            )
        has_e2 = "e2" in (previous.get("columns") or [])
    else:
        has_e2 = _has_e2(proto, pairing.pairs)
    metrics = metric_columns(proto, 3 if has_e2 else 2)
    columns = ["case", "shape", *metrics, "seconds"]
    by_case = {p.case: p for p in pairing.pairs}

    # Resume: keep only the rows whose files are still the ones they were computed from.
    reevaluated: list[str] = []
    dropped: list[str] = []
    done_rows: list[dict[str, str]] = []
    if resume and has_results:
        rows = _read_cases(cases_path, columns, repair=True)
        recorded = _read_inputs(inputs_path)
        seen: set[str] = set()
        for row in rows:
            case = row["case"]
            if case in seen:  # written twice (by a run before the folder was locked): once
                continue
            seen.add(case)
            pair, rec = by_case.get(case), recorded.get(case)
            if pair is None:
                dropped.append(case)
            elif (
                rec is None
                or rec["pred"] != pair.pred.name
                or rec["target"] != pair.target.name
                or not _unchanged(rec["pred_fingerprint"], pair.pred)
                or not _unchanged(rec["target_fingerprint"], pair.target)
            ):
                reevaluated.append(case)
            else:
                done_rows.append(row)
        if len(done_rows) != len(rows):
            _rewrite(cases_path, columns, done_rows)
    done = {row["case"] for row in done_rows}
    todo = [p for p in pairing.pairs if p.case not in done]
    started = time.time()

    def summary(status: str, failures: list[tuple[str, str]]) -> dict[str, Any]:
        rows = _read_cases(cases_path, columns, repair=False)
        inputs = _read_inputs(inputs_path)
        failed = {case for case, _ in failures}
        spacing = {}
        for row in rows:
            text = inputs.get(row["case"], {}).get("spacing", "")
            if text:
                spacing[row["case"]] = [float(v) for v in text.split("x")]
        out_summary = {
            "format": "topobench-evaluate/1",
            "topobench_version": __version__,
            "status": status,
            "dataset": dataset,
            "config": config,
            "columns": columns,
            **pairing_info,
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
            "spacing": spacing,
            "seconds": round(time.time() - started, 3),
        }
        if resume:
            out_summary["resume"] = {
                "kept": len(done_rows),
                "reevaluated": reevaluated,
                "dropped": dropped,
            }
        return out_summary

    case_log = _LineLog(cases_path, columns, keep=resume and has_results)
    input_log = _LineLog(inputs_path, _INPUT_COLUMNS, keep=resume and has_results)
    failure_log = _LineLog(out / FAILURES_FILE, _FAILURE_COLUMNS, keep=False)
    failures: list[tuple[str, str]] = []
    not_binary: list[str] = []
    try:
        for case, reason in pairing.problems():
            failures.append((case, reason))
            failure_log.append([case, "", "", reason])
        _write_json_atomic(summary_path, summary("running", failures))
        if on_start is not None:
            on_start(len(todo), len(done))
        maps = Path(maps_dir) if maps_dir is not None else None
        if dask is not None:
            tasks = (
                CaseTask(p, proto, threshold, maps, channel=channel, spacing=spacing)
                for p in todo
            )
            results = _dask(tasks, dask, n_workers, dask_timeout)
        elif n_workers == 1 or len(todo) <= 1:  # one case: its windows use the cores instead
            tasks = (
                CaseTask(p, proto, threshold, maps, threads=n_workers, channel=channel,
                         spacing=spacing)
                for p in todo
            )
            results = _serial(tasks)
        else:
            tasks = (
                CaseTask(p, proto, threshold, maps, channel=channel, spacing=spacing)
                for p in todo
            )
            results = _process_pool(tasks, min(n_workers, len(todo)))
        for result in _closing(results):
            pair = by_case[result.case]
            if result.ok:
                shape = "x".join(map(str, result.shape))
                values = [
                    repr(float(result.metrics[m])) if m in result.metrics else "" for m in metrics
                ]
                # The fingerprint first: a row without one is evaluated again on resume, so it
                # needs no fsync of its own (the row's fsync follows; a kill loses neither).
                input_log.append(
                    [
                        result.case,
                        pair.pred.name,
                        pair.target.name,
                        *result.fingerprints,
                        _spacing_text(result.spacing),
                    ],
                    sync=False,
                )
                case_log.append([result.case, shape, *values, f"{result.seconds:.3f}"])
            else:
                failures.append((result.case, result.error or "unknown error"))
                failure_log.append([result.case, pair.pred, pair.target, result.error])
                if result.error_kind == "not_binary":
                    not_binary.append(result.case)
            if on_result is not None:
                on_result(result)
            if result.error_kind == "no_space":
                raise DiskFullError(
                    f"no space left on the device while writing the error map of "
                    f"{result.case} ({maps}): the run stopped. The finished cases are saved in "
                    f"{out}; free some space, then continue the run with resume=True"
                )
    finally:
        case_log.close()
        input_log.close()
        failure_log.close()
    _sort_cases(cases_path, columns)
    final_rows = {row["case"] for row in _read_cases(cases_path, columns, repair=False)}
    inputs = _read_inputs(inputs_path)
    _rewrite(inputs_path, _INPUT_COLUMNS, [inputs[c] for c in sorted(final_rows) if c in inputs])
    final = summary("complete", failures)
    _write_json_atomic(summary_path, final)
    return EvaluationReport(
        out,
        final,
        len(todo),
        len(done),
        tuple(failures),
        not_binary=tuple(not_binary),
        reevaluated=tuple(reevaluated),
        dropped=tuple(dropped),
    )


# The DataFrame entry (no files written), beside run_evaluation; label maps per label too.
from topobench.label_evaluation import evaluate_folders  # noqa: E402

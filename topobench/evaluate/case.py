"""One case: the picklable task (:class:`CaseTask`), its outcome (:class:`CaseResult`) and the
function a worker runs (:func:`evaluate_pair`), for files (:class:`~topobench.evaluate.CasePair`)
and in-memory masks (:class:`ArrayCase`); the fingerprints that let a resumed run tell whether
a case's inputs changed.
"""

from __future__ import annotations

import errno
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from topobench.errors import InvalidMaskError, TopobenchError
from topobench.evaluate.pairing import CasePair
from topobench.io import NotBinaryError, is_nifti, read_mask_file
from topobench.metrics import Protocol, evaluate_case

__all__ = [
    "ArrayCase",
    "CaseResult",
    "CaseTask",
    "array_fingerprint",
    "evaluate_pair",
    "fingerprint",
    "import_readers",
    "unchanged",
]


@dataclass(frozen=True, eq=False)
class ArrayCase:
    """A case held in memory: prediction and target masks as arrays.

    Attributes
    ----------
    case : str
        Case name (the ``case`` column of ``cases.csv``).
    pred, target : numpy.ndarray, shape (H, W) or (Z, H, W)
        Binary masks (bool, or integers {0, 1} / {0, 255}); with ``threshold`` the prediction
        may be a probability map.
    spacing : tuple of float, optional
        Voxel size per axis for the distance metrics.

    Resume compares :func:`array_fingerprint` of the arrays (a hash of their bytes, shape and
    dtype) with the one recorded in ``inputs.csv``; a process pool pickles the arrays.
    """

    case: str
    pred: np.ndarray
    target: np.ndarray
    spacing: tuple[float, ...] | None = None


#: A case to evaluate: two files or two arrays.
Case = CasePair | ArrayCase


@dataclass(frozen=True)
class CaseTask:
    """Everything a worker needs to evaluate one case (small and picklable).

    Attributes
    ----------
    pair : CasePair or ArrayCase
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

    pair: CasePair | ArrayCase
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


def array_fingerprint(arr: np.ndarray) -> str:
    """``array:<shape>:<dtype>:blake2b`` of an in-memory mask (128-bit BLAKE2b of its bytes).

    Two arrays get the same fingerprint exactly when they hold the same values with the same
    shape and dtype (memory order does not matter: the bytes are hashed in C order).
    """
    arr = np.asarray(arr)
    digest = hashlib.blake2b(np.ascontiguousarray(arr).view(np.uint8).data, digest_size=16)
    shape = "x".join(str(s) for s in arr.shape)
    return f"array:{shape}:{arr.dtype.str}:{digest.hexdigest()}"


def _file_unchanged(recorded: str, path: Path) -> bool:
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


def source_names(case: CasePair | ArrayCase) -> tuple[str, str]:
    """The ``pred`` and ``target`` entries of ``inputs.csv``: file names, empty for arrays."""
    if isinstance(case, ArrayCase):
        return "", ""
    return case.pred.name, case.target.name


def unchanged(case: CasePair | ArrayCase, recorded: dict[str, str]) -> bool:
    """Whether ``case`` still has the inputs of its ``inputs.csv`` record ``recorded``."""
    if (recorded["pred"], recorded["target"]) != source_names(case):
        return False
    if isinstance(case, ArrayCase):
        return (recorded["pred_fingerprint"], recorded["target_fingerprint"]) == (
            array_fingerprint(case.pred),
            array_fingerprint(case.target),
        )
    return _file_unchanged(recorded["pred_fingerprint"], case.pred) and _file_unchanged(
        recorded["target_fingerprint"], case.target
    )


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


@dataclass(frozen=True)
class _Inputs:
    """The masks of one case, read and validated, with what the row records about them."""

    pred: np.ndarray
    target: np.ndarray
    spacing: tuple[float, ...] | None


class _NotBinary(Exception):
    """A prediction read without a threshold is a probability map (carries the reason)."""


def _read_files(task: CaseTask, pair: CasePair) -> _Inputs:
    canonical = is_nifti(pair.pred) and is_nifti(pair.target)
    try:
        pred_file = read_mask_file(
            pair.pred, threshold=task.threshold, channel=task.channel, canonical=canonical
        )
    except NotBinaryError as exc:
        raise _NotBinary(_reason(exc)) from exc
    target_file = read_mask_file(pair.target, canonical=canonical)
    _same_grid(pred_file, target_file, pair)
    spacing = (
        target_file.spacing or pred_file.spacing or _given_spacing(task, target_file.mask.ndim)
    )
    return _Inputs(pred_file.mask, target_file.mask, spacing)


def _read_arrays(task: CaseTask, case: ArrayCase) -> _Inputs:
    from topobench.masks import as_mask

    try:
        pred = as_mask(case.pred, name=f"{case.case}: pred", threshold=task.threshold)
    except (InvalidMaskError, TypeError) as exc:
        arr = np.asarray(case.pred)
        if task.threshold is None and arr.ndim in (2, 3) and _probability_like(arr):
            raise _NotBinary(
                f"{case.case}: the prediction holds {arr.dtype} values in "
                f"[{arr.min():g}, {arr.max():g}], not a binary mask (a probability map?); "
                "binarise it with threshold=..."
            ) from exc
        raise
    target = as_mask(case.target, name=f"{case.case}: target")
    spacing = None
    if case.spacing is not None:
        from topobench.metrics.distance import resolve_spacing

        spacing = resolve_spacing(case.spacing, target.ndim)
    return _Inputs(pred, target, spacing or _given_spacing(task, target.ndim))


def _probability_like(arr: np.ndarray) -> bool:
    """Float values without NaN, or non-negative integers other than {0, 1} / {0, 255}."""
    if np.issubdtype(arr.dtype, np.floating):
        return not np.isnan(arr).any()
    return np.issubdtype(arr.dtype, np.integer) and arr.size > 0 and arr.min() >= 0


def _fingerprints(case: CasePair | ArrayCase) -> tuple[str, str]:
    if isinstance(case, ArrayCase):
        return array_fingerprint(case.pred), array_fingerprint(case.target)
    return fingerprint(case.pred), fingerprint(case.target)


def _write_map(task: CaseTask, inputs: _Inputs) -> tuple[str, str, str] | None:
    """Write the case's error map; ``(error, map_error, error_kind)`` when that failed."""
    map_path = Path(task.maps_dir) / f"{task.pair.case}.png"  # type: ignore[arg-type]
    try:
        from topobench.maps import write_error_map

        write_error_map(map_path, inputs.pred, inputs.target)
    except Exception as exc:
        full = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
        reason = f"error map {map_path} could not be written: {_reason(exc)}"
        return reason, _reason(exc), "no_space" if full else "map"
    return None


def import_readers(task: CaseTask) -> None:
    """Load, in this process, the modules that evaluating ``task`` imports on first use: the
    readers of its files (imageio and Pillow for PNG, tifffile, nibabel) and the error maps.

    Called before pool workers are forked from this process, so that each does not import them
    again (about 0.06 s of CPU for PNG). Reads the case's files once; never raises.
    """
    case = task.pair
    try:
        if isinstance(case, CasePair):
            read_mask_file(case.target)
            if case.pred.suffixes != case.target.suffixes:
                read_mask_file(case.pred, threshold=task.threshold, channel=task.channel)
        if task.maps_dir is not None:
            import topobench.maps  # noqa: F401
    except Exception:  # the case fails on its own, in its worker
        pass


def evaluate_pair(task: CaseTask) -> CaseResult:
    """Read, validate and evaluate one case; never raises for a bad case.

    Runs in a worker process (or Dask worker): it reads its own files, so the caller never holds
    more than the cases in flight. Metrics use ``task.threads`` threads. When both files are
    NIfTI, both are reoriented to the closest canonical (RAS+) orientation and must then lie on
    the same voxel grid (same affine); the voxel spacing is passed to the metrics that take one.
    An :class:`ArrayCase` is validated as masks (``threshold`` binarises its prediction) and
    evaluated as it is. A case whose error map cannot be written fails (so that a resumed run
    retries it).

    Returns
    -------
    CaseResult
        With ``error`` set for an unreadable file, non-binary values (without ``threshold``),
        mismatched shapes or grids, a dimension the protocol does not accept, an error map that
        could not be written, or any other exception.
    """
    case = task.pair
    start = time.perf_counter()
    shape: tuple[int, ...] = ()
    fingerprints = ("", "")
    spacing = None
    try:
        fingerprints = _fingerprints(case)
        if isinstance(case, ArrayCase):
            inputs = _read_arrays(task, case)
        else:
            inputs = _read_files(task, case)
        shape = tuple(int(s) for s in inputs.target.shape)
        spacing = inputs.spacing
        extra = {"spacing": spacing} if spacing is not None and _metrics_take_spacing() else {}
        metrics = evaluate_case(
            inputs.pred, inputs.target, protocol=task.protocol, workers=task.threads, **extra
        )
    except _NotBinary as exc:
        return CaseResult(case.case, seconds=time.perf_counter() - start, error=str(exc),
                          error_kind="not_binary", fingerprints=fingerprints)
    except Exception as exc:  # one bad case must not stop the others
        return CaseResult(case.case, shape, seconds=time.perf_counter() - start,
                          error=_reason(exc), fingerprints=fingerprints, spacing=spacing)
    seconds = time.perf_counter() - start
    failed = _write_map(task, inputs) if task.maps_dir is not None else None
    if failed is not None:
        error, map_error, kind = failed
        return CaseResult(case.case, shape, seconds=seconds, error=error, map_error=map_error,
                          error_kind=kind, fingerprints=fingerprints, spacing=spacing)
    return CaseResult(case.case, shape, metrics, seconds, fingerprints=fingerprints,
                      spacing=spacing)

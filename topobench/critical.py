"""The critical pixel mask of ContextLoss (docs/losses.md; Schacht et al. 2025, Sec. 2.1, Fig. 3).

**Reconstruction.** The paper's pseudo-code (supplement A.1) is not available; this module
implements the construction that topobench derives from the text and Fig. 3, in one place:

1. missed connections: ``SY = skel(Y)``, ``E = SY & ~Xb``, ``K = SY & Xb``,
   ``M_fn = Y & (dist(E) < dist(K))``;
2. false connections: ``SX = skel(Xb)``, ``E' = SX & ~Y``, ``K' = SX & Y``,
   ``M_fp = Xb & (dist(E') < dist(K'))``;
3. ``M = M_fn | M_fp``; the "thin" variant (Thin CLoss) uses ``M = E | E'``.

``skel`` is the clDice soft skeleton (Shit et al. 2021, 50 iterations) applied to a binary mask,
where it is an exact binary morphology (:func:`binary_soft_skeleton`). ``dist(A)`` is the exact
Euclidean distance (in pixels) to the nearest pixel of ``A``, +inf when ``A`` is empty.

This module is the numpy reference and never imports torch itself. Torch tensors are accepted
and returned as tensors on the same device; with the "torch" backend (the default for tensors
on an accelerator, see :func:`resolve_backend`) :func:`critical_mask` hands them to
:func:`topobench.losses.device.critical_mask_torch`, which gives exactly the same mask without
leaving the device.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import edt as _edt
import numpy as np
from scipy import ndimage as ndi

from topobench.errors import InvalidMaskError, InvalidParameterError
from topobench.masks import _is_tensor, as_mask, map_mask_pairs, to_numpy
from topobench.metrics.topology import label_components

__all__ = [
    "Backend",
    "CriticalMask",
    "MaskKind",
    "binary_soft_skeleton",
    "critical_components",
    "critical_mask",
    "resolve_backend",
    "set_backend",
    "use_backend",
]

MaskKind = Literal["context", "thin"]
Backend = Literal["auto", "numpy", "torch"]
_BACKENDS = ("auto", "numpy", "torch")
# "auto" on a CPU tensor: the numpy path is faster there (benchmarks/bench_losses.py --paths)
_AUTO_ON_CPU = "numpy"
_default_backend: list[str] = ["auto"]
_FULL_CONNECTIVITY = {2: 8, 3: 26}
_SMALL = 1 << 16  # arrays below this size use scipy's distance transform
_MASK_KINDS = ("context", "thin")


@dataclass(frozen=True, eq=False)
class CriticalMask:
    """The two parts of the critical mask of one (prediction, target) pair.

    Attributes
    ----------
    missed : numpy.ndarray of bool, shape (H, W) or (D, H, W)
        ``M_fn``: context of missed connections, a subset of the target (``E`` for "thin").
    false : numpy.ndarray of bool, same shape
        ``M_fp``: context of false connections, a subset of the prediction (``E'`` for "thin").
    """

    missed: np.ndarray
    false: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        """The critical mask ``M = missed | false`` (bool, same shape)."""
        return self.missed | self.false

    def to_dict(self) -> dict[str, int]:
        """Pixel counts: ``{"missed": ..., "false": ..., "mask": ...}``."""
        return {
            "missed": int(np.count_nonzero(self.missed)),
            "false": int(np.count_nonzero(self.false)),
            "mask": int(np.count_nonzero(self.mask)),
        }


def _axis_slices(ndim: int, axis: int, start: int | None, stop: int | None) -> tuple[slice, ...]:
    index = [slice(None)] * ndim
    index[axis] = slice(start, stop)
    return tuple(index)


def _erode_cross(mask: np.ndarray) -> np.ndarray:
    """Binary erosion with the cross (face-neighbour) element; outside the array is foreground.

    Matches ``-max_pool(-x)`` with kernels (3, 1), (1, 3) (and (1, 1, 3) in 3D) and -inf padding.
    """
    out = mask.copy()
    for axis in range(mask.ndim):
        out[_axis_slices(mask.ndim, axis, 1, None)] &= mask[_axis_slices(mask.ndim, axis, None, -1)]
        out[_axis_slices(mask.ndim, axis, None, -1)] &= mask[_axis_slices(mask.ndim, axis, 1, None)]
    return out


def _dilate_box(mask: np.ndarray) -> np.ndarray:
    """Binary dilation with the full 3x3(x3) box; outside the array is background.

    Matches ``max_pool(x, 3, stride=1, padding=1)`` (separable: one pass per axis).
    """
    out = mask
    for axis in range(mask.ndim):
        src = out
        out = src.copy()
        out[_axis_slices(mask.ndim, axis, 1, None)] |= src[_axis_slices(mask.ndim, axis, None, -1)]
        out[_axis_slices(mask.ndim, axis, None, -1)] |= src[_axis_slices(mask.ndim, axis, 1, None)]
    return out


def binary_soft_skeleton(mask: Any, iterations: int = 50) -> np.ndarray:
    """The clDice soft skeleton of a binary mask, computed exactly with binary morphology.

    On a {0, 1} input the soft skeleton of Shit et al. (2021) reduces to
    ``skel = X & ~open(X)``, then ``iterations`` times ``X = erode(X)``,
    ``skel |= X & ~open(X)``, with ``open = dilate(erode(.))``, a cross-shaped erosion that treats
    the outside as foreground and a 3x3(x3) dilation that treats it as background (the border
    behaviour of the max-pool version). The loop stops early once erosion has emptied the mask.
    The result equals ``topobench.losses.soft_skeleton`` on the same mask.

    Parameters
    ----------
    mask : array_like of bool or {0, 1}, shape (H, W) or (D, H, W)
    iterations : int
        Erosion steps (50 as in the clDice and ContextLoss papers).

    Returns
    -------
    numpy.ndarray of bool, same shape: the skeleton pixels (a subset of ``mask``).

    Examples
    --------
    >>> square = np.zeros((7, 7), bool); square[1:6, 1:6] = True
    >>> np.argwhere(binary_soft_skeleton(square)).tolist()
    [[3, 3]]
    """
    if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)):
        raise InvalidParameterError(f"iterations must be an integer, got {iterations!r}")
    if iterations < 0:
        raise InvalidParameterError(f"iterations must be >= 0, got {iterations}")
    img = np.ascontiguousarray(as_mask(to_numpy(mask), name="mask"))
    eroded = _erode_cross(img)
    skel = img & ~_dilate_box(eroded)
    for _ in range(iterations):
        img = eroded
        if not img.any():
            break
        eroded = _erode_cross(img)
        skel |= img & ~_dilate_box(eroded)
        if np.array_equal(eroded, img):  # a fixed point (it fills the array): nothing changes
            break
    return skel


def _distance_to(features: np.ndarray) -> np.ndarray:
    """Exact Euclidean distance (pixels) of every pixel to the nearest True pixel of ``features``.

    +inf everywhere when ``features`` is empty.
    """
    if not features.any():
        return np.full(features.shape, np.inf, dtype=np.float32)
    if features.size < _SMALL:  # scipy has less overhead on small arrays; both are exact
        return ndi.distance_transform_edt(~features)
    return _edt.edt(~features, black_border=False, parallel=1)


def _reach(skeleton: np.ndarray, region: np.ndarray, max_steps: int = 24) -> int | None:
    """Smallest ``r`` such that every ``region`` pixel lies within ``r`` box steps of ``skeleton``.

    ``None`` when ``max_steps`` dilations do not cover ``region``.
    """
    covered = skeleton
    missing = region & ~covered
    steps = 0
    while missing.any():
        if steps == max_steps:
            return None
        covered = _dilate_box(covered)
        missing &= ~covered
        steps += 1
    return steps


def _volume(box: list[tuple[int, int]]) -> int:
    return math.prod(b - a for a, b in box)


def _error_boxes(error: np.ndarray, margin: int) -> list[tuple[slice, ...]] | None:
    """Bounding boxes of the pieces of ``error``, grown by ``margin`` and merged where they meet.

    ``None`` when the boxes would cover much of the array (then whole-array work is cheaper).
    """
    labels, _ = label_components(error, _FULL_CONNECTIVITY[error.ndim])
    boxes = [
        [(max(sl.start - margin, 0), min(sl.stop + margin, n)) for sl, n in zip(obj, error.shape)]
        for obj in ndi.find_objects(labels)
        if obj is not None
    ]
    if len(boxes) > 256:
        return None
    merged = True
    while merged:  # merge two boxes where their union is no larger than the two apart
        merged = False
        out: list[list[tuple[int, int]]] = []
        for box in boxes:
            for other in out:
                union = [(min(a0, b0), max(a1, b1)) for (a0, a1), (b0, b1) in zip(box, other)]
                if _volume(union) <= _volume(box) + _volume(other):
                    other[:] = union
                    merged = True
                    break
            else:
                out.append(box)
        boxes = out
    volume = sum(_volume(box) for box in boxes)
    if volume > 0.5 * error.size:
        return None
    return [tuple(slice(a, b) for a, b in box) for box in boxes]


def _context(skeleton: np.ndarray, covered: np.ndarray, region: np.ndarray) -> np.ndarray:
    """``region & (dist(E) < dist(K))``, ``E = skeleton & ~covered``, ``K = skeleton & covered``.

    Exact. Every ``region`` pixel lies within a distance ``R`` of the skeleton (found by box
    dilations), so a pixel with ``dist(E) < dist(K)`` lies within ``R`` of ``E``, and only
    ``E``/``K`` pixels within ``2R`` of ``E`` can decide it: both distance transforms then run on
    small boxes around the pieces of ``E`` (each box's rim of width ``R`` is only context) instead
    of the whole array.
    """
    error = skeleton & ~covered
    if not error.any():
        return np.zeros_like(region)
    correct = skeleton & covered
    if not correct.any():
        return region.copy()
    steps = _reach(skeleton, region)
    boxes = None
    if steps is not None:
        reach = steps * float(np.sqrt(region.ndim)) + 0.5  # Chebyshev steps -> Euclidean bound
        core = int(np.ceil(reach)) + 1
        boxes = _error_boxes(error, 2 * core)
    if boxes is None:
        return region & (_distance_to(error) < _distance_to(correct))
    out = np.zeros_like(region)
    for box in boxes:
        d_error = _distance_to(error[box])
        d_correct = _distance_to(correct[box])
        inside = region[box] & (d_error < d_correct) & (d_error <= reach)
        # keep only the box's core: pixels at least `core` away from a cut (non-border) side
        keep = []
        for sl, n in zip(box, region.shape):
            lo = 0 if sl.start == 0 else core
            hi = (sl.stop - sl.start) if sl.stop == n else (sl.stop - sl.start - core)
            keep.append(slice(lo, max(hi, lo)))
        keep = tuple(keep)
        out[box][keep] |= inside[keep]
    return out


def critical_components(
    pred_binary: Any, target: Any, *, mask: MaskKind = "context", iterations: int = 50
) -> CriticalMask:
    """The critical mask of one pair, split into missed and false connections.

    Parameters
    ----------
    pred_binary : array_like or torch.Tensor, shape (H, W) or (D, H, W)
        Binarised prediction ``Xb`` (bool or {0, 1} / {0, 255} integers).
    target : array_like or torch.Tensor, same shape
        Binary target ``Y``.
    mask : {"context", "thin"}
        "context" (CLoss): every label (prediction) pixel closer to the broken (false) part of the
        skeleton than to the intact part. "thin" (Thin CLoss): the error skeletons ``E``, ``E'``.
    iterations : int
        Soft-skeleton iterations (50).

    Returns
    -------
    CriticalMask
        ``missed`` (subset of the target) and ``false`` (subset of the prediction), numpy bool
        arrays of the input shape. Both are empty when the prediction equals the target.

    Examples
    --------
    >>> target = np.zeros((5, 9), bool); target[2, :] = True
    >>> pred = target.copy(); pred[2, 4] = False
    >>> critical_components(pred, target).missed[2].astype(int).tolist()
    [0, 0, 0, 0, 1, 0, 0, 0, 0]
    """
    if mask not in _MASK_KINDS:
        raise InvalidParameterError(f"mask must be 'context' or 'thin', got {mask!r}")
    xb = as_mask(to_numpy(pred_binary), name="pred_binary")
    y = as_mask(to_numpy(target), name="target")
    if xb.shape != y.shape:
        raise InvalidMaskError(
            f"pred_binary and target must have the same shape, got {xb.shape} and {y.shape}"
        )
    if np.array_equal(xb, y):
        empty = np.zeros(y.shape, dtype=bool)
        return CriticalMask(missed=empty, false=empty.copy())
    skel_y = binary_soft_skeleton(y, iterations)
    skel_x = binary_soft_skeleton(xb, iterations)
    if mask == "thin":
        return CriticalMask(missed=skel_y & ~xb, false=skel_x & ~y)
    # Missed connections: the target skeleton outside the prediction, with its context in Y.
    # False connections: the prediction skeleton outside the target, with its context in Xb.
    return CriticalMask(missed=_context(skel_y, xb, y), false=_context(skel_x, y, xb))


def _check_backend(backend: str) -> str:
    if backend not in _BACKENDS:
        raise InvalidParameterError(
            f"backend must be one of {', '.join(_BACKENDS)}, got {backend!r}"
        )
    return backend


def set_backend(backend: Backend) -> str:
    """Set the process-wide default backend of :func:`critical_mask`, ``keep_supported`` and the
    clDice target skeleton; returns the previous one.

    "auto" (the initial default): the torch implementation for tensors on an accelerator, the
    numpy one for numpy arrays and for CPU tensors (it is faster on the CPU); "torch": the torch
    implementation for every tensor; "numpy": always the numpy reference (a host round-trip for
    tensors).
    """
    previous = _default_backend[0]
    _default_backend[0] = _check_backend(backend)
    return previous


@contextmanager
def use_backend(backend: Backend) -> Iterator[None]:
    """Context manager: :func:`set_backend` for the duration of a ``with`` block."""
    previous = set_backend(backend)
    try:
        yield
    finally:
        _default_backend[0] = previous


def resolve_backend(backend: Backend | None, x: Any) -> Literal["numpy", "torch"]:
    """The implementation that runs for input ``x``: "numpy" or "torch".

    ``backend`` None means the process default (:func:`set_backend`). Numpy inputs always take
    the numpy path; tensors take the torch path with "torch", and with "auto" when they are not
    on the CPU.
    """
    name = _check_backend(_default_backend[0] if backend is None else backend)
    if not _is_tensor(x) or name == "numpy":
        return "numpy"
    if name == "torch":
        return "torch"
    return "torch" if x.device.type != "cpu" else _AUTO_ON_CPU  # type: ignore[return-value]


def critical_mask(
    pred_binary: Any,
    target: Any,
    *,
    mask: MaskKind = "context",
    iterations: int = 50,
    backend: Backend | None = None,
) -> Any:
    """The critical mask ``M`` (docs/losses.md) of one pair or of a batch.

    Parameters
    ----------
    pred_binary : numpy.ndarray or torch.Tensor
        Binarised prediction: one pair ``(H, W)`` / ``(D, H, W)``, or a batch ``(B, 1, H, W)`` /
        ``(B, 1, D, H, W)``.
    target : same kind and shape as ``pred_binary``
        Binary target.
    mask : {"context", "thin"}
        See :func:`critical_components`.
    iterations : int
        Soft-skeleton iterations (50).
    backend : {"auto", "numpy", "torch"}, optional
        Which implementation runs for tensors (:func:`resolve_backend`; default: the process
        default, initially "auto": torch on an accelerator, numpy on the CPU). Both give the
        same mask.

    Returns
    -------
    numpy.ndarray or torch.Tensor of bool
        Same kind as ``pred_binary`` (a tensor stays on its device), same shape. It carries no
        gradient.
    """
    if mask not in _MASK_KINDS:
        raise InvalidParameterError(f"mask must be 'context' or 'thin', got {mask!r}")
    if resolve_backend(backend, pred_binary) == "torch":
        from topobench.losses.device import critical_mask_torch  # torch is loaded already

        return critical_mask_torch(pred_binary, target, mask=mask, iterations=iterations)
    return map_mask_pairs(
        lambda xb, y: critical_components(xb, y, mask=mask, iterations=iterations).mask,
        pred_binary,
        target,
        names=("pred_binary", "target"),
    )


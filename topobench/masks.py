"""The one validator for binary masks and the one resolver for connectivity.

Conventions: docs/metrics.md.

A mask is a 2D ``(H, W)`` or 3D ``(Z, H, W)`` array of bool, or of integers holding only {0, 1}
or only {0, 255}. Probability maps are accepted only with an explicit ``threshold``.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from topobench.errors import InvalidMaskError, InvalidMaskTypeError, InvalidParameterError

__all__ = [
    "as_mask",
    "as_mask_pair",
    "dual_connectivity",
    "map_mask_pairs",
    "resolve_connectivity",
    "slice_connectivity",
    "to_numpy",
]

_FULL = {2: 8, 3: 26}
_ALLOWED = {2: (4, 8), 3: (6, 26)}
_DUAL = {4: 8, 8: 4, 6: 26, 26: 6}
# Connectivity inside a 2D slice of a volume (2D connectivities stay): the neighbours of a
# 26- / 6-neighbourhood that lie in the slice's plane are its 8- / 4-neighbourhood.
_SLICE = {26: 8, 6: 4, 8: 8, 4: 4}


def as_mask(mask: Any, *, name: str = "mask", threshold: float | None = None) -> np.ndarray:
    """Validate ``mask`` and return it as a boolean array of the same shape.

    Parameters
    ----------
    mask : array_like, shape (H, W) or (Z, H, W)
        bool, or integers holding only {0, 1} or only {0, 255}. With ``threshold``, any real
        dtype (a probability map): foreground is ``mask > threshold``.
    name : str
        Used in error messages ("pred", "target", a file name, ...).
    threshold : float, optional
        Binarise a probability map explicitly. NaN values are still an error.

    Returns
    -------
    numpy.ndarray of bool, same shape (no copy when the input is already bool).

    Raises
    ------
    InvalidMaskError (a ValueError)
        Wrong dimension, empty array, NaN, integer values outside {0, 1} / {0, 255}.
    InvalidMaskTypeError (a TypeError)
        Float (or other non-integer) dtype without ``threshold``.

    Examples
    --------
    >>> as_mask(np.array([[0, 255], [255, 0]], dtype=np.uint8)).tolist()
    [[False, True], [True, False]]
    """
    arr = np.asarray(mask)
    if arr.ndim not in (2, 3):
        raise InvalidMaskError(
            f"{name}: expected a 2D (H, W) or 3D (Z, H, W) mask, got {arr.ndim}D array of shape "
            f"{arr.shape}"
        )
    if arr.size == 0:
        raise InvalidMaskError(f"{name}: expected a non-empty array, got shape {arr.shape}")
    if threshold is not None:
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise InvalidMaskTypeError(
                f"{name}: expected a numeric probability map, got {arr.dtype}"
            )
        if np.issubdtype(arr.dtype, np.floating) and np.isnan(arr).any():
            raise InvalidMaskError(f"{name}: expected finite probabilities, got NaN values")
        return arr > threshold
    if arr.dtype == bool:
        return arr
    if np.issubdtype(arr.dtype, np.floating):
        if np.isnan(arr).any():
            raise InvalidMaskError(f"{name}: expected a binary mask, got a float array with NaN")
        raise InvalidMaskTypeError(
            f"{name}: expected a bool or integer mask with values {{0, 1}} or {{0, 255}}, got "
            f"dtype {arr.dtype}; pass threshold=... to binarise a probability map"
        )
    if not np.issubdtype(arr.dtype, np.integer):
        raise InvalidMaskTypeError(
            f"{name}: expected a bool or integer mask, got dtype {arr.dtype}"
        )
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi not in (0, 1, 255):
        raise InvalidMaskError(
            f"{name}: expected values in {{0, 1}} or {{0, 255}}, got values in [{lo}, {hi}]"
        )
    fg = arr != 0
    if hi == 255 and np.any(fg & (arr != 255)):
        bad = np.unique(arr[fg & (arr != 255)])[:5].tolist()
        raise InvalidMaskError(
            f"{name}: expected values in {{0, 1}} or {{0, 255}}, got also {bad}"
        )
    return fg


def as_mask_pair(
    pred: Any, target: Any, *, threshold: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a (prediction, target) pair: both masks, same shape.

    ``threshold`` binarises the prediction only.
    """
    p = as_mask(pred, name="pred", threshold=threshold)
    t = as_mask(target, name="target")
    if p.shape != t.shape:
        raise InvalidMaskError(
            f"pred and target must have the same shape, got pred {p.shape} and target {t.shape}"
        )
    return p, t


def resolve_connectivity(connectivity: int | None, ndim: int) -> int:
    """Return the foreground connectivity for an ``ndim``-D mask (None -> 8 in 2D, 26 in 3D).

    Raises ``InvalidParameterError`` (a ValueError) for anything but 4/8 in 2D or 6/26 in 3D;
    there is never a silent fallback.
    """
    if ndim not in _ALLOWED:
        raise InvalidParameterError(f"expected a 2D or 3D mask, got {ndim}D")
    if connectivity is None:
        return _FULL[ndim]
    if isinstance(connectivity, bool) or not isinstance(connectivity, (int, np.integer)):
        raise InvalidParameterError(
            f"connectivity must be an integer, got {type(connectivity).__name__}"
        )
    c = int(connectivity)
    if c not in _ALLOWED[ndim]:
        allowed = " or ".join(map(str, _ALLOWED[ndim]))
        raise InvalidParameterError(
            f"connectivity {c} is not valid for a {ndim}D mask: expected {allowed}"
        )
    return c


def slice_connectivity(connectivity: int) -> int:
    """The connectivity within a 2D slice of a volume (or an axis of length 1 dropped):
    26 -> 8, 6 -> 4; 8 and 4 unchanged."""
    try:
        return _SLICE[int(connectivity)]
    except KeyError:
        raise InvalidParameterError(
            f"expected connectivity 4, 8, 6 or 26, got {connectivity}"
        ) from None


def dual_connectivity(connectivity: int) -> int:
    """The background connectivity paired with a foreground one (8<->4, 26<->6)."""
    try:
        return _DUAL[int(connectivity)]
    except KeyError:
        raise InvalidParameterError(
            f"expected connectivity 4, 8, 6 or 26, got {connectivity}"
        ) from None


def _is_tensor(x: Any) -> bool:
    """Whether ``x`` is a ``torch.Tensor``, including subclasses (MONAI's ``MetaTensor``, ...).

    Does not import torch: without it loaded no object can be a tensor.
    """
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def to_numpy(x: Any) -> np.ndarray:
    """A numpy view/copy of an array or a torch tensor (detached, on the CPU); torch is not
    imported here."""
    if _is_tensor(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def map_mask_pairs(
    fn: Any, first: Any, second: Any, *, names: tuple[str, str] = ("pred", "target")
) -> Any:
    """Apply ``fn(a, b) -> bool array`` to one pair or to each pair of a batch.

    Parameters
    ----------
    fn : callable
        Takes two arrays ``(H, W)`` or ``(D, H, W)`` and returns a bool array of that shape.
    first, second : numpy.ndarray or torch.Tensor
        One pair ``(H, W)`` / ``(D, H, W)``, or a batch ``(B, 1, H, W)`` / ``(B, 1, D, H, W)``.
    names : (str, str)
        The arguments' names, for error messages.

    Returns
    -------
    numpy.ndarray or torch.Tensor of bool
        Same kind as ``first`` (a tensor stays on its device) and same shape.
    """
    device = first.device if _is_tensor(first) else None
    a, b = to_numpy(first), to_numpy(second)
    if a.shape != b.shape:
        raise InvalidMaskError(
            f"{names[0]} and {names[1]} must have the same shape, got {a.shape} and {b.shape}"
        )
    if a.ndim in (2, 3):
        out = np.asarray(fn(a, b), dtype=bool)
    elif a.ndim in (4, 5) and a.shape[1] == 1:
        out = np.zeros(a.shape, dtype=bool)
        for i in range(a.shape[0]):
            out[i, 0] = fn(a[i, 0], b[i, 0])
    else:
        raise InvalidMaskError(
            "expected (H, W), (D, H, W), (B, 1, H, W) or (B, 1, D, H, W), got "
            f"{a.ndim}D shape {a.shape}"
        )
    if device is None:
        return out
    import torch  # only reached when the caller passed a tensor

    return torch.from_numpy(out).to(device)

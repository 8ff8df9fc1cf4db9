"""The critical mask, the binary skeleton and ``keep_supported`` in torch, on the tensor's device.

The numpy implementations in :mod:`topobench.critical` and :mod:`topobench.postprocess` are the
reference; the functions here give exactly the same masks (tests/test_critical.py,
tests/test_postprocess.py) with torch operations only, so that a CUDA tensor never leaves the
GPU. docs/losses.md ("Losses on the device") explains the methods; in short:

- :func:`binary_skeleton`: the clDice soft skeleton of a binary mask as exact binary morphology
  (cross erosion with the outside as foreground, box dilation with the outside as background),
  on bool tensors.
- :func:`critical_mask_torch`: the nearest-part test ``dist(E) < dist(K)`` is decided exactly
  with one *integer-valued* separable distance transform. Every seed carries an offset, 1 on
  ``E`` and 0 on ``K``, and the transform computes
  ``key(p) = min_q (2 |p - q|^2 + offset(q))`` over ``E ∪ K``; then
  ``key = min(2 dE^2 + 1, 2 dK^2)`` is odd exactly when ``dE^2 < dK^2`` (a tie gives the even
  ``2 dK^2``, so ``dist(E) == dist(K)`` is not critical). The transform is separable
  (Saito & Toriwaki 1994; Felzenszwalb & Huttenlocher 2012): along the first axis it is the
  1D distance to the nearest ``E`` and ``K`` seed, found exactly with ``cummax``/``cummin`` in
  ``O(N)``; along each further axis ``f(p) = min_d h(p + d) + 2 d^2``, a minimum over offsets
  ``|d| <= w`` (``O(N w)``). All values are integers below ``2^24`` held in float32 (float64
  beyond), so every comparison is exact.
- :func:`keep_supported_torch`: a component of ``ft`` is kept iff it holds a pixel of
  ``ft & pre``, i.e. the morphological reconstruction by dilation of ``ft & pre`` inside ``ft``
  (exact, no labels needed), accelerated by run propagation along each axis.

Synchronisation (a device-to-host read of one boolean; no array ever leaves the device):

- ``window="adaptive"`` (default) starts with offsets ``|d| <= 8``; the result at a pixel is
  provably exact when its key is below ``2 (w + 1)^2``. One boolean (is any pixel of interest
  unresolved?) is read per window size, normally once per call; the window then grows 4-fold up
  to the whole axis. ``window="full"`` uses the whole axis at once: no synchronisation at all,
  ``O(N n)`` work for an axis of length ``n``.
- :func:`binary_skeleton` stops early once erosion has emptied the masks only on the CPU (where
  the check is free); on other devices it runs its ``iterations`` without any check.
- :func:`keep_supported_torch` reads one boolean (converged?) per round of propagation.
- Validating a non-bool integer input reads its minimum and maximum.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

from topobench.errors import InvalidMaskError, InvalidMaskTypeError, InvalidParameterError

__all__ = [
    "binary_skeleton",
    "critical_mask_torch",
    "keep_supported_torch",
    "nearest_part_keys",
]

Window = Literal["adaptive", "full"]
_FIRST_WINDOW = 8
_INT_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)
_FULL = {2: 8, 3: 26}
_ALLOWED = {2: (4, 8), 3: (6, 26)}


# --- validation ----------------------------------------------------------------------------------


def as_bool_tensor(x: torch.Tensor, name: str) -> torch.Tensor:
    """A bool view of a binary tensor (bool, or integers holding only {0, 1} or {0, 255}).

    A bool tensor is returned as it is (no synchronisation); an integer one is checked, which
    reads its minimum and maximum.
    """
    if x.dtype == torch.bool:
        return x
    if x.is_floating_point() or x.is_complex() or x.dtype not in _INT_DTYPES:
        raise InvalidMaskTypeError(
            f"{name}: expected a bool or integer mask with values {{0, 1}} or {{0, 255}}, got "
            f"dtype {x.dtype}"
        )
    if x.numel() == 0:
        raise InvalidMaskError(f"{name}: expected a non-empty tensor, got shape {tuple(x.shape)}")
    lo, hi = torch.aminmax(x)
    fg = x != 0
    ok = (lo >= 0) & ((hi == 0) | (hi == 1) | ((hi == 255) & ~(fg & (x != 255)).any()))
    if not bool(ok):  # a synchronisation, for integer inputs only
        raise InvalidMaskError(f"{name}: expected values in {{0, 1}} or {{0, 255}}")
    return fg


def _spatial_ndim(shape: tuple[int, ...], names: tuple[str, str]) -> int:
    """2 or 3 for (H, W) / (D, H, W) and (B, 1, H, W) / (B, 1, D, H, W); an error otherwise."""
    if len(shape) in (2, 3):
        nd = len(shape)
    elif len(shape) in (4, 5) and shape[1] == 1:
        nd = len(shape) - 2
    else:
        raise InvalidMaskError(
            "expected (H, W), (D, H, W), (B, 1, H, W) or (B, 1, D, H, W), got "
            f"{len(shape)}D shape {shape}"
        )
    if math.prod(shape) == 0:
        raise InvalidMaskError(f"{names[0]}: expected a non-empty tensor, got shape {shape}")
    return nd


def _pair(first: torch.Tensor, second: object, names: tuple[str, str]):
    if not isinstance(second, torch.Tensor):
        second = torch.as_tensor(second, device=first.device)
    a = as_bool_tensor(first, names[0])
    b = as_bool_tensor(second.to(first.device), names[1])
    if a.shape != b.shape:
        raise InvalidMaskError(
            f"{names[0]} and {names[1]} must have the same shape, got {tuple(a.shape)} and "
            f"{tuple(b.shape)}"
        )
    return a, b, _spatial_ndim(tuple(a.shape), names)


# --- binary morphology ---------------------------------------------------------------------------


def _erode_cross(mask: torch.Tensor, nd: int) -> torch.Tensor:
    """Erosion by the cross (face neighbours) over the last ``nd`` axes; outside is foreground."""
    out = mask.clone()
    for dim in range(mask.ndim - nd, mask.ndim):
        n = mask.shape[dim]
        if n > 1:
            out.narrow(dim, 1, n - 1).logical_and_(mask.narrow(dim, 0, n - 1))
            out.narrow(dim, 0, n - 1).logical_and_(mask.narrow(dim, 1, n - 1))
    return out


def _dilate(mask: torch.Tensor, nd: int, box: bool = True) -> torch.Tensor:
    """Dilation over the last ``nd`` axes by the 3x3(x3) box (``box``) or the cross.

    Outside the array is background. The box is separable (one pass per axis reading the
    previous pass); the cross reads the input in every pass.
    """
    out = mask.clone()
    for dim in range(mask.ndim - nd, mask.ndim):
        n = mask.shape[dim]
        if n == 1:
            continue
        src = out.clone() if box else mask
        out.narrow(dim, 1, n - 1).logical_or_(src.narrow(dim, 0, n - 1))
        out.narrow(dim, 0, n - 1).logical_or_(src.narrow(dim, 1, n - 1))
    return out


def _check_iterations(iterations: object) -> int:
    if isinstance(iterations, bool) or not isinstance(iterations, int):
        try:
            import numpy as np  # numpy integers are accepted, as by the numpy reference

            if isinstance(iterations, np.integer):
                iterations = int(iterations)
        except ImportError:  # pragma: no cover
            pass
    if isinstance(iterations, bool) or not isinstance(iterations, int):
        raise InvalidParameterError(f"iterations must be an integer, got {iterations!r}")
    if iterations < 0:
        raise InvalidParameterError(f"iterations must be >= 0, got {iterations}")
    return iterations


@torch.no_grad()
def binary_skeleton(
    mask: torch.Tensor,
    iterations: int = 50,
    *,
    nd: int | None = None,
    early_stop: bool | None = None,
) -> torch.Tensor:
    """The clDice soft skeleton of a binary mask, exactly, with bool operations on its device.

    Equals :func:`topobench.critical.binary_soft_skeleton` and ``soft_skeleton`` on {0, 1}
    inputs: ``skel = X & ~open(X)``, then ``iterations`` times ``X = erode(X)``,
    ``skel |= X & ~open(X)``.

    Parameters
    ----------
    mask : torch.Tensor of bool, shape (..., H, W) or (..., D, H, W)
        Any leading axes (batch, channel) are independent samples.
    iterations : int
        Erosion steps (50).
    nd : int, optional
        Number of spatial axes (the trailing ones). Default: 2 for a 2D or 4D tensor, 3 for a
        3D or 5D one.
    early_stop : bool, optional
        Stop once erosion has emptied every sample (one boolean read per step). Default: on the
        CPU only, where the read is free. The result is the same either way.

    Returns
    -------
    torch.Tensor of bool, same shape and device.

    Notes
    -----
    On the CPU the loop stops once erosion has emptied every sample (the check is free there);
    on other devices it always runs ``iterations`` steps, which changes nothing once the masks
    are empty, so that no synchronisation is needed.
    """
    iterations = _check_iterations(iterations)
    if nd is None:
        nd = {2: 2, 3: 3, 4: 2, 5: 3}.get(mask.ndim, 0)
    if nd not in (2, 3) or mask.ndim < nd:
        raise InvalidMaskError(f"expected a 2D or 3D mask, got shape {tuple(mask.shape)}")
    img = mask if mask.dtype == torch.bool else mask != 0
    if early_stop is None:
        early_stop = img.device.type == "cpu"
    eroded = _erode_cross(img, nd)
    skel = img & ~_dilate(eroded, nd)
    for _ in range(iterations):
        img = eroded
        if early_stop and not bool(img.any()):
            break
        eroded = _erode_cross(img, nd)
        skel |= img & ~_dilate(eroded, nd)
    return skel


# --- exact nearest-part test ---------------------------------------------------------------------


def _nearest_along(seeds: torch.Tensor, dim: int, dtype: torch.dtype) -> torch.Tensor:
    """Distance (in pixels, along ``dim`` only) to the nearest True of ``seeds``; +inf if none."""
    n = seeds.shape[dim]
    shape = [1] * seeds.ndim
    shape[dim] = n
    idx = torch.arange(n, device=seeds.device, dtype=dtype).view(shape)
    inf = torch.tensor(math.inf, device=seeds.device, dtype=dtype)
    before = torch.where(seeds, idx, -inf).cummax(dim).values
    after = torch.where(seeds, idx, inf).flip(dim).cummin(dim).values.flip(dim)
    return torch.minimum(idx - before, after - idx)


def _parabola_pass(h: torch.Tensor, dim: int, window: int) -> torch.Tensor:
    """``f(p) = min_{|d| <= window} h(p + d) + 2 d^2`` along ``dim`` (``O(N window)``)."""
    n = h.shape[dim]
    out = h.clone()
    for d in range(1, min(window, n - 1) + 1):
        cost = float(2 * d * d)
        lo = out.narrow(dim, 0, n - d)
        torch.minimum(lo, h.narrow(dim, d, n - d) + cost, out=lo)
        hi = out.narrow(dim, d, n - d)
        torch.minimum(hi, h.narrow(dim, 0, n - d) + cost, out=hi)
    return out


def nearest_part_keys(
    error: torch.Tensor,
    correct: torch.Tensor,
    nd: int,
    *,
    window: Window = "adaptive",
    interest: torch.Tensor | None = None,
) -> torch.Tensor:
    """``key = min(2 dE^2 + 1, 2 dK^2)`` per pixel, exactly, for ``E = error``, ``K = correct``.

    ``dE``, ``dK`` are the Euclidean distances to the nearest pixel of each part (+inf when it is
    empty). ``key`` is odd iff ``dE < dK``.

    Parameters
    ----------
    error, correct : torch.Tensor of bool, shape (..., *spatial)
        The two seed sets; the last ``nd`` axes are spatial.
    nd : int
        2 or 3.
    window : {"adaptive", "full"}
        See the module notes: "adaptive" reads one boolean per window size; "full" none.
    interest : torch.Tensor of bool, optional
        Pixels whose key must be exact (all pixels by default). With "adaptive", other pixels
        may hold a value above the true key (never below a resolved threshold).

    Returns
    -------
    torch.Tensor of float32 (float64 for very large arrays), same shape: integer values or +inf.
    At pixels of ``interest`` the value is exact.
    """
    if window not in ("adaptive", "full"):
        raise InvalidParameterError(f"window must be 'adaptive' or 'full', got {window!r}")
    spatial = list(range(error.ndim - nd, error.ndim))
    sizes = {dim: error.shape[dim] for dim in spatial}
    largest = 2 * sum((n - 1) ** 2 for n in sizes.values()) + 1
    dtype = torch.float32 if largest < 2**24 else torch.float64
    first = spatial[-1]  # the exact O(N) pass: along the contiguous axis, where cummax is fast
    others = [dim for dim in spatial if dim != first]
    d_error = _nearest_along(error, first, dtype)
    d_correct = _nearest_along(correct, first, dtype)
    h = torch.minimum(2 * d_error * d_error + 1, 2 * d_correct * d_correct)
    full = max(sizes[dim] for dim in others) - 1
    w = full if window == "full" else min(_FIRST_WINDOW, full)
    while True:
        f = h
        for dim in others:
            f = _parabola_pass(f, dim, w)
        if w >= full:
            return f
        # exact wherever f < 2 (w + 1)^2: any seed outside the window costs at least that much
        unresolved = f >= float(2 * (w + 1) ** 2)
        if interest is not None:
            unresolved &= interest
        if not bool(unresolved.any()):  # the one synchronisation of this function
            return f
        w = min(4 * w, full)


def _context_torch(
    skeleton: torch.Tensor, covered: torch.Tensor, region: torch.Tensor, nd: int, window: Window
) -> torch.Tensor:
    """``region & (dist(E) < dist(K))``, ``E = skeleton & ~covered``, ``K = skeleton & covered``.

    Any leading axes are independent samples; empty parts follow the numpy reference (an empty
    ``E`` gives nothing, an empty ``K`` with a non-empty ``E`` gives all of ``region``).
    """
    error = skeleton & ~covered
    correct = skeleton & covered
    flat = error.ndim - nd
    has_error = error.flatten(flat).any(-1).view(*error.shape[:flat], *[1] * nd)
    has_correct = correct.flatten(flat).any(-1).view(*error.shape[:flat], *[1] * nd)
    interest = region & has_error & has_correct
    key = nearest_part_keys(error, correct, nd, window=window, interest=interest)
    closer = torch.remainder(key, 2) == 1  # +inf gives NaN: not closer
    return region & has_error & (closer | ~has_correct)


@torch.no_grad()
def critical_mask_torch(
    pred_binary: torch.Tensor,
    target: torch.Tensor,
    *,
    mask: str = "context",
    iterations: int = 50,
    window: Window = "adaptive",
    early_stop: bool | None = None,
) -> torch.Tensor:
    """The critical mask ``M`` on the device; equals :func:`topobench.critical.critical_mask`.

    Parameters
    ----------
    pred_binary : torch.Tensor
        Binarised prediction, bool or {0, 1} / {0, 255} integers: ``(H, W)``, ``(D, H, W)``,
        ``(B, 1, H, W)`` or ``(B, 1, D, H, W)``.
    target : torch.Tensor (or array_like), same shape
        Binary target; moved to ``pred_binary``'s device if needed.
    mask : {"context", "thin"}
    iterations : int
        Soft-skeleton iterations (50).
    window : {"adaptive", "full"}
        Offsets of the distance passes (module notes): "full" never synchronises.
    early_stop : bool, optional
        Early stopping of the skeleton loop (:func:`binary_skeleton`; default: on the CPU only).
        With ``window="full"``, ``early_stop=False`` and bool inputs nothing is read back.

    Returns
    -------
    torch.Tensor of bool, same shape and device, without gradient.
    """
    if mask not in ("context", "thin"):
        raise InvalidParameterError(f"mask must be 'context' or 'thin', got {mask!r}")
    xb, y, nd = _pair(pred_binary, target, ("pred_binary", "target"))
    skel_y = binary_skeleton(y, iterations, nd=nd, early_stop=early_stop)
    skel_x = binary_skeleton(xb, iterations, nd=nd, early_stop=early_stop)
    if mask == "thin":
        return (skel_y & ~xb) | (skel_x & ~y)
    # both sides in one batched transform: missed (skeleton of Y, context in Y), false (of Xb)
    both = _context_torch(
        torch.stack([skel_y, skel_x]),
        torch.stack([xb, y]),
        torch.stack([y, xb]),
        nd,
        window,
    )
    return both[0] | both[1]


# --- keep_supported ------------------------------------------------------------------------------


def _propagate_runs(marker: torch.Tensor, ft: torch.Tensor, dim: int) -> torch.Tensor:
    """Mark every run of ``ft`` along ``dim`` that holds a marker pixel (exact, ``O(N)``)."""
    run = torch.cumsum(~ft, dim=dim, dtype=torch.int32)  # equal within a run of True
    minus = torch.tensor(-1, dtype=torch.int32, device=ft.device)
    big = torch.tensor(torch.iinfo(torch.int32).max, dtype=torch.int32, device=ft.device)
    last = torch.where(marker, run, minus).cummax(dim).values
    nxt = torch.where(marker, run, big).flip(dim).cummin(dim).values.flip(dim)
    return ft & ((last == run) | (nxt == run))


@torch.no_grad()
def keep_supported_torch(
    finetuned: torch.Tensor, pretrained: torch.Tensor, *, connectivity: int | None = None
) -> torch.Tensor:
    """Keep the components of ``finetuned`` that overlap ``pretrained``, on the device.

    Equals :func:`topobench.postprocess.keep_supported`. Computed as the reconstruction by
    dilation of ``finetuned & pretrained`` inside ``finetuned``: rounds of (one step of
    ``connectivity``-dilation, then run propagation along every axis), until a round changes
    nothing. Each round reads one boolean (converged?) from the device.

    Parameters
    ----------
    finetuned, pretrained : torch.Tensor
        ``(H, W)``, ``(D, H, W)`` or ``(B, 1, ...)`` binary masks.
    connectivity : int, optional
        4 or 8 in 2D, 6 or 26 in 3D (default 8 / 26).

    Returns
    -------
    torch.Tensor of bool, same shape and device.
    """
    ft, pre, nd = _pair(finetuned, pretrained, ("finetuned", "pretrained"))
    if connectivity is None:
        connectivity = _FULL[nd]
    if isinstance(connectivity, bool) or connectivity not in _ALLOWED[nd]:
        allowed = " or ".join(map(str, _ALLOWED[nd]))
        raise InvalidParameterError(
            f"connectivity {connectivity!r} is not valid for a {nd}D mask: expected {allowed}"
        )
    box = connectivity == _FULL[nd]
    spatial = range(ft.ndim - nd, ft.ndim)
    marker = ft & pre
    while True:
        previous = marker
        marker = _dilate(marker, nd, box=box) & ft
        for dim in spatial:
            marker = _propagate_runs(marker, ft, dim)
        if torch.equal(marker, previous):  # the synchronisation of each round
            return marker

"""Surface distance metrics: HD95, ASSD and the normalised surface distance (NSD).

The surface of a mask is its set of foreground pixels (voxels) that have at least one background
neighbour across a face (4-neighbourhood in 2D, 6 in 3D), the image border counting as
background. Distances are Euclidean between pixel centres, in the units of ``spacing`` (the
voxel size along each axis, ``(Z, H, W)`` order; None: 1 on every axis), computed in double
precision with scipy's exact Euclidean distance transform (``distance_transform_edt`` with
``sampling``, which topobench also uses for its critical masks), inside the bounding box of the
two masks. Single precision (the ``edt`` package) is faster but can move a distance across an
NSD tolerance equal to the voxel size (0.994 is not a float32), so it is not used here.

This is the surface definition of MONAI's ``compute_hausdorff_distance``,
``compute_average_surface_distance`` and ``compute_surface_dice`` (edges from a face-connected
binary erosion, voxel counts rather than surface areas), and the tests check the values against
a brute-force computation over the surface points and, where it is installed, MONAI.

Empty masks (never NaN; docs/metrics.md, "Empty masks"):

- both empty: HD95 and ASSD are 0.0, NSD is 1.0;
- one empty: HD95 and ASSD are the length of the image's diagonal, ``sqrt(sum((n_i s_i)^2))``
  (larger than any distance two pixels of the image can have, so an empty prediction is never
  better than a poor one), NSD is 0.0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from topobench.errors import InvalidParameterError
from topobench.masks import as_mask_pair

__all__ = [
    "SurfaceDistances",
    "assd",
    "hd95",
    "mask_surface",
    "nsd",
    "resolve_spacing",
    "surface_distances",
]

Spacing = float | Sequence[float] | None


def resolve_spacing(spacing: Spacing, ndim: int) -> tuple[float, ...]:
    """Voxel size per axis as a tuple of ``ndim`` positive finite floats.

    Parameters
    ----------
    spacing : float, sequence of float or None
        One value for every axis, or one per axis in array order (``(Z, H, W)`` or ``(H, W)``);
        None means 1.0.
    ndim : int
        Dimension of the masks.

    Raises
    ------
    InvalidParameterError
        Wrong length, zero, negative, NaN or infinite values.
    """
    if spacing is None:
        return (1.0,) * ndim
    if np.isscalar(spacing):
        values = (float(spacing),) * ndim  # type: ignore[arg-type]
    else:
        values = tuple(float(s) for s in spacing)  # type: ignore[union-attr]
    if len(values) != ndim:
        raise InvalidParameterError(
            f"spacing: expected {ndim} values (one per axis of a {ndim}D mask), got {len(values)}"
        )
    if not all(np.isfinite(v) and v > 0 for v in values):
        raise InvalidParameterError(
            f"spacing: expected positive finite values, got {list(values)}"
        )
    return values


def mask_surface(mask: np.ndarray) -> np.ndarray:
    """Surface pixels of a boolean mask: foreground with a face-adjacent background neighbour.

    Parameters
    ----------
    mask : numpy.ndarray of bool, shape (H, W) or (Z, H, W)

    Returns
    -------
    numpy.ndarray of bool, same shape; the image border counts as background.

    Examples
    --------
    >>> m = np.zeros((5, 5), bool); m[1:4, 1:4] = True
    >>> int(mask_surface(m).sum())     # the 3x3 square's ring of 8
    8
    """
    structure = ndi.generate_binary_structure(mask.ndim, 1)
    return mask & ~ndi.binary_erosion(mask, structure=structure, border_value=0)


def _diagonal(shape: tuple[int, ...], spacing: tuple[float, ...]) -> float:
    return float(np.sqrt(sum((n * s) ** 2 for n, s in zip(shape, spacing))))


@dataclass(frozen=True)
class SurfaceDistances:
    """Distances from each surface pixel of one mask to the other mask's surface.

    Attributes
    ----------
    pred_to_target : numpy.ndarray of float, shape (n_pred_surface,)
        For each surface pixel of the prediction, the distance to the nearest surface pixel of
        the target, in spacing units.
    target_to_pred : numpy.ndarray of float, shape (n_target_surface,)
        The same from the target's surface to the prediction's.
    diagonal : float
        Length of the image diagonal (the value of HD95 and ASSD when one mask is empty).
    """

    pred_to_target: np.ndarray
    target_to_pred: np.ndarray
    diagonal: float

    @property
    def pred_empty(self) -> bool:
        return self.pred_to_target.size == 0

    @property
    def target_empty(self) -> bool:
        return self.target_to_pred.size == 0

    def hd95(self) -> float:
        """95th percentile Hausdorff distance (symmetric: the larger of the two directed ones)."""
        if self.pred_empty and self.target_empty:
            return 0.0
        if self.pred_empty or self.target_empty:
            return self.diagonal
        return float(
            max(np.percentile(self.pred_to_target, 95), np.percentile(self.target_to_pred, 95))
        )

    def assd(self) -> float:
        """Average symmetric surface distance: mean over both surfaces' distances."""
        if self.pred_empty and self.target_empty:
            return 0.0
        if self.pred_empty or self.target_empty:
            return self.diagonal
        total = self.pred_to_target.sum() + self.target_to_pred.sum()
        return float(total / (self.pred_to_target.size + self.target_to_pred.size))

    def nsd(self, tolerance: float) -> float:
        """Share of both surfaces within ``tolerance`` of the other surface (in [0, 1])."""
        tolerance = _check_tolerance(tolerance)
        if self.pred_empty and self.target_empty:
            return 1.0
        if self.pred_empty or self.target_empty:
            return 0.0
        close = np.count_nonzero(self.pred_to_target <= tolerance) + np.count_nonzero(
            self.target_to_pred <= tolerance
        )
        return float(close / (self.pred_to_target.size + self.target_to_pred.size))


def _check_tolerance(tolerance: float) -> float:
    try:
        value = float(tolerance)
    except (TypeError, ValueError):
        raise InvalidParameterError(
            f"tolerance: expected a number, got {type(tolerance).__name__}"
        ) from None
    if not np.isfinite(value) or value < 0:
        raise InvalidParameterError(f"tolerance: expected a finite value >= 0, got {tolerance}")
    return value


def _distance_to(surface: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """Distance of every pixel to the nearest pixel of ``surface`` (non-empty)."""
    return ndi.distance_transform_edt(~surface, sampling=spacing)


def surface_distances(
    pred: np.ndarray, target: np.ndarray, *, spacing: Spacing = None
) -> SurfaceDistances:
    """Both directed sets of surface distances of a (prediction, target) pair.

    The statistics that :func:`hd95`, :func:`assd` and :func:`nsd` reduce; compute them once
    to get all three.

    Parameters
    ----------
    pred, target : array_like, shape (H, W) or (Z, H, W)
        Binary masks of the same shape.
    spacing : float or sequence of float, optional
        Voxel size per axis (array order), default 1.

    Returns
    -------
    SurfaceDistances
    """
    p, t = as_mask_pair(pred, target)
    return _surface_distances_validated(p, t, resolve_spacing(spacing, p.ndim))


def _surface_distances_validated(
    p: np.ndarray, t: np.ndarray, sp: tuple[float, ...]
) -> SurfaceDistances:
    """:func:`surface_distances` of validated masks and a resolved spacing."""
    diagonal = _diagonal(p.shape, sp)
    sp_pred, sp_target = mask_surface(p), mask_surface(t)
    empty = np.zeros(0, dtype=np.float64)
    if not sp_pred.any() or not sp_target.any():
        return SurfaceDistances(
            empty if not sp_pred.any() else np.zeros(int(sp_pred.sum())),
            empty if not sp_target.any() else np.zeros(int(sp_target.sum())),
            diagonal,
        )
    # Every surface pixel lies in the bounding box of the union, so distances computed inside
    # that box are exact.
    union = p | t
    box = tuple(
        slice(int(idx.min()), int(idx.max()) + 1) for idx in np.nonzero(union)
    )
    sp_pred, sp_target = sp_pred[box], sp_target[box]
    to_target = _distance_to(sp_target, sp)
    to_pred = _distance_to(sp_pred, sp)
    return SurfaceDistances(
        np.asarray(to_target[sp_pred], dtype=np.float64),
        np.asarray(to_pred[sp_target], dtype=np.float64),
        diagonal,
    )


def hd95(pred: np.ndarray, target: np.ndarray, *, spacing: Spacing = None) -> float:
    """95th percentile Hausdorff distance between the surfaces of two masks.

    ``max(P95(d(S_pred, S_target)), P95(d(S_target, S_pred)))``, percentiles with linear
    interpolation (numpy's default), as MONAI's ``compute_hausdorff_distance(percentile=95)``.

    Parameters
    ----------
    pred, target : array_like, shape (H, W) or (Z, H, W)
        Binary masks of the same shape.
    spacing : float or sequence of float, optional
        Voxel size per axis in array order (e.g. millimetres), default 1.

    Returns
    -------
    float
        In spacing units, >= 0. Both masks empty: 0.0; one empty: the image diagonal.

    Examples
    --------
    >>> target = np.zeros((10, 10), bool); target[2:8, 2:8] = True
    >>> pred = np.roll(target, 2, axis=1)
    >>> hd95(pred, target), hd95(pred, target, spacing=(1.0, 0.5))
    (2.0, 1.0)
    """
    return surface_distances(pred, target, spacing=spacing).hd95()


def assd(pred: np.ndarray, target: np.ndarray, *, spacing: Spacing = None) -> float:
    """Average symmetric surface distance between two masks.

    ``(sum d(S_pred, S_target) + sum d(S_target, S_pred)) / (|S_pred| + |S_target|)``, as MONAI's
    ``compute_average_surface_distance(symmetric=True)``.

    Returns
    -------
    float
        In spacing units, >= 0. Both masks empty: 0.0; one empty: the image diagonal.

    Examples
    --------
    >>> target = np.zeros((10, 10), bool); target[2:8, 2:8] = True
    >>> round(assd(target, target), 3)
    0.0
    """
    return surface_distances(pred, target, spacing=spacing).assd()


def nsd(
    pred: np.ndarray, target: np.ndarray, *, tolerance: float, spacing: Spacing = None
) -> float:
    """Normalised surface distance (surface Dice at a tolerance; Nikolov et al. 2021).

    The share of the surface pixels of both masks that lie within ``tolerance`` of the other
    mask's surface: ``(|{p in S_pred: d(p, S_target) <= tol}| + |{t in S_target: d(t, S_pred) <=
    tol}|) / (|S_pred| + |S_target|)``, surfaces counted in pixels as MONAI's
    ``compute_surface_dice``.

    Parameters
    ----------
    tolerance : float
        Accepted distance, in spacing units (>= 0).

    Returns
    -------
    float
        In [0, 1], higher is better. Both masks empty: 1.0; one empty: 0.0.

    Examples
    --------
    >>> target = np.zeros((10, 10), bool); target[2:8, 2:8] = True
    >>> pred = np.roll(target, 1, axis=1)
    >>> nsd(pred, target, tolerance=1.0), nsd(pred, target, tolerance=0.0) < 1
    (1.0, True)
    """
    tolerance = _check_tolerance(tolerance)
    return surface_distances(pred, target, spacing=spacing).nsd(tolerance)

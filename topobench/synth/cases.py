"""Synthetic cases: a target drawn from a kind, or a real mask, and its degraded prediction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from topobench.errors import InvalidParameterError
from topobench.masks import as_mask, resolve_connectivity
from topobench.synth.drawing import _GENERATORS, KINDS, SynthKind, _distance, _Drawing
from topobench.synth.inject import _blobs, _bridges, _cut_gaps, _PieceCounter, _thin

_GAP_NOTE = (
    "Each gap cuts a target structure into exactly one more piece inside its evaluation window "
    "(verified by connected-component labelling with the recorded connectivity and window); all "
    "false positives lie outside the target and thinning never changes how the target's pieces "
    "connect, so e0-Gt computed with the same window and connectivity equals gaps / n_windows."
)


@dataclass(frozen=True)
class InjectedErrors:
    """How many errors of each kind were put into one prediction.

    Attributes
    ----------
    gaps, bridges, blobs : int
        Counts of injected missed connections, false connections and false-positive blobs.
    noise_pixels : int
        Isolated false-positive pixels added.
    thinned_pixels : int
        Target pixels removed by thinning.
    """

    gaps: int = 0
    bridges: int = 0
    blobs: int = 0
    noise_pixels: int = 0
    thinned_pixels: int = 0

    def to_dict(self) -> dict[str, int]:
        """The counts as a plain dict."""
        return asdict(self)


@dataclass(frozen=True, eq=False)
class SynthCase:
    """One synthetic (prediction, target) pair with what was injected where.

    Attributes
    ----------
    target, pred : numpy.ndarray of bool, shape (H, W) or (Z, H, W)
    errors : InjectedErrors
    gap_centers, bridge_centers : tuple of tuple of int
        Pixel coordinates (array index order) of the centre of each gap / bridge.
    gap_radius : tuple of float
        Radius (pixels) of the ball that cut each gap (membranes: half-width of the cut).
    window : tuple of int or None
        Evaluation window the gaps were verified in (None: the whole array).
    connectivity : int
        Foreground connectivity used for the verification.
    n_windows : int
        Number of windows of that size tiling the array.
    """

    target: np.ndarray
    pred: np.ndarray
    errors: InjectedErrors
    gap_centers: tuple[tuple[int, ...], ...] = ()
    gap_radius: tuple[float, ...] = ()
    bridge_centers: tuple[tuple[int, ...], ...] = ()
    window: tuple[int, ...] | None = None
    connectivity: int = 8
    n_windows: int = 1
    target_pieces: int = 0

    @property
    def expected_e0_gt(self) -> float:
        """e0-Gt of ``pred`` against ``target`` with :attr:`window` and :attr:`connectivity`."""
        return self.errors.gaps / self.n_windows

    def to_dict(self) -> dict[str, Any]:
        """Everything but the arrays, JSON-ready."""
        return {
            "shape": list(self.target.shape),
            "errors": self.errors.to_dict(),
            "expected": {"e0_gt": self.expected_e0_gt},
            "target_pieces": self.target_pieces,
            "gap_centers": [list(c) for c in self.gap_centers],
            "gap_radius": list(self.gap_radius),
            "bridge_centers": [list(c) for c in self.bridge_centers],
        }


def make_case(
    kind: SynthKind,
    *,
    seed: int | Sequence[int] = 0,
    shape: Sequence[int] | None = None,
    gaps: int = 3,
    bridges: int = 2,
    blobs: int = 2,
    noise: int = 20,
    thinning: bool = True,
    window: int | Sequence[int] | None = None,
    connectivity: int | None = None,
) -> SynthCase:
    """Draw one target and a degraded prediction with known, counted errors.

    Parameters
    ----------
    kind : {"vessels2d", "roads2d", "tubes3d", "membranes3d"}
    seed : int or sequence of int
        Seed of the generator (``numpy.random.default_rng(seed)``).
    shape : sequence of int, optional
        ``(H, W)`` or ``(Z, H, W)``; defaults to :data:`KINDS` ``[kind]``.
    gaps, bridges, blobs : int
        How many of each to inject (fewer are placed when the structure offers no valid spot;
        the returned counts are what was placed).
    noise : int
        Isolated false-positive pixels to add.
    thinning : bool
        Peel one pixel off the thick parts of the prediction.
    window : int or sequence of int, optional
        Evaluation window (e.g. 375 for roads) in which each gap must add one piece.
    connectivity : int, optional
        Foreground connectivity (8 or 4 in 2D, 26 or 6 in 3D; default the full one).

    Returns
    -------
    SynthCase

    Examples
    --------
    >>> case = make_case("vessels2d", seed=0, gaps=2)
    >>> case.errors.gaps, case.expected_e0_gt
    (2, 2.0)
    """
    if kind not in _GENERATORS:
        raise InvalidParameterError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    shape_t = tuple(int(s) for s in (shape if shape is not None else KINDS[kind]))
    ndim = len(KINDS[kind])
    if len(shape_t) != ndim or min(shape_t) < 16:
        raise InvalidParameterError(
            f"{kind}: expected a shape of {ndim} sizes of at least 16, got {shape_t}"
        )
    for name, value in (("gaps", gaps), ("bridges", bridges), ("blobs", blobs), ("noise", noise)):
        if value < 0:
            raise InvalidParameterError(f"{name} must be >= 0, got {value}")
    rng = np.random.default_rng(seed)
    drawing = _GENERATORS[kind](rng, shape_t)
    degradation = {"gaps": gaps, "bridges": bridges, "blobs": blobs, "noise": noise}
    return _degrade(
        rng, drawing, thinning=thinning, window=window, connectivity=connectivity, **degradation
    )


def degrade(
    target: Any,
    *,
    seed: int | Sequence[int] = 0,
    gaps: int = 3,
    bridges: int = 2,
    blobs: int = 2,
    noise: int = 20,
    thinning: bool = True,
    window: int | Sequence[int] | None = None,
    connectivity: int | None = None,
) -> SynthCase:
    """Make a degraded prediction of a real target mask, with known, counted errors.

    The same degradations as :func:`make_case`, anchored on the target's skeleton
    (scikit-image ``skeletonize``): gaps are balls of the local radius + 2 centred on skeleton
    pixels, kept only where they add exactly one piece in their window.

    Parameters
    ----------
    target : array_like, shape (H, W) or (Z, H, W)
        Binary mask (bool, {0, 1} or {0, 255}).
    seed, gaps, bridges, blobs, noise, thinning, window, connectivity
        As in :func:`make_case`.

    Returns
    -------
    SynthCase
        ``target`` is the validated input; ``expected_e0_gt`` holds for ``window`` and
        ``connectivity``.
    """
    from skimage.morphology import skeletonize

    mask = as_mask(target, name="target")
    for name, value in (("gaps", gaps), ("bridges", bridges), ("blobs", blobs), ("noise", noise)):
        if value < 0:
            raise InvalidParameterError(f"{name} must be >= 0, got {value}")
    skel = skeletonize(mask)
    depth = _distance(mask)
    labels, n = ndimage.label(skel, structure=np.ones((3,) * mask.ndim))
    drawing = _Drawing(mask=mask, ordered=False)
    if n:
        coords = np.argwhere(skel)
        owner = labels[tuple(coords.T)]
        order = np.argsort(owner, kind="stable")
        coords, owner = coords[order], owner[order]
        splits = np.flatnonzero(np.diff(owner)) + 1
        for part in np.split(coords, splits):
            drawing.points.append(part.astype(float))
            drawing.radii.append(depth[tuple(part.T)])
    rng = np.random.default_rng(seed)
    return _degrade(
        rng,
        drawing,
        gaps=gaps,
        bridges=bridges,
        blobs=blobs,
        noise=noise,
        thinning=thinning,
        window=window,
        connectivity=connectivity,
    )


def _degrade(
    rng: np.random.Generator,
    drawing: _Drawing,
    *,
    gaps: int,
    bridges: int,
    blobs: int,
    noise: int,
    thinning: bool,
    window: int | Sequence[int] | None,
    connectivity: int | None,
) -> SynthCase:
    """Inject the errors into a prediction of ``drawing.mask`` (see the module docstring)."""
    target = drawing.mask
    shape_t = target.shape
    ndim = target.ndim
    conn = resolve_connectivity(connectivity, ndim)
    counter = _PieceCounter(shape_t, window, conn)

    kept = target.copy()
    min_piece = 15 if ndim == 2 else 20
    gap_centres, gap_radii = _cut_gaps(rng, drawing, kept, counter, gaps, min_piece)
    thinned = _thin(target, kept, counter) if thinning else 0

    bridge_mask, bridge_centres = _bridges(rng, drawing, target, gap_centres, bridges, conn)
    clearance = _distance(~(target | bridge_mask))
    blob_mask, n_blobs = _blobs(rng, clearance, blobs, ndim)

    fp = bridge_mask | blob_mask
    far = (clearance > 3) & ~ndimage.binary_dilation(blob_mask, iterations=2)
    candidates = np.flatnonzero(far.ravel())
    n_noise = min(noise, candidates.size)
    if n_noise:
        picked = rng.choice(candidates, size=n_noise, replace=False)
        fp.ravel()[picked] = True
    pred = kept | (fp & ~target)

    return SynthCase(
        target=target,
        pred=pred,
        errors=InjectedErrors(
            gaps=len(gap_centres),
            bridges=len(bridge_centres),
            blobs=n_blobs,
            noise_pixels=n_noise,
            thinned_pixels=thinned,
        ),
        gap_centers=tuple(gap_centres),
        gap_radius=tuple(gap_radii),
        bridge_centers=tuple(bridge_centres),
        window=None if window is None else tuple(np.broadcast_to(window, (ndim,)).tolist()),
        connectivity=conn,
        n_windows=len(counter.windows),
        target_pieces=int(counter.counts(target).sum()),
    )

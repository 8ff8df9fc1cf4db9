"""Synthetic thin-structure masks with predictions degraded in controlled, counted ways.

:func:`make_case` draws one ground-truth mask of curvilinear structures (2D vessel trees, 2D road
networks, 3D tubes, 3D membrane sheets) and a prediction made from it by injecting

- **gaps**: a short cut through a structure. Each gap is placed only where it cuts a target
  structure into exactly one more piece inside its evaluation window (checked by labelling, with
  the case's connectivity) and leaves no piece smaller than a few pixels, so that e0-Gt, computed
  with the same window and connectivity, equals ``gaps / n_windows``;
- **bridges**: thin false-positive segments joining two separate structures, or two distant parts
  of one (false connections);
- **blobs**: false-positive discs/balls away from the target;
- **noise**: isolated false-positive specks;
- **thinning**: removal of the outer boundary of thick parts, never changing how the target's
  remaining pieces connect.

All false positives lie outside the target, so ``pred & target`` is the target minus the gaps and
the thinning; that is what makes the expected e0-Gt exact. :func:`synthesize` writes a data set
(``gt/``, ``pred/`` and ``manifest.json``) to a folder.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from scipy import ndimage

from topobench import __version__
from topobench.errors import InvalidParameterError
from topobench.io import write_mask
from topobench.masks import as_mask, resolve_connectivity
from topobench.metrics import betti_numbers
from topobench.metrics.windows import sliding_windows

__all__ = [
    "KINDS",
    "InjectedErrors",
    "SynthCase",
    "SynthKind",
    "degrade",
    "make_case",
    "synthesize",
]

SynthKind = Literal["vessels2d", "roads2d", "tubes3d", "membranes3d"]

#: Default shape of each kind: ``(H, W)`` in 2D, ``(Z, H, W)`` in 3D.
KINDS: dict[str, tuple[int, ...]] = {
    "vessels2d": (320, 320),
    "roads2d": (384, 384),
    "tubes3d": (48, 96, 96),
    "membranes3d": (48, 96, 96),
}

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


@dataclass
class _Drawing:
    """A target mask and the centreline (or mid-surface) points it was drawn from."""

    mask: np.ndarray
    points: list[np.ndarray] = field(default_factory=list)  # (N, ndim) float, one per structure
    radii: list[Any] = field(default_factory=list)  # one float, or one per point
    slab_axis: int | None = None  # membranes: cut gaps as slabs across this axis
    ordered: bool = True  # points follow the curve (False: skeleton pixels of a real mask)

    def radius(self, s: int, i: int) -> float:
        r = self.radii[s]
        return float(r[i]) if np.ndim(r) else float(r)


# --------------------------------------------------------------------------------------------
# Drawing the targets
# --------------------------------------------------------------------------------------------


def _rasterise(shape: tuple[int, ...], points: np.ndarray) -> np.ndarray:
    """Mark the pixels nearest to ``points`` (N, ndim) that fall inside ``shape``."""
    out = np.zeros(shape, dtype=bool)
    idx = np.rint(points).astype(np.int64)
    inside = np.all((idx >= 0) & (idx < np.array(shape)), axis=1)
    out[tuple(idx[inside].T)] = True
    return out


def _distance(mask: np.ndarray) -> np.ndarray:
    """Euclidean distance (pixels) of each ``True`` pixel to the nearest ``False`` one."""
    import edt

    return edt.edt(np.ascontiguousarray(mask), black_border=False, parallel=1)


def _thicken(centre: np.ndarray, radius: float) -> np.ndarray:
    """Every pixel within ``radius`` of a ``centre`` pixel (Euclidean)."""
    if not centre.any():
        return centre
    # Work on the bounding box of the centre pixels, grown by the radius.
    idx = np.argwhere(centre)
    pad = int(np.ceil(radius)) + 1
    lo = np.maximum(idx.min(axis=0) - pad, 0)
    hi = np.minimum(idx.max(axis=0) + pad + 1, centre.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    out = np.zeros_like(centre)
    out[box] = _distance(~centre[box]) <= radius
    return out


def _walk(
    rng: np.random.Generator,
    start: np.ndarray,
    direction: np.ndarray,
    length: float,
    shape: tuple[int, ...],
    *,
    bend: float = 0.12,
    step: float = 0.5,
) -> np.ndarray:
    """A smooth random curve from ``start``: points ``(N, ndim)`` spaced ``step`` apart."""
    d = direction / np.linalg.norm(direction)
    pts = [start.astype(float)]
    n = int(length / step)
    heading = d.copy()
    for i in range(n):
        if i % 8 == 0:
            heading = heading + rng.normal(0.0, bend, size=heading.shape) * 8 * step
            heading /= np.linalg.norm(heading)
        p = pts[-1] + heading * step
        if np.any(p < -1) or np.any(p > np.array(shape)):
            break
        pts.append(p)
    return np.array(pts)


def _draw_curves(shape: tuple[int, ...], curves: Sequence[tuple[np.ndarray, float]]) -> _Drawing:
    mask = np.zeros(shape, dtype=bool)
    drawing = _Drawing(mask=mask)
    for pts, radius in curves:
        drawing.mask |= _thicken(_rasterise(shape, pts), radius)
        drawing.points.append(pts)
        drawing.radii.append(radius)
    return drawing


def _vessels2d(rng: np.random.Generator, shape: tuple[int, ...]) -> _Drawing:
    """Branching vessel trees growing in from the border; radii 3, 2, 1 by generation."""
    h, w = shape
    curves: list[tuple[np.ndarray, float]] = []
    for _ in range(int(rng.integers(2, 4))):
        side = int(rng.integers(4))
        t = rng.uniform(0.2, 0.8)
        start, direction = {
            0: (np.array([0.0, t * w]), np.array([1.0, 0.0])),
            1: (np.array([h - 1.0, t * w]), np.array([-1.0, 0.0])),
            2: (np.array([t * h, 0.0]), np.array([0.0, 1.0])),
            3: (np.array([t * h, w - 1.0]), np.array([0.0, -1.0])),
        }[side]
        stack = [(start, direction + rng.normal(0, 0.2, 2), 0.75 * max(h, w), 3.0, 0)]
        while stack:
            s, d, length, radius, depth = stack.pop()
            pts = _walk(rng, s, d, length, shape, bend=0.05)
            if len(pts) < 8:
                continue
            curves.append((pts, radius))
            if depth >= 2:
                continue
            for _ in range(int(rng.integers(2, 4))):
                k = int(rng.integers(len(pts) // 5, max(len(pts) // 5 + 1, len(pts) - 10)))
                tangent = pts[min(k + 1, len(pts) - 1)] - pts[max(k - 1, 0)]
                angle = rng.choice([-1, 1]) * rng.uniform(0.5, 1.1)
                c, sn = np.cos(angle), np.sin(angle)
                branch = np.array(
                    [c * tangent[0] - sn * tangent[1], sn * tangent[0] + c * tangent[1]]
                )
                stack.append((pts[k], branch, 0.5 * length, max(radius - 1.0, 1.0), depth + 1))
    return _draw_curves(shape, curves)


def _roads2d(rng: np.random.Generator, shape: tuple[int, ...]) -> _Drawing:
    """Two or three nearly straight roads across the image with dead-end side streets."""
    h, w = shape
    curves: list[tuple[np.ndarray, float]] = []
    for i in range(int(rng.integers(2, 4))):
        horizontal = i % 2 == 0
        t = rng.uniform(0.15, 0.85)
        start = np.array([t * h, 0.0]) if horizontal else np.array([0.0, t * w])
        direction = (
            np.array([rng.normal(0, 0.1), 1.0])
            if horizontal
            else np.array([1.0, rng.normal(0, 0.1)])
        )
        pts = _walk(rng, start, direction, 2.0 * max(h, w), shape, bend=0.03)
        curves.append((pts, 3.0))
        for _ in range(int(rng.integers(2, 5))):
            k = int(rng.integers(len(pts) // 8, len(pts) - len(pts) // 8))
            tangent = pts[min(k + 1, len(pts) - 1)] - pts[max(k - 1, 0)]
            normal = np.array([-tangent[1], tangent[0]]) * rng.choice([-1, 1])
            side = _walk(rng, pts[k], normal, rng.uniform(0.12, 0.3) * max(h, w), shape, bend=0.05)
            curves.append((side, 2.0))
    return _draw_curves(shape, curves)


def _tubes3d(rng: np.random.Generator, shape: tuple[int, ...]) -> _Drawing:
    """Curved tubes of radius 1.5-2.5 voxels, some with one branch."""
    curves: list[tuple[np.ndarray, float]] = []
    size = np.array(shape, dtype=float)
    for _ in range(int(rng.integers(4, 7))):
        start = rng.uniform(0.1, 0.9, 3) * size
        direction = rng.normal(0, 1, 3)
        direction[0] *= 0.4  # mostly in-plane, as in vessel volumes
        radius = float(rng.choice([1.5, 2.0, 2.5]))
        pts = _walk(rng, start, direction, 1.2 * size.max(), shape, bend=0.08)
        back = _walk(rng, start, -direction, 1.2 * size.max(), shape, bend=0.08)
        pts = np.concatenate([back[::-1], pts[1:]])
        curves.append((pts, radius))
        if rng.random() < 0.5 and len(pts) > 20:
            k = int(rng.integers(len(pts) // 4, 3 * len(pts) // 4))
            branch = _walk(rng, pts[k], rng.normal(0, 1, 3), 0.4 * size.max(), shape, bend=0.1)
            curves.append((branch, 1.5))
    return _draw_curves(shape, curves)


def _membranes3d(rng: np.random.Generator, shape: tuple[int, ...]) -> _Drawing:
    """Parallel wavy membrane sheets (2 voxels thick) across the volume, each with a few pores."""
    zdim, hdim, wdim = shape
    n_sheets = int(rng.integers(3, 5))
    spacing = hdim / n_sheets
    z, x = np.meshgrid(np.arange(zdim), np.arange(wdim), indexing="ij")
    yy = np.arange(hdim)[None, :, None]
    mask = np.zeros(shape, dtype=bool)
    drawing = _Drawing(mask=mask, slab_axis=2)
    amp = min(0.2 * spacing, 4.0)
    for i in range(n_sheets):
        centre = (i + 0.5) * spacing
        surface = (
            centre
            + amp * np.sin(2 * np.pi * x / rng.uniform(30, 60) + rng.uniform(0, 2 * np.pi))
            + 0.5 * amp * np.sin(2 * np.pi * z / rng.uniform(20, 40) + rng.uniform(0, 2 * np.pi))
        )
        sheet = np.abs(yy - surface[:, None, :]) <= 1.0
        # Pores: round holes through the sheet (tunnels).
        for _ in range(int(rng.integers(1, 4))):
            cz, cx, r = rng.uniform(6, zdim - 6), rng.uniform(6, wdim - 6), rng.uniform(2.0, 3.5)
            hole = ((z - cz) ** 2 + (x - cx) ** 2) <= r * r
            sheet &= ~hole[:, None, :]
        mask |= sheet
        pts = np.stack([z.ravel(), surface.ravel(), x.ravel()], axis=1).astype(float)
        drawing.points.append(pts[::7])
        drawing.radii.append(1.0)
    return drawing


_GENERATORS = {
    "vessels2d": _vessels2d,
    "roads2d": _roads2d,
    "tubes3d": _tubes3d,
    "membranes3d": _membranes3d,
}


# --------------------------------------------------------------------------------------------
# Degrading the prediction
# --------------------------------------------------------------------------------------------


class _PieceCounter:
    """Counts connected pieces per evaluation window (the quantity e0-Gt compares)."""

    def __init__(self, shape: tuple[int, ...], window: int | tuple[int, ...] | None, conn: int):
        self.windows = sliding_windows(shape, window)
        self.conn = conn

    def _label(self, mask: np.ndarray) -> tuple[np.ndarray, int]:
        import cc3d

        return cc3d.connected_components(mask, connectivity=self.conn, return_N=True)

    def counts(self, mask: np.ndarray) -> np.ndarray:
        return np.array([self._label(mask[w])[1] for w in self.windows])

    def smallest_piece(self, mask: np.ndarray) -> int:
        labels, n = self._label(mask)
        return int(np.bincount(labels.ravel())[1:].min()) if n else 0


def _ball(
    shape: tuple[int, ...], centre: np.ndarray, radius: float
) -> tuple[tuple[slice, ...], np.ndarray]:
    """The bounding box of a ball (as slices) and the ball inside that box."""
    lo = np.maximum(np.floor(centre - radius).astype(int), 0)
    hi = np.minimum(np.ceil(centre + radius).astype(int) + 1, shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    grids = np.ogrid[box]
    d2 = sum((g - c) ** 2 for g, c in zip(grids, centre))
    return box, d2 <= radius * radius


def _cut_gaps(
    rng: np.random.Generator,
    drawing: _Drawing,
    kept: np.ndarray,
    counter: _PieceCounter,
    n_gaps: int,
    min_piece: int,
) -> tuple[list[tuple[int, ...]], list[float]]:
    """Remove up to ``n_gaps`` gaps from ``kept`` (in place), each adding exactly one piece."""
    shape = kept.shape
    base = counter.counts(kept)
    floor = min(min_piece, counter.smallest_piece(kept))  # real masks may hold tiny pieces
    centres: list[tuple[int, ...]] = []
    radii: list[float] = []
    if not drawing.points:  # an empty target: nothing to cut
        return centres, radii
    attempts = 0
    while len(centres) < n_gaps and attempts < 60 * max(n_gaps, 1):
        attempts += 1
        s = int(rng.integers(len(drawing.points)))
        pts = drawing.points[s]
        if len(pts) < 10:
            continue
        i = int(rng.integers(3, len(pts) - 3))
        p = pts[i]
        centre = np.rint(p).astype(int)
        if np.any(centre < 0) or np.any(centre >= np.array(shape)):
            continue
        if any(np.linalg.norm(centre - np.array(c)) < 12 for c in centres):
            continue
        trial = kept.copy()
        if drawing.slab_axis is None:
            radius = drawing.radius(s, i) + 2.0
            box, ball = _ball(shape, centre.astype(float), radius)
            trial[box] &= ~ball
        else:  # a sheet: cut a slab across the whole sheet, near this point of it
            radius = 1.5
            ax = drawing.slab_axis
            lo, hi = max(centre[ax] - 1, 0), min(centre[ax] + 2, shape[ax])
            near = np.abs(np.arange(shape[1])[None, :, None] - _sheet_surface(drawing, s)) <= 3
            slab = [slice(None)] * len(shape)
            slab[ax] = slice(lo, hi)
            trial[tuple(slab)] &= ~near[tuple(slab)]
        if trial.sum() == kept.sum():
            continue
        counts = counter.counts(trial)
        delta = counts - base
        if delta.sum() != 1 or delta.min() < 0 or counter.smallest_piece(trial) < floor:
            continue
        kept[...] = trial
        base = counts
        centres.append(tuple(int(c) for c in centre))
        radii.append(float(radius))
    return centres, radii


def _sheet_surface(drawing: _Drawing, s: int) -> np.ndarray:
    """Mid-surface height ``(Z, 1, W)`` of membrane sheet ``s``."""
    pts = drawing.points[s]
    zdim, _, wdim = drawing.mask.shape
    surface = np.full((zdim, wdim), np.nan)
    idx = np.rint(pts[:, [0, 2]]).astype(int)
    surface[idx[:, 0], idx[:, 1]] = pts[:, 1]
    # Fill the subsampled grid by nearest neighbour.
    missing = np.isnan(surface)
    if missing.any():
        nearest = ndimage.distance_transform_edt(
            missing, return_distances=False, return_indices=True
        )
        surface = surface[tuple(nearest)]
    return surface[:, None, :]


def _thin(target: np.ndarray, kept: np.ndarray, counter: _PieceCounter) -> int:
    """Peel the boundary of the thick parts of ``kept`` (in place) if that keeps its pieces."""
    inner = _distance(target)
    thick = ndimage.maximum_filter(inner, size=5) >= 2.5  # near a centre at least 2.5 px deep
    boundary = kept & ~ndimage.binary_erosion(kept, border_value=1)
    # The skeleton (topology-preserving) and its neighbours stay, so no piece comes apart.
    from skimage.morphology import skeletonize

    core = ndimage.binary_dilation(skeletonize(kept))
    removable = boundary & thick & ~core
    if not removable.any():
        return 0
    trial = kept & ~removable
    if not np.array_equal(counter.counts(trial), counter.counts(kept)):
        return 0
    if counter.smallest_piece(trial) < counter.smallest_piece(kept) // 2:
        return 0
    kept[...] = trial
    return int(removable.sum())


def _bridges(
    rng: np.random.Generator,
    drawing: _Drawing,
    target: np.ndarray,
    avoid: list[tuple[int, ...]],
    n_bridges: int,
    connectivity: int,
) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    """Thin false-positive segments (outside the target) joining two structures."""
    shape = target.shape
    added = np.zeros(shape, dtype=bool)
    centres: list[tuple[int, ...]] = []
    if not drawing.points:  # an empty target: nothing to join
        return added, centres
    lo_len, hi_len = (6.0, 45.0) if len(shape) == 2 else (4.0, 24.0)
    clearance = _distance(~target)
    betti = betti_numbers(target, connectivity=connectivity)
    attempts = 0
    while len(centres) < n_bridges and attempts < 200 * max(n_bridges, 1):
        attempts += 1
        a, b = rng.integers(len(drawing.points), size=2)
        if a == b and drawing.slab_axis is not None:
            continue  # two points of one sheet: no new connection
        ia = int(rng.integers(len(drawing.points[a])))
        pa = drawing.points[a][ia]
        pb_all = drawing.points[b]
        d = np.linalg.norm(pb_all - pa, axis=1)
        ra = drawing.radius(a, ia)
        rb_all = np.broadcast_to(drawing.radii[b], d.shape)
        ok = (d > lo_len + ra + rb_all) & (d < hi_len)
        if a == b and drawing.ordered:  # one curve: join points far apart along it (a loop)
            along = 0.5 * np.abs(np.arange(len(pb_all)) - ia)
            ok &= along > 3 * d
        ok = np.flatnonzero(ok)
        if ok.size == 0:
            continue
        ib = int(rng.choice(ok))
        pb, rb = pb_all[ib], float(rb_all[ib])
        if any(np.linalg.norm((pa + pb) / 2 - np.array(c)) < 15 for c in avoid + centres):
            continue
        n = int(np.linalg.norm(pb - pa) / 0.5) + 2
        pts = pa + np.linspace(0, 1, n)[:, None] * (pb - pa)
        # The middle of the segment must cross only background: one connection per bridge.
        da, db = np.linalg.norm(pts - pa, axis=1), np.linalg.norm(pts - pb, axis=1)
        middle = (da > ra + 3.0) & (db > rb + 3.0)
        if middle.sum() < 4:
            continue
        mid = np.clip(np.rint(pts[middle]).astype(int), 0, np.array(shape) - 1)
        if clearance[tuple(mid.T)].min() < 2.0:
            continue
        line = _thicken(_rasterise(shape, pts), 1.0) & ~target
        # The line's neighbourhood: the checks below are local to it.
        idx = np.argwhere(line)
        if idx.size == 0:
            continue
        lo = np.maximum(idx.min(axis=0) - 4, 0)
        hi = np.minimum(idx.max(axis=0) + 5, shape)
        box = tuple(slice(a, b) for a, b in zip(lo, hi))
        if (ndimage.binary_dilation(line[box], iterations=2) & added[box]).any():
            continue  # bridges never touch each other
        # Fill the tiny background pockets a line can trap where it meets a structure's edge
        # (a pocket enclosed inside the box is enclosed in the whole array too).
        before = target[box] | added[box]
        after = before | line[box]
        pockets = ndimage.binary_fill_holes(after) & ~after & ~ndimage.binary_fill_holes(before)
        if pockets.any():
            labels, _ = ndimage.label(pockets)
            sizes = np.bincount(labels.ravel())
            small = np.flatnonzero(sizes < (25 if len(shape) == 2 else 60))
            line[box] |= np.isin(labels, small[small > 0])
        # Keep it only if it makes exactly one false connection: it merges two pieces or
        # closes one loop (checked on the Betti numbers, with the case's connectivity).
        now = betti_numbers(target | added | line, connectivity=connectivity)
        if (betti[0] - now[0]) + (now[1] - betti[1]) != 1 or now[2:] != betti[2:]:
            continue
        betti = now
        added |= line
        clearance = _distance(~(target | added))
        centres.append(tuple(int(c) for c in np.rint((pa + pb) / 2)))
    return added, centres


def _blobs(
    rng: np.random.Generator, clearance: np.ndarray, n_blobs: int, ndim: int
) -> tuple[np.ndarray, int]:
    """False-positive discs/balls well away from the target (``clearance``: EDT to it)."""
    added = np.zeros(clearance.shape, dtype=bool)
    placed = 0
    for _ in range(50 * max(n_blobs, 1)):
        if placed == n_blobs:
            break
        radius = rng.uniform(3.0, 6.0) if ndim == 2 else rng.uniform(2.0, 3.5)
        centre = rng.uniform(0, 1, ndim) * (np.array(clearance.shape) - 1)
        c = tuple(np.rint(centre).astype(int))
        if clearance[c] < radius + 4:
            continue
        box, ball = _ball(clearance.shape, centre, radius)
        if added[box][ball].any():
            continue
        added[box] |= ball
        placed += 1
    return added, placed


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


def synthesize(
    out_dir: str | Path,
    *,
    kind: SynthKind = "vessels2d",
    n: int = 6,
    seed: int = 0,
    shape: Sequence[int] | None = None,
    file_format: str | None = None,
    **degradation: Any,
) -> dict[str, Any]:
    """Write ``n`` synthetic cases to ``out_dir`` and return the manifest.

    Writes ``out_dir/gt/<case><ext>``, ``out_dir/pred/<case><ext>`` and ``out_dir/manifest.json``.
    Case ``i`` is drawn with seed ``(seed, i)``, so cases do not depend on ``n``.

    Parameters
    ----------
    out_dir : path
    kind : {"vessels2d", "roads2d", "tubes3d", "membranes3d"}
    n : int
        Number of cases.
    seed : int
    shape : sequence of int, optional
        See :func:`make_case`.
    file_format : str, optional
        Suffix of the files: ``png`` (2D default), ``nii.gz`` (3D default), ``tif``, ``npy``,
        ``npz``.
    **degradation
        ``gaps``, ``bridges``, ``blobs``, ``noise``, ``thinning``, ``window``, ``connectivity``
        as in :func:`make_case`.

    Returns
    -------
    dict
        The manifest: ``format``, ``topobench_version``, the generation parameters, ``note`` and
        one entry per case (files, injected error counts, gap and bridge centres, expected
        e0-Gt).
    """
    if kind not in KINDS:
        raise InvalidParameterError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if n < 1:
        raise InvalidParameterError(f"n must be >= 1, got {n}")
    ndim = len(KINDS[kind])
    ext = (file_format or ("png" if ndim == 2 else "nii.gz")).lstrip(".").lower()
    allowed = (
        ("png", "bmp", "tif", "tiff", "npy", "npz")
        if ndim == 2
        else ("nii.gz", "nii", "tif", "tiff", "npy", "npz")
    )
    if ext not in allowed:
        raise InvalidParameterError(
            f"{kind} masks can be written as {', '.join(allowed)}, got {file_format!r}"
        )
    out = Path(out_dir)
    cases = []
    for i in range(n):
        case = make_case(kind, seed=(seed, i), shape=shape, **degradation)
        name = f"{kind}_{i:03d}"
        write_mask(out / "gt" / f"{name}.{ext}", case.target)
        write_mask(out / "pred" / f"{name}.{ext}", case.pred)
        cases.append(
            {"case": name, "gt": f"gt/{name}.{ext}", "pred": f"pred/{name}.{ext}", **case.to_dict()}
        )
    manifest = {
        "format": "topobench-synth/1",
        "topobench_version": __version__,
        "kind": kind,
        "n": n,
        "seed": seed,
        "shape": list(case.target.shape),
        "connectivity": case.connectivity,
        "window": None if case.window is None else list(case.window),
        "n_windows": case.n_windows,
        "degradation": {
            k: v for k, v in degradation.items() if k not in ("window", "connectivity")
        },
        "note": _GAP_NOTE,
        "cases": cases,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest

"""Injecting counted errors into a prediction: gaps, thinning, bridges, blobs.

Every function draws from the given generator in a fixed order, so a seed gives the same case.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from topobench.metrics import betti_numbers
from topobench.metrics.windows import sliding_windows
from topobench.synth.drawing import _distance, _Drawing, _rasterise, _thicken


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
    lengths = (6.0, 45.0) if len(shape) == 2 else (4.0, 24.0)
    clearance = _distance(~target)
    betti = betti_numbers(target, connectivity=connectivity)
    attempts = 0
    while len(centres) < n_bridges and attempts < 200 * max(n_bridges, 1):
        attempts += 1
        ends = _bridge_ends(rng, drawing, lengths, avoid + centres)
        if ends is None:
            continue
        line = _bridge_line(target, added, clearance, *ends)
        if line is None:
            continue
        # Keep it only if it makes exactly one false connection: it merges two pieces or
        # closes one loop (checked on the Betti numbers, with the case's connectivity).
        now = betti_numbers(target | added | line, connectivity=connectivity)
        if (betti[0] - now[0]) + (now[1] - betti[1]) != 1 or now[2:] != betti[2:]:
            continue
        betti = now
        added |= line
        clearance = _distance(~(target | added))
        pa, pb = ends[0], ends[2]
        centres.append(tuple(int(c) for c in np.rint((pa + pb) / 2)))
    return added, centres


def _bridge_ends(
    rng: np.random.Generator,
    drawing: _Drawing,
    lengths: tuple[float, float],
    avoid: list[tuple[int, ...]],
) -> tuple[np.ndarray, float, np.ndarray, float] | None:
    """Two structure points a bridge could join, with their radii; None if the draw fails.

    The points are ``lengths[0]`` (plus both radii) to ``lengths[1]`` apart, on two structures
    or far apart along one curve (a loop), and their midpoint is away from ``avoid``.
    """
    lo_len, hi_len = lengths
    a, b = rng.integers(len(drawing.points), size=2)
    if a == b and drawing.slab_axis is not None:
        return None  # two points of one sheet: no new connection
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
        return None
    ib = int(rng.choice(ok))
    pb, rb = pb_all[ib], float(rb_all[ib])
    if any(np.linalg.norm((pa + pb) / 2 - np.array(c)) < 15 for c in avoid):
        return None
    return pa, ra, pb, rb


def _bridge_line(
    target: np.ndarray, added: np.ndarray, clearance: np.ndarray,
    pa: np.ndarray, ra: float, pb: np.ndarray, rb: float,
) -> np.ndarray | None:
    """The bridge from ``pa`` to ``pb`` as a mask outside the target; None where it cannot be.

    Its middle must cross only background (one connection per bridge) and stay clear of the
    other bridges (``added``); background pockets it traps against a structure's edge are
    filled.
    """
    shape = target.shape
    n = int(np.linalg.norm(pb - pa) / 0.5) + 2
    pts = pa + np.linspace(0, 1, n)[:, None] * (pb - pa)
    da, db = np.linalg.norm(pts - pa, axis=1), np.linalg.norm(pts - pb, axis=1)
    middle = (da > ra + 3.0) & (db > rb + 3.0)
    if middle.sum() < 4:
        return None
    mid = np.clip(np.rint(pts[middle]).astype(int), 0, np.array(shape) - 1)
    if clearance[tuple(mid.T)].min() < 2.0:
        return None
    line = _thicken(_rasterise(shape, pts), 1.0) & ~target
    # The line's neighbourhood: the checks below are local to it.
    idx = np.argwhere(line)
    if idx.size == 0:
        return None
    lo = np.maximum(idx.min(axis=0) - 4, 0)
    hi = np.minimum(idx.max(axis=0) + 5, shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    if (ndimage.binary_dilation(line[box], iterations=2) & added[box]).any():
        return None  # bridges never touch each other
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
    return line


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

"""Drawing synthetic targets: 2D vessel trees and road networks, 3D tubes and membrane sheets.

Each generator ``(rng, shape) -> _Drawing`` returns the target mask with the centreline (or
mid-surface) points and radii it was drawn from, which :mod:`topobench.synth.inject` uses to
place gaps and bridges.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

SynthKind = Literal["vessels2d", "roads2d", "tubes3d", "membranes3d"]

#: Default shape of each kind: ``(H, W)`` in 2D, ``(Z, H, W)`` in 3D.
KINDS: dict[str, tuple[int, ...]] = {
    "vessels2d": (320, 320),
    "roads2d": (384, 384),
    "tubes3d": (48, 96, 96),
    "membranes3d": (48, 96, 96),
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

"""Exact Betti numbers and Euler characteristics of binary masks (docs/metrics.md, Definitions).

Algorithm (no persistence computation needed):

- ``beta0``: foreground components under the connectivity ``c`` (cc3d).
- holes / cavities: background components under the dual connectivity in the mask padded by one
  background pixel on every side, minus the outer one. That is ``beta1`` in 2D and ``beta2`` in 3D.
- 3D ``beta1 = beta0 + beta2 - chi``, with ``chi`` the Euler characteristic of the foreground
  complex, ``sum (-1)^dim`` over its cells, each kind of cell counted by one ``count_nonzero``
  of the mask reduced (OR / AND) over neighbour pairs along some axes (:func:`_euler_validated`).

For ``c = 8 / 26`` the complex is the union of closed pixels / voxels; for ``c = 4 / 6`` it is the
complex whose vertices are the foreground pixels (edges between 4/6-neighbours, squares and cubes
where all corners are foreground). These are the two complexes gudhi's ``CubicalComplex`` builds
from ``top_dimensional_cells`` and from ``vertices``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cc3d
import numpy as np

from topobench.masks import as_mask, dual_connectivity, resolve_connectivity, slice_connectivity

__all__ = ["betti_numbers", "euler_characteristic", "count_components", "label_components"]

# Voxels processed per slab by the Euler counter: bounds the temporaries for large volumes.
_EULER_SLAB_VOXELS = 1 << 20


def _flat_view(mask: np.ndarray, connectivity: int) -> tuple[np.ndarray, int]:
    """The same pixels with one axis of length 1 dropped from a 3D array, and the connectivity.

    Along an axis of length 1 there are no neighbours, so a (1, H, W) volume under 26 / 6 is the
    (H, W) image under 8 / 4 (a view, no copy). cc3d fails on volumes with two axes of length 1
    under 26-connectivity ("maximum length exception"; 6 gives wrong labels there).
    """
    if mask.ndim == 3 and 1 in mask.shape:
        axis = mask.shape.index(1)
        flat = mask.reshape(mask.shape[:axis] + mask.shape[axis + 1:])
        return flat, slice_connectivity(connectivity)
    return mask, connectivity


def _writable_alias(mask: np.ndarray) -> np.ndarray:
    """``mask`` itself if writeable; otherwise a writeable-flagged alias of the same memory.

    cc3d declares its input as a writable buffer and refuses read-only arrays ("buffer source
    array is read-only": ``np.load(..., mmap_mode="r")``, ``setflags(write=False)``), although
    it only reads it. The alias lets such arrays through without copying them; it must not
    outlive ``mask`` and is never written to (a read-only memory map would fault).
    """
    if mask.flags.writeable or mask.size == 0:
        return mask
    import ctypes

    start = mask.__array_interface__["data"][0]
    lo = sum(min(0, st * (n - 1)) for st, n in zip(mask.strides, mask.shape))
    hi = sum(max(0, st * (n - 1)) for st, n in zip(mask.strides, mask.shape)) + mask.itemsize
    raw = (ctypes.c_char * (hi - lo)).from_address(start + lo)
    flat = np.frombuffer(raw, dtype=np.uint8)
    return np.lib.stride_tricks.as_strided(
        flat[-lo:].view(mask.dtype), shape=mask.shape, strides=mask.strides, writeable=True
    )


def label_components(mask: np.ndarray, connectivity: int) -> tuple[np.ndarray, int]:
    """Labels (uint32, 0 background, same shape) of the True pixels' components, and their count.

    ``mask``: bool, 2D or 3D, any memory order, read-only or memory-mapped (not copied unless
    cc3d needs a contiguous copy); ``connectivity`` valid for the dimension.
    """
    flat, c = _flat_view(mask, connectivity)
    labels, n = cc3d.connected_components(
        _writable_alias(flat), connectivity=c, return_N=True, binary_image=True
    )
    if flat.ndim == 2:
        # cc3d 4.1's 2D binary path may write labels onto background pixels (its count and the
        # foreground partition are right); background is 0 by contract here.
        labels *= flat
    return labels.reshape(mask.shape), int(n)


# Volumes above this many voxels are labelled in slabs of about this size along z, joined across
# the slab faces: no full-volume label array (4 bytes a voxel) is ever allocated.
_LABEL_SLAB_VOXELS = 1 << 24

# (dy, dx) offsets across a z face: the face neighbours (6) or all nine (26).
_FACE_OFFSETS = {6: ((0, 0),), 26: tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1))}


@dataclass
class SlabComponents:
    """Components of a volume labelled slab by slab along z, with the slabs' labels joined.

    Attributes
    ----------
    n : int
        Number of components of the whole volume.
    component : numpy.ndarray of int64, shape (n_provisional + 1,)
        Component index (0 .. n - 1) of every slab label, slab labels numbered consecutively
        over the slabs from 1; entry 0 (background) is -1.
    """

    n: int
    component: np.ndarray


def _face_pairs(a: np.ndarray, b: np.ndarray, connectivity: int) -> np.ndarray:
    """Distinct label pairs ``(a[y, x], b[y + dy, x + dx])``, both foreground, shape (k, 2).

    ``a`` and ``b``: int64 labels below 2**31 (0 background) of two facing slices.
    """
    h, w = a.shape
    keys = []
    for dy, dx in _FACE_OFFSETS[connectivity]:
        sa = a[max(0, -dy): h - max(0, dy), max(0, -dx): w - max(0, dx)]
        sb = b[max(0, dy): h - max(0, -dy), max(0, dx): w - max(0, -dx)]
        both = (sa > 0) & (sb > 0)
        if both.any():
            keys.append((sa[both] << 32) | sb[both])  # one int64 key per pair: a 1D unique
    if not keys:
        return np.zeros((0, 2), np.int64)
    k = np.unique(np.concatenate(keys))
    return np.stack([k >> 32, k & 0xFFFFFFFF], axis=1)


def slab_components(
    mask, shape: tuple[int, int, int], connectivity: int, *, slab_voxels: int | None = None,
    on_slab=None,
) -> SlabComponents:
    """Components of a 3D mask labelled in z-slabs and joined across the slab faces.

    Parameters
    ----------
    mask : numpy.ndarray of bool, shape (Z, H, W), or a callable ``mask(z0, z1)`` giving the
        slab ``[z0, z1)`` as a bool array (so that ``pred & target`` is never built whole).
    shape : tuple of int
        Volume shape.
    connectivity : {6, 26}
    slab_voxels : int, optional
        Voxels per slab (default ``_LABEL_SLAB_VOXELS``).
    on_slab : callable, optional
        ``on_slab(z0, labels, n_slab, offset)`` for every slab: its first z, its labels
        (``1 .. n_slab``, 0 background) and the number of slab labels before it (global slab
        label = label + offset).

    Returns
    -------
    SlabComponents
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    get = mask if callable(mask) else (lambda z0, z1: mask[z0:z1])
    z_total, h, w = shape
    step = max(1, (slab_voxels or _LABEL_SLAB_VOXELS) // max(1, h * w))
    offset = 0
    pairs = []
    previous = None  # last slice of the previous slab, global labels
    for z0 in range(0, z_total, step):
        z1 = min(z0 + step, z_total)
        slab = get(z0, z1)
        if slab.any():
            labels, n = label_components(slab, connectivity)
        else:
            labels, n = np.zeros(slab.shape, np.uint8), 0
        if on_slab is not None:
            on_slab(z0, labels, n, offset)
        first = labels[0].astype(np.int64)
        first[first > 0] += offset
        if previous is not None:
            pairs.append(_face_pairs(previous, first, connectivity))
        last = labels[-1].astype(np.int64)
        last[last > 0] += offset
        previous = last
        offset += n
        del labels
    edges = np.concatenate(pairs) if pairs else np.zeros((0, 2), np.int64)
    graph = coo_matrix(
        (np.ones(len(edges), np.int8), (edges[:, 0], edges[:, 1])), shape=(offset + 1,) * 2
    )
    n_comp, comp = connected_components(graph, directed=False)
    # node 0 (background) is its own component: renumber the others 0 .. n - 1
    comp = comp.astype(np.int64)
    comp[comp > comp[0]] -= 1
    comp[0] = -1
    return SlabComponents(n=int(n_comp) - 1, component=comp)


def uses_slabs(shape: tuple[int, ...]) -> bool:
    """Whether components of a mask of ``shape`` are labelled in slabs (large 3D volumes)."""
    return len(shape) == 3 and int(np.prod(shape)) > 2 * _LABEL_SLAB_VOXELS and 1 not in shape


def count_components(mask: np.ndarray, connectivity: int) -> int:
    """Number of connected components of the True pixels of a bool array (2D or 3D).

    ``connectivity`` must already be valid for the dimension (4/8 in 2D, 6/26 in 3D).
    """
    if not mask.any():
        return 0
    if uses_slabs(mask.shape):
        return slab_components(mask, mask.shape, connectivity).n
    return label_components(mask, connectivity)[1]


def _background_components(mask: np.ndarray, connectivity: int) -> int:
    """Background components (dual connectivity) of ``mask`` embedded in background."""
    shape = tuple(s + 2 for s in mask.shape)
    dual = dual_connectivity(connectivity)
    if uses_slabs(shape):
        # the padded complement is built slab by slab, never whole
        def padded_slab(z0: int, z1: int) -> np.ndarray:
            out = np.ones((z1 - z0,) + shape[1:], dtype=bool)
            lo, hi = max(z0, 1), min(z1, shape[0] - 1)
            if lo < hi:
                np.logical_not(mask[lo - 1: hi - 1], out=out[lo - z0: hi - z0, 1:-1, 1:-1])
            return out

        return slab_components(padded_slab, shape, dual).n
    padded = np.ones(shape, dtype=bool)
    np.logical_not(mask, out=padded[tuple(slice(1, -1) for _ in mask.shape)])
    return count_components(padded, dual)


def _subset_counts(
    x: np.ndarray, axes: tuple[int, ...], op: np.ufunc, reduced: int = 0
) -> Iterator[tuple[int, int]]:
    """``(count, k)`` for every subset of ``axes``: the True entries of ``x`` reduced by ``op``
    over the pairs of neighbours along each of the subset's ``k`` axes (depth first, so that at
    most ``len(axes)`` reduced arrays are alive at a time)."""
    if not axes:
        yield int(np.count_nonzero(x)), reduced
        return
    axis, rest = axes[0], axes[1:]
    yield from _subset_counts(x, rest, op, reduced)
    if x.shape[axis] > 1:
        lo = [slice(None)] * x.ndim
        hi = [slice(None)] * x.ndim
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        yield from _subset_counts(op(x[tuple(hi)], x[tuple(lo)]), rest, op, reduced + 1)


def _signed_cells(block: np.ndarray, n_own: int, op: np.ufunc, closed: bool) -> int:
    """Signed cell count of the rows ``block[:n_own]`` (``block`` may hold the next row too).

    Cells of the subsets without axis 0 belong to the own rows; those of the subsets with it to
    the pairs of rows (own row, next row), so slabs that share one row count every cell once.
    """
    ndim = block.ndim
    rest = tuple(range(1, ndim))
    parts = [_subset_counts(block[:n_own], rest, op)]
    if block.shape[0] > 1:
        parts.append(_subset_counts(op(block[1:], block[:-1]), rest, op, 1))
    total = 0
    for part in parts:
        for count, k in part:
            # closed cells: reducing k axes leaves a cell of dimension ndim - k; vertex complex:
            # a cell of dimension k
            total += -count if (ndim - k if closed else k) % 2 else count
    return total


def _euler_validated(m: np.ndarray, c: int) -> int:
    """chi = sum over cells of (-1)^dim, the cells counted by reducing neighbour pairs.

    8 / 26 (union of closed pixels / voxels): a cell is in the union when one of the pixels
    around it is; with the mask padded by background, OR over the pairs of neighbours along a
    set of ``k`` axes marks the cells of dimension ``ndim - k`` (``k = ndim``: the vertices,
    2x2x2 blocks). 4 / 6 (vertex complex): AND over the pairs marks the cells of dimension
    ``k`` (edges between neighbours, squares, cubes with all corners foreground). Each count
    is one ``np.count_nonzero`` of bool arrays: no codes, no histogram. Slabs along axis 0 of
    about ``_EULER_SLAB_VOXELS`` keep the temporaries small (and in cache).
    """
    closed = c in (8, 26)
    op = np.logical_or if closed else np.logical_and
    per_row = int(np.prod([s + 2 if closed else s for s in m.shape[1:]]))
    step = max(1, _EULER_SLAB_VOXELS // max(1, per_row))
    total = 0
    if not closed:
        for z0 in range(0, m.shape[0], step):
            z1 = min(z0 + step, m.shape[0])
            total += _signed_cells(m[z0: z1 + 1], z1 - z0, op, closed)
        return total
    # padded rows 0 .. n + 1: row p holds m[p - 1], rows 0 and n + 1 are background
    n_rows = m.shape[0] + 2
    buf = np.zeros((min(step, n_rows) + 1,) + tuple(s + 2 for s in m.shape[1:]), dtype=bool)
    inner = (slice(1, -1),) * (m.ndim - 1)
    for p0 in range(0, n_rows, step):
        p1 = min(p0 + step, n_rows)
        block = buf[: min(p1 + 1, n_rows) - p0]
        for r in range(block.shape[0]):  # the padding rows; the others are overwritten
            if p0 + r in (0, n_rows - 1):
                block[r] = False
        lo, hi = max(p0, 1), min(p0 + block.shape[0], n_rows - 1)
        if lo < hi:
            block[(slice(lo - p0, hi - p0),) + inner] = m[lo - 1: hi - 1]
        total += _signed_cells(block, p1 - p0, op, closed)
    return total


def euler_characteristic(mask: np.ndarray, *, connectivity: int | None = None) -> int:
    """Euler characteristic of the foreground complex of a 2D or 3D mask.

    Parameters
    ----------
    mask : array_like, shape (H, W) or (Z, H, W)
        Binary mask (see :func:`topobench.masks.as_mask`).
    connectivity : {4, 8} in 2D, {6, 26} in 3D, optional
        8/26 (default): union of closed pixels/voxels; 4/6: the complex of vertices.

    Returns
    -------
    int
        ``chi = beta0 - beta1 (+ beta2)``.

    Examples
    --------
    >>> ring = np.ones((3, 3), bool); ring[1, 1] = False
    >>> euler_characteristic(ring)
    0
    """
    m = as_mask(mask)
    c = resolve_connectivity(connectivity, m.ndim)
    return _euler_validated(m, c)


def _betti_validated(m: np.ndarray, c: int) -> tuple[int, ...]:
    b0 = count_components(m, c)
    if b0 == 0:
        return (0,) * m.ndim
    holes = _background_components(m, c) - 1
    if m.ndim == 2:
        return (b0, holes)
    chi = _euler_validated(m, c)
    return (b0, b0 + holes - chi, holes)


def betti_numbers(mask: np.ndarray, *, connectivity: int | None = None) -> tuple[int, ...]:
    """Betti numbers of the foreground of a binary mask, embedded in background.

    Parameters
    ----------
    mask : array_like, shape (H, W) or (Z, H, W)
        bool, or integers in {0, 1} / {0, 255}.
    connectivity : {4, 8} in 2D, {6, 26} in 3D, optional
        Foreground connectivity; the background uses the dual one (8<->4, 26<->6). Default: 8 in
        2D, 26 in 3D.

    Returns
    -------
    tuple of int
        ``(b0, b1)`` in 2D; ``(b0, b1, b2)`` in 3D. b0 counts components, b1 holes (loops,
        tunnels), b2 cavities. A background region touching the border is not a hole.

    Examples
    --------
    >>> ring = np.ones((5, 5), bool); ring[1:4, 1:4] = False; ring[2, 2] = True
    >>> betti_numbers(ring)
    (2, 1)
    """
    m = as_mask(mask)
    c = resolve_connectivity(connectivity, m.ndim)
    return _betti_validated(m, c)


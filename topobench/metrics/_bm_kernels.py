"""Compiled kernels of the Betti matching error (``topobench.metrics.betti_matching``):
dimension 0 and the top dimension.

They replay the reference's union-find passes of the induced matching on a binary
V-construction complex (docs/metrics.md, "Betti matching error"), with the values restricted to
{0, 1}: the cells of value 0 come first, each group in the order of the cell index (coordinates in
C order, then the cell type), which is the reference's total order. Dimension 0 has a closed form
(every value-1 merge joins the set of vertex 0); in the top dimension the value-1 part is the
complement's components and only the value-0 faces, on the masks' voxels, are replayed.

The functions are plain Python; with numba installed they are compiled on first use (cached on
disk), otherwise they run as Python (exact, but slow beyond small masks).
"""

from __future__ import annotations

import numpy as np

try:  # pragma: no cover - exercised by whichever environment runs the tests
    from numba import njit as _njit

    def _jit(fn):
        return _njit(cache=True, nogil=True)(fn)

    def _inline(fn):
        """For helpers of inner loops: a compiled call that passes arrays pays their reference
        counting; inlined, it does not (measured: 2-6x on the sweeps)."""
        return _njit(inline="always", cache=True, nogil=True)(fn)

except ImportError:  # pragma: no cover
    def _jit(fn):
        return fn

    _inline = _jit


@_inline
def _find0(par, x):
    """Root in a union-find whose ``par`` holds parent + 1 (0: a root), so that np.zeros (lazy
    pages) initialises it."""
    root = x
    while par[root] != 0:
        root = par[root] - 1
    while par[x] != 0 and par[x] - 1 != root:
        nxt = par[x] - 1
        par[x] = root + 1
        x = nxt
    return root


@_jit
def _merge_times(labels, in_x, in_y, n):
    """Per component of the union (``labels`` 1..n, 3D; 0: background): whether it holds a
    prediction / target voxel, and the id of the first value-1 edge that reaches it (-1 for the
    component of vertex 0): the smallest id of an edge from a background voxel before one of its
    voxels along an axis."""
    s0, s1, s2 = labels.shape
    has_x = np.zeros(n + 1, dtype=np.uint8)
    has_y = np.zeros(n + 1, dtype=np.uint8)
    first = np.full(n + 1, np.iinfo(np.int64).max, dtype=np.int64)
    for x in range(s0):
        for y in range(s1):
            for z in range(s2):
                c = labels[x, y, z]
                if c == 0:
                    continue
                has_x[c] |= in_x[x, y, z]
                has_y[c] |= in_y[x, y, z]
                v = (x * s1 + y) * s2 + z
                if v == 0:
                    first[c] = -1
                if x >= 1 and labels[x - 1, y, z] == 0:
                    first[c] = min(first[c], 3 * (v - s1 * s2))
                if y >= 1 and labels[x, y - 1, z] == 0:
                    first[c] = min(first[c], 3 * (v - s2) + 1)
                if z >= 1 and labels[x, y, z - 1] == 0:
                    first[c] = min(first[c], 3 * (v - 1) + 2)
    return has_x, has_y, first


def dim0_matched(in_u: np.ndarray, in_x: np.ndarray, in_y: np.ndarray) -> int:
    """Matched 0-dimensional pairs (components), 3D arrays (2D masks as shape ``(1, H, W)``).

    ``in_u = in_x | in_y`` (uint8). The reference's union-find takes the value-0 edges first
    (they build the union's components) and then every other edge in index order; a merge of two
    sets that both hold a prediction and a target voxel is one matched pair. That pass has a
    closed form: when edge ``e = (v, v + e_t)`` comes, ``v`` is already in the set of vertex 0
    (one of ``v``'s edges from a smaller vertex came before ``e``, by induction), so every value-1
    merge joins the set of vertex 0, and a component of the union joins it at the first value-1
    edge that touches it, whose id is the smallest of the edges from a background voxel before
    one of its voxels (an edge leaving it forwards comes after the edges into its first voxel).
    A component's merge is a matched pair when it and the set of vertex 0 (the components that
    joined before it) both hold a prediction and a target voxel.
    """
    import cc3d

    labels, n = cc3d.connected_components(in_u.view(bool), connectivity=6, return_N=True,
                                          out_dtype=np.uint32)
    has_x, has_y, first = _merge_times(labels, in_x, in_y, int(n))
    order = np.argsort(first[1:]) + 1
    both = (has_x[order] != 0) & (has_y[order] != 0)
    # the set of vertex 0 holds x (y) from the first component holding it on
    seen_x = np.maximum.accumulate(has_x[order] != 0)
    seen_y = np.maximum.accumulate(has_y[order] != 0)
    before = np.zeros(order.size, dtype=bool)
    before[1:] = seen_x[:-1] & seen_y[:-1]  # the first joins a set without voxels, or is it
    return int((both & before).sum())


# ---------------------------------------------------------------------------------------------
# Top dimension (2D: dimension 1, 3D: dimension 2) through the dual union-find over top cells.
# A top cell (square / cube) has value 0 when all its corners are in the mask. Keys order the
# cells as the reference does: key = value * (M + 1) + cell index, the outside node is oldest.
# 2D masks are arrays of shape (1, H, W): their top cells are the squares of axes 1 and 2, their
# edges of types 1 and 2.


@_inline
def _faces2(cin, s0, s1, x, y, t):
    """Value and the two sides of edge (x, y, t) of a 2D grid (``cin[0]``); -1 if absent."""
    m0 = s0 - 1
    m1 = s1 - 1
    out = m0 * m1
    if t == 0:
        if x + 1 >= s0:
            return -1, 0, 0
        inside = cin[0, x, y] and cin[0, x + 1, y]
        a = x * m1 + (y - 1) if y >= 1 else out
        b = x * m1 + y if y < m1 else out
    else:
        if y + 1 >= s1:
            return -1, 0, 0
        inside = cin[0, x, y] and cin[0, x, y + 1]
        a = (x - 1) * m1 + y if x >= 1 else out
        b = x * m1 + y if x < m0 else out
    return (0 if inside else 1), a, b


@_inline
def _faces3(cin, s0, s1, s2, x, y, z, t):
    """Value and the two sides of face (x, y, z, t) (normal axis t) of a 3D grid; -1 if absent."""
    m0 = s0 - 1
    m1 = s1 - 1
    m2 = s2 - 1
    myz = m1 * m2
    out = m0 * myz
    if t == 0:
        if y + 1 >= s1 or z + 1 >= s2:
            return -1, 0, 0
        inside = cin[x, y, z] and cin[x, y + 1, z] and cin[x, y, z + 1] and cin[x, y + 1, z + 1]
        a = (x - 1) * myz + y * m2 + z if x >= 1 else out
        b = x * myz + y * m2 + z if x < m0 else out
    elif t == 1:
        if x + 1 >= s0 or z + 1 >= s2:
            return -1, 0, 0
        inside = cin[x, y, z] and cin[x + 1, y, z] and cin[x, y, z + 1] and cin[x + 1, y, z + 1]
        a = x * myz + (y - 1) * m2 + z if y >= 1 else out
        b = x * myz + y * m2 + z if y < m1 else out
    else:
        if x + 1 >= s0 or y + 1 >= s1:
            return -1, 0, 0
        inside = cin[x, y, z] and cin[x + 1, y, z] and cin[x, y + 1, z] and cin[x + 1, y + 1, z]
        a = x * myz + y * m2 + (z - 1) if z >= 1 else out
        b = x * myz + y * m2 + z if z < m2 else out
    return (0 if inside else 1), a, b


@_inline
def _cube_node(cin, labels, c, ndim, n_top):
    """The set node of top cell ``c`` before the value-0 faces: ``c`` itself when all its
    corners are in ``cin`` (value 0), else the node of the complement component of its corners
    outside (``n_top + 1 + label``; they are one component, dual connectivity); the outside
    (``c == n_top``) is in the padded complement's component of the border. ``labels`` of shape
    (1, 1, 1): one node for every value-1 cell (:func:`merge_flags`)."""
    if c == n_top:
        return n_top + 1 + labels[0, 0, 0]
    coarse = labels.shape[1] == 1  # one node for all the value-1 cells
    _, s1, s2 = cin.shape
    m1 = s1 - 1
    m2 = s2 - 1
    z = c % m2
    y = (c // m2) % m1
    x = c // (m1 * m2)
    for dx in range(2 if ndim == 3 else 1):
        for dy in range(2):
            for dz in range(2):
                if cin[x + dx, y + dy, z + dz] == 0:
                    if coarse:
                        return n_top + 1 + labels[0, 0, 0]
                    return n_top + 1 + labels[x + dx + (1 if ndim == 3 else 0), y + dy + 1,
                                              z + dz + 1]
    return c


@_inline
def _compact_node(node, rank, n_vox, n_top, s1, s2):
    """:func:`_cube_node`'s node in compact numbering: a value-0 cell is the position of its
    base voxel, a component node ``n_vox + 1 + label``."""
    if node >= n_top:
        return node - n_top + n_vox
    m1 = s1 - 1
    m2 = s2 - 1
    return rank[((node // (m1 * m2)) * s1 + (node // m2) % m1) * s2 + node % m2]


@_inline
def _initial_key(node, keys, vox, s1, s2):
    """Key of a set node before any value-0 face: a component's from ``keys``, a value-0 cell's
    its index (the node is its base voxel's position)."""
    if node > vox.shape[0]:
        return keys[node - vox.shape[0] - 1]
    v = vox[node]
    m1 = s1 - 1
    m2 = s2 - 1
    return ((v // (s1 * s2)) * m1 + (v // s2) % s1) * m2 + v % s2


@_jit
def _component_keys(cin, cu, labels, n_labels, ndim):
    """Keys of the complement components' sets after the value-1 faces, in ``cin``'s order and
    in the comparison's (``cu``, its foreground): the largest key of a cell in the set, a cell's
    key being ``value * (n_top + 1) + index``; the border's component holds the outside, whose
    key ``2 * (n_top + 1)`` is the largest. A component's cells are the top cells with a corner
    in it; only the bounded components (cavities) are scanned."""
    s0, s1, s2 = cin.shape
    m0 = s0 - 1 if ndim == 3 else 1
    m1 = s1 - 1
    m2 = s2 - 1
    n_top = m0 * m1 * m2
    key_a = np.full(n_labels + 1, -1, dtype=np.int64)
    key_b = np.full(n_labels + 1, -1, dtype=np.int64)
    outer = labels[0, 0, 0]
    key_a[outer] = 2 * (n_top + 1)
    key_b[outer] = 2 * (n_top + 1)
    pad = 1 if ndim == 3 else 0
    for x in range(s0):
        for y in range(s1):
            for z in range(s2):
                lab = labels[x + pad, y + 1, z + 1]
                if lab == 0 or lab == outer:
                    continue
                # the cells with this voxel as a corner
                for cx in range(max(x - 1, 0), min(x, m0 - 1) + 1) if ndim == 3 else range(1):
                    for cy in range(max(y - 1, 0), min(y, m1 - 1) + 1):
                        for cz in range(max(z - 1, 0), min(z, m2 - 1) + 1):
                            c = (cx * m1 + cy) * m2 + cz
                            key_a[lab] = max(key_a[lab], n_top + 1 + c)
                            value_u = 0
                            for dx in range(2 if ndim == 3 else 1):
                                for dy in range(2):
                                    for dz in range(2):
                                        if cu[cx + dx, cy + dy, cz + dz] == 0:
                                            value_u = 1
                            key_b[lab] = max(key_b[lab], value_u * (n_top + 1) + c)
    return key_a, key_b


@_jit
def _dual_pass(cin, labels, n_labels, key_a, key_b, vox, ndim, mode, marks_in, marks_out, merged,
               record, rank):
    """The value-0 faces of ``cin`` in decreasing index order (the order that decides the
    pairs), on the sets left by the value-1 faces (the complement's components, and each value-0
    top cell alone). Faces with a corner outside ``cin`` have value 1; ``vox`` (the voxels of
    ``cin``, sorted flat indices) holds every value-0 face's base.

    ``labels``: the padded complement's components (``n_labels`` of them). Keys: ``key_a`` /
    ``key_b`` per component (:func:`_component_keys`; empty: not tracked), a value-0 cell's is
    its index. mode 0 (an input's image pass: ``key_b`` the comparison's
    keys): each finite pair marks, in ``marks_out``, the comparison key of its younger set; mode 1
    (the comparison pass): returns the number of finite pairs whose key both inputs marked
    (``marks_in``, ``marks_out``); otherwise the number of pairs. With ``record``, the faces that
    merge two sets are flagged in ``merged``: their columns reduce to zero. Numbering is
    compact (``rank``: the positions of the voxels of ``vox``): a value-0 cell's node is the
    position of its base voxel, a component's ``len(vox) + 1 + label``, a square's flag
    ``3 * position + type``.
    """
    s0, s1, s2 = cin.shape
    m0 = s0 - 1 if ndim == 3 else 1
    n_top = m0 * (s1 - 1) * (s2 - 1)
    keys = key_a.shape[0] > 0
    n_nodes = vox.shape[0] + 2 + n_labels
    parent = np.zeros(n_nodes, dtype=np.int64)  # _find0's encoding: zeros are roots
    old_a = np.zeros(n_nodes if keys else 1, dtype=np.int64)  # key + 1; 0: the initial key
    old_b = np.zeros(n_nodes if keys else 1, dtype=np.int64)
    height = np.zeros(n_nodes if not keys else 1, dtype=np.uint8)  # union by rank
    t_low = 0 if ndim == 3 else 1
    count = 0
    for i in range(vox.shape[0] - 1, -1, -1):
        v = vox[i]
        z = v % s2
        y = (v // s2) % s1
        x = v // (s1 * s2)
        for t in range(2, t_low - 1, -1):
            if ndim == 3:
                val, a, b = _faces3(cin, s0, s1, s2, x, y, z, t)
            else:  # edge (y, z) of type t - 1 of cin[0]
                val, a, b = _faces2(cin, s1, s2, y, z, t - 1)
            if val != 0:
                continue
            na = _compact_node(_cube_node(cin, labels, a, ndim, n_top), rank, vox.shape[0], n_top,
                               s1, s2)
            nb = _compact_node(_cube_node(cin, labels, b, ndim, n_top), rank, vox.shape[0], n_top,
                               s1, s2)
            ra = _find0(parent, na)
            rb = _find0(parent, nb)
            if ra == rb:
                continue
            if record:
                merged[3 * i + t] = 1
            if not keys:  # the larger (by rank) keeps its root
                if height[ra] < height[rb]:
                    ra, rb = rb, ra
                elif height[ra] == height[rb]:
                    height[ra] += 1
                parent[rb] = ra + 1
                continue
            # current keys of both roots (a value-0 cell's initial key is its index)
            ka = old_a[ra] - 1 if old_a[ra] else _initial_key(ra, key_a, vox, s1, s2)
            kb = old_a[rb] - 1 if old_a[rb] else _initial_key(rb, key_a, vox, s1, s2)
            la = old_b[ra] - 1 if old_b[ra] else _initial_key(ra, key_b, vox, s1, s2)
            lb = old_b[rb] - 1 if old_b[rb] else _initial_key(rb, key_b, vox, s1, s2)
            young = min(ka, kb)
            if young > n_top:  # the younger set was born at value 1: a finite pair
                if mode == 0:
                    k = min(la, lb)
                    marks_out[k - (n_top + 1) if k > n_top else k] = 1
                    count += 1
                elif marks_in[young - (n_top + 1)] and marks_out[young - (n_top + 1)]:
                    count += 1
            parent[rb] = ra + 1
            old_a[ra] = max(ka, kb) + 1
            old_b[ra] = max(la, lb) + 1
    return count


def _complement_labels(m: np.ndarray) -> np.ndarray:
    """Components of the complement of ``m`` padded with background, dual connectivity (3D)."""
    import cc3d

    pad = np.ones(tuple(s + 2 for s in m.shape), dtype=bool)
    pad[tuple(slice(1, -1) for _ in m.shape)] = m == 0
    labels = cc3d.connected_components(pad, connectivity=8 if m.ndim == 2 else 26,
                                       out_dtype=np.uint32)  # one compiled specialisation
    return labels[None] if m.ndim == 2 else labels


_EMPTY = np.zeros(0, dtype=np.int64)


def merge_flags(m: np.ndarray, vox: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Value-0 faces of a 3D mask whose columns reduce to zero, uint8 per compact square id
    (``3 * position of the base voxel in vox + type``; ``rank``: the positions): the faces that
    merge two sets of the dual union-find (value-0 faces in decreasing order), computed with
    every value-1 cube in one set. That graph connects at least what the true pass connects at
    every step, so each face it flags merges in the true pass too (a positive square, paired
    with a cube); with no cavity the two passes are the same."""
    flags = np.zeros(3 * vox.size, dtype=np.uint8)
    if min(m.shape) >= 2:
        _dual_pass(m, _ONE_SET, 1, _EMPTY, _EMPTY, vox, 3, 2, _NO_MARKS, _NO_MARKS, flags, True,
                   rank)
    return flags


def top_dim_counts(x: np.ndarray, y: np.ndarray) -> tuple[int, int, int]:
    """(matched, finite pairs of x, finite pairs of y) in the top dimension.

    ``x, y``: uint8 masks (2D or 3D) with at least two cells along every axis. The finite pairs
    of a mask are its cavities (bounded components of the padded complement, dual
    connectivity): each merges into the border's set at some value-0 face. Which face, and so the
    matching, is replayed only when both masks have cavities; the pass over the value-0 faces
    visits the masks' voxels only, and a set's keys are derived from its component's cells.
    """
    ndim = x.ndim
    x3, y3 = (x[None], y[None]) if ndim == 2 else (x, y)
    labels = [_complement_labels(m) for m in (x, y)]
    counts = [int(lab.max()) for lab in labels]
    pairs = [n - 1 for n in counts]  # the components but the border's
    if min(pairs) == 0:
        return 0, pairs[0], pairs[1]
    n_top = int(np.prod([s - 1 for s in x.shape]))
    u3 = x3 | y3
    marks = []
    for m, m3, lab, n in zip((x, y), (x3, y3), labels, counts):
        key_a, key_b = _component_keys(m3, u3, lab, n, ndim)
        mk = np.zeros(n_top + 1, dtype=np.uint8)
        vox, rank = _positions(m)
        _dual_pass(m3, lab, n, key_a, key_b, vox, ndim, 0, mk, mk, _NO_MARKS, False, rank)
        marks.append(mk)
    del labels, rank
    lab_u = _complement_labels(x | y)
    n_u = int(lab_u.max())
    key_u, _ = _component_keys(u3, u3, lab_u, n_u, ndim)
    vox, rank = _positions(u3)
    matched = _dual_pass(u3, lab_u, n_u, key_u, key_u, vox, ndim, 1, marks[0], marks[1],
                         _NO_MARKS, False, rank)
    return int(matched), pairs[0], pairs[1]


def _positions(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The voxels of ``m`` (sorted flat indices) and each one's position among them (int32 per
    cell of the grid, written and read at the voxels only): the compact numbering that keeps
    the passes' arrays at the mask's size."""
    vox = np.flatnonzero(m.ravel()).astype(np.int64)
    rank = np.empty(m.size, dtype=np.int32 if vox.size < 2**31 else np.int64)
    rank[vox] = np.arange(vox.size)
    return vox, rank


_NO_MARKS = np.zeros(0, dtype=np.uint8)
_ONE_SET = np.zeros((1, 1, 1), dtype=np.uint32)

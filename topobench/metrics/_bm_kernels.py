"""Compiled kernels of the Betti matching error (``topobench.metrics.betti_matching``).

Each kernel runs one of the union-find passes of the induced matching on a binary V-construction
complex (docs/metrics.md, "Betti matching error"), with the values restricted to {0, 1}: the
cells of value 0 come first, each group in the order of the cell index (coordinates in C order,
then the cell type), which is the reference's total order. The passes whose result does not depend
on the order (the unions of the first value group) are done in any order.

The functions are plain Python; with numba installed they are compiled on first use (a few
seconds once per process), otherwise they run as Python (exact, but slow beyond small masks).
"""

from __future__ import annotations

import numpy as np

try:  # pragma: no cover - exercised by whichever environment runs the tests
    from numba import njit as _njit

    def _jit(fn):
        return _njit(cache=True, nogil=True)(fn)

except ImportError:  # pragma: no cover
    def _jit(fn):
        return fn


@_jit
def _find(parent, x):
    root = x
    while parent[root] != root:
        root = parent[root]
    while parent[x] != root:
        nxt = parent[x]
        parent[x] = root
        x = nxt
    return root


@_jit
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


@_jit
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


@_jit
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


@_jit
def _top_keys(cube_in, n_top):
    """Key of every top cell and of the outside node (last)."""
    keys = np.empty(n_top + 1, dtype=np.int32)
    for c in range(n_top):
        keys[c] = (0 if cube_in[c] else 1) * (n_top + 1) + c
    keys[n_top] = 2 * (n_top + 1)
    return keys


@_jit
def _union_keep_old(parent, old_a, old_b, a, b):
    """Union of roots a and b under a; a carries the larger of both keys arrays."""
    parent[b] = a
    if old_a[b] > old_a[a]:
        old_a[a] = old_a[b]
    if old_b[b] > old_b[a]:
        old_b[a] = old_b[b]


@_jit
def _phase_a(cin, labels, parent, old_a, old_b, ndim):
    """Sets after the value-1 faces: one per background component (dual connectivity).

    A value-1 top cell has a corner outside the mask, and two value-1 cells sharing a value-1 face
    share such a corner, so the sets are the components of the mask's complement (8 / 26
    connectivity, padded with background: the padding is the outside node). ``labels`` are those
    components on the padded vertex grid (2D: shape ``(1, H + 2, W + 2)``); ``old_a``, ``old_b``
    start as the cells' keys. Each set's root carries the largest keys (the oldest cell), as the
    reference's union-find does; the order of these unions does not matter.

    The corner loops of 2D and 3D cells are written out, and the union inline: a shared helper
    made this loop 6-15x slower (numba, measured on 64x256x256).
    """
    n_top = old_a.shape[0] - 1
    rep = np.full(labels.max() + 1, -1, dtype=np.int64)
    rep[labels[0, 0, 0]] = n_top
    s0, s1, s2 = cin.shape
    m1 = s1 - 1
    m2 = s2 - 1
    for x in range(s0 - 1 if ndim == 3 else 1):
        for y in range(m1):
            for z in range(m2):
                lab = -1
                if ndim == 3:
                    for dx in range(2):
                        for dy in range(2):
                            for dz in range(2):
                                if lab < 0 and cin[x + dx, y + dy, z + dz] == 0:
                                    lab = labels[x + dx + 1, y + dy + 1, z + dz + 1]
                else:
                    for dy in range(2):
                        for dz in range(2):
                            if lab < 0 and cin[0, y + dy, z + dz] == 0:
                                lab = labels[0, y + dy + 1, z + dz + 1]
                if lab < 0:
                    continue
                c = (x * m1 + y) * m2 + z
                r = rep[lab]
                if r < 0:  # the first cell seen of a set is its root
                    rep[lab] = c
                    continue
                parent[c] = r
                if old_a[c] > old_a[r]:
                    old_a[r] = old_a[c]
                if old_b[c] > old_b[r]:
                    old_b[r] = old_b[c]


@_jit
def _phase_b(cin, parent, old_a, old_b, marks_in, marks_out, ndim, mode, merged, record):
    """Value-0 faces in decreasing index order (the order that decides the pairs).

    mode 0 (an input's image pass): ``old_a`` are the input's keys, ``old_b`` the comparison's;
    each finite pair of the input marks, in ``marks_out``, the comparison root it is keyed by.
    Returns the number of pairs. With ``record`` (3D), the faces that merge two sets are flagged
    in ``merged`` (by square id).
    mode 1 (the comparison pass): ``old_a`` are the comparison's keys; returns the number of the
    comparison's finite pairs whose key is marked in both inputs (``marks_in``, ``marks_out``).
    """
    n_top = old_a.shape[0] - 1
    count = 0
    s0, s1, s2 = cin.shape
    t_low = 0 if ndim == 3 else 1
    for x in range(s0 - 1, -1, -1):
        for y in range(s1 - 1, -1, -1):
            for z in range(s2 - 1, -1, -1):
                if cin[x, y, z] == 0:
                    continue
                for t in range(2, t_low - 1, -1):
                    if ndim == 3:
                        val, a, b = _faces3(cin, s0, s1, s2, x, y, z, t)
                    else:  # edge (y, z) of type t - 1 of cin[0]
                        val, a, b = _faces2(cin, s1, s2, y, z, t - 1)
                    if val != 0:
                        continue
                    ra = _find(parent, a)
                    rb = _find(parent, b)
                    if ra == rb:
                        continue
                    young = ra if old_a[ra] < old_a[rb] else rb
                    if old_a[young] > n_top:  # the younger set was born at value 1: a pair
                        if mode == 0:
                            yb = ra if old_b[ra] < old_b[rb] else rb
                            k = old_b[yb]
                            marks_out[k - (n_top + 1) if k > n_top else k] = 1
                            count += 1
                        else:
                            c = old_a[young] - (n_top + 1)
                            if marks_in[c] and marks_out[c]:
                                count += 1
                    if record:
                        merged[((x * s1 + y) * s2 + z) * 3 + t] = 1
                    _union_keep_old(parent, old_a, old_b, ra, rb)
    return count


def _complement_labels(m: np.ndarray) -> np.ndarray:
    """Components of the complement of ``m`` padded with background, dual connectivity (3D)."""
    import cc3d

    pad = np.ones(tuple(s + 2 for s in m.shape), dtype=bool)
    pad[tuple(slice(1, -1) for _ in m.shape)] = m == 0
    labels = cc3d.connected_components(pad, connectivity=8 if m.ndim == 2 else 26,
                                       out_dtype=np.uint32)  # one compiled specialisation
    return labels[None] if m.ndim == 2 else labels


def top_dim_counts(
    x: np.ndarray,
    y: np.ndarray,
    cube_x: np.ndarray,
    cube_y: np.ndarray,
    cube_u: np.ndarray,
    record: bool = False,
) -> tuple:
    """(matched, finite pairs of x, finite pairs of y) in the top dimension.

    ``x, y``: uint8 masks (2D or 3D); ``cube_*``: uint8 flags "all corners inside" of every top
    cell of x, y and their union, flattened in C order. With ``record`` (3D only) also the
    value-0 faces that merge two sets in the passes of x, y and the union (uint8 per square id):
    squares whose column reduces to zero, which the dimension-1 reductions skip; and b2 of the
    union (its cavities: bounded components of the complement, dual connectivity).
    """
    u = x | y
    ndim = x.ndim
    n_top = cube_u.size
    keys_x = _top_keys(cube_x, n_top)
    keys_y = _top_keys(cube_y, n_top)
    keys_u = _top_keys(cube_u, n_top)
    x3, y3, u3 = (x[None], y[None], u[None]) if ndim == 2 else (x, y, u)
    n_ids = x.size * 3 if record else 1
    marks = []
    pairs = []
    flags = []
    for m3, m, keys_m in ((x3, x, keys_x), (y3, y, keys_y)):
        parent = np.arange(n_top + 1, dtype=np.int32)
        old_m = keys_m.copy()
        old_u = keys_u.copy()
        _phase_a(m3, _complement_labels(m), parent, old_m, old_u, ndim)
        mk = np.zeros(n_top + 1, dtype=np.uint8)
        merged = np.zeros(n_ids, dtype=np.uint8)
        pairs.append(_phase_b(m3, parent, old_m, old_u, mk, mk, ndim, 0, merged, record))
        marks.append(mk)
        flags.append(merged)
    parent = np.arange(n_top + 1, dtype=np.int32)
    old_u = keys_u.copy()
    dummy = keys_u.copy()
    merged = np.zeros(n_ids, dtype=np.uint8)
    labels_u = _complement_labels(u)
    cavities_u = int(labels_u.max()) - 1  # the padded complement's components but the outer one
    _phase_a(u3, labels_u, parent, old_u, dummy, ndim)
    del labels_u
    matched = _phase_b(u3, parent, old_u, dummy, marks[0], marks[1], ndim, 1, merged, record)
    flags.append(merged)
    if record:
        return int(matched), int(pairs[0]), int(pairs[1]), flags, int(cavities_u)
    return int(matched), int(pairs[0]), int(pairs[1])

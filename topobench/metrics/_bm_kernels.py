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

from topobench.metrics.topology import betti_numbers

try:  # pragma: no cover - exercised by whichever environment runs the tests
    from numba import njit as _njit

    HAVE_NUMBA = True

    def _jit(fn):
        return _njit(cache=True, nogil=True)(fn)

except ImportError:  # pragma: no cover
    HAVE_NUMBA = False

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
def _union_edges(m, level, parent, hx, hy, cycles):
    """One pass of the vertex union-find over the edges of a grid, in index order.

    ``m``: uint8 mask (2D masks as shape ``(1, H, W)``); ``level`` 0: the edges with both ends in
    ``m``, level 1: all the others; ``parent``: :func:`_find0`'s encoding (zeros: singletons).
    With flags ``hx``, ``hy`` (uint8 per vertex, or-ed into the surviving root; empty arrays:
    none), returns the number of unions of two sets that both carry
    both flags. With ``cycles`` (uint8 per edge id; empty: not recorded), marks the edges whose
    ends are in one set already.
    """
    s0, s1, s2 = m.shape
    flat = m.ravel()
    flags = hx.shape[0] > 0
    record = cycles.shape[0] > 0
    both = 0
    for x in range(s0):
        for y in range(s1):
            for z in range(s2):
                v = (x * s1 + y) * s2 + z
                if level == 0 and flat[v] == 0:
                    continue
                for t in range(3):
                    if t == 0:
                        w = v + s1 * s2 if x + 1 < s0 else -1
                    elif t == 1:
                        w = v + s2 if y + 1 < s1 else -1
                    else:
                        w = v + 1 if z + 1 < s2 else -1
                    if w < 0 or (flat[v] != 0 and flat[w] != 0) != (level == 0):
                        continue
                    a = _find0(parent, v)
                    b = _find0(parent, w)
                    if a == b:
                        if record:
                            cycles[v * 3 + t] = 1
                        continue
                    if flags:
                        if hx[a] and hx[b] and hy[a] and hy[b]:
                            both += 1
                        hx[a] |= hx[b]
                        hy[a] |= hy[b]
                    parent[b] = a + 1
    return both


_NONE = np.zeros(0, dtype=np.uint8)


def dim0_matched(in_u: np.ndarray, in_x: np.ndarray, in_y: np.ndarray) -> int:
    """Matched 0-dimensional pairs (components), 3D arrays (2D masks as shape ``(1, H, W)``).

    ``in_u = in_x | in_y`` (uint8). Edges between two union vertices have value 0 and only build
    the union's components; the remaining edges (value 1) are processed in index order, and a
    merge of two sets that both hold a prediction and a target vertex is one matched pair.
    """
    parent = np.zeros(in_u.size, dtype=np.int32)
    hx = in_x.ravel().copy()
    hy = in_y.ravel().copy()
    _union_edges(in_u, 0, parent, hx, hy, _NONE)
    return int(_union_edges(in_u, 1, parent, hx, hy, _NONE))


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
    squares whose column reduces to zero, which the dimension-1 reductions skip.
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
    _phase_a(u3, _complement_labels(u), parent, old_u, dummy, ndim)
    matched = _phase_b(u3, parent, old_u, dummy, marks[0], marks[1], ndim, 1, merged, record)
    flags.append(merged)
    if record:
        return int(matched), int(pairs[0]), int(pairs[1]), flags
    return int(matched), int(pairs[0]), int(pairs[1])


# ---------------------------------------------------------------------------------------------
# Dimension 1 of 3D masks: column reductions over Z/2 (squares are columns, edges rows).
# Cell ids: ((x * S1 + y) * S2 + z) * 3 + t, the reference's index order; an edge of type t runs
# along axis t, a square of type t is normal to axis t. A row key is value * n_ids + id.
#
# Only the squares near the comparison's foreground are visited ("active": based at a voxel
# within Chebyshev distance 1 of a voxel of the comparison mask). Every other square has value 1,
# all its edges have value 1 in every mask, and its column takes the outcome it takes in a grid
# of constant value: a square of type 0 with x >= 1 is cleared (apparent pair with the cube
# before it), every other square claims its largest edge (type 0 at x = 0: the z-edge at
# v + e_y; type 1: the z-edge at v + e_x; type 2: the y-edge at v + e_x), which no other
# square of the constant grid has as its largest. No earlier column can take that edge first:
# a column's pivot never exceeds its largest edge, so a column that ends on the edge claimed by
# square d is d, comes after d, or lies at d's voxel (then d is active, and visited). The owner
# of an edge that no visited column claimed is therefore known from the edge id alone
# (:func:`_default_claimer`).

_NO_OWNER = 0  # owner array: none; q + 1: the unreduced square q; -(slot + 1): a kept column
_BLOCKED = -(2**31)  # no explicit owner, and no implicit one (the claimer is active)


@_jit
def _default_claimer(e, s1, s2):
    """The square whose column claims edge ``e`` in a grid where every cell has value 1; -1 if
    none (edges along x, and y-edges of the plane x = 0, are never claimed there)."""
    t = e % 3
    if t == 0:
        return -1
    w = e // 3
    sxy = s1 * s2
    if w >= sxy:  # x >= 1: the square spanning x towards the edge
        return 3 * (w - sxy) + (1 if t == 2 else 2)
    if t == 2 and (w // s2) % s1 >= 1:  # x = 0: the type-0 square below in y
        return 3 * (w - s2)
    return -1


@_jit
def _square_value(cm, x, y, z, t):
    """0 if the four corners of square (x, y, z, t) are in ``cm``, 1 if not, 2 if absent."""
    s0, s1, s2 = cm.shape
    if t == 0:
        if y + 1 >= s1 or z + 1 >= s2:
            return 2
        inside = cm[x, y, z] and cm[x, y + 1, z] and cm[x, y, z + 1] and cm[x, y + 1, z + 1]
    elif t == 1:
        if x + 1 >= s0 or z + 1 >= s2:
            return 2
        inside = cm[x, y, z] and cm[x + 1, y, z] and cm[x, y, z + 1] and cm[x + 1, y, z + 1]
    else:
        if x + 1 >= s0 or y + 1 >= s1:
            return 2
        inside = cm[x, y, z] and cm[x + 1, y, z] and cm[x, y + 1, z] and cm[x + 1, y + 1, z]
    return 0 if inside else 1


@_jit
def _cube_value(cm, x, y, z):
    """0 if the eight corners of cube (x, y, z) are in ``cm``, else 1 (the cube exists)."""
    for dx in range(2):
        for dy in range(2):
            for dz in range(2):
                if not cm[x + dx, y + dy, z + dz]:
                    return 1
    return 0


@_jit
def _largest_face(cm, x, y, z):
    """Id of the largest face (by value, then id) of cube (x, y, z)."""
    _, s1, s2 = cm.shape
    c = _cube_value(cm, x, y, z)
    v = (x * s1 + y) * s2 + z
    if _square_value(cm, x + 1, y, z, 0) == c:
        return 3 * (v + s1 * s2)
    if _square_value(cm, x, y + 1, z, 1) == c:
        return 3 * (v + s2) + 1
    if _square_value(cm, x, y, z + 1, 2) == c:
        return 3 * (v + 1) + 2
    if _square_value(cm, x, y, z, 2) == c:
        return 3 * v + 2
    if _square_value(cm, x, y, z, 1) == c:
        return 3 * v + 1
    return 3 * v


@_jit
def _column_value(cm, merged, x, y, z, t, apparent):
    """Value of square (x, y, z, t) as a column: 0 / 1, or 2 when absent or skipped (a value-0
    square flagged in ``merged``; with ``apparent``, a square paired with a cube by an apparent
    pair: the largest face of its smallest coface, whose column reduces to zero)."""
    val = _square_value(cm, x, y, z, t)
    if val == 2:
        return 2
    s0, s1, s2 = cm.shape
    q = ((x * s1 + y) * s2 + z) * 3 + t
    if merged[q]:
        return 2
    if not apparent:
        return val
    # the cofaces: the cube before (x, y, z) - e_t and the cube at (x, y, z)
    lo = (x >= 1) if t == 0 else (y >= 1) if t == 1 else (z >= 1)
    hi = (x + 1 < s0) and (y + 1 < s1) and (z + 1 < s2)
    lx, ly, lz = (x - 1, y, z) if t == 0 else (x, y - 1, z) if t == 1 else (x, y, z - 1)
    if lo and (not hi or _cube_value(cm, lx, ly, lz) <= _cube_value(cm, x, y, z)):
        if _largest_face(cm, lx, ly, lz) == q:
            return 2
    elif hi and _largest_face(cm, x, y, z) == q:
        return 2
    return val


@_jit
def _column_status(cm, merged, vox, apparent):
    """:func:`_column_value` of the three squares based at each voxel of ``vox`` (uint8, in the
    order of ``vox`` then type)."""
    _, s1, s2 = cm.shape
    status = np.empty(3 * vox.shape[0], dtype=np.uint8)
    for i in range(vox.shape[0]):
        v = vox[i]
        for t in range(3):
            status[3 * i + t] = _column_value(cm, merged, v // (s1 * s2), (v // s2) % s1, v % s2,
                                              t, apparent)
    return status


@_jit
def _square_edges(q, s1, s2):
    """The four edges of square ``q`` (ids)."""
    t = q % 3
    v = q // 3
    if t == 0:  # spans y, z
        return 3 * v + 1, 3 * v + 2, 3 * (v + s2) + 2, 3 * (v + 1) + 1
    if t == 1:  # spans x, z
        return 3 * v, 3 * v + 2, 3 * (v + s1 * s2) + 2, 3 * (v + 1)
    return 3 * v, 3 * v + 1, 3 * (v + s1 * s2) + 1, 3 * (v + s2)  # spans x, y


@_jit
def _edge_key(r, e, s1, s2, n_ids):
    """Row key of edge ``e``: value (0 if both ends are in ``r``, the flat row mask, else 1)
    * n_ids + id."""
    t = e % 3
    w = e // 3
    o = s1 * s2 if t == 0 else s2 if t == 1 else 1
    return e if (r[w] and r[w + o]) else n_ids + e
@_jit
def _heap_push(heap, size, key):
    if size == heap.shape[0]:
        bigger = np.empty(2 * heap.shape[0], dtype=np.int64)
        bigger[:size] = heap[:size]
        heap = bigger
    i = size
    heap[i] = key
    while i > 0:
        parent = (i - 1) >> 1
        if heap[parent] >= heap[i]:
            break
        heap[parent], heap[i] = heap[i], heap[parent]
        i = parent
    return heap, size + 1


@_jit
def _heap_pop(heap, size):
    top = heap[0]
    size -= 1
    if size > 0:
        heap[0] = heap[size]
        i = 0
        while True:
            left = 2 * i + 1
            if left >= size:
                break
            right = left + 1
            big = right if right < size and heap[right] > heap[left] else left
            if heap[i] >= heap[big]:
                break
            heap[i], heap[big] = heap[big], heap[i]
            i = big
    return top, size


@_jit
def _pop_odd(heap, size):
    """Pop the largest key present an odd number of times (entries of even multiplicity
    cancel); -1 if none."""
    while size > 0:
        key, size = _heap_pop(heap, size)
        if size > 0 and heap[0] == key:
            _, size = _heap_pop(heap, size)
            continue
        return key, size
    return -1, size


@_jit
def _append(buf, n, value):
    if n == buf.shape[0]:
        bigger = np.empty(2 * n, dtype=buf.dtype)
        bigger[:n] = buf[:n]
        buf = bigger
    buf[n] = value
    return buf, n + 1


@_jit
def _record(rec_q, rec_p, n, q, p):
    if n == rec_q.shape[0]:
        q2 = np.empty(2 * n, dtype=np.int64)
        p2 = np.empty(2 * n, dtype=np.int64)
        q2[:n] = rec_q[:n]
        p2[:n] = rec_p[:n]
        rec_q, rec_p = q2, p2
    rec_q[n] = q
    rec_p[n] = p
    return rec_q, rec_p



@_jit
def _owner_of(owner, e, q_now, phase, s1, s2):
    """Owner code of edge ``e`` while column ``q_now`` is reduced, and whether it is implicit:
    the explicit owner, else (value-1 columns) the constant-grid claimer of ``e`` if that square
    is inactive and comes before ``q_now``."""
    o = owner[e]
    if o == _NO_OWNER:
        if phase == 1:
            d = _default_claimer(e, s1, s2)
            if 0 <= d < q_now:
                return d + 1, True
        return _NO_OWNER, False
    if o == _BLOCKED:
        return _NO_OWNER, False
    return o, False


@_jit
def _block_active_claims(owner, vox, s0, s1, s2):
    """Mark the edges whose constant-grid claimer is an active square (based at a voxel of
    ``vox``): they have no implicit owner."""
    sxy = s1 * s2
    for i in range(vox.shape[0]):
        v = vox[i]
        z = v % s2
        y = (v // s2) % s1
        x = v // sxy
        if x + 1 < s0:
            if z + 1 < s2:
                owner[3 * (v + sxy) + 2] = _BLOCKED
            if y + 1 < s1:
                owner[3 * (v + sxy) + 1] = _BLOCKED
        if x == 0 and y + 1 < s1 and z + 1 < s2:
            owner[3 * (v + s2) + 2] = _BLOCKED


@_jit
def _reduce(cm, rm, status, vox, owner, want, n_want, stop_after, phases, stats):
    """Standard column reduction over Z/2 of the squares of a 3D grid, visiting active squares.

    Columns: the squares of value 0 in ``cm``, then (``phases`` = 2) those of value 1, each group
    in id order; ``status``: :func:`_column_status` of the active squares (2: skipped). Rows:
    edges ordered by their value in ``rm``, then id. ``vox``: the active voxels (sorted flat
    indices; every square of value 0 of ``cm`` is based at one, and with ``phases`` = 2 every
    voxel within Chebyshev distance 1 of ``cm`` is one; ``rm`` must lie inside ``cm``).
    ``owner`` (zeros, int32 / int64 per edge id) receives the owner of every pivot claimed
    explicitly (``q + 1``: square ``q``, whose boundary needed no reduction; ``-(slot + 1)``: a
    kept reduced column).

    ``want`` (uint8 per square id; empty: every value-1 column) marks the columns to record,
    ``n_want`` of them (-1: not counted). Returns ``(squares, pivots)``: the wanted columns whose
    pivot is a row of value 0, in column order, with that pivot; the reduction stops once
    ``stop_after`` (> 0) such columns are found or ``n_want`` wanted columns are reduced.
    ``stats`` (int64, 3) counts: columns reduced, columns whose boundary was reduced already,
    column additions.
    """
    s0, s1, s2 = cm.shape
    n_ids = s0 * s1 * s2 * 3
    want_all = want.shape[0] == 0
    r = rm.ravel()
    if phases == 2:
        _block_active_claims(owner, vox, s0, s1, s2)
    rec_q = np.empty(64, dtype=np.int64)
    rec_p = np.empty(64, dtype=np.int64)
    k_want = 0
    found = 0
    red_off = np.empty(1024, dtype=np.int64)
    red_len = np.empty(1024, dtype=np.int64)
    n_slots = 0
    buf = np.empty(1 << 16, dtype=np.int64)
    buf_n = 0
    heap = np.empty(64, dtype=np.int64)
    n_vox = vox.shape[0]
    for phase in range(phases):
        i = 0
        t = 0
        while True:
            if i == n_vox:
                break
            q = 3 * vox[i] + t
            col = status[3 * i + t]
            t += 1
            if t == 3:
                t = 0
                i += 1
            if col != phase:
                continue
            stats[0] += 1
            e0, e1, e2, e3 = _square_edges(q, s1, s2)
            k0 = _edge_key(r, e0, s1, s2, n_ids)
            k1 = _edge_key(r, e1, s1, s2, n_ids)
            k2 = _edge_key(r, e2, s1, s2, n_ids)
            k3 = _edge_key(r, e3, s1, s2, n_ids)
            p = max(max(k0, k1), max(k2, k3))
            ep = p - n_ids if p >= n_ids else p
            j, implicit = _owner_of(owner, ep, q, phase, s1, s2)
            if j == _NO_OWNER:  # the boundary is reduced already
                stats[1] += 1
                code = q + 1
            else:
                # the pivot p is held out of the heap; the added column's copy of p cancels it
                size = 0
                for k in (k0, k1, k2, k3):
                    if k != p:
                        heap, size = _heap_push(heap, size, k)
                while True:
                    stats[2] += 1
                    if j < 0:
                        o = red_off[-j - 1]
                        for k in range(1, red_len[-j - 1]):  # entry 0 is that column's pivot
                            heap, size = _heap_push(heap, size, buf[o + k])
                    else:
                        f0, f1, f2, f3 = _square_edges(j - 1, s1, s2)
                        for f in (f0, f1, f2, f3):
                            if f != ep:  # an implicit owner is inactive: all its edges value 1
                                k = n_ids + f if implicit else _edge_key(r, f, s1, s2, n_ids)
                                heap, size = _heap_push(heap, size, k)
                    p, size = _pop_odd(heap, size)  # the next pivot
                    if p < 0:
                        break
                    ep = p - n_ids if p >= n_ids else p
                    j, implicit = _owner_of(owner, ep, q, phase, s1, s2)
                    if j == _NO_OWNER:
                        break
                if p >= 0:  # keep the reduced column (pivot first) for later additions
                    start = buf_n
                    key = p
                    while key >= 0:
                        buf, buf_n = _append(buf, buf_n, key)
                        key, size = _pop_odd(heap, size)
                    red_off, red_len = _record(red_off, red_len, n_slots, start, buf_n - start)
                    n_slots += 1
                    code = -n_slots
            if p >= 0:
                owner[ep] = code
            if phase == 1 and (want_all or want[q] != 0):
                k_want += 1
                if 0 <= p < n_ids:
                    rec_q, rec_p = _record(rec_q, rec_p, found, q, p)
                    found += 1
                if found == stop_after or k_want == n_want:
                    return rec_q[:found], rec_p[:found]
    return rec_q[:found], rec_p[:found]


@_jit
def _active_voxels(m):
    """The voxels within Chebyshev distance 1 of a voxel of ``m``: uint8 per voxel and their
    sorted flat indices."""
    s0, s1, s2 = m.shape
    act = np.zeros(s0 * s1 * s2, dtype=np.uint8)
    n = 0
    for x in range(s0):
        for y in range(s1):
            for z in range(s2):
                if not m[x, y, z]:
                    continue
                for a in range(max(x - 1, 0), min(x + 2, s0)):
                    for b in range(max(y - 1, 0), min(y + 2, s1)):
                        for c in range(max(z - 1, 0), min(z + 2, s2)):
                            w = (a * s1 + b) * s2 + c
                            if act[w] == 0:
                                act[w] = 1
                                n += 1
    vox = np.empty(n, dtype=np.int64)
    k = 0
    for w in range(act.shape[0]):
        if act[w]:
            vox[k] = w
            k += 1
    return act, vox


@_jit
def _flag_merging_faces(cm, act, par, merged):
    """Flag in ``merged`` value-1 faces of ``cm`` that merge two sets of the dual union-find
    (faces in decreasing id order, cubes as vertices), computed near the foreground only.

    The cubes based at active voxels (``act``) are vertices of their own; every other cube is
    taken as the outside node from the start. That graph connects at least what the true pass
    connects at every step, so a face that merges two of its sets merges in the true pass too: a
    positive square (paired with a cube), whose column in the dimension-1 reduction reduces to
    zero and is skipped. ``par``: zeros, one entry per cube and the outside node.
    """
    s0, s1, s2 = cm.shape
    m1 = s1 - 1
    m2 = s2 - 1
    out = (s0 - 1) * m1 * m2
    sxy = s1 * s2
    for w in range(s0 * sxy - 1, -1, -1):
        z = w % s2
        y = (w // s2) % s1
        x = w // sxy
        # the faces of active cubes: based at an active voxel or one step after it
        near = act[w] or (x >= 1 and act[w - sxy]) or (y >= 1 and act[w - s2]) or (
            z >= 1 and act[w - 1])
        if not near:
            continue
        for t in range(2, -1, -1):
            val, a, b = _faces3(cm, s0, s1, s2, x, y, z, t)
            if val != 1:
                continue
            if a != out and not act[((a // (m1 * m2)) * s1 + (a // m2) % m1) * s2 + a % m2]:
                a = out
            if b != out and not act[((b // (m1 * m2)) * s1 + (b // m2) % m1) * s2 + b % m2]:
                b = out
            ra = _find0(par, a)
            rb = _find0(par, b)
            if ra != rb:
                par[rb] = ra + 1
                merged[3 * w + t] = 1


def _owner_array(n_ids: int) -> np.ndarray:
    """Zeroed owner array; np.zeros maps fresh pages, so only the entries written cost memory."""
    return np.zeros(n_ids, dtype=np.int32 if n_ids < 2**31 - 1 else np.int64)




def _finite_births(m8: np.ndarray, merged: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What decides the births of the finite 1-dimensional pairs of ``1 - m``: ``(cycles,
    owner)``; value-0 edge ``e`` is one iff ``cycles[e] and owner[e] == _NO_OWNER``.

    The value-0 complex is a prefix of the filtration and the whole grid has no 1-cycles, so these
    are the cycles of the value-0 complex (edges in index order, ``cycles``) that its own squares
    do not kill (``owner``: the pivots of its value-0 squares, ``merged`` ones skipped).
    """
    n_ids = m8.size * 3
    cycles = np.zeros(n_ids, dtype=np.uint8)
    _union_edges(m8, 0, np.zeros(m8.size, dtype=np.int32), _NONE, _NONE, cycles)
    owner = _owner_array(n_ids)
    vox = np.flatnonzero(m8.ravel()).astype(np.int64)
    _reduce(m8, m8, _column_status(m8, merged, vox, False), vox, owner, _NONE, -1, 0, 1,
            np.zeros(3, dtype=np.int64))
    return cycles, owner


def dim1_counts_3d(x: np.ndarray, y: np.ndarray, flags: list,
                   stats: np.ndarray | None = None) -> tuple[int, int, int]:
    """(matched, finite pairs of x, finite pairs of y) in dimension 1 of 3D masks.

    ``flags``: the merge flags of x, y and their union from :func:`top_dim_counts`; ``stats``
    (int64, shape (3, 3), optional) receives :func:`_reduce`'s counters of the comparison's
    reduction and of the two image reductions.

    The comparison's finite pairs come from reducing its squares (comparison order) against its
    edges; the image of each input is the same reduction with the rows in that input's order.
    A comparison pair is matched when, in both images, its death square's pivot is the birth of
    a finite pair of that input.
    """
    # the finite pairs of each mask and of the comparison: b1 of their vertex complexes
    x8, y8 = (np.ascontiguousarray(a, dtype=bool).view(np.uint8) for a in (x, y))
    nx, ny = (betti_numbers(a, connectivity=6)[1] for a in (x8, y8))
    if nx == 0 or ny == 0:
        return 0, nx, ny
    u8 = x8 | y8
    n_u = betti_numbers(u8, connectivity=6)[1]
    if n_u == 0:
        return 0, nx, ny
    if stats is None:
        stats = np.zeros((3, 3), dtype=np.int64)
    act, vox = _active_voxels(u8)
    n_ids = u8.size * 3
    merged = flags[2]
    if min(u8.shape) >= 2:
        _flag_merging_faces(u8, act, np.zeros(merged.size // 3 + 1, dtype=np.int32), merged)
    del act
    status = _column_status(u8, merged, vox, True)
    death_ids, _ = _reduce(u8, u8, status, vox, _owner_array(n_ids), _NONE, -1, n_u, 2,
                           stats[0])
    want = np.zeros(n_ids, dtype=np.uint8)
    want[death_ids] = 1

    def image(k: int) -> np.ndarray:
        """Which deaths the image of mask k sends to the birth of one of its finite pairs."""
        m8 = (x8, y8)[k]
        cycles, owner = _finite_births(m8, flags[k])
        squares, pivots = _reduce(u8, m8, status, vox, _owner_array(n_ids), want,
                                  death_ids.size, -1, 2, stats[k + 1])
        hit = np.zeros(death_ids.size, dtype=bool)
        hit[np.searchsorted(death_ids, squares)] = (cycles[pivots] != 0) & (
            owner[pivots] == _NO_OWNER)
        return hit

    return int((image(0) & image(1)).sum()), nx, ny

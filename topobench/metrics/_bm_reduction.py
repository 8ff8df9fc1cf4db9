"""Compiled kernels of the Betti matching error, dimension 1 of 3D masks: the column reductions.

Dimensions 0 and the top dimension are union-find passes (:mod:`topobench.metrics._bm_kernels`);
dimension 1 of a volume needs a real homology computation: the squares' columns are reduced over
Z/2 against the edges, once for the comparison image and once per input for the image of the
induced matching (docs/metrics.md, "Betti matching error"). Compiled with numba when it is
installed, like the union-find kernels.
"""

from __future__ import annotations

import numpy as np

from topobench.metrics._bm_kernels import _NONE, _faces3, _find0, _jit
from topobench.metrics.topology import _euler_validated, betti_numbers, count_components

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


# One loop of about 100 lines on purpose: numba does not inline helpers that carry the heap and
# owner arrays; splitting such loops into helpers made the dual pass 6-15x slower (measured), so
# the reduction keeps its loop whole too.
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




@_jit
def _cycle_edges(m, vox, parent, cycles):
    """:func:`_union_edges` at level 0 with ``cycles`` and no flags, visiting only the voxels of
    ``m`` (``vox``: their sorted flat indices), the only ones with value-0 edges: the same unions
    in the same order."""
    s0, s1, s2 = m.shape
    flat = m.ravel()
    sxy = s1 * s2
    for i in range(vox.shape[0]):
        v = vox[i]
        z = v % s2
        y = (v // s2) % s1
        x = v // sxy
        for t in range(3):
            if t == 0:
                w = v + sxy if x + 1 < s0 else -1
            elif t == 1:
                w = v + s2 if y + 1 < s1 else -1
            else:
                w = v + 1 if z + 1 < s2 else -1
            if w < 0 or flat[w] == 0:
                continue
            a = _find0(parent, v)
            b = _find0(parent, w)
            if a == b:
                cycles[v * 3 + t] = 1
                continue
            parent[b] = a + 1


def _finite_births(m8: np.ndarray, merged: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What decides the births of the finite 1-dimensional pairs of ``1 - m``: ``(cycles,
    owner)``; value-0 edge ``e`` is one iff ``cycles[e] and owner[e] == _NO_OWNER``.

    The value-0 complex is a prefix of the filtration and the whole grid has no 1-cycles, so these
    are the cycles of the value-0 complex (edges in index order, ``cycles``) that its own squares
    do not kill (``owner``: the pivots of its value-0 squares, ``merged`` ones skipped).
    """
    n_ids = m8.size * 3
    cycles = np.zeros(n_ids, dtype=np.uint8)
    vox = np.flatnonzero(m8.ravel()).astype(np.int64)
    _cycle_edges(m8, vox, np.zeros(m8.size, dtype=np.int32), cycles)
    owner = _owner_array(n_ids)
    _reduce(m8, m8, _column_status(m8, merged, vox, False), vox, owner, _NONE, -1, 0, 1,
            np.zeros(3, dtype=np.int64))
    return cycles, owner


def _b1(m8: np.ndarray, b0: int, b2: int) -> int:
    """b1 of the vertex complex of ``m8`` (6-connectivity) from its b0 and b2: the Euler
    characteristic is ``b0 - b1 + b2``."""
    return b0 + b2 - _euler_validated(m8.view(bool), 6)


def dim1_counts_3d(x: np.ndarray, y: np.ndarray, flags: list,
                   stats: np.ndarray | None = None,
                   known: tuple[int, int, int, int, int] | None = None) -> tuple[int, int, int]:
    """(matched, finite pairs of x, finite pairs of y) in dimension 1 of 3D masks.

    ``flags``: the merge flags of x, y and their union from :func:`top_dim_counts`; ``stats``
    (int64, shape (3, 3), optional) receives :func:`_reduce`'s counters of the comparison's
    reduction and of the two image reductions. ``known`` (optional): ``(b0 of x, b2 of x, b0 of
    y, b2 of y, b2 of the union)`` (6-connectivity), computed already by the other dimensions'
    passes; each b1 then costs one Euler characteristic instead of two labellings.

    The comparison's finite pairs come from reducing its squares (comparison order) against its
    edges; the image of each input is the same reduction with the rows in that input's order.
    A comparison pair is matched when, in both images, its death square's pivot is the birth of
    a finite pair of that input.
    """
    # the finite pairs of each mask and of the comparison: b1 of their vertex complexes
    x8, y8 = (np.ascontiguousarray(a, dtype=bool).view(np.uint8) for a in (x, y))
    if known is None:
        nx, ny = (betti_numbers(a, connectivity=6)[1] for a in (x8, y8))
    else:
        nx, ny = _b1(x8, known[0], known[1]), _b1(y8, known[2], known[3])
    if nx == 0 or ny == 0:
        return 0, nx, ny
    u8 = x8 | y8
    if known is None:
        n_u = betti_numbers(u8, connectivity=6)[1]
    else:
        n_u = _b1(u8, count_components(u8.view(bool), 6), known[4])
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
    def image(k: int, wanted: np.ndarray) -> np.ndarray:
        """Which deaths the image of mask k sends to the birth of one of its finite pairs, of the
        ``wanted`` ones (bool per death; the others are False)."""
        m8 = (x8, y8)[k]
        cycles, owner = _finite_births(m8, flags[k])
        want = np.zeros(n_ids, dtype=np.uint8)
        want[death_ids[wanted]] = 1
        squares, pivots = _reduce(u8, m8, status, vox, _owner_array(n_ids), want,
                                  int(wanted.sum()), -1, 2, stats[k + 1])
        hit = np.zeros(death_ids.size, dtype=bool)
        hit[np.searchsorted(death_ids, squares)] = (cycles[pivots] != 0) & (
            owner[pivots] == _NO_OWNER)
        return hit

    # death_ids are in column order (sorted); a death missed by x's image is unmatched whatever
    # y's image does, so y's reduction only needs to reach the last death x's image hits (a
    # column's reduction does not depend on which columns are recorded)
    hit_x = image(0, np.ones(death_ids.size, dtype=bool))
    if not hit_x.any():
        return 0, nx, ny
    return int((hit_x & image(1, hit_x)).sum()), nx, ny

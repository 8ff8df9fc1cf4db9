"""Compiled kernels of the Betti matching error: the births of a volume's 1-dimensional pairs.

The finite pairs of dimension 1 of ``1 - m`` (a 3D mask ``m``) are born at the value-0 edges that
close a cycle of the mask's vertex complex and that none of its value-0 squares kills: the cycle
edges of a union-find over its edges in index order, less the pivots of a Z/2 column reduction of
its value-0 squares (docs/metrics.md, "Betti matching error"). Their deaths, and the matching, are
``_bm_linking``'s. Compiled with numba when it is installed, like the union-find kernels.

Cell ids: ``((x * S1 + y) * S2 + z) * 3 + t``, the reference's index order; an edge of type ``t``
runs along axis ``t``, a square of type ``t`` is normal to axis ``t``.
"""

from __future__ import annotations

import numpy as np

from topobench.metrics._bm_kernels import _faces3, _find0, _inline, _jit


@_inline
def _square_edges(q, vox, rank, s1, s2):
    """The four edges of the value-0 square with compact id ``q`` (compact ids: ``3 * rank of
    the base voxel + type``, in the order of the ids; every corner is in the mask)."""
    t = q % 3
    i = q // 3
    v = vox[i]
    if t == 0:  # spans y, z
        return 3 * i + 1, 3 * i + 2, 3 * rank[v + s2] + 2, 3 * rank[v + 1] + 1
    if t == 1:  # spans x, z
        return 3 * i, 3 * i + 2, 3 * rank[v + s1 * s2] + 2, 3 * rank[v + 1]
    return 3 * i, 3 * i + 1, 3 * rank[v + s1 * s2] + 1, 3 * rank[v + s2]  # spans x, y


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
def _reduce_value0_squares(m, vox, rank, skip, owner):
    """Z/2 column reduction of the value-0 squares of ``m`` (columns in id order) against its
    edges (rows by id: every edge of such a square has value 0), in compact ids.

    ``vox``: the voxels of ``m`` (sorted flat indices; every value-0 square is based at one),
    ``rank``: each one's position in ``vox``; ``skip`` (uint8 per compact square id): columns
    known to reduce to zero (the top dimension's merging faces). ``owner`` (zeros, one entry per
    compact edge id) receives, for each pivot, 1 + the compact id of the column that took it
    (``-(slot + 1)``: a kept reduced column). Returns the column additions made.
    """
    s0, s1, s2 = m.shape
    red_off = np.empty(1024, dtype=np.int64)
    red_len = np.empty(1024, dtype=np.int64)
    n_slots = 0
    buf = np.empty(1 << 16, dtype=np.int64)
    buf_n = 0
    heap = np.empty(64, dtype=np.int64)
    additions = 0
    for i in range(vox.shape[0]):
        v = vox[i]
        x = v // (s1 * s2)
        y = (v // s2) % s1
        z = v % s2
        for t in range(3):
            q = 3 * i + t
            if skip[q] or _faces3(m, s0, s1, s2, x, y, z, t)[0] != 0:  # absent or value 1
                continue
            e0, e1, e2, e3 = _square_edges(q, vox, rank, s1, s2)
            p = max(max(e0, e1), max(e2, e3))
            j = owner[p]
            if j == 0:  # the boundary is reduced already
                owner[p] = q + 1
                continue
            size = 0
            for k in (e0, e1, e2, e3):
                if k != p:
                    heap, size = _heap_push(heap, size, k)
            while j != 0:  # add the owner's column; the pivot p cancels
                additions += 1
                if j < 0:
                    o = red_off[-j - 1]
                    for k in range(1, red_len[-j - 1]):  # entry 0 is that column's pivot
                        heap, size = _heap_push(heap, size, buf[o + k])
                else:
                    f0, f1, f2, f3 = _square_edges(j - 1, vox, rank, s1, s2)
                    for f in (f0, f1, f2, f3):
                        if f != p:
                            heap, size = _heap_push(heap, size, f)
                p, size = _pop_odd(heap, size)
                if p < 0:
                    break
                j = owner[p]
            if p < 0:
                continue
            start = buf_n
            key = p
            while key >= 0:  # keep the reduced column (pivot first) for later additions
                buf, buf_n = _append(buf, buf_n, key)
                key, size = _pop_odd(heap, size)
            red_off, _ = _append(red_off, n_slots, start)
            red_len, n_slots = _append(red_len, n_slots, buf_n - start)
            owner[p] = -n_slots
    return additions


@_jit
def _cycle_edges(m, vox, rank, parent, cycles):
    """Union-find over the value-0 edges of ``m`` in index order, visiting its voxels (``vox``,
    sorted flat indices; ``rank``: their positions); flags in ``cycles`` (uint8 per compact edge
    id) the edges whose ends are in one set already. ``parent``: :func:`_find0`'s encoding
    (zeros: singletons), one entry per voxel of ``vox``."""
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
            a = _find0(parent, i)
            b = _find0(parent, rank[w])
            if a == b:
                cycles[3 * i + t] = 1
                continue
            parent[b] = a + 1


def finite_births(m8: np.ndarray, vox: np.ndarray, rank: np.ndarray,
                  merged: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What decides the births of the finite 1-dimensional pairs of ``1 - m8``: ``(cycles,
    owner)``, per compact edge id (``3 * position in vox + type``); edge ``e`` is one iff
    ``cycles[e] and owner[e] == 0``.

    ``m8``: uint8 (S0, S1, S2); ``vox``: its voxels (sorted flat indices), ``rank``: each one's
    position (int32 per voxel, read at the mask's voxels only); ``merged``: uint8 per compact
    square id, value-0 squares whose column reduces to zero (skipped). The value-0 complex is a
    prefix of the filtration and the whole grid has no 1-cycles, so the births are the cycles
    of the value-0 complex (edges in index order, ``cycles``) that its own squares do not kill
    (``owner``: their pivots). Compact ids keep every array at the mask's size, not the grid's.
    """
    n = vox.size
    cycles = np.zeros(3 * n, dtype=np.uint8)
    _cycle_edges(m8, vox, rank, np.zeros(n, dtype=np.int32), cycles)
    owner = np.zeros(3 * n, dtype=np.int32 if 3 * n < 2**31 - 1 else np.int64)
    _reduce_value0_squares(m8, vox, rank, merged, owner)
    return cycles, owner

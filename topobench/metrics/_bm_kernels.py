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
def dim0_matched(in_u, in_x, in_y):
    """Matched 0-dimensional pairs (components), 3D arrays (2D masks as shape ``(1, H, W)``).

    ``in_u = in_x | in_y`` (uint8). Edges between two union vertices have value 0 and only build
    the union's components; the remaining edges (value 1) are processed in index order, and a
    merge of two sets that both hold a prediction and a target vertex is one matched pair.
    """
    s0, s1, s2 = in_u.shape
    n = s0 * s1 * s2
    u = in_u.ravel()
    hx = in_x.ravel().copy()
    hy = in_y.ravel().copy()
    parent = np.arange(n, dtype=np.int64)
    st0 = s1 * s2
    st1 = s2
    # value-0 edges: the components of the union (order irrelevant, nothing is counted)
    for x in range(s0):
        for y in range(s1):
            for z in range(s2):
                v = x * st0 + y * st1 + z
                if u[v] == 0:
                    continue
                for t in range(3):
                    if t == 0:
                        if x + 1 >= s0:
                            continue
                        w = v + st0
                    elif t == 1:
                        if y + 1 >= s1:
                            continue
                        w = v + st1
                    else:
                        if z + 1 >= s2:
                            continue
                        w = v + 1
                    if u[w] == 0:
                        continue
                    a = _find(parent, v)
                    b = _find(parent, w)
                    if a != b:
                        parent[b] = a
                        hx[a] |= hx[b]
                        hy[a] |= hy[b]
    matched = 0
    # value-1 edges in index order (x, y, z, type)
    for x in range(s0):
        for y in range(s1):
            for z in range(s2):
                v = x * st0 + y * st1 + z
                for t in range(3):
                    if t == 0:
                        if x + 1 >= s0:
                            continue
                        w = v + st0
                    elif t == 1:
                        if y + 1 >= s1:
                            continue
                        w = v + st1
                    else:
                        if z + 1 >= s2:
                            continue
                        w = v + 1
                    if u[v] != 0 and u[w] != 0:
                        continue
                    a = _find(parent, v)
                    b = _find(parent, w)
                    if a != b:
                        if hx[a] and hx[b] and hy[a] and hy[b]:
                            matched += 1
                        parent[b] = a
                        hx[a] |= hx[b]
                        hy[a] |= hy[b]
    return matched


# ---------------------------------------------------------------------------------------------
# Top dimension (2D: dimension 1, 3D: dimension 2) through the dual union-find over top cells.
# A top cell (square / cube) has value 0 when all its corners are in the mask. Keys order the
# cells as the reference does: key = value * (M + 1) + cell index, the outside node is oldest.


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
    keys = np.empty(n_top + 1, dtype=np.int64)
    for c in range(n_top):
        keys[c] = (0 if cube_in[c] else 1) * (n_top + 1) + c
    keys[n_top] = 2 * (n_top + 1)
    return keys


@_jit
def _union_keep_old(parent, old_a, old_b, a, b):
    """Union of roots a and b; the root kept carries the larger of both keys arrays."""
    parent[b] = a
    if old_a[b] > old_a[a]:
        old_a[a] = old_a[b]
    if old_b[b] > old_b[a]:
        old_b[a] = old_b[b]


@_jit
def _top_pass_input(cin_m, cin_u, keys_m, keys_u, ndim):
    """Image pass of one input: marks (by comparison-cell index) the input's top-dim pairs.

    Returns ``(pairs, marks)``: the number of finite top-dimensional pairs of the input, and a
    uint8 array over top cells, 1 at the comparison root that each pair is keyed by.
    """
    n_top = keys_m.shape[0] - 1
    parent = np.arange(n_top + 1, dtype=np.int64)
    old_m = keys_m.copy()
    old_u = keys_u.copy()
    marks = np.zeros(n_top + 1, dtype=np.uint8)
    pairs = 0
    if ndim == 2:
        _, s0, s1 = cin_m.shape
        for x in range(s0):
            for y in range(s1):
                for t in range(2):
                    val, a, b = _faces2(cin_m, s0, s1, x, y, t)
                    if val == 1:
                        ra = _find(parent, a)
                        rb = _find(parent, b)
                        if ra != rb:
                            _union_keep_old(parent, old_m, old_u, ra, rb)
        for x in range(s0 - 1, -1, -1):
            for y in range(s1 - 1, -1, -1):
                for t in range(1, -1, -1):
                    val, a, b = _faces2(cin_m, s0, s1, x, y, t)
                    if val != 0:
                        continue
                    ra = _find(parent, a)
                    rb = _find(parent, b)
                    if ra == rb:
                        continue
                    ym = ra if old_m[ra] < old_m[rb] else rb
                    yu = ra if old_u[ra] < old_u[rb] else rb
                    if old_m[ym] > n_top:  # the younger set was born at value 1: a pair
                        pairs += 1
                        k = old_u[yu]
                        marks[k - (n_top + 1) if k > n_top else k] = 1
                    _union_keep_old(parent, old_m, old_u, ra, rb)
    else:
        s0, s1, s2 = cin_m.shape
        for x in range(s0):
            for y in range(s1):
                for z in range(s2):
                    for t in range(3):
                        val, a, b = _faces3(cin_m, s0, s1, s2, x, y, z, t)
                        if val == 1:
                            ra = _find(parent, a)
                            rb = _find(parent, b)
                            if ra != rb:
                                _union_keep_old(parent, old_m, old_u, ra, rb)
        for x in range(s0 - 1, -1, -1):
            for y in range(s1 - 1, -1, -1):
                for z in range(s2 - 1, -1, -1):
                    for t in range(2, -1, -1):
                        val, a, b = _faces3(cin_m, s0, s1, s2, x, y, z, t)
                        if val != 0:
                            continue
                        ra = _find(parent, a)
                        rb = _find(parent, b)
                        if ra == rb:
                            continue
                        ym = ra if old_m[ra] < old_m[rb] else rb
                        yu = ra if old_u[ra] < old_u[rb] else rb
                        if old_m[ym] > n_top:
                            pairs += 1
                            k = old_u[yu]
                            marks[k - (n_top + 1) if k > n_top else k] = 1
                        _union_keep_old(parent, old_m, old_u, ra, rb)
    return pairs, marks


@_jit
def _top_pass_comparison(cin_u, keys_u, marks_x, marks_y, ndim):
    """Comparison pass: the number of comparison pairs keyed in both inputs' marks."""
    n_top = keys_u.shape[0] - 1
    parent = np.arange(n_top + 1, dtype=np.int64)
    old_u = keys_u.copy()
    dummy = keys_u.copy()
    matched = 0
    if ndim == 2:
        _, s0, s1 = cin_u.shape
        for x in range(s0):
            for y in range(s1):
                for t in range(2):
                    val, a, b = _faces2(cin_u, s0, s1, x, y, t)
                    if val == 1:
                        ra = _find(parent, a)
                        rb = _find(parent, b)
                        if ra != rb:
                            _union_keep_old(parent, old_u, dummy, ra, rb)
        for x in range(s0 - 1, -1, -1):
            for y in range(s1 - 1, -1, -1):
                for t in range(1, -1, -1):
                    val, a, b = _faces2(cin_u, s0, s1, x, y, t)
                    if val != 0:
                        continue
                    ra = _find(parent, a)
                    rb = _find(parent, b)
                    if ra == rb:
                        continue
                    yu = ra if old_u[ra] < old_u[rb] else rb
                    k = old_u[yu]
                    if k > n_top:
                        c = k - (n_top + 1)
                        if marks_x[c] and marks_y[c]:
                            matched += 1
                    _union_keep_old(parent, old_u, dummy, ra, rb)
    else:
        s0, s1, s2 = cin_u.shape
        for x in range(s0):
            for y in range(s1):
                for z in range(s2):
                    for t in range(3):
                        val, a, b = _faces3(cin_u, s0, s1, s2, x, y, z, t)
                        if val == 1:
                            ra = _find(parent, a)
                            rb = _find(parent, b)
                            if ra != rb:
                                _union_keep_old(parent, old_u, dummy, ra, rb)
        for x in range(s0 - 1, -1, -1):
            for y in range(s1 - 1, -1, -1):
                for z in range(s2 - 1, -1, -1):
                    for t in range(2, -1, -1):
                        val, a, b = _faces3(cin_u, s0, s1, s2, x, y, z, t)
                        if val != 0:
                            continue
                        ra = _find(parent, a)
                        rb = _find(parent, b)
                        if ra == rb:
                            continue
                        yu = ra if old_u[ra] < old_u[rb] else rb
                        k = old_u[yu]
                        if k > n_top:
                            c = k - (n_top + 1)
                            if marks_x[c] and marks_y[c]:
                                matched += 1
                        _union_keep_old(parent, old_u, dummy, ra, rb)
    return matched


def top_dim_counts(
    x: np.ndarray, y: np.ndarray, cube_x: np.ndarray, cube_y: np.ndarray, cube_u: np.ndarray
) -> tuple[int, int, int]:
    """(matched, pairs of x, pairs of y) in the top dimension; masks as uint8, cubes flattened."""
    u = x | y
    n_top = cube_u.size
    ndim = x.ndim
    if ndim == 2:
        x, y, u = x[None], y[None], u[None]
    keys_x = _top_keys(cube_x, n_top)
    keys_y = _top_keys(cube_y, n_top)
    keys_u = _top_keys(cube_u, n_top)
    px, mx = _top_pass_input(x, u, keys_x, keys_u, ndim)
    py, my = _top_pass_input(y, u, keys_y, keys_u, ndim)
    matched = _top_pass_comparison(u, keys_u, mx, my, ndim)
    return int(matched), int(px), int(py)

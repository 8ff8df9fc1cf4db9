"""Compiled kernels of the Betti matching error, dimension 1 of 3D masks, through linking numbers.

Dimension 1 of a volume is decided by which level-1 square kills which class of the level-0
complex (docs/metrics.md, "Betti matching error"). By Alexander duality that question is one about
the dual graph (cubes and the outside as nodes, level-1 squares as edges): a square ``d`` of the
comparison order kills a class of the mask ``M`` in the image of the induced matching exactly when
the cycle it closes in the dual graph of the squares after it, read through its linking numbers
with a basis of ``H1`` of ``M``, is independent of the cycles closed before it (in the reverse
sweep). One union-find sweep over the squares in decreasing order, carrying for every node the
linking numbers of its path to the root with the basis cycles (bit vectors), decides every death
and both images at once; no boundary matrix is reduced.

Linking numbers are read off spanning surfaces of the basis cycles: every edge off the comb tree
(edges along x; along y in the plane x = 0; along z on the line x = y = 0) bounds, with its tree
path, the strip of squares between it and the plane x = 0 (and, for edges along z, the plane
y = 0). A square's label is the XOR of the class bits of the edges whose strip contains it: a
running XOR along x (and along y in the plane x = 0) during the sweep.
"""

from __future__ import annotations

import numpy as np

from topobench.metrics._bm_kernels import _inline, _jit, _positions, merge_flags
from topobench.metrics._bm_reduction import _append, finite_births

# ---------------------------------------------------------------------------------------------
# Basis cycles of H1 of a mask's vertex complex: the fundamental cycles, in the forest of its
# value-0 edges taken in index order, of the edges that give birth to its finite pairs.


@_jit
def _tree_codes(m, vox, rank, cycles):
    """Parent direction of every voxel of ``m`` (by position in ``vox``; ``rank``: positions) in
    the forest of its value-0 edges that are not cycle edges (``cycles`` uint8 per compact edge
    id): uint8, 7 at a root, else ``1 + 2 * axis + (1 if the parent is at the lower
    coordinate)``."""
    s0, s1, s2 = m.shape
    sxy = s1 * s2
    flat = m.ravel()
    code = np.zeros(vox.shape[0], dtype=np.uint8)
    queue = np.empty(vox.shape[0], dtype=np.int64)
    for i in range(vox.shape[0]):
        v0 = vox[i]
        if code[i] != 0:
            continue
        code[i] = 7
        head = 0
        tail = 1
        queue[0] = v0
        while head < tail:
            v = queue[head]
            head += 1
            c = (v // sxy, (v // s2) % s1, v % s2)
            for t in range(3):
                off = sxy if t == 0 else s2 if t == 1 else 1
                size = s0 if t == 0 else s1 if t == 1 else s2
                for up in range(2):
                    if up == 1:
                        if c[t] + 1 >= size:
                            continue
                        w = v + off
                        if flat[w] == 0:
                            continue
                        e = 3 * rank[v] + t
                        back = 1 + 2 * t + 1  # w's parent v is at the lower coordinate
                    else:
                        if c[t] == 0:
                            continue
                        w = v - off
                        if flat[w] == 0:
                            continue
                        e = 3 * rank[w] + t
                        back = 1 + 2 * t
                    j = rank[w]
                    if code[j] != 0 or cycles[e] != 0:
                        continue
                    code[j] = back
                    queue[tail] = w
                    tail += 1
    return code


@_jit
def _step_up(code, rank, v, s1, s2):
    """(parent voxel, id of the edge to it) of voxel ``v`` in the forest of :func:`_tree_codes`."""
    d = code[rank[v]] - 1
    t = d // 2
    off = s1 * s2 if t == 0 else s2 if t == 1 else 1
    if d % 2 == 1:
        p = v - off
        return p, 3 * p + t
    return v + off, 3 * v + t


@_jit
def _root_path(code, rank, v, path, s1, s2):
    """The voxels from ``v`` up to its root in the forest of :func:`_tree_codes`, into ``path``
    (grown when needed); returns it and their number."""
    n = 0
    while True:
        path, n = _append(path, n, v)
        if code[rank[v]] == 7:
            return path, n
        v, _ = _step_up(code, rank, v, s1, s2)


@_jit
def _class_edges(m, code, rank, births):
    """(edge id, class) pairs of the fundamental cycles of the birth edges (``births``: edge ids),
    for the edges whose spanning strip is not empty: along y off the plane x = 0, along z."""
    _, s1, s2 = m.shape
    sxy = s1 * s2
    ids = np.empty(1024, dtype=np.int64)
    cls = np.empty(1024, dtype=np.int64)
    n = 0
    path_a = np.empty(1024, dtype=np.int64)
    path_b = np.empty(1024, dtype=np.int64)
    for k in range(births.shape[0]):
        e = births[k]
        t = e % 3
        a = e // 3
        b = a + (sxy if t == 0 else s2 if t == 1 else 1)
        # the root paths of both ends, as voxel lists
        path_a, na = _root_path(code, rank, a, path_a, s1, s2)
        path_b, nb = _root_path(code, rank, b, path_b, s1, s2)
        # drop the common part above the lowest common ancestor
        while na > 1 and nb > 1 and path_a[na - 2] == path_b[nb - 2]:
            na -= 1
            nb -= 1
        for side in range(3):
            if side == 2:
                count = 1
            else:
                count = (na if side == 0 else nb) - 1
            for j in range(count):
                if side == 2:
                    f = e
                else:
                    v = path_a[j] if side == 0 else path_b[j]
                    _, f = _step_up(code, rank, v, s1, s2)
                ft = f % 3
                if ft == 0 or (ft == 1 and f // 3 < sxy):
                    continue  # a comb tree edge: its strip is empty
                ids, _ = _append(ids, n, f)
                cls, n = _append(cls, n, k)
    return ids[:n], cls[:n]


@_jit
def _birth_edges(vox, cycles, owner):
    """Sorted ids of the value-0 edges that give birth to a finite pair: cycle edges (their
    lower end in ``vox``; ``cycles``, ``owner`` per compact id) that no value-0 square's column
    takes as its pivot."""
    out = np.empty(16, dtype=np.int64)
    n = 0
    for i in range(vox.shape[0]):
        v = vox[i]
        for t in range(3):
            if cycles[3 * i + t] == 0 or owner[3 * i + t] != 0:
                continue
            out, n = _append(out, n, 3 * v + t)
    return out[:n]


def class_labels(m8: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """A basis of H1 of the vertex complex of ``m8`` as edge labels: ``(k, ids, labels)``.

    ``m8``: uint8 (S0, S1, S2). The basis cycles are the fundamental cycles, in the forest of the
    value-0 edges taken in index order, of the edges that give birth to a finite pair: each has
    its birth edge as its youngest, so their classes are a basis. ``k``: their number (b1);
    ``ids``: the edges of any basis cycle whose spanning strip is not empty, in decreasing id
    order; ``labels``: uint64 (len(ids), words), bit ``i`` set when the edge lies on basis cycle
    ``i``. Working arrays are per voxel of the mask (compact ids), not per cell of the grid.
    """
    vox, rank = _positions(m8)
    cycles, owner = finite_births(m8, vox, rank, merge_flags(m8, vox, rank))
    births = _birth_edges(vox, cycles, owner)
    del owner
    k = int(births.size)
    words = max(1, (k + 63) // 64)
    if k == 0:
        return 0, np.zeros(0, np.int64), np.zeros((0, words), np.uint64)
    code = _tree_codes(m8, vox, rank, cycles)
    del cycles
    ids, cls = _class_edges(m8, code, rank, births)
    del code, rank
    order = np.lexsort((cls, -ids))
    ids, cls = ids[order], cls[order]
    uniq, start = np.unique(-ids, return_index=True)
    labels = np.zeros((uniq.size, words), dtype=np.uint64)
    row = np.repeat(np.arange(uniq.size), np.diff(np.append(start, ids.size)))
    bits = np.left_shift(np.uint64(1), (cls % 64).astype(np.uint64))
    np.bitwise_xor.at(labels, (row, cls // 64), bits)
    return k, -uniq, labels


# ---------------------------------------------------------------------------------------------
# The reverse sweep: level-1 squares of the comparison in decreasing id order, as edges between
# cubes and the outside. Nodes: the cubes of plane x ("current", slots [0, P)), of plane x - 1
# ("next", [P, 2P)), and the components of the planes already swept ([2P, 3P + 1), the outside's
# first). Between planes the next plane's cubes are relabelled onto compact component ids, so the
# memory is three planes whatever the volume.


@_inline
def _find_xor(parent, pot, node, acc, W):
    """Root of ``node``; compresses its path, leaving each visited node's potential (``pot``
    row, ``W`` words: the XOR of the labels on its path) relative to the root. ``acc``: scratch
    row."""
    p = parent[node]
    if p == node:
        return node
    r = parent[p]
    if r == p:  # the common case: the node's parent is a root
        return p
    for w in range(W):
        acc[w] = pot[node, w]
    r = p
    while parent[r] != r:
        for w in range(W):
            acc[w] ^= pot[r, w]
        r = parent[r]
    v = node
    while parent[v] != r:  # acc: the XOR from v to the root
        nxt = parent[v]
        for w in range(W):
            old = pot[v, w]
            pot[v, w] = acc[w]
            acc[w] ^= old
        parent[v] = r
        v = nxt
    return r


@_jit
def _is_new(basis, has, vec, off, words, tmp):
    """Insert ``vec[off:off + words]`` into the echelon ``basis`` (rows by pivot bit) if it is
    independent of its rows; returns whether it was."""
    for w in range(words):
        tmp[w] = vec[off + w]
    while True:
        top = -1
        for w in range(words - 1, -1, -1):
            if tmp[w] != 0:
                word = tmp[w]
                b = 63
                while (word >> np.uint64(b)) == 0:
                    b -= 1
                top = 64 * w + b
                break
        if top < 0:
            return False
        if has[top] == 0:
            for w in range(words):
                basis[top, w] = tmp[w]
            has[top] = 1
            return True
        for w in range(words):
            tmp[w] ^= basis[top, w]


@_jit
def _fold(ids, labels, ptr, plane, sxy, acc2, acc1, col0, w0):
    """Fold one mask's class edges of ``plane`` (``ids`` from ``ptr`` on, decreasing) into the
    running XORs, at words ``w0`` on: edges along y into ``acc2`` (the type-2 squares below
    them), along z into ``acc1`` (type 1); in the plane x = 0 its edges along z go to ``col0``
    (the type-0 squares of that plane). Returns the new ``ptr``."""
    n = ids.shape[0]
    while ptr < n and (ids[ptr] // 3) // sxy == plane:
        e = ids[ptr]
        t = e % 3
        yz = (e // 3) % sxy
        for w in range(labels.shape[1]):
            if plane == 0:
                if t == 2:
                    col0[yz, w0 + w] ^= labels[ptr, w]
            elif t == 1:
                acc2[yz, w0 + w] ^= labels[ptr, w]
            else:
                acc1[yz, w0 + w] ^= labels[ptr, w]
        ptr += 1
    return ptr


@_inline
def _root_priority(node, outside):
    """Which root survives a union: the outside (2), a set node (1), a cube (0)."""
    return 2 if node == outside else 1 if node > outside else 0


@_jit
def _promote(parent, pot, size, old, lo, hi, pool, n_pool, outside, acc, W):
    """Point every cube slot of ``[lo, hi)`` whose path leaves it at a root (compressed) that is
    a cube of the retiring plane ``[old, old + hi - lo)``, or a set node, at a set node of the
    pool; reuses ``pool`` (per retiring slot: its set node, or -1). Returns the pool's size."""
    P = hi - lo
    for j in range(lo, hi):
        p = parent[j]
        if p == j or p == outside:
            continue
        r = _find_xor(parent, pot, j, acc, W)
        if old <= r < old + P:  # a root of the retiring plane: its set moves to a set node
            k = pool[r - old]
            if k < 0:
                k = outside + 1 + n_pool
                n_pool += 1
                pool[r - old] = k
                parent[k] = k
                size[k] = size[r]
                for w in range(W):
                    pot[k, w] = 0
            parent[j] = k
    return n_pool


@_jit
def _compact(parent, pot, size, lo, hi, outside, new_id, acc, W):
    """Renumber the set nodes that the cube slots ``[lo, hi)`` reach (the only live nodes
    beside the outside) onto the start of the pool; returns the pool's new size."""
    n = 0
    P = hi - lo
    roots = np.empty(P, dtype=np.int64)
    for j in range(lo, hi):
        r = _find_xor(parent, pot, j, acc, W)
        roots[j - lo] = r
        if r > outside and new_id[r] < 0:
            new_id[r] = outside + 1 + n
            n += 1
    for j in range(lo, hi):
        r = roots[j - lo]
        if r > outside:
            parent[j] = new_id[r]
    for k in range(outside + 1, parent.shape[0]):
        new_id[k] = -1
        parent[k] = k
        size[k] = 1
        for w in range(W):
            pot[k, w] = 0
    for j in range(lo, hi):
        if parent[j] > outside:
            size[parent[j]] += 1
    return n


# One loop of about 150 lines on purpose: it runs once per square of the grid (178M on VesSAP),
# and helpers that take arrays cost reference counting per call unless inlined (measured: the
# first version with called helpers took 21 s on VesSAP, this one about 3 s).
@_jit
def linking_sweep(u, ids_x, lab_x, k_x, ids_y, lab_y, k_y, wtag, pool_planes=4):
    """Matched pairs of dimension 1 of 3D masks.

    ``u``: uint8 (S0, S1, S2), the comparison's foreground (``x | y``); ``ids_*``, ``lab_*``,
    ``k_*``: each mask's basis cycles (:func:`class_labels`); ``wtag``: a tuple whose length is
    the number of words per node (at least the words of both labels), a constant for the
    compiler. Sweeps the level-1 squares of ``u`` in decreasing id order as edges of the dual
    graph; a square that closes a cycle is a death of the comparison that the image of the
    induced matching sends to a finite pair of mask ``m`` iff the cycle's linking numbers with
    ``m``'s basis are independent of those of the cycles closed before it. Returns the number
    of squares where that holds for both masks.

    Nodes: two planes of cube slots (plane x and x - 1, alternating between ``[0, P)`` and
    ``[P, 2P)``), the outside (a root for ever), and a pool of ``pool_planes * P + 1`` set nodes
    that take over the sets rooted in a plane when it retires (renumbered when it could
    overflow): memory of a few planes whatever the volume.
    """
    W = len(wtag)
    wx = lab_x.shape[1]
    wy = lab_y.shape[1]
    s0, s1, s2 = u.shape
    sxy = s1 * s2
    c2 = s2 - 1
    P = (s1 - 1) * (s2 - 1) if (s0 >= 2 and s1 >= 2 and s2 >= 2) else 0
    outside = 2 * P
    n_nodes = 2 * P + 1 + pool_planes * P + 1
    parent = np.arange(n_nodes, dtype=np.int64)
    size = np.ones(n_nodes, dtype=np.int64)
    pot = np.zeros((n_nodes, W), dtype=np.uint64)
    # running labels per (y, z): type-2 squares (edges along y above them), type-1 (along z);
    # plane 0: its edges along z (col0) and the running XOR over rows for its type-0 squares
    acc2 = np.zeros((sxy, W), dtype=np.uint64)
    acc1 = np.zeros((sxy, W), dtype=np.uint64)
    col0 = np.zeros((sxy, W), dtype=np.uint64)
    acc0 = np.zeros((max(s2, 1), W), dtype=np.uint64)
    basis_x = np.zeros((64 * wx, wx), dtype=np.uint64)
    has_x = np.zeros(64 * wx, dtype=np.uint8)
    basis_y = np.zeros((64 * wy, wy), dtype=np.uint64)
    has_y = np.zeros(64 * wy, dtype=np.uint8)
    vec = np.zeros(W, dtype=np.uint64)
    acc = np.zeros(W, dtype=np.uint64)
    tmp = np.zeros(W, dtype=np.uint64)
    pool = np.full(max(P, 1), -1, dtype=np.int64)
    new_id = np.full(n_nodes, -1, dtype=np.int64)
    n_pool = 0
    rank_x = 0
    rank_y = 0
    matched = 0
    ptr_x = 0
    ptr_y = 0
    for x in range(s0 - 1, -1, -1):
        cur = (x % 2) * P
        nxt = P - cur
        if x + 1 < s0:
            ptr_x = _fold(ids_x, lab_x, ptr_x, x + 1, sxy, acc2, acc1, col0, 0)
            ptr_y = _fold(ids_y, lab_y, ptr_y, x + 1, sxy, acc2, acc1, col0, wx)
        if x == 0:
            ptr_x = _fold(ids_x, lab_x, ptr_x, 0, sxy, acc2, acc1, col0, 0)
            ptr_y = _fold(ids_y, lab_y, ptr_y, 0, sxy, acc2, acc1, col0, wx)
        if P > 0 and x + 2 < s0:  # retire plane x + 1 (the slots of the next plane)
            if n_pool + P > pool_planes * P + 1:  # the pool could overflow: renumber it
                n_pool = _compact(parent, pot, size, cur, cur + P, outside, new_id, acc, W)
            n_pool = _promote(parent, pot, size, nxt, cur, cur + P, pool, n_pool, outside,
                              acc, W)
            for j in range(P):
                pool[j] = -1
                parent[nxt + j] = nxt + j
                size[nxt + j] = 1
                for w in range(W):
                    pot[nxt + j, w] = 0
        for y in range(s1 - 1, -1, -1):
            if x == 0 and y + 1 < s1:  # type-0 squares of plane 0: XOR over the rows above
                for z in range(s2):
                    yz = (y + 1) * s2 + z
                    for w in range(W):
                        acc0[z, w] ^= acc1[yz, w] ^ col0[yz, w]
            for z in range(s2 - 1, -1, -1):
                yz = y * s2 + z
                cz = y * c2 + z  # the slot of cube (x, y, z) in its plane
                for t in range(2, -1, -1):
                    # existence and value in u; the two sides (cube slots or the outside)
                    if t == 2:
                        if x + 1 >= s0 or y + 1 >= s1:
                            continue
                        if u[x, y, z] and u[x + 1, y, z] and u[x, y + 1, z] and u[
                                x + 1, y + 1, z]:
                            continue
                        a = cur + cz - 1 if z >= 1 else outside
                        b = cur + cz if z + 1 < s2 else outside
                    elif t == 1:
                        if x + 1 >= s0 or z + 1 >= s2:
                            continue
                        if u[x, y, z] and u[x + 1, y, z] and u[x, y, z + 1] and u[
                                x + 1, y, z + 1]:
                            continue
                        a = cur + cz - c2 if y >= 1 else outside
                        b = cur + cz if y + 1 < s1 else outside
                    else:
                        if y + 1 >= s1 or z + 1 >= s2:
                            continue
                        if u[x, y, z] and u[x, y + 1, z] and u[x, y, z + 1] and u[
                                x, y + 1, z + 1]:
                            continue
                        b = cur + cz if x + 1 < s0 else outside
                        if x >= 1:
                            # the cube below is new (none of its other faces came yet): the
                            # square links it (label 0 off the plane x = 0)
                            a = nxt + cz
                            rb = _find_xor(parent, pot, b, acc, W)
                            parent[a] = rb
                            size[rb] += 1
                            for w in range(W):
                                pot[a, w] = pot[b, w]  # zero if b is the root
                            continue
                        a = outside
                    ra = _find_xor(parent, pot, a, acc, W)
                    rb = _find_xor(parent, pot, b, acc, W)
                    # the square's labels XOR both sides' potentials (a root's is zero: a node
                    # gets a potential when it is linked, and is never a root again)
                    nonzero = False
                    for w in range(W):
                        if t == 2:
                            sw = acc2[yz, w]
                        elif t == 1:
                            sw = acc1[yz, w]
                        else:
                            sw = acc0[z, w]
                        vec[w] = sw ^ pot[a, w] ^ pot[b, w]
                        nonzero = nonzero or vec[w] != 0
                    if ra != rb:  # a merge: the square joins the spanning forest
                        ka = _root_priority(ra, outside)
                        kb = _root_priority(rb, outside)
                        if kb > ka or (kb == ka and size[rb] > size[ra]):
                            ra, rb = rb, ra
                        size[ra] += size[rb]
                        parent[rb] = ra
                        for w in range(W):
                            pot[rb, w] = vec[w]
                        continue
                    if not nonzero:
                        continue
                    new_x = _is_new(basis_x, has_x, vec, 0, wx, tmp)
                    new_y = _is_new(basis_y, has_y, vec, wx, wy, tmp)
                    if new_x:
                        rank_x += 1
                    if new_y:
                        rank_y += 1
                    if new_x and new_y:
                        matched += 1
                    if rank_x == k_x or rank_y == k_y:
                        return matched
    return matched


def dim1_matched(x8: np.ndarray, y8: np.ndarray, basis_x: tuple, basis_y: tuple) -> int:
    """Matched pairs of dimension 1 of 3D masks ``x8``, ``y8`` (uint8 (S0, S1, S2)), from their
    bases (:func:`class_labels`)."""
    (kx, ids_x, lab_x), (ky, ids_y, lab_y) = basis_x, basis_y
    if kx == 0 or ky == 0:
        return 0
    words = lab_x.shape[1] + lab_y.shape[1]
    # words per node, a compile-time constant: 2, 4, 8, then multiples of 8 (few variants)
    wtag = (0,) * (1 << (words - 1).bit_length() if words <= 8 else -(-words // 8) * 8)
    return int(linking_sweep(x8 | y8, ids_x, lab_x, kx, ids_y, lab_y, ky, wtag))

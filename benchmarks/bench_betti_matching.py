"""Betti matching error against Betti-Matching-3D on the same masks, ratios from one run.

    nice python benchmarks/bench_betti_matching.py            # all cases (minutes on 2 cores)
    nice python benchmarks/bench_betti_matching.py --quick    # small sizes, a smoke run
    nice python benchmarks/bench_betti_matching.py --cases 2d-4 vessap-6
    nice python benchmarks/bench_betti_matching.py --phases 3d-6 vessap-6   # where the time goes

Every case runs topobench's ``betti_matching_counts`` and the reference
``compute_matching(1 - pred, 1 - target)`` (the compiled module of the ``topolosses`` wheel:
``pip install --no-deps topolosses``) on the same pair, asserts identical counts (matched,
unmatched per side, per dimension) and prints both times and their ratio. Connectivity 4 / 6 is
the reference's own V-construction; 8 / 26 is the reference on the subdivided masks (what
topobench computes for them), so both sides work on the ``2n + 1`` grid.

Times are process CPU seconds (the machine is shared; the reference runs parts of dimension 1 on
several threads, whose CPU time is counted), wall seconds beside them. Each side runs in a child
process capped at ``--mem-gib`` / ``--ref-mem-gib`` of address space, so that a reference run
that needs more memory fails alone (reported as such). topobench's numba kernels are compiled
(or loaded from the cache) before its timed run.

``--phases`` times topobench's phases one by one on the cases named (3D, in this process).

Cases: 2D 1024x1024 tubes (connectivity 4 and 8), 3D 64x256x256 tubes (6 and 26; with 26 the
subdivided grid has 34M vertices), 3D 32x128x128 tubes (26, small enough for the reference), and
the VesSAP label of ../shared/data/labels-3d (600x304x325, connectivity 6) against a degraded copy;
3drings-6 is the 64x256x256 case with 1000 small tunnels added to the prediction (b1 about 1000:
many words of classes per node in dimension 1).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
VESSAP = HERE.parent.parent / "shared" / "data" / "labels-3d" / "vessap_label.nii.gz"


def make_case(name: str, quick: bool) -> tuple[np.ndarray, np.ndarray, int]:
    from thin_structures import degrade, tubes

    kind, conn = name.split("-")
    conn = int(conn)
    if kind == "2d":
        shape = (256, 256) if quick else (1024, 1024)
        target = tubes(shape, 30, 2, seed=1)
        pred = degrade(target, 40, 40, seed=2)
    elif kind in ("3d", "3dsmall"):
        shape = (16, 64, 64) if quick else (64, 256, 256) if kind == "3d" else (32, 128, 128)
        target = tubes(shape, 40 if kind == "3d" else 20, 1, seed=3)
        pred = degrade(target, 60 if kind == "3d" else 30, 60 if kind == "3d" else 30, seed=4)
    elif kind == "3drings":  # 1000 small tunnels added: 16 + 1 words of classes per node
        shape = (16, 64, 64) if quick else (64, 256, 256)
        target = tubes(shape, 40, 1, seed=3)
        pred = degrade(target, 60, 60, seed=4)
        rng = np.random.default_rng(6)
        for _ in range(50 if quick else 1000):
            x, y, z = (int(rng.integers(2, s - 2)) for s in shape)
            pred[x, y - 1:y + 2, z - 1:z + 2] = True
            pred[x, y, z] = False
    elif kind == "vessap":
        import nibabel as nib

        vol = np.asarray(nib.load(VESSAP).dataobj).transpose(2, 1, 0).astype(bool)
        target = vol[:64, :128, :128] if quick else vol
        pred = degrade(target, 300, 300, seed=5)
    else:
        raise SystemExit(f"unknown case {name!r}")
    return np.ascontiguousarray(pred), np.ascontiguousarray(target), conn


def run_case(name: str, quick: bool, which: str) -> dict:
    """One side of one case, in this (child) process: counts and times."""
    pred, target, conn = make_case(name, quick)
    out: dict = {"case": name, "shape": list(pred.shape), "connectivity": conn}
    if which == "topobench":
        from topobench.metrics import betti_matching_counts

        # compile (or load) every kernel before timing: random masks with loops (one and two
        # words of classes) and with cavities in both, so every path runs
        rng = np.random.default_rng(0)
        for size, p in ((6, 0.6), (10, 0.7), (8, 0.9)):
            a, b = (rng.random((size,) * pred.ndim) < p for _ in range(2))
            betti_matching_counts(a, b, connectivity=conn)
        c0, w0 = time.process_time(), time.perf_counter()
        counts = betti_matching_counts(pred, target, connectivity=conn)
        out.update(cpu=time.process_time() - c0, wall=time.perf_counter() - w0)
    else:
        from topobench.metrics._bm_reference import (
            load_reference,
            reference_counts,
            reference_inputs,
        )

        ref = load_reference()
        if ref is None:
            raise SystemExit("Betti-Matching-3D (topolosses) is not installed")
        a, b = reference_inputs(pred, target, conn)
        del pred, target
        c0, w0 = time.process_time(), time.perf_counter()
        counts = reference_counts(ref, a, b)
        out.update(cpu=time.process_time() - c0, wall=time.perf_counter() - w0)
    out["counts"] = np.asarray(counts).astype(int).tolist()
    out["max_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return out


def phases(name: str, quick: bool) -> None:
    """Process CPU seconds of each phase of ``betti_matching_counts`` on one 3D case."""
    from topobench.metrics import _bm_kernels, _bm_linking
    from topobench.metrics import betti_matching as bm
    from topobench.metrics.topology import _euler_validated

    pred, target, conn = make_case(name, quick)
    if pred.ndim != 3:
        raise SystemExit("--phases takes 3D cases")
    bm.betti_matching_counts(pred, target, connectivity=conn)  # compile / load the kernels
    x, y = (bm.subdivide(pred), bm.subdivide(target)) if conn == 26 else (pred, target)
    x8, y8 = (np.ascontiguousarray(a).view(np.uint8) for a in (x, y))
    u8 = x8 | y8
    rows: list[tuple[str, float]] = []

    def timed(label, fn):
        c0 = time.process_time()
        out = fn()
        rows.append((label, time.process_time() - c0))
        return out

    b0 = timed("dim 0: components (cc3d)",
               lambda: [bm._components(a.view(bool)) for a in (x8, y8)])
    timed("dim 0: matched merges", lambda: _bm_kernels.dim0_matched(u8, x8, y8))
    basis = [timed(f"dim 1: births and basis cycles of {side}",
                   lambda m=m: _bm_linking.class_labels(m)) for side, m in (("x", x8), ("y", y8))]
    b2 = timed("dim 2: b2 of x and y (Euler char.)", lambda: [
        b[0] + _euler_validated(m.view(bool), 6) - n for b, m, n in zip(basis, (x8, y8), b0)])
    if min(b2) > 0:
        timed("dim 2: cavities' matching", lambda: _bm_kernels.top_dim_counts(x8, y8))
    matched = timed("dim 1: linking sweep",
                    lambda: _bm_linking.dim1_matched(x8, y8, basis[0], basis[1]))
    print(f"{name}: grid {'x'.join(map(str, u8.shape))}, b1 x / y {[b[0] for b in basis]}, "
          f"b2 x / y {b2}, {basis[0][1].size} / {basis[1][1].size} labelled edges, {matched} "
          "matched in dimension 1")
    for label, sec in rows:
        print(f"  {label:38} {sec:7.2f} s CPU")
    print(f"  {'sum':38} {sum(sec for _, sec in rows):7.2f} s CPU")


def child(name: str, quick: bool, which: str, mem_gib: float, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--child", name, which] + (["--quick"] if quick else [])
    limit = int(mem_gib * 2**30)

    def cap() -> None:
        os.nice(5)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=cap, env=env,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"over {timeout:.0f} s"}
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["?"]
        return {"error": f"exit {proc.returncode}: {tail[0][:120]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--cases", nargs="*",
                        default=["2d-4", "2d-8", "3d-6", "3drings-6", "3dsmall-26", "3d-26",
                                 "vessap-6"])
    parser.add_argument("--mem-gib", type=float, default=5.0,
                        help="address-space cap of topobench's child process")
    parser.add_argument("--ref-mem-gib", type=float, default=6.0,
                        help="cap of the reference's child (below 6 GiB it fails, or returns "
                             "wrong counts, on 64x256x256)")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--phases", nargs="+", metavar="CASE",
                        help="time topobench's phases on these 3D cases instead")
    parser.add_argument("--child", nargs=2, metavar=("CASE", "SIDE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_case(args.child[0], args.quick, args.child[1])))
        return
    if args.phases:
        for name in args.phases:
            phases(name, args.quick)
        return
    print(f"{'case':10} {'shape':>16} {'topobench s':>12} {'BM-3D s':>10} {'ratio':>7} "
          f"{'identical':>9}  topobench GiB / BM-3D GiB")
    for name in args.cases:
        if name.startswith("vessap") and not VESSAP.is_file():
            print(f"{name:10} skipped: {VESSAP} not found")
            continue
        ours = child(name, args.quick, "topobench", args.mem_gib, args.timeout)
        ref = child(name, args.quick, "reference", args.ref_mem_gib, args.timeout)
        if "error" in ours:
            print(f"{name:10} topobench failed: {ours['error']}")
            continue
        shape = "x".join(map(str, ours["shape"]))
        if "error" in ref:
            print(f"{name:10} {shape:>16} {ours['cpu']:12.2f} {'-':>10} {'-':>7} {'-':>9}  "
                  f"{ours['max_rss_gib']:.2f} / reference failed ({ref['error']})")
            continue
        same = ours["counts"] == ref["counts"]
        print(f"{name:10} {shape:>16} {ours['cpu']:12.2f} {ref['cpu']:10.2f} "
              f"{ref['cpu'] / max(ours['cpu'], 1e-9):6.1f}x {str(same):>9}  "
              f"{ours['max_rss_gib']:.2f} / {ref['max_rss_gib']:.2f}"
              f"   (wall {ours['wall']:.2f} s / {ref['wall']:.2f} s)")
        if not same:
            print(f"  MISMATCH topobench {ours['counts']} reference {ref['counts']}")


if __name__ == "__main__":
    main()

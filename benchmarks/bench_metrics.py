"""Speed of the metrics core, with ratios against baselines measured in the same process.

    python benchmarks/bench_metrics.py            # everything (a few minutes on 2 cores)
    python benchmarks/bench_metrics.py --quick    # smaller sizes, for a smoke run

    python benchmarks/bench_metrics.py --only cld --structures sheets --threads 2

Prints (``--only`` picks one):
1. ``betti``: betti_numbers vs gudhi's cubical persistence (2D 1024x1024 and 3D 64x256x256 thin
   structures, every connectivity): identical results and the speed-up (process CPU time).
2. ``betti3d``: betti_numbers on 256^3 tubes and sheets against the previous implementation
   (kept below as the baseline): identical results, the speed-up of it and of its Euler count.
3. ``gil``: which kernels release the GIL (scikit-image's 2D and 3D thinning, topobench's 3D
   thinning, cc3d): how far a Python loop gets beside each, 1 vs 2 threads over the same items
   and CPU seconds per wall second with 2 threads.
4. ``roads``: the ``roads`` protocol on a 1500x1500 image (seconds; threads 2 vs 1).
5. ``vessap``: the ``vessap`` protocol on the VesSAP label (``../shared/data``) and a degraded
   copy, in a child process: seconds, peak RSS and what evaluation adds to the loaded inputs.
6. ``cld``: the ``cld`` protocol on 600x1024x1024 volumes of thin tubes and of sheets shaped
   as CLD's cement lines (``thin_structures.CEMENT_LINES``), each in a child process: seconds,
   peak RSS (volumes included), and the skeleton stage timed inside the same run (the floor of
   this protocol).
7. ``thinning``: topobench's 3D thinning against scikit-image's on windows of those volumes:
   identical skeletons and the speed-up (process CPU time).

On a shared machine, compare the CPU-time figures: wall time depends on the load.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from functools import cache
from itertools import product
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from references import gudhi_betti  # noqa: E402
from thin_structures import CEMENT_LINES, degrade, sheets, tubes  # noqa: E402

from topobench.masks import dual_connectivity  # noqa: E402
from topobench.metrics import betti_numbers, euler_characteristic, evaluate_case  # noqa: E402
from topobench.metrics.topology import count_components  # noqa: E402


def best_of(fn, repeat: int, clock=time.perf_counter) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = clock()
        out = fn()
        best = min(best, clock() - t)
    return best, out


def best_cpu(fn, repeat: int) -> tuple[float, object]:
    """Shortest process CPU time (the single-threaded kernels; robust on a shared machine)."""
    return best_of(fn, repeat, time.process_time)


def bench_betti(quick: bool) -> None:
    print("== betti_numbers vs gudhi CubicalComplex persistence (process CPU time) ==")
    cases = [((512, 512) if quick else (1024, 1024), 60, 2), ((32, 128, 128) if quick
             else (64, 256, 256), 40, 1)]
    for shape, n, radius in cases:
        mask = tubes(shape, n, radius, seed=1)
        for c in ((4, 8) if len(shape) == 2 else (6, 26)):
            t_ours, ours = best_cpu(lambda m=mask, c=c: betti_numbers(m, connectivity=c), 5)
            t_gudhi, ref = best_cpu(lambda m=mask, c=c: gudhi_betti(m, c), 1)
            same = "identical" if ours == ref else f"DIFFERENT (gudhi {ref})"
            print(f"{'x'.join(map(str, shape)):>12} c={c:<2} betti={ours} {same}: "
                  f"ours {t_ours * 1e3:8.1f} ms, gudhi {t_gudhi * 1e3:9.1f} ms, "
                  f"ratio {t_gudhi / t_ours:6.0f}x")


# -- The Betti numbers before this version (the baseline of ``bench_betti_speedup``) -----------
@cache
def _legacy_euler_lut(ndim: int, connectivity: int) -> np.ndarray:
    """Each 2^ndim block configuration's share of chi, times 2^ndim (integers).

    A block is the 2x2 (2x2x2) group of pixels around one lattice vertex; bit ``k`` of the
    configuration code is the pixel at offset ``offsets[k]``.
    """
    offsets = list(product((0, 1), repeat=ndim))
    size = 1 << ndim
    lut = np.zeros(1 << size, dtype=np.int64)
    for code in range(1 << size):
        on = {off for k, off in enumerate(offsets) if code >> k & 1}
        count = len(on)
        if connectivity in (8, 26):
            # Closed pixels/voxels. Cells incident to the centre vertex: the vertex (weight 1),
            # 2*ndim half-edges (weight 1/2), faces (weight 1/4), in 3D cubes (weight 1/8).
            total = size * (count > 0)
            for axis in range(ndim):
                for side in (0, 1):  # edge along +/- axis: touched by the pixels on that side
                    if any(off[axis] == side for off in on):
                        total -= size // 2
            if ndim == 2:
                total += count  # 4 quarter squares = the pixels themselves, weight 1/4 each
            else:
                for axis in range(3):  # faces perpendicular to axis: pairs differing in axis
                    for off in product((0, 1), repeat=2):
                        a = list(off)
                        a.insert(axis, 0)
                        b = list(off)
                        b.insert(axis, 1)
                        if tuple(a) in on or tuple(b) in on:
                            total += 2
                total -= count
        else:
            # Vertex complex: pixels are vertices (weight 1/2^ndim each), block edges between
            # neighbours, block faces, and in 3D the block cube.
            total = count
            n_edges = sum(
                1
                for a in on
                for b in on
                if a < b and sum(x != y for x, y in zip(a, b)) == 1
            )
            if ndim == 2:
                total += -2 * n_edges + 4 * (count == 4)
            else:
                n_faces = 0
                for axis in range(3):
                    for side in (0, 1):
                        if all(off in on for off in offsets if off[axis] == side):
                            n_faces += 1
                total += -2 * n_edges + 4 * n_faces - 8 * (count == 8)
        lut[code] = total
    return lut


def _legacy_block_codes(padded: np.ndarray) -> np.ndarray:
    ndim = padded.ndim
    codes = np.zeros(tuple(s - 1 for s in padded.shape), dtype=np.uint8)
    for k, off in enumerate(product((0, 1), repeat=ndim)):
        view = padded[tuple(slice(o, o + n) for o, n in zip(off, codes.shape))]
        codes |= view.astype(np.uint8) << k
    return codes


def _legacy_euler(m: np.ndarray, c: int) -> int:
    lut = _legacy_euler_lut(m.ndim, c)
    hist = np.zeros(lut.shape[0], dtype=np.int64)
    per_slice = (m.shape[1] + 2) * (m.shape[2] + 2)
    step = max(1, (1 << 24) // per_slice)
    n_corners = m.shape[0] + 1
    for z0 in range(0, n_corners, step):
        z1 = min(z0 + step, n_corners)
        lo, hi = max(z0 - 1, 0), min(z1, m.shape[0])
        slab = np.zeros((z1 - z0 + 1, m.shape[1] + 2, m.shape[2] + 2), dtype=bool)
        slab[lo - (z0 - 1): hi - (z0 - 1), 1:-1, 1:-1] = m[lo:hi]
        hist += np.bincount(_legacy_block_codes(slab).ravel(), minlength=lut.shape[0])
    return int(hist @ lut) >> m.ndim


def legacy_betti_numbers(m: np.ndarray, c: int) -> tuple[int, ...]:
    """3D Betti numbers as computed before (full-histogram Euler count, temporaries per bit)."""
    b0 = count_components(m, c)
    if b0 == 0:
        return (0, 0, 0)
    padded = np.ones(tuple(s + 2 for s in m.shape), dtype=bool)
    padded[1:-1, 1:-1, 1:-1] = ~m
    holes = count_components(padded, dual_connectivity(c)) - 1
    return (b0, b0 + holes - _legacy_euler(m, c), holes)


def bench_betti_speedup(quick: bool) -> None:
    shape = (128,) * 3 if quick else (256,) * 3
    print(f"== betti_numbers {'x'.join(map(str, shape))}: this version vs the previous one "
          "(best process CPU time of 5) ==")
    for name, mask in (("tubes", tubes(shape, 60, 2, seed=6)),
                       ("sheets", sheets(shape, 12, 1, seed=6))):
        for c in (6, 26):
            t_old, old = best_cpu(lambda m=mask, c=c: legacy_betti_numbers(m, c), 5)
            t_new, new = best_cpu(lambda m=mask, c=c: betti_numbers(m, connectivity=c), 5)
            t_eo, _ = best_cpu(lambda m=mask, c=c: _legacy_euler(m, c), 5)
            t_en, _ = best_cpu(lambda m=mask, c=c: euler_characteristic(m, connectivity=c), 5)
            same = "identical" if old == new else f"DIFFERENT (previous {old})"
            print(f"{name:>6} c={c:<2} betti={new} {same}: previous {t_old * 1e3:7.1f} ms, "
                  f"now {t_new * 1e3:7.1f} ms, ratio {t_old / t_new:4.2f}x; Euler count alone "
                  f"{t_eo * 1e3:6.1f} -> {t_en * 1e3:6.1f} ms ({t_eo / t_en:4.2f}x)")


def bench_roads(quick: bool) -> None:
    print("== roads protocol, 1500x1500 ==")
    target = tubes((1500, 1500), 40, 4, seed=2)
    pred = degrade(target, 30, 30, seed=3)
    t1, r1 = best_of(lambda: evaluate_case(pred, target, protocol="roads", workers=1), 3)
    t2, r2 = best_of(lambda: evaluate_case(pred, target, protocol="roads", workers=2), 3)
    assert r1 == r2
    print(f"1 thread {t1:.3f} s, 2 threads {t2:.3f} s (ratio {t1 / t2:.2f}x); "
          + ", ".join(f"{k}={v:.3f}" for k, v in r2.items()))


def _main_thread_share(fn) -> float:
    """How far a pure-Python loop on the calling thread gets while ``fn`` runs on another thread,
    relative to beside a sleeping thread: about 0 when ``fn`` holds the GIL throughout."""
    import threading

    def rate(work) -> float:
        done = threading.Event()
        worker = threading.Thread(target=lambda: (work(), done.set()))
        t, n = time.perf_counter(), 0
        worker.start()
        while not done.is_set():
            n += 1
        worker.join()
        return n / (time.perf_counter() - t)

    return rate(fn) / rate(lambda: time.sleep(0.5))


def bench_gil(quick: bool) -> None:
    """Which kernels release the GIL. Two measures: the main thread's share (a Python loop
    beside the kernel: about 0 when the kernel holds the GIL, whatever the load), and 1 vs 2
    threads over the same items (wall ratio, and process CPU seconds per wall second with 2
    threads: above 1 only if both threads ran at once; both need idle cores to show it)."""
    from concurrent.futures import ThreadPoolExecutor

    import cc3d
    from skimage.morphology import skeletonize

    from topobench.metrics._thinning import thin_3d

    thin_3d(np.ones((3, 3, 3), bool))  # compiled or loaded from numba's cache first
    side = 1024 if quick else 4096
    images = [tubes((side, side), side // 20, 3, seed=s) for s in range(2)] * 2
    volumes = [sheets((64, 256, 256), 12, 1, seed=s) for s in range(2)]
    dense = [np.random.default_rng(s).random((64, 512, 512)) < 0.3 for s in range(2)] * 2
    planes = [np.random.default_rng(s).random((side, side)) < 0.3 for s in range(2)] * 2
    big = list(np.random.default_rng(0).random(2_000_000))
    print("== GIL: main thread's share beside the kernel; 1 vs 2 threads over the same items ==")
    cases = (("control: sorted(list)", sorted, [big] * 2),
             ("skeletonize 2D (Zhang)", skeletonize, images),
             ("skeletonize 3D (Lee)", skeletonize, volumes),
             ("topobench 3D thinning", thin_3d, volumes),
             ("cc3d 2D", lambda m: cc3d.connected_components(m, connectivity=8), planes),
             ("cc3d 3D", lambda m: cc3d.connected_components(m, connectivity=26), dense))
    for name, fn, items in cases:
        share = _main_thread_share(lambda fn=fn, items=items: [fn(x) for x in items])
        runs = []
        for workers in (1, 2):
            t, c = time.perf_counter(), time.process_time()
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(fn, items))
            runs.append((time.perf_counter() - t, time.process_time() - c))
        (w1, _), (w2, c2) = runs
        print(f"{name:>24}: main thread's share {share * 100:3.0f}%; 1 thread {w1:6.2f} s, "
              f"2 threads {w2:6.2f} s, ratio {w1 / w2:4.2f}x, CPU/wall with 2 threads "
              f"{c2 / w2:4.2f}")


_CHILD_VESSAP = """
import json, resource, sys, time
import numpy as np
from topobench.metrics import evaluate_case
pred = np.load(sys.argv[1]); target = np.load(sys.argv[2])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
t, c = time.perf_counter(), time.process_time()
r = evaluate_case(pred, target, protocol="vessap", workers=int(sys.argv[3]))
sec, cpu = time.perf_counter() - t, time.process_time() - c
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
print(json.dumps({"seconds": sec, "cpu_s": cpu, "before_mib": before, "peak_mib": peak,
                  "metrics": r}))
"""


def bench_vessap(quick: bool) -> None:
    """``vessap`` protocol on the VesSAP label (target) and a degraded copy (prediction)."""
    from topobench.io import read_mask

    path = Path(os.environ.get("TOPOBENCH_SHARED", Path(__file__).resolve().parents[2]
                               / "shared")) / "data" / "labels-3d" / "vessap_label.nii.gz"
    if not path.exists():
        print(f"== vessap: {path} not found, skipped ==")
        return
    target = read_mask(path)
    pred = degrade(target, 300, 300, seed=7)
    inputs = (pred.nbytes + target.nbytes) / 2**20
    print(f"== vessap protocol on the VesSAP label {'x'.join(map(str, target.shape))} "
          f"(child process; inputs {inputs:.0f} MiB) ==")
    for workers, r in _in_child(_CHILD_VESSAP, pred, target, (2, 1)):
        print(f"threads={workers}: {r['seconds']:.1f} s ({r['cpu_s']:.1f} s CPU), peak RSS "
              f"{r['peak_mib']:.0f} MiB "
              f"({r['peak_mib'] / inputs:.2f}x the inputs; {r['before_mib']:.0f} MiB with "
              f"the inputs loaded, so evaluation adds {r['peak_mib'] - r['before_mib']:.0f} "
              f"MiB = {(r['peak_mib'] - r['before_mib']) / inputs:.2f}x); "
              + ", ".join(f"{k}={v:.3f}" for k, v in r["metrics"].items()))


def _in_child(script: str, pred: np.ndarray, target: np.ndarray,
              threads: tuple[int, ...]) -> Iterator[tuple[int, dict]]:
    """Run ``script`` (argv: pred.npy, target.npy, threads) in a fresh process per thread
    count, the volumes saved once; yield each count with the JSON its last line prints."""
    with tempfile.TemporaryDirectory() as tmp:
        pp, tp = Path(tmp) / "pred.npy", Path(tmp) / "target.npy"
        np.save(pp, pred)
        np.save(tp, target)
        for workers in threads:
            out = subprocess.run([sys.executable, "-c", script, str(pp), str(tp), str(workers)],
                                 capture_output=True, text=True, check=True)
            yield workers, json.loads(out.stdout.strip().splitlines()[-1])


_CHILD = """
import json, resource, sys, time
import numpy as np
import topobench.metrics.protocols as protocols
from topobench.metrics import evaluate_case
pred = np.load(sys.argv[1]); target = np.load(sys.argv[2])
workers = int(sys.argv[3])
stage = {"seconds": 0.0, "cpu_s": 0.0}
real = protocols._skeleton_window_stats


def timed(*args, **kwargs):
    # the skeleton stage (both masks' skeletons over the windows), timed inside the same run
    t, c = time.perf_counter(), time.process_time()
    try:
        return real(*args, **kwargs)
    finally:
        stage["seconds"] += time.perf_counter() - t
        stage["cpu_s"] += time.process_time() - c


protocols._skeleton_window_stats = timed
t, c = time.perf_counter(), time.process_time()
r = evaluate_case(pred, target, protocol="cld", workers=workers)
sec, cpu = time.perf_counter() - t, time.process_time() - c
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print(json.dumps({"seconds": sec, "cpu_s": cpu, "skeleton_s": stage["seconds"],
                  "skeleton_cpu_s": stage["cpu_s"], "peak_gib": rss, "metrics": r}))
"""


def cld_volumes(structure: str, shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(prediction, target) of the ``cld`` benchmark: thin tubes, or sheets shaped as CLD's
    cement lines (``thin_structures.CEMENT_LINES``: 8 curved sheets 5 voxels thick, 4.4% of
    600x1024x1024)."""
    if structure == "tubes":
        target = tubes(shape, 400 if shape[0] > 128 else 100, 1, seed=4)
    else:
        target = sheets(shape, **CEMENT_LINES, seed=4)
    return degrade(target, 300, 300, seed=5), target


def bench_cld(quick: bool, structures: tuple[str, ...] = ("tubes", "sheets"),
              threads: tuple[int, ...] = (2, 1)) -> None:
    shape = (128, 1024, 1024) if quick else (600, 1024, 1024)
    for structure in structures:
        print(f"== cld protocol, {'x'.join(map(str, shape))} {structure} (child process, "
              "volumes included) ==")
        t = time.perf_counter()
        pred, target = cld_volumes(structure, shape)
        print(f"(synthetic volumes made in {time.perf_counter() - t:.0f} s, "
              f"foreground {target.mean() * 100:.2f}%)")
        results = {}
        for workers, r in _in_child(_CHILD, pred, target, threads):
            results[workers] = r
            print(f"threads={workers}: {r['seconds']:.1f} s ({r['cpu_s']:.1f} s CPU), peak "
                  f"RSS {r['peak_gib']:.2f} GiB; skeleton stage {r['skeleton_s']:.1f} s "
                  f"({r['skeleton_cpu_s']:.1f} s CPU): total / skeleton stage "
                  f"{r['seconds'] / r['skeleton_s']:.2f}x wall, "
                  f"{r['cpu_s'] / r['skeleton_cpu_s']:.2f}x CPU; "
                  + ", ".join(f"{k}={v:.3f}" for k, v in r["metrics"].items()))
        del pred, target
        if 1 in results and 2 in results:
            ratio = results[1]["seconds"] / results[2]["seconds"]
            print(f"ratio 1 thread / 2 threads: {ratio:.2f}x")


def bench_thinning(quick: bool) -> None:
    """3D thinning of topobench (``metrics._thinning``) against scikit-image's ``skeletonize``
    on windows of the ``cld`` benchmark's volumes: identical skeletons, process CPU time."""
    from skimage.morphology import skeletonize

    from topobench.metrics._thinning import thin_3d

    thin_3d(np.ones((3, 3, 3), bool))  # numba's compilation or cache load, not timed
    shape = (128, 512, 512) if quick else (600, 1024, 1024)
    print(f"== 3D thinning, (64, {shape[1]}, {shape[2]}) windows of the cld volumes: "
          "scikit-image vs topobench (process CPU time) ==")
    for structure in ("tubes", "sheets"):
        pred, target = cld_volumes(structure, shape)
        for name, mask in (("target", target), ("prediction", pred)):
            for z0 in (0, shape[0] // 2):
                window = mask[z0: z0 + 64]
                t_ref, ref = best_cpu(lambda w=window: skeletonize(w), 1)
                t_new, new = best_cpu(lambda w=window: thin_3d(w), 1)
                same = "identical" if np.array_equal(ref, new) else "DIFFERENT"
                print(f"{structure:>6} {name:>10} z={z0:<3} {same}: scikit-image {t_ref:6.2f} s, "
                      f"topobench {t_new:6.2f} s, ratio {t_ref / t_new:4.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("--only", choices=["betti", "betti3d", "gil", "roads", "vessap", "cld",
                                           "thinning"],
                        default=None)
    parser.add_argument("--structures", nargs="+", choices=["tubes", "sheets"],
                        default=["tubes", "sheets"], help="cld volumes (default both)")
    parser.add_argument("--threads", nargs="+", type=int, default=[2, 1],
                        help="cld thread counts (default 2 1)")
    args = parser.parse_args()
    print(f"cpus={os.cpu_count()}")
    benches = (("betti", bench_betti), ("betti3d", bench_betti_speedup), ("gil", bench_gil),
               ("roads", bench_roads),
               ("vessap", bench_vessap),
               ("cld", lambda q: bench_cld(q, tuple(args.structures), tuple(args.threads))),
               ("thinning", bench_thinning))
    for name, fn in benches:
        if args.only in (None, name):
            fn(args.quick)


if __name__ == "__main__":
    main()

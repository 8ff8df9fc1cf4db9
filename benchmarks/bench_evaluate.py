"""Benchmark of ``topobench evaluate``'s runner against a plain loop, in the same process.

Prints, for synthetic cases written to a temporary folder, the wall time and the CPU time
(this process and its worker processes, user + system) of

- baseline: read both files and call ``evaluate_case`` in a loop (no CSV, no pool);
- runner, 1 worker: ``run_evaluation(workers=1)`` (adds durable CSV lines, summary);
- runner, N workers: ``run_evaluation(workers=N)`` (process pool, N = all cores by default);
- runner with error maps (1 worker);
- the command line, ``topobench evaluate -q -j 1`` and ``-j N``, each in a fresh process
  (interpreter start and imports included, workers' CPU too),

each as a ratio to the baseline, the CPU seconds per case, and the speed-up of N workers over 1
(wall time of 1 worker / wall time of N), beside what N processes of a pure-Python loop gain at
that moment (the ceiling other work on the cores leaves). The load average of the machine is
printed before and after: other work on the same cores changes every figure. Usage::

    python benchmarks/bench_evaluate.py --kind roads2d --shape 1500 --protocol roads --n 20
    python benchmarks/bench_evaluate.py --kind roads2d --shape 1500 --protocol roads --n 2
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from topobench.evaluate import pair_files, run_evaluation
from topobench.io import read_mask
from topobench.metrics import evaluate_case
from topobench.synth import synthesize


def _cpu() -> float:
    """CPU seconds (user + system) of this process and of its children that have ended."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall, CPU) seconds of ``fn()``."""
    cpu, start = _cpu(), time.perf_counter()
    fn()
    return time.perf_counter() - start, _cpu() - cpu


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def _spin(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def _ceiling(workers: int, n: int = 3_000_000) -> float:
    """How much faster ``workers`` processes run a pure-Python loop than one, right now.

    The most any pool can gain on this machine at this moment (other work on the cores lowers
    it); measured with the same ``fork`` start as the evaluation's pool.
    """
    import multiprocessing

    start = time.perf_counter()
    for _ in range(workers):
        _spin(n)
    serial = time.perf_counter() - start
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        start = time.perf_counter()
        pool.map(_spin, [n] * workers)
        parallel = time.perf_counter() - start
    return serial / parallel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", default="vessels2d")
    parser.add_argument("--n", type=int, default=12)
    parser.add_argument("--shape", type=int, default=None, help="side length (default per kind)")
    parser.add_argument("--protocol", default="default")
    parser.add_argument("--workers", "-j", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-maps", action="store_true", help="skip the error-map run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ndim = 2 if args.kind.endswith("2d") else 3
        shape = None if args.shape is None else (args.shape,) * ndim
        synthesize(root / "data", kind=args.kind, n=args.n, seed=0, shape=shape)
        pred, gt = root / "data" / "pred", root / "data" / "gt"
        proto = args.protocol

        def baseline() -> None:
            for pair in pair_files(pred, gt).pairs:
                evaluate_case(read_mask(pair.pred), read_mask(pair.target), protocol=proto,
                              workers=1)

        n = args.workers
        runs = {
            "baseline loop": baseline,
            "runner, 1 worker": lambda: run_evaluation(pred, gt, root / "a", protocol=proto,
                                                       workers=1),
            f"runner, {n} workers": lambda: run_evaluation(pred, gt, root / "b", protocol=proto,
                                                           workers=n),
        }
        def cli(out: str, workers: int) -> Callable[[], object]:
            command = [sys.executable, "-c", "from topobench.cli import main; main()",
                       "evaluate", str(pred), str(gt), "-o", str(root / out), "-p", proto,
                       "-q", "-j", str(workers)]
            return lambda: subprocess.run(command, check=True)

        runs["topobench evaluate -j 1"] = cli("d", 1)
        runs[f"topobench evaluate -j {n}"] = cli("e", n)
        if not args.no_maps:
            runs["runner + maps, 1 worker"] = lambda: run_evaluation(
                pred, gt, root / "c", protocol=proto, workers=1, maps_dir=root / "maps"
            )
        print(f"{args.n} {args.kind} cases {shape or 'default shape'}, protocol {proto}, "
              f"{os.cpu_count()} cores; load average before: {_load()}")
        walls: dict[str, float] = {}
        base = None
        for name, fn in runs.items():
            wall, cpu = _timed(fn)
            walls[name] = wall
            base = base or wall
            print(f"{name:<26} {wall:8.2f} s wall  ratio {wall / base:5.2f}   "
                  f"CPU {cpu:6.2f} s ({cpu / args.n:.3f} s per case)")
        speedup = walls["runner, 1 worker"] / walls[f"runner, {n} workers"]
        cli_speedup = walls["topobench evaluate -j 1"] / walls[f"topobench evaluate -j {n}"]
        print(f"speed-up of {n} workers over 1: runner {speedup:.2f}x, command line "
              f"{cli_speedup:.2f}x (a pure-Python loop in {n} processes: {_ceiling(n):.2f}x "
              f"now); load average after: {_load()}")


if __name__ == "__main__":
    main()

"""Benchmark of ``topobench evaluate``'s runner against a plain loop, in the same process.

Prints, for synthetic cases written to a temporary folder, the wall time of

- baseline: read both files and call ``evaluate_case`` in a loop (no CSV, no pool);
- runner, 1 worker: ``run_evaluation(workers=1)`` (adds durable CSV lines, summary);
- runner, N workers: ``run_evaluation(workers=N)`` (process pool, N = all cores);
- runner with error maps (1 worker),

each as a ratio to the baseline. Usage::

    python benchmarks/bench_evaluate.py [--kind vessels2d] [--n 12] [--shape 512]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from topobench.evaluate import pair_files, run_evaluation
from topobench.io import read_mask
from topobench.metrics import evaluate_case
from topobench.synth import synthesize


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", default="vessels2d")
    parser.add_argument("--n", type=int, default=12)
    parser.add_argument("--shape", type=int, default=None, help="side length (default per kind)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ndim = 2 if args.kind.endswith("2d") else 3
        shape = None if args.shape is None else (args.shape,) * ndim
        synthesize(root / "data", kind=args.kind, n=args.n, seed=0, shape=shape)
        pred, gt = root / "data" / "pred", root / "data" / "gt"

        def baseline() -> None:
            for pair in pair_files(pred, gt).pairs:
                evaluate_case(read_mask(pair.pred), read_mask(pair.target), workers=1)

        cores = os.cpu_count() or 1
        runs = {
            "baseline loop": baseline,
            "runner, 1 worker": lambda: run_evaluation(pred, gt, root / "a", workers=1),
            f"runner, {cores} workers": lambda: run_evaluation(pred, gt, root / "b", workers=cores),
            "runner + maps, 1 worker": lambda: run_evaluation(
                pred, gt, root / "c", workers=1, maps_dir=root / "maps"
            ),
        }
        base = None
        print(f"{args.n} {args.kind} cases, {cores} cores")
        for name, fn in runs.items():
            seconds = _timed(fn)
            base = base or seconds
            print(f"{name:<26} {seconds:8.2f} s   ratio {seconds / base:5.2f}")


if __name__ == "__main__":
    main()

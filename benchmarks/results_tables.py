"""Cost of turning run records into the paper's tables.

Writes synthetic run directories (run-record contract of ``topobench train``) to a temporary
folder, then times, in this process:

- baseline: reading every metric CSV with ``pandas.read_csv`` and a plain ``groupby().mean()``
  (what a hand-written script would do, without configurations, folds or statistics);
- ``load_results`` (tidy table with configurations);
- ``build_tables`` for Tables 1-7 (aggregation, selection, Wilcoxon + 10 000-resample
  bootstrap per compared cell) and rendering them as LaTeX.

Prints each as a ratio to the baseline. Usage: ``python benchmarks/results_tables.py [--cases 40]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from topobench.catalog import RUN_FORMAT
from topobench.results import build_tables, load_results, render_tables

METHODS = (("Dice & CE", "dice_ce", None), ("Compound clDice", "compound_cldice", 0.3),
           ("CLoss", "closs", 0.08), ("CLoss", "closs", 0.1), ("CLoss", "closs", 0.2))
METRICS = ("dice", "cldice", "e", "e0", "e1", "e0_gt", "ags")


def write_runs(root: Path, *, datasets: int, folds: int, cases: int, seed: int = 0) -> int:
    rng = np.random.default_rng(seed)
    count = 0
    for d in range(datasets):
        for fold in range(folds):
            names = [f"d{d}f{fold}c{i}" for i in range(cases)]
            for method, loss, gamma in METHODS:
                run = root / f"d{d}-{loss}-{gamma}-f{fold}"
                run.mkdir(parents=True)
                record = {"format": RUN_FORMAT, "topobench_version": "bench",
                          "dataset": f"set{d}", "loss": loss, "method": method,
                          "gamma": gamma, "alpha": 0.5, "critical_mask": None, "epochs": 100,
                          "finetune_epochs": 5, "fold": fold, "seed": 0, "protocol": {},
                          "device": "cpu", "seconds_per_epoch": {"finetune": 1.0},
                          "seconds_total": {"finetune": 60.0}, "status": "complete"}
                (run / "run.json").write_text(json.dumps(record))
                for kind in ("pretrained", "raw", "postprocessed"):
                    frame = pd.DataFrame({"case": names})
                    for metric in METRICS:
                        frame[metric] = rng.uniform(0, 1, cases)
                    frame["seconds"] = 0.1
                    frame.to_csv(run / f"metrics_{kind}.csv", index=False)
                count += 1
    return count


def baseline(root: Path) -> pd.DataFrame:
    frames = [pd.read_csv(p).assign(run=p.parent.name, kind=p.stem)
              for p in sorted(root.rglob("metrics_*.csv"))]
    return pd.concat(frames).groupby(["run", "kind"])[list(METRICS)].mean()


def timed(fn, repeats: int = 3) -> float:
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=2)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--cases", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        runs = write_runs(root, datasets=args.datasets, folds=args.folds, cases=args.cases)
        base = timed(lambda: baseline(root))
        load = timed(lambda: load_results([root]))
        tidy = load_results([root])
        tables = timed(lambda: render_tables(build_tables(tidy), "latex"), repeats=1)
    print(f"{runs} runs, {len(tidy)} tidy rows")
    print(f"baseline read_csv + groupby: {base:.3f} s")
    print(f"load_results:               {load:.3f} s  ({load / base:.1f}x baseline)")
    print(f"Tables 1-7 with statistics: {tables:.3f} s  ({tables / base:.1f}x baseline)")


if __name__ == "__main__":
    main()

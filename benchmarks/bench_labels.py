"""Per-label evaluation of a 3D label map against the sum of its binary evaluations.

    python benchmarks/bench_labels.py            # 96x192x192, 4 labels
    python benchmarks/bench_labels.py --quick    # 48x96x96, for a smoke run

A synthetic label map (each label a set of random tubes, as arteries / veins / other vessel
classes) and a degraded copy as the prediction. Baseline, in the same process: the binary masks
of each label extracted beforehand and evaluated with ``evaluate_case`` one by one (the sum of
the binary runs). Measured: ``evaluate_labels(..., merged=False)`` on the label maps (ratio to
the sum), and with the merged mask (ratio to the sum plus the binary run of the union). Process
CPU time, best of ``--repeat``, one thread per case (``workers=1``), so that a shared machine's
load matters little. For whole-image protocols each label is cut to the bounding box of its
structures before it is evaluated (exact: tested), which is where the saving comes from when a
label fills part of the volume (``--layout local``, the default); with ``--layout spread`` every
label crosses the whole volume and the ratio is about 1 (the extraction of each label's masks
is the only extra work).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from thin_structures import degrade, tubes  # noqa: E402

from topobench.metrics import evaluate_case, evaluate_labels  # noqa: E402


def best_cpu(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.process_time()
        out = fn()
        best = min(best, time.process_time() - t)
    return best, out


def label_maps(
    shape: tuple[int, ...], n_labels: int, seed: int, layout: str
) -> tuple[np.ndarray, np.ndarray]:
    """``spread``: every label's tubes cross the whole volume; ``local``: each label lies in its
    own part of the volume (as the vessel segments of the Circle of Willis do)."""
    target = np.zeros(shape, np.uint8)
    pred = np.zeros(shape, np.uint8)
    rng = np.random.default_rng(seed)
    for value in range(1, n_labels + 1):
        if layout == "spread":
            t = tubes(shape, n=6, radius=1, seed=seed + value)
        else:
            size = tuple(n // 3 for n in shape)
            lo = [int(rng.integers(0, n - s)) for n, s in zip(shape, size)]
            t = np.zeros(shape, bool)
            box = tuple(slice(a, a + s) for a, s in zip(lo, size))
            t[box] = tubes(size, n=3, radius=1, seed=seed + value)
        t &= target == 0
        p = degrade(t, n_gaps=4, n_blobs=2, seed=seed + 100 + value) & (pred == 0)
        target[t] = value
        pred[p] = value
    return pred, target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--labels", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--protocol", default="default")
    parser.add_argument("--layout", choices=("local", "spread"), default="local")
    args = parser.parse_args()
    shape = (48, 96, 96) if args.quick else (96, 192, 192)
    pred, target = label_maps(shape, args.labels, seed=0, layout=args.layout)
    values = list(range(1, args.labels + 1))
    metrics = ["dice", "cldice", "e", "e0", "e1", "e2", "e0_gt", "ags", "hd95", "assd", "nsd"]
    kw = {"protocol": args.protocol, "workers": 1, "metrics": metrics}
    binaries = [(pred == v, target == v) for v in values]
    union = (np.isin(pred, values), np.isin(target, values))

    runs = {
        "binary": lambda: [evaluate_case(p, t, **kw) for p, t in binaries],
        "union": lambda: evaluate_case(*union, **kw),
        "labels": lambda: evaluate_labels(pred, target, labels=values, merged=False, **kw),
        "merged": lambda: evaluate_labels(pred, target, labels=values, **kw),
    }
    # Interleaved repeats, so that a change of the machine's load hits every variant alike.
    best = dict.fromkeys(runs, float("inf"))
    out: dict[str, object] = {}
    for _ in range(args.repeat):
        for name, fn in runs.items():
            seconds, out[name] = best_cpu(fn, 1)
            best[name] = min(best[name], seconds)
    t_binary, t_union, t_labels, t_merged = (best[k] for k in runs)
    want, want_union, got, got_merged = (out[k] for k in runs)
    assert [got[str(v)] for v in values] == want, "per-label results differ from binary runs"
    assert got_merged["merged"] == want_union, "merged result differs from the union's run"
    print(f"label map {shape}, {args.labels} labels ({args.layout}), protocol {args.protocol!r}, "
          f"metrics {','.join(metrics)}; process CPU seconds, best of {args.repeat}")
    print(f"  sum of binary evaluations        {t_binary:8.3f} s")
    print(f"  evaluate_labels (merged=False)   {t_labels:8.3f} s   ratio {t_labels / t_binary:.3f}")
    print(f"  binary sum + union               {t_binary + t_union:8.3f} s")
    print(f"  evaluate_labels (merged=True)    {t_merged:8.3f} s   "
          f"ratio {t_merged / (t_binary + t_union):.3f}")


if __name__ == "__main__":
    main()

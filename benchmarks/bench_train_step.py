"""Step time of ``topobench train``: pretraining and fine-tuning, measured through the runner.

Builds a synthetic nnU-Net-style 2D dataset in a temporary folder (vessel trees with faded
stretches from :func:`topobench.synth_images.make_image_case`, ``--cases`` images of ``--size``
pixels, so that the runner's default 128 x 128 patch applies), then for each thread count and
each variant runs :func:`topobench.training.train` twice:

1. ``loss="dice_ce"``: pretraining with Dice & CE and fine-tuning with Dice & CE;
2. ``loss="closs"`` fine-tuned from the first run's pretrained model.

A step is one optimiser step of the runner's epoch loop: patch sampling and augmentation, the
copy to the device, forward, loss, backward, clipping and the optimiser step (the epoch time of
``log.csv`` divided by ``--iterations``). The first epoch of each phase is a warm-up and is not
counted; the figure is the median of the other epochs, and with ``--repeats R`` the smallest of
R such medians (the variants interleaved round by round, so that a busy machine slows them
alike). Ratios are against the first variant at the same thread count, in the same process.

Variants (``--variants``) name runner options, e.g. ``default``, ``network=plainconv``,
``workers=2`` (options the installed runner does not have are reported and skipped). Usage::

    python benchmarks/bench_train_step.py                       # threads 1 and 2, default runner
    python benchmarks/bench_train_step.py --variants default network=plainconv
    python benchmarks/bench_train_step.py --variants workers=0 workers=2 --threads 1
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

TIMES = ("pretrain", "finetune dice_ce", "finetune closs", "wall s")  # seconds: smallest wins


def make_dataset(root: Path, *, cases: int, size: int, seed: int = 0) -> Path:
    """``cases`` 2D images ``(size, size)`` with their labels, in nnU-Net's layout."""
    import imageio.v3 as iio

    from topobench.io import write_mask
    from topobench.synth_images import make_image_case

    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    for i in range(cases):
        case = make_image_case("vessels2d", seed=seed + i, shape=(size, size))
        image = np.clip((case.image - case.image.min()) / np.ptp(case.image) * 255, 0, 255)
        iio.imwrite(root / "imagesTr" / f"case_{i:03d}_0000.png", image.astype(np.uint8))
        write_mask(root / "labelsTr" / f"case_{i:03d}.png", case.target)
    (root / "dataset.json").write_text(json.dumps({"name": "benchvessels"}))
    return root


def parse_variant(text: str) -> dict[str, object]:
    """``"default"`` -> {}; ``"network=plainconv,workers=2"`` -> the options."""
    if text == "default":
        return {}
    options: dict[str, object] = {}
    for part in text.split(","):
        key, _, value = part.partition("=")
        options[key] = int(value) if value.lstrip("-").isdigit() else value
    return options


def step_seconds(run_dir: Path, phase: str, iterations: int) -> float:
    """Median seconds per step of ``phase`` in ``log.csv``, the first epoch left out."""
    import csv

    with (run_dir / "log.csv").open() as f:
        rows = [r for r in csv.DictReader(f) if r["phase"] == phase]
    seconds = [float(r["seconds"]) / iterations for r in rows[1:]] or [
        float(r["seconds"]) / iterations for r in rows]
    return statistics.median(seconds)


def measure(data: Path, out: Path, options: dict[str, object], *, threads: int, epochs: int,
            iterations: int) -> dict[str, float]:
    """Step seconds: pretraining (Dice & CE), fine-tuning Dice & CE, fine-tuning CLoss."""
    from topobench.training import TrainConfig, train

    base = dict(data=data, out=out, epochs=epochs, finetune_epochs=epochs,
                iterations_per_epoch=iterations, threads=threads, save_predictions=False,
                **options)
    tag = "_".join(f"{k}{v}" for k, v in options.items()) or "default"
    pre = train(TrainConfig(loss="dice_ce", run_name=f"{tag}_t{threads}_dice_ce", **base))
    closs = train(TrainConfig(loss="closs", pretrained=pre.run_dir,
                              run_name=f"{tag}_t{threads}_closs", **base))
    return {
        "pretrain": step_seconds(pre.run_dir, "pretrain", iterations),
        "finetune dice_ce": step_seconds(pre.run_dir, "finetune", iterations),
        "finetune closs": step_seconds(closs.run_dir, "finetune", iterations),
        "dice pretrained": pre.summary["pretrained"]["dice"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--variants", nargs="+", default=["default"])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per phase (first: warm-up)")
    parser.add_argument("--iterations", type=int, default=8, help="steps per epoch")
    parser.add_argument("--cases", type=int, default=10)
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--repeats", type=int, default=1,
                        help="rounds of every variant; the smallest median is reported")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    from topobench.training import TrainConfig

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    aliases = {"workers": "num_workers"}
    variants = []
    for text in args.variants:
        options = {aliases.get(k, k): v for k, v in parse_variant(text).items()}
        missing = sorted(set(options) - fields)
        if missing:
            print(f"skipped variant {text}: this runner has no option {', '.join(missing)}")
            continue
        variants.append((text, options))
    if not variants:
        return 2

    load = os.getloadavg()
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
          f"{args.cases} cases of {args.size}x{args.size}, {args.epochs} epochs x "
          f"{args.iterations} steps per phase, batch 4, patch 128x128")
    results: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = make_dataset(Path(tmp) / "benchvessels", cases=args.cases, size=args.size)
        for round_ in range(args.repeats):
            for threads in args.threads:
                for text, options in variants:
                    t0 = time.perf_counter()
                    figures = measure(data, Path(tmp) / f"runs{round_}", options,
                                      threads=threads, epochs=args.epochs,
                                      iterations=args.iterations)
                    figures["wall s"] = time.perf_counter() - t0
                    best = results.setdefault(f"threads={threads}", {}).setdefault(text, {})
                    for key, value in figures.items():
                        best[key] = min(best.get(key, value), value) if key in TIMES else value
    print()
    print("| threads | variant | pretrain s/step | fine-tune Dice & CE s/step | fine-tune CLoss "
          "s/step | CLoss / pretrain | vs first variant (pretrain, CLoss) | Dice (pretrained) |")
    print("|---|---|---|---|---|---|---|---|")
    for threads, by_variant in results.items():
        first = next(iter(by_variant.values()))
        for text, f in by_variant.items():
            print(f"| {threads.split('=')[1]} | {text} | {f['pretrain']:.4f} | "
                  f"{f['finetune dice_ce']:.4f} | {f['finetune closs']:.4f} | "
                  f"{f['finetune closs'] / f['pretrain']:.2f} | "
                  f"{f['pretrain'] / first['pretrain']:.2f}, "
                  f"{f['finetune closs'] / first['finetune closs']:.2f} | "
                  f"{f['dice pretrained']:.3f} |")
    if len(args.threads) > 1:
        t0, t1 = (f"threads={t}" for t in args.threads[:2])
        for text, _ in variants:
            ratio = results[t1][text]["pretrain"] / results[t0][text]["pretrain"]
            print(f"{text}: pretrain step at {args.threads[1]} threads / {args.threads[0]}: "
                  f"{ratio:.2f}")
    load = os.getloadavg()
    print(f"load average at end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Does a fine-tuning loss close gaps? A controlled gap-closing benchmark on synthetic images.

Images come from :func:`topobench.synth_images.make_image_case`: thin vessel trees whose image
evidence fades to ``fade_contrast`` of the structure's contrast along a few short stretches, with
faint distractor segments that join structures in the image but not in the label. A U-Net
trained with a pixel loss tends to leave gaps at the faded stretches; the question is which
fine-tuning loss closes more of them without adding false connections.

Protocol (the paper's, at CPU scale), per training seed:

1. pretrain a U-Net with Dice & CE for ``--pretrain-steps`` optimiser steps;
2. from the same weights, fine-tune once per configuration (loss, weight, recipe, length);
3. predict the evaluation images, apply the topological post-processing
   (``keep_supported(fine-tuned, pretrained)``) and evaluate (Dice, clDice, e, e0, e1, e0-Gt,
   AGS on the whole image, 8-connectivity; and ``fade_recall``, the share of the label's
   centreline inside the faded stretches that the prediction covers: the gaps closed).

Every configuration is compared with Dice & CE fine-tuned with the *same* recipe and length on
the same cases: per-case values are averaged over the seeds, then paired (mean difference,
bootstrap 95% interval and Wilcoxon p, ``topobench.results.stats.paired_comparison``); the
number of seeds in which the seed-mean moved in the same direction is printed too.

Usage::

    python benchmarks/bench_gap_closing.py --out bench-gaps            # main comparison
    python benchmarks/bench_gap_closing.py --out bench-gaps --ablation # + the ablation grid
    python benchmarks/bench_gap_closing.py --smoke                      # seconds, for tests
    python benchmarks/bench_gap_closing.py --out bench-gaps --ablation --figure gaps.png

Results are written per seed (``<out>/seed<k>.csv``) as they finish and reused when the command
is run again with the same settings, so an interrupted run resumes. Timing (pretraining and
fine-tuning step times, total wall time) is printed and written to ``<out>/timing.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

METRICS = ("dice", "cldice", "e", "e0", "e1", "e0_gt", "ags", "fade_recall")
LOWER_IS_BETTER = {"e", "e0", "e1", "e0_gt"}


@dataclass(frozen=True)
class Setup:
    """Everything fixed across configurations (chosen before any result was seen)."""

    n_train: int = 48
    n_eval: int = 48
    size: int = 96
    pretrain_steps: int = 500
    finetune_fraction: float = 0.2
    batch: int = 8
    lr: float = 1e-3
    weight_decay: float = 3e-5
    depth: int = 4
    width: int = 8
    fades: int = 3
    fade_length: float = 12.0
    fade_contrast: float = 0.05
    noise: float = 0.3
    blur: float = 1.0
    distractors: int = 2
    distractor_contrast: float = 0.3

    def key(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass(frozen=True)
class Config:
    """One fine-tuning configuration."""

    name: str
    loss: str
    gamma: float | None = None
    recipe: str = "restart"  # restart: poly from the pretraining lr; low: from lr/10; sgd: nnU-Net
    length: float | None = None  # fine-tuning fraction of the pretraining (None: the setup's)
    ce_normalization: str = "mask"  # masked CE over the pixels of M ("mask") or all pixels
    mask_smooth: float | None = None  # smooth of the masked soft Dice (None: the loss's)
    baseline: str = "dice_ce"  # name of the Dice & CE configuration it is compared with


# The CLoss configurations name their masked-CE normalisation: "ce/mask" (CE averaged over the
# critical mask, topobench's reading before this benchmark) or, unnamed, "all" (the default the
# ablation chose: docs/losses.md, "Defaults"). CLoss (Dice) has no CE term.
MAIN: tuple[Config, ...] = (
    Config("dice_ce", "dice_ce"),
    Config("cldice", "cldice", 0.2),
    Config("compound_cldice", "compound_cldice", 0.2),
    Config("closs", "closs", 0.2, ce_normalization="all"),
    Config("closs_dice", "closs_dice", 0.2),
    Config("thin_closs", "thin_closs", 0.2, ce_normalization="all"),
)

ABLATION: tuple[Config, ...] = (
    Config("closs ce/mask", "closs", 0.2),
    Config("thin_closs ce/mask", "thin_closs", 0.2),
    Config("closs g0.08 ce/mask", "closs", 0.08),
    Config("closs g0.1 ce/mask", "closs", 0.1),
    Config("closs smooth1e-3 ce/mask", "closs", 0.2, mask_smooth=1e-3),
    Config("dice_ce low-lr", "dice_ce", recipe="low", baseline="dice_ce low-lr"),
    Config("closs low-lr ce/mask", "closs", 0.2, recipe="low", baseline="dice_ce low-lr"),
    Config("dice_ce sgd", "dice_ce", recipe="sgd", baseline="dice_ce sgd"),
    Config("closs sgd ce/mask", "closs", 0.2, recipe="sgd", baseline="dice_ce sgd"),
    Config("dice_ce 5%", "dice_ce", length=0.05, baseline="dice_ce 5%"),
    Config("closs 5% ce/mask", "closs", 0.2, length=0.05, baseline="dice_ce 5%"),
    Config("dice_ce 50%", "dice_ce", length=0.5, baseline="dice_ce 50%"),
    Config("closs 50% ce/mask", "closs", 0.2, length=0.5, baseline="dice_ce 50%"),
)


def make_data(setup: Setup, offset: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images (n, 1, S, S) float32 (z-scored), labels (n, 1, S, S) int64, and the label's
    centreline inside the faded stretches (n, S, S) bool, computed once for every evaluation."""
    from topobench.metrics import skeleton
    from topobench.synth_images import ImageModel, make_image_case

    model = ImageModel(
        fades=setup.fades, fade_length=setup.fade_length, fade_contrast=setup.fade_contrast,
        noise=setup.noise, blur=setup.blur, distractors=setup.distractors,
        distractor_contrast=setup.distractor_contrast,
    )
    images, labels, fades = [], [], []
    for i in range(n):
        case = make_image_case("vessels2d", seed=offset + i, shape=(setup.size,) * 2, model=model)
        img = case.image
        images.append((img - img.mean()) / (img.std() + 1e-6))
        labels.append(case.target)
        fades.append(skeleton(case.target) & case.fade_mask)
    return (
        np.stack(images)[:, None].astype(np.float32),
        np.stack(labels)[:, None].astype(np.int64),
        np.stack(fades),
    )


def _augment(x, y, rng):  # noqa: ANN001 - torch tensors (B, 1, S, S)
    import torch

    k = int(rng.integers(4))
    flip = bool(rng.integers(2))
    x, y = torch.rot90(x, k, (2, 3)), torch.rot90(y, k, (2, 3))
    if flip:
        x, y = torch.flip(x, (3,)), torch.flip(y, (3,))
    return x.contiguous(), y.contiguous()


def train_steps(net, loss_fn, data, *, steps, lr, recipe, weight_decay, batch, seed):  # noqa: ANN001
    """``steps`` optimiser steps on random batches; returns the mean step time (s)."""
    import torch

    images, labels = torch.from_numpy(data[0]), torch.from_numpy(data[1])
    if recipe == "sgd":
        opt = torch.optim.SGD(net.parameters(), lr=lr * 10, momentum=0.99, nesterov=True,
                              weight_decay=weight_decay)
    else:
        opt = torch.optim.AdamW(net.parameters(), lr=lr / 10 if recipe == "low" else lr,
                                weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.PolynomialLR(opt, total_iters=steps, power=0.9)
    rng = np.random.default_rng(seed)
    net.train()
    start = time.perf_counter()
    for _ in range(steps):
        idx = rng.choice(len(images), batch, replace=False)
        x, y = _augment(images[idx], labels[idx], rng)
        loss = loss_fn(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return (time.perf_counter() - start) / max(steps, 1)


def predict(net, images):  # noqa: ANN001
    import torch

    net.eval()
    with torch.no_grad():
        chunks = [torch.from_numpy(images[i : i + 16]) for i in range(0, len(images), 16)]
        out = torch.cat([net(x) for x in chunks])
    return (out[:, 1] > out[:, 0]).numpy()


def fade_recall(pred: np.ndarray, fade_skeleton: np.ndarray) -> float:
    """Share of the label's centreline inside the faded stretches (``fade_skeleton``) that
    ``pred`` covers (1 if there is none)."""
    return float((fade_skeleton & pred).sum() / fade_skeleton.sum()) if fade_skeleton.any() else 1.0


def evaluate(pred, labels, fades) -> list[dict]:  # noqa: ANN001
    from topobench.metrics import evaluate_case

    rows = []
    for i in range(len(pred)):
        t = labels[i, 0].astype(bool)
        row = evaluate_case(pred[i], t, protocol="default", workers=1)
        row = {k: row[k] for k in METRICS if k in row}
        row["fade_recall"] = fade_recall(pred[i], fades[i])
        row["case"] = i
        rows.append(row)
    return rows


def build_loss(cfg: Config):  # noqa: ANN201
    from topobench.losses import make_loss

    params = {}
    if cfg.gamma is not None:
        params["gamma"] = cfg.gamma
    if cfg.loss in ("closs", "closs_dice", "thin_closs"):
        params["ce_normalization"] = cfg.ce_normalization  # explicit: results name it
        if cfg.mask_smooth is not None:
            params["mask_smooth"] = cfg.mask_smooth
    return make_loss(cfg.loss, **params)


def run_seed(setup: Setup, configs: tuple[Config, ...], seed: int, out: Path) -> pd.DataFrame:
    """Pretrain one model and fine-tune it with every configuration; per-case rows."""
    import torch

    from topobench.losses import make_loss
    from topobench.postprocess import keep_supported
    from topobench.training.model import UNet, UNetConfig

    torch.set_num_threads(1)
    path = out / f"seed{seed}.csv"
    done = pd.read_csv(path) if path.exists() else pd.DataFrame()
    have = set(done["config"]) if len(done) else set()
    todo = [c for c in configs if c.name not in have]
    if not todo:
        return done
    train = make_data(setup, 10_000, setup.n_train)
    images, labels, fades = make_data(setup, 30_000, setup.n_eval)
    torch.manual_seed(seed)
    net = UNet(UNetConfig(ndim=2, depth=setup.depth, width=setup.width))
    ckpt = out / f"pretrained_seed{seed}.pt"
    timing = {}
    if ckpt.exists():
        state = torch.load(ckpt)
        net.load_state_dict(state["weights"])
        timing["pretrain_step_s"] = state["step_s"]
    else:
        step_s = train_steps(net, make_loss("dice_ce"), train, steps=setup.pretrain_steps,
                             lr=setup.lr, recipe="restart", weight_decay=setup.weight_decay,
                             batch=setup.batch, seed=seed)
        torch.save({"weights": net.state_dict(), "step_s": step_s}, ckpt)
        timing["pretrain_step_s"] = step_s
    pretrained = {k: v.clone() for k, v in net.state_dict().items()}
    pre_pred = predict(net, images)
    frames = [done] if len(done) else []
    if "pretrained" not in have:
        rows = evaluate(pre_pred, labels, fades)
        frames.append(pd.DataFrame(rows).assign(config="pretrained", post="-", seed=seed))
    for cfg in todo:
        if cfg.name == "pretrained":
            continue
        net.load_state_dict(pretrained)
        torch.manual_seed(seed)
        length = cfg.length if cfg.length is not None else setup.finetune_fraction
        steps = max(1, int(round(length * setup.pretrain_steps)))
        step_s = train_steps(net, build_loss(cfg), train, steps=steps, lr=setup.lr,
                             recipe=cfg.recipe, weight_decay=setup.weight_decay,
                             batch=setup.batch, seed=seed + 1000)
        raw = predict(net, images)
        post = keep_supported(raw, pre_pred)
        for kind, pred in (("without", raw), ("with", post)):
            frame = pd.DataFrame(evaluate(pred, labels, fades))
            frames.append(frame.assign(config=cfg.name, post=kind, seed=seed, step_s=step_s))
        result = pd.concat(frames, ignore_index=True)
        tmp = path.with_suffix(".tmp")
        result.to_csv(tmp, index=False)
        os.replace(tmp, path)
    return pd.read_csv(path)


def compare(frame: pd.DataFrame, configs: tuple[Config, ...], post: str) -> pd.DataFrame:
    """Paired differences of every configuration against its Dice & CE baseline."""
    from topobench.results.stats import paired_comparison

    sub = frame[frame["post"] == post]
    per_case = sub.groupby(["config", "case"])[list(METRICS)].mean()
    per_seed = sub.groupby(["config", "seed"])[list(METRICS)].mean()
    rows = []
    for cfg in configs:
        if cfg.name not in per_case.index.get_level_values(0):
            continue
        row = {"config": cfg.name, "baseline": cfg.baseline}
        for m in METRICS:
            a = per_case.loc[cfg.name][m]
            row[m] = a.mean()
            if cfg.name == cfg.baseline or cfg.baseline not in per_case.index.get_level_values(0):
                continue
            b = per_case.loc[cfg.baseline][m].reindex(a.index)
            c = paired_comparison(a.to_numpy(), b.to_numpy())
            sa, sb = per_seed.loc[cfg.name][m], per_seed.loc[cfg.baseline][m].reindex(
                per_seed.loc[cfg.name].index)
            better = (sa < sb) if m in LOWER_IS_BETTER else (sa > sb)
            row[f"{m}_diff"] = c.mean_difference
            row[f"{m}_lo"], row[f"{m}_hi"] = c.ci_low, c.ci_high
            row[f"{m}_p"] = c.p_value
            row[f"{m}_seeds_better"] = f"{int(better.sum())}/{len(better)}"
        rows.append(row)
    return pd.DataFrame(rows)


def report(table: pd.DataFrame, post: str) -> str:
    """A Markdown table: mean, and for non-baselines the paired difference and Wilcoxon p."""
    head = "| config | " + " | ".join(METRICS) + " |"
    lines = [f"post-processing: {post}", head, "|" + "---|" * (len(METRICS) + 1)]
    for _, r in table.iterrows():
        cells = []
        for m in METRICS:
            scale = 100 if m in ("dice", "cldice", "ags", "fade_recall") else 1
            cell = f"{r[m] * scale:.2f}" if scale == 100 else f"{r[m]:.3f}"
            if f"{m}_diff" in r and pd.notna(r.get(f"{m}_diff")):
                cell += (f" ({r[f'{m}_diff'] * scale:+.2f}, p={r[f'{m}_p']:.3f}, "
                         f"{r[f'{m}_seeds_better']})")
            cells.append(cell)
        lines.append(f"| {r['config']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(
    table: pd.DataFrame, path: Path, metrics: tuple[str, ...] = ("e0_gt", "fade_recall", "e")
) -> None:
    """Paired differences against the matching Dice & CE (mean and 95% interval) per metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = table[table["config"] != table["baseline"]].reset_index(drop=True)
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 0.35 * len(rows) + 1.4),
                             sharey=True)
    y = np.arange(len(rows))[::-1]
    for ax, m in zip(axes, metrics):
        scale = 100 if m in ("dice", "cldice", "ags", "fade_recall") else 1
        d = rows[f"{m}_diff"] * scale
        lo, hi = rows[f"{m}_lo"] * scale, rows[f"{m}_hi"] * scale
        better = (d < 0) if m in LOWER_IS_BETTER else (d > 0)
        colours = np.where(rows[f"{m}_p"] < 0.05, np.where(better, "tab:green", "tab:red"), "grey")
        ax.errorbar(d, y, xerr=[d - lo, hi - d], fmt="none", ecolor="black", lw=1)
        ax.scatter(d, y, c=colours, zorder=3)
        ax.axvline(0, color="black", lw=0.8)
        arrow = "lower is better" if m in LOWER_IS_BETTER else "higher is better"
        unit = " (points)" if scale == 100 else ""
        ax.set_title(f"{m}{unit}: vs Dice & CE\n({arrow})", fontsize=9)
    axes[0].set_yticks(y, rows["config"])
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("bench-gaps"))
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--workers", type=int, default=2, help="processes (one torch thread each)")
    p.add_argument("--ablation", action="store_true", help="also run the ablation grid")
    p.add_argument("--smoke", action="store_true", help="tiny sizes: checks the pipeline only")
    p.add_argument("--figure", type=Path, help="also draw the paired differences (PNG)")
    args = p.parse_args(argv)
    setup = Setup()
    if args.smoke:
        setup = replace(setup, n_train=8, n_eval=4, size=64, pretrain_steps=6, batch=2, depth=3)
        args.seeds = min(args.seeds, 2)
    configs = MAIN + (ABLATION if args.ablation else ())
    args.out.mkdir(parents=True, exist_ok=True)
    key_file = args.out / "setup.json"
    if key_file.exists() and key_file.read_text() != setup.key():
        print(f"{args.out} holds results of another setup; choose another --out", file=sys.stderr)
        return 2
    key_file.write_text(setup.key())
    start = time.perf_counter()
    seeds = list(range(args.seeds))
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as pool:
            frames = list(pool.map(run_seed, [setup] * len(seeds), [configs] * len(seeds), seeds,
                                   [args.out] * len(seeds)))
    else:
        frames = [run_seed(setup, configs, s, args.out) for s in seeds]
    wall = time.perf_counter() - start
    frame = pd.concat(frames, ignore_index=True)
    step = frame.dropna(subset=["step_s"]).groupby("config")["step_s"].mean()
    pre = [torch_step for torch_step in _pretrain_steps(args.out, seeds)]
    timing = {
        "wall_s": wall,
        "pretrain_step_s": float(np.mean(pre)) if pre else None,
        "finetune_step_s": {k: float(v) for k, v in step.items()},
        "finetune_step_ratio_vs_dice_ce": {
            k: float(v / step["dice_ce"]) for k, v in step.items() if "dice_ce" in step
        },
    }
    (args.out / "timing.json").write_text(json.dumps(timing, indent=2))
    out_lines = [f"setup: {setup.key()}", f"seeds: {seeds}, wall {wall:.0f} s"]
    for post in ("with", "without"):
        table = compare(frame, configs, post)
        table.to_csv(args.out / f"comparison_{post}.csv", index=False)
        out_lines.append(report(table, post))
        if args.figure is not None and post == "with":
            plot(table, args.figure)
    out_lines.append("fine-tuning step (s): " + ", ".join(f"{k} {v:.3f}" for k, v in step.items()))
    if pre:
        out_lines.append(f"pretraining step (s): {np.mean(pre):.3f}")
    text = "\n\n".join(out_lines)
    (args.out / "report.md").write_text(text + "\n")
    print(text)
    return 0


def _pretrain_steps(out: Path, seeds: list[int]) -> list[float]:
    import torch

    steps = []
    for s in seeds:
        ckpt = out / f"pretrained_seed{s}.pt"
        if ckpt.exists():
            steps.append(float(torch.load(ckpt)["step_s"]))
    return steps


if __name__ == "__main__":
    raise SystemExit(main())

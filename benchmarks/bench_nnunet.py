"""Cost of the topology losses inside nnU-Net's deep supervision, against nnU-Net's own loss.

On a 2D batch (2, 2, 512, 512) of logits of a degraded synthetic prediction (thin vessels with
gaps, bridges, blobs), with nnU-Net's six-scale pyramid (512 ... 16; targets downsampled by
nearest neighbour, as nnU-Net's data loader does; logits average-pooled), forward + backward of:

- nnU-Net's default loss (``DC_and_CE_loss`` in its ``DeepSupervisionWrapper``): the baseline;
- topobench's ``DeepSupervisionTopologyLoss`` with the topology term at full resolution only
  (``topology_scales="full"``, what the trainers use) and at every scale (``"all"``).

It also prints, per scale, the Betti numbers of the first target and the share of pixels in
the critical mask, to show what downsampling does to thin structures.

Median process CPU time over ``--repeats`` runs, one torch thread; ratios against the baseline
in the same run. Needs nnU-Net (``pip install "topobench[nnunet]"``). Usage::

    python benchmarks/bench_nnunet.py --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from topobench.critical import critical_mask
from topobench.losses import make_loss
from topobench.metrics import betti_numbers
from topobench.nnunet.deep_supervision import DeepSupervisionTopologyLoss, deep_supervision_weights
from topobench.synth import make_case

GAMMA = {"closs": 0.2, "cldice": 0.5, "compound_cldice": 0.3}


def pyramid(n_scales: int = 6, size: int = 512) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Logits (B, 2, ...) and labels (B, 1, ...) per scale, full resolution first."""
    cases = [make_case("vessels2d", seed=seed, shape=(size, size)) for seed in (0, 1)]
    rng = np.random.default_rng(0)
    target = torch.from_numpy(np.stack([c.target for c in cases])[:, None].astype(np.float32))
    pred = np.stack([c.pred for c in cases])[:, None]
    z = 4.0 * (2.0 * pred - 1.0) + rng.normal(0.0, 1.0, pred.shape)
    full = torch.from_numpy(np.concatenate([np.zeros_like(z), z], axis=1).astype(np.float32))
    outputs = [full if i == 0 else F.avg_pool2d(full, 2**i) for i in range(n_scales)]
    targets = [target[:, :, :: 2**i, :: 2**i] for i in range(n_scales)]
    return outputs, targets


def median_times(funcs: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median process CPU time (s) of each function, interleaved, after one warm-up call each."""
    for f in funcs.values():
        f()
    times: dict[str, list[float]] = {name: [] for name in funcs}
    for _ in range(repeats):
        for name, f in funcs.items():
            start = time.process_time()
            f()
            times[name].append(time.process_time() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from nnunetv2.training.loss.compound_losses import DC_and_CE_loss
    from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
    from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss

    outputs, targets = pyramid()
    weights = deep_supervision_weights(len(outputs))
    nnunet_loss = DeepSupervisionWrapper(
        DC_and_CE_loss({"batch_dice": True, "smooth": 1e-5, "do_bg": False, "ddp": False}, {},
                       weight_ce=1, weight_dice=1, dice_class=MemoryEfficientSoftDiceLoss),
        weights,
    )
    losses: dict[str, torch.nn.Module] = {"nnU-Net Dice+CE": nnunet_loss}
    for name, gamma in GAMMA.items():
        loss = make_loss(name, gamma=gamma)
        pixel = make_loss("dice_ce", alpha=float(getattr(loss, "alpha", 0.0)))
        for scales in ("full", "all"):
            losses[f"{name} ({scales})"] = DeepSupervisionTopologyLoss(
                loss, pixel, weights, topology_scales=scales
            )

    def step(module: torch.nn.Module) -> Callable[[], None]:
        def run() -> None:
            leaves = [o.detach().requires_grad_(True) for o in outputs]
            module(leaves, targets).backward()
        return run

    print("target topology per scale (why the critical mask is taken at full resolution):")
    print(f"{'scale':>6s} {'shape':>10s} {'beta0':>6s} {'beta1':>6s} {'critical px %':>14s}")
    for i, (logits, target) in enumerate(zip(outputs, targets)):
        labels = target[0, 0].numpy().astype(bool)
        b0, b1 = betti_numbers(labels)
        binary = logits[:, 1:2] > logits[:, 0:1]
        share = 100.0 * float(critical_mask(binary, target.bool()).float().mean())
        print(f"{'1/' + str(2**i):>6s} {str(tuple(labels.shape)):>10s} {b0:6d} {b1:6d} "
              f"{share:14.2f}")

    times = median_times({name: step(m) for name, m in losses.items()}, args.repeats)
    base = times["nnU-Net Dice+CE"]
    print(f"batch (2, 2, 512, 512), {len(outputs)} scales, weights "
          + ", ".join(f"{w:.3f}" for w in weights))
    print(f"{'loss':28s} {'CPU s':>8s} {'x nnU-Net':>10s}")
    for name, t in times.items():
        print(f"{name:28s} {t:8.3f} {t / base:10.2f}")


if __name__ == "__main__":
    main()

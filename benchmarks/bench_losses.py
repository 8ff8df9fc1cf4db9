"""Speed of the topology-aware losses against Dice & CE, measured in the same process.

For a 2D batch (2, 2, 512, 512) and a 3D batch (2, 2, 64, 128, 128), on the CPU:

1. forward + backward of each loss on fixed logits that look like a fine-tuning prediction
   (synthetic thin structures from ``topobench.synth`` with gaps, bridges, blobs and noise),
   and the critical mask alone;
2. a full training step (forward, loss, backward, Adam step) of a small U-Net defined below,
   whose output is added to those fixed logits so that the binarised prediction, and with it the
   critical mask, is realistic rather than the blank output of an untrained network;
3. MONAI's ``SoftclDiceLoss`` (50 iterations) on the same input, when MONAI is installed.

Every figure is the shortest process CPU time of ``--repeats`` runs (at least 11 for anything
under 0.5 s), the losses interleaved, on one torch thread by default; ratios are against
Dice & CE in the same run.

``--paths`` compares, on the same CPU batches, the torch implementation of the per-step work
(critical mask, clDice target skeleton, ``keep_supported``; ``topobench.losses.device``) with
the numpy reference it replaces, each loss forward + backward with either backend, and prints
the ratio torch / numpy.

``--device cuda`` (or any torch device) is the accelerator mode: forward + backward of each
loss (torch backend, nothing leaves the device) and one nnU-Net-style training step
(``dynamic_network_architectures``' PlainConvUNet with nnU-Net's layout for the patch, deep
supervision, SGD, autocast on CUDA) at the paper's patch sizes, 2D 2 x 1280 x 1024 and 3D
2 x 256 x 256 x 32 and 2 x 160 x 160 x 90, against Dice & CE in the same run. Times are wall
times with ``torch.cuda.synchronize``; ``--out DIR`` writes them as JSON. ``--scale k`` divides
the patch sizes by ``k`` (to try the mode on a CPU). Usage::

    python benchmarks/bench_losses.py               # 2D and 3D
    python benchmarks/bench_losses.py --dims 2d --repeats 5
    python benchmarks/bench_losses.py --paths --dims 2d 3d --repeats 3
    python benchmarks/bench_losses.py --device cuda --out bench-out   # on a GPU
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from topobench.critical import critical_mask, use_backend
from topobench.losses import LOSS_DISPLAY_NAMES, LOSS_NAMES, DiceCELoss, make_loss
from topobench.losses.functional import _target_skeleton
from topobench.postprocess import keep_supported
from topobench.synth import make_case

GAMMA = {"dice_ce": None, "cldice": 0.5, "compound_cldice": 0.3, "closs": 0.2,
         "closs_dice": 0.2, "thin_closs": 0.2}
CHEAP_S, CHEAP_REPEATS = 0.5, 11  # functions under 0.5 s get at least 11 runs
SHAPES = {"2d": ("vessels2d", (512, 512), 16), "3d": ("tubes3d", (64, 128, 128), 8)}


class TinyUNet(nn.Module):
    """Two-level U-Net: (conv-BN-ReLU) x2, max-pool, (conv-BN-ReLU) x2, upsample, concat, 1x1."""

    def __init__(self, ndim: int, base: int, in_channels: int = 1, out_channels: int = 2):
        super().__init__()
        conv = nn.Conv2d if ndim == 2 else nn.Conv3d
        norm = nn.BatchNorm2d if ndim == 2 else nn.BatchNorm3d
        pool = nn.MaxPool2d if ndim == 2 else nn.MaxPool3d

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(
                conv(cin, cout, 3, padding=1), norm(cout), nn.ReLU(inplace=True),
                conv(cout, cout, 3, padding=1), norm(cout), nn.ReLU(inplace=True),
            )

        self.down = block(in_channels, base)
        self.pool = pool(2)
        self.bottom = block(base, 2 * base)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.fuse = block(3 * base, base)
        self.head = conv(base, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.down(x)
        deep = self.up(self.bottom(self.pool(skip)))
        return self.head(self.fuse(torch.cat([skip, deep], dim=1)))


def make_batch(dim: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(image (B, 1, ...), logits (B, 2, ...) of a degraded prediction, labels (B, 1, ...))."""
    kind, shape, _ = SHAPES[dim]
    cases = [make_case(kind, seed=seed, shape=shape) for seed in (0, 1)]
    rng = np.random.default_rng(0)
    target = np.stack([c.target for c in cases])[:, None]
    pred = np.stack([c.pred for c in cases])[:, None]
    z = 4.0 * (2.0 * pred - 1.0) + rng.normal(0.0, 1.0, pred.shape)
    logits = torch.from_numpy(np.concatenate([np.zeros_like(z), z], axis=1).astype(np.float32))
    image = torch.from_numpy((target + rng.normal(0.0, 0.3, target.shape)).astype(np.float32))
    return image, logits, torch.from_numpy(target.astype(np.int64))


def best_times(funcs: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Shortest CPU time (s) of each function, run round-robin after one warm-up call.

    Process CPU time rather than wall time, and the minimum rather than the mean (as ``timeit``
    advises): on a shared machine other processes only ever add time, through waiting for a core
    or for memory, so the fastest run is the best estimate of the cost itself.
    """
    next(iter(funcs.values()))()  # warms up threads and the allocator
    times: dict[str, list[float]] = {name: [] for name in funcs}

    def one_round(names: list[str]) -> None:
        for name in names:
            start = time.process_time()
            funcs[name]()
            times[name].append(time.process_time() - start)

    for _ in range(repeats):
        one_round(list(funcs))
    # cheap functions get more rounds (still interleaved): their timings are the noisiest
    cheap = [name for name in funcs if min(times[name]) < CHEAP_S]
    for _ in range(max(CHEAP_REPEATS - repeats, 0)):
        one_round(cheap)
    return {name: min(t) for name, t in times.items()}


def loss_only(losses: dict[str, nn.Module], logits: torch.Tensor, target: torch.Tensor):
    def run(loss: nn.Module) -> Callable[[], None]:
        def f() -> None:
            x = logits.clone().requires_grad_(True)
            loss(x, target).backward()
        return f
    return {name: run(loss) for name, loss in losses.items()}


def train_steps(
    losses: dict[str, nn.Module], image: torch.Tensor, logits: torch.Tensor,
    target: torch.Tensor, base: int,
):
    torch.manual_seed(0)
    model = TinyUNet(image.ndim - 2, base)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def run(loss: nn.Module) -> Callable[[], None]:
        def f() -> None:
            opt.zero_grad(set_to_none=True)
            loss(model(image) + logits, target).backward()
            opt.step()
        return f
    return {name: run(loss) for name, loss in losses.items()}


def monai_cldice(logits: torch.Tensor, target: torch.Tensor) -> Callable[[], None] | None:
    try:
        from monai.losses import SoftclDiceLoss
    except ImportError:
        return None
    try:  # MONAI >= 1.5: forward(input, target) with explicit activation options
        loss = SoftclDiceLoss(iter_=50, softmax=True, include_background=False)
        onehot = torch.cat([1 - target, target], dim=1).float()

        def f() -> None:
            x = logits.clone().requires_grad_(True)
            loss(x, onehot).backward()
    except TypeError:  # older MONAI: forward(y_true, y_pred) on probabilities
        loss = SoftclDiceLoss(iter_=50)
        onehot = torch.cat([1 - target, target], dim=1).float()

        def f() -> None:
            x = logits.clone().requires_grad_(True)
            loss(onehot, torch.softmax(x, dim=1)).backward()
    return f


def report(
    title: str, times: dict[str, float], baseline: str = "dice_ce", unit: str = "CPU [s]"
) -> None:
    print(f"\n{title}")
    print(f"  {'loss':<22}{unit:>9}{'x Dice & CE':>13}   (best of the runs)")
    for name, t in times.items():
        label = LOSS_DISPLAY_NAMES.get(name, name)
        print(f"  {label:<22}{t:>9.3f}{t / times[baseline]:>13.2f}")


def with_backend(backend: str, f: Callable[[], object]) -> Callable[[], object]:
    def g() -> object:
        with use_backend(backend):
            return f()
    return g


def compare_paths(losses: dict[str, nn.Module], dim: str, repeats: int) -> dict[str, float]:
    """CPU: torch path / numpy path of the critical mask, target skeleton, keep_supported and
    of each loss's forward + backward, on the batch of ``dim``. Returns the ratios."""
    _, logits, target = make_batch(dim)
    xb = logits[:, 1:2] > logits[:, 0:1]
    y = target.bool()
    noise = torch.rand(xb.shape, generator=torch.Generator().manual_seed(0)) > 0.5
    work = {
        "critical mask (fine-tuning)": lambda: critical_mask(xb, y),
        "critical mask (50 % noise)": lambda: critical_mask(noise, y),
        "thin critical mask": lambda: critical_mask(xb, y, mask="thin"),
        "target skeleton": lambda: _target_skeleton(y, 50, torch.float32),
        "keep_supported": lambda: keep_supported(xb, y),
    }
    for name, f in loss_only(losses, logits, target).items():
        if name != "dice_ce":
            work[LOSS_DISPLAY_NAMES[name] + " fwd+bwd"] = f
    funcs = {}
    for name, f in work.items():
        funcs[(name, "numpy")] = with_backend("numpy", f)
        funcs[(name, "torch")] = with_backend("torch", f)
    times = best_times(funcs, repeats)  # type: ignore[arg-type]
    print(f"\ntorch path vs numpy path on the CPU ({dim.upper()} batch {tuple(logits.shape)})")
    print(f"  {'work':<30}{'numpy [s]':>10}{'torch [s]':>10}{'torch/numpy':>13}")
    ratios = {}
    for name in work:
        t_np, t_torch = times[(name, "numpy")], times[(name, "torch")]
        ratios[name] = t_torch / t_np
        print(f"  {name:<30}{t_np:>10.4f}{t_torch:>10.4f}{ratios[name]:>13.2f}")
    return ratios


# --- accelerator mode ----------------------------------------------------------------------------

PAPER_PATCHES = {"2d": [(1280, 1024)], "3d": [(32, 256, 256), (90, 160, 160)]}


def nnunet_like(patch: tuple[int, ...]) -> nn.Module:
    """A PlainConvUNet laid out as nnU-Net plans one: halve an axis while it stays >= 4, at most
    7 (2D) / 6 (3D) stages, 32 features doubling to 512 (2D) / 320 (3D), deep supervision."""
    from dynamic_network_architectures.architectures.unet import PlainConvUNet

    nd = len(patch)
    max_stages, max_features = (7, 512) if nd == 2 else (6, 320)
    strides, size = [[1] * nd], list(patch)
    while len(strides) < max_stages:
        step = [2 if s // 2 >= 4 else 1 for s in size]
        if not any(v == 2 for v in step):
            break
        strides.append(step)
        size = [s // v for s, v in zip(size, step)]
    n = len(strides)
    conv = nn.Conv2d if nd == 2 else nn.Conv3d
    norm = nn.InstanceNorm2d if nd == 2 else nn.InstanceNorm3d
    return PlainConvUNet(
        1, n, [min(32 * 2**i, max_features) for i in range(n)], conv, 3, strides, 2, 2, 2,
        conv_bias=True, norm_op=norm, norm_op_kwargs={"eps": 1e-5, "affine": True},
        nonlin=nn.LeakyReLU, nonlin_kwargs={"inplace": True}, deep_supervision=True,
    )


def device_batch(patch: tuple[int, ...], device: torch.device):
    """(image, logits of a degraded prediction, labels) of synthetic thin structures."""
    kind = "vessels2d" if len(patch) == 2 else "tubes3d"
    cases = [make_case(kind, seed=seed, shape=patch) for seed in (0, 1)]
    rng = np.random.default_rng(0)
    target = np.stack([c.target for c in cases])[:, None]
    pred = np.stack([c.pred for c in cases])[:, None]
    z = 4.0 * (2.0 * pred - 1.0) + rng.normal(0.0, 1.0, pred.shape)
    logits = np.concatenate([np.zeros_like(z), z], axis=1).astype(np.float32)
    image = (target + rng.normal(0.0, 0.3, target.shape)).astype(np.float32)
    return (torch.from_numpy(image).to(device), torch.from_numpy(logits).to(device),
            torch.from_numpy(target.astype(np.int64)).to(device))


def wall_times(funcs: dict[str, Callable[[], object]], repeats: int, device: torch.device):
    """Shortest wall time (s) of each function (synchronised), round-robin after a warm-up."""
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for f in funcs.values():
        f()
    sync()
    times: dict[str, list[float]] = {name: [] for name in funcs}
    for _ in range(repeats):
        for name, f in funcs.items():
            sync()
            start = time.perf_counter()
            f()
            sync()
            times[name].append(time.perf_counter() - start)
    return {name: min(t) for name, t in times.items()}


def device_mode(args: argparse.Namespace) -> None:
    from topobench.nnunet.deep_supervision import (
        DeepSupervisionTopologyLoss,
        deep_supervision_weights,
    )

    device = torch.device(args.device)
    amp = device.type == "cuda"
    print(f"torch {torch.__version__}, device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if amp else ""))
    losses = {name: make_loss(name, gamma=GAMMA[name]) for name in LOSS_NAMES}
    results = []
    for dim in args.dims:
        for patch in PAPER_PATCHES[dim]:
            patch = tuple(max(16, p // args.scale) for p in patch)
            image, logits, target = device_batch(patch, device)
            print(f"\n=== {dim.upper()} batch (2, 2, {', '.join(map(str, patch))}) on {device} ===")
            xb = logits[:, 1:2] > logits[:, 0:1]
            with use_backend("torch"):
                funcs = loss_only(losses, logits, target)
                funcs["critical mask"] = lambda xb=xb, target=target: critical_mask(xb, target)
                loss_t = wall_times(funcs, args.repeats, device)
            report("forward + backward of the loss", loss_t, unit="wall [s]")
            torch.manual_seed(0)
            model = nnunet_like(patch).to(device)
            opt = torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.99, nesterov=True)
            scaler = torch.amp.GradScaler(device.type, enabled=amp)
            with torch.no_grad():
                n_out = len(model(image[:1]))
            weights = deep_supervision_weights(n_out)

            def step_for(name: str, model=model, opt=opt, scaler=scaler, image=image,
                         target=target, logits=logits, weights=weights):
                loss = DeepSupervisionTopologyLoss(losses[name], DiceCELoss(), weights)

                def f() -> None:
                    opt.zero_grad(set_to_none=True)
                    with torch.autocast(device.type, enabled=amp):
                        outs = model(image)
                    outs = [outs[0] + logits] + list(outs[1:])  # a realistic full-size mask
                    targets = [target] + [
                        nn.functional.interpolate(target.float(), size=o.shape[2:],
                                                  mode="nearest").long() for o in outs[1:]
                    ]
                    scaler.scale(loss(outs, targets)).backward()
                    scaler.step(opt)
                    scaler.update()
                return f

            with use_backend("torch"):
                step_t = wall_times({name: step_for(name) for name in LOSS_NAMES},
                                    args.repeats, device)
            report(f"nnU-Net-style training step ({n_out} outputs, deep supervision)", step_t,
                   unit="wall [s]")
            results.append({"dim": dim, "patch": patch, "device": str(device),
                            "loss_s": loss_t, "step_s": step_t})
            del model, opt
    if args.out:
        from pathlib import Path

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "bench_losses_device.json").write_text(json.dumps(results, indent=1))
        print(f"\nwritten: {out / 'bench_losses_device.json'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dims", nargs="+", choices=["2d", "3d"], default=["2d", "3d"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-steps", action="store_true", help="losses only, no U-Net step")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--paths", action="store_true",
                        help="CPU: torch path vs numpy path of the per-step work")
    parser.add_argument("--device", help="accelerator mode on this torch device (e.g. cuda)")
    parser.add_argument("--scale", type=int, default=1,
                        help="accelerator mode: divide the paper's patch sizes by this")
    parser.add_argument("--out", help="accelerator mode: folder for the JSON figures")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.device:
        device_mode(args)
        return
    if args.paths:
        print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU")
        losses = {name: make_loss(name, gamma=GAMMA[name]) for name in LOSS_NAMES}
        for dim in args.dims:
            compare_paths(losses, dim, args.repeats)
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU")
    losses = {name: make_loss(name, gamma=GAMMA[name]) for name in LOSS_NAMES}
    for dim in args.dims:
        image, logits, target = make_batch(dim)
        base = SHAPES[dim][2]
        print(f"\n=== {dim.upper()} batch {tuple(logits.shape)} ===")
        xb = logits[:, 1:2] > logits[:, 0:1]
        noise = torch.rand(xb.shape, generator=torch.Generator().manual_seed(0)) > 0.5
        mask_times = best_times(
            {
                "fine-tuning": lambda xb=xb, target=target: critical_mask(xb, target),
                "noise": lambda noise=noise, target=target: critical_mask(noise, target),
            },
            args.repeats,
        )
        funcs = loss_only(losses, logits, target)
        extra = monai_cldice(logits, target)
        if extra is not None:
            funcs["MONAI SoftclDiceLoss"] = extra
        times = best_times(funcs, args.repeats)
        report("forward + backward of the loss", times)
        print(
            f"  critical mask alone (batch of 2): {mask_times['fine-tuning']:.3f} s; on a "
            f"prediction of 50 % random noise: {mask_times['noise']:.3f} s"
        )
        if extra is None:
            print("  MONAI is not installed: SoftclDiceLoss skipped")
        if args.skip_steps:
            continue
        steps = best_times(train_steps(losses, image, logits, target, base), args.repeats)
        report(f"training step of a small U-Net (base {base} channels)", steps)
        for name in ("cldice", "compound_cldice", "closs"):
            share = times[name] / steps[name]
            print(f"  {LOSS_DISPLAY_NAMES[name]}: loss forward+backward is {share:.0%} of the step")
        ratio = steps["closs"] / steps["compound_cldice"]
        print(f"  CLoss step / Compound clDice step: {ratio:.2f}")


if __name__ == "__main__":
    main()

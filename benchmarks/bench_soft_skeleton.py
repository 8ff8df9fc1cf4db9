"""Memory and time of the 3D soft skeleton's forward + backward (clDice, compound clDice).

Every measurement runs in a child process capped by ``resource.setrlimit(RLIMIT_AS)`` (``--cap``
GiB, default 7) and reports its peak RSS (``ru_maxrss``, torch and the logits included), its
wall time and its CPU time, on one torch thread:

1. ``stored`` (the plain loop, every iteration's tensors kept for the backward pass: the
   implementation before activation checkpointing) against ``checkpointed``
   (:func:`topobench.losses.soft_skeleton`) at small sizes, where the old one fits: loss
   values and gradients compared, memory and time as ratios (``stored`` is
   ``references.plain_soft_skeleton``, the reference of the tests too);
2. the old one's peak extrapolated linearly in the voxel count from the two small sizes (it is
   never run at the full size: about 19.5 GiB);
3. ``checkpointed`` at logits (2, 2, 32, 256, 256) and nnU-Net's CLD patch (2, 2, 90, 160, 160).

Usage::

    python benchmarks/bench_soft_skeleton.py            # all (a few minutes on one core)
    python benchmarks/bench_soft_skeleton.py --quick    # the small sizes only
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

_CHILD = r"""
import json, resource, sys, time
cap, impl, loss_name, shape, out_grad, bench_dir = sys.argv[1:7]
resource.setrlimit(resource.RLIMIT_AS, (int(float(cap) * 2**30),) * 2)
import numpy as np
import torch
import topobench.losses.functional as functional
from topobench.losses import make_loss

sys.path.insert(0, bench_dir)
from references import plain_soft_skeleton  # the plain loop: every tensor kept for backward

torch.set_num_threads(1)


if impl == "stored":
    functional.soft_skeleton = plain_soft_skeleton
shape = tuple(int(s) for s in shape.split("x"))
gen = torch.Generator().manual_seed(0)
target = torch.zeros((shape[0], 1) + shape[2:], dtype=torch.long)
# thin tubes along the last axis every 8 voxels, so both skeletons are non-trivial
target[..., 2::8, 2::8, :] = 1
target[..., 3::8, 2::8, :] = 1
logits = (torch.randn(shape, generator=gen) * 2.0).requires_grad_(True)
gamma = {"cldice": 0.5, "compound_cldice": 0.3}[loss_name]
loss_fn = make_loss(loss_name, gamma=gamma)
t0, c0 = time.perf_counter(), time.process_time()
ru0 = resource.getrusage(resource.RUSAGE_SELF)
loss = loss_fn(logits, target)
loss.backward()
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
ru = resource.getrusage(resource.RUSAGE_SELF)
if out_grad != "-":
    np.save(out_grad, logits.grad.numpy())
print(json.dumps({"loss": float(loss), "seconds": wall, "cpu_s": cpu,
                  "sys_s": ru.ru_stime - ru0.ru_stime, "peak_gib": ru.ru_maxrss / 2**20}))
"""


def run(cap: float, impl: str, loss: str, shape: tuple[int, ...], grad_path: str = "-") -> dict:
    """One forward + backward in a capped child process; its JSON report."""
    cmd = [sys.executable, "-c", _CHILD, str(cap), impl, loss, "x".join(map(str, shape)),
           grad_path, str(Path(__file__).resolve().parent)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        tail = out.stderr.strip().splitlines()[-1:] or ["(no message)"]
        return {"error": f"exit {out.returncode}: {tail[0]}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def voxels(shape: tuple[int, ...]) -> int:
    n = shape[0]
    for s in shape[2:]:
        n *= s
    return n


def fmt(r: dict) -> str:
    if "error" in r:
        return r["error"]
    return (f"{r['peak_gib']:6.2f} GiB peak RSS, {r['seconds']:6.1f} s wall "
            f"({r['cpu_s']:.1f} s CPU, {r['sys_s']:.1f} s system), loss {r['loss']:.6f}")


def main() -> None:
    import tempfile

    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only")
    parser.add_argument("--cap", type=float, default=7.0, help="address-space cap, GiB")
    parser.add_argument("--losses", nargs="+", default=["cldice", "compound_cldice"])
    args = parser.parse_args()
    small = [(1, 2, 16, 128, 128), (2, 2, 16, 128, 128)]
    full = [(2, 2, 32, 256, 256), (2, 2, 90, 160, 160)]
    for loss in args.losses:
        print(f"== {loss}: forward + backward, 50 iterations, 1 thread ==")
        fits = {}
        with tempfile.TemporaryDirectory() as tmp:
            for shape in small:
                name = "x".join(map(str, shape))
                ga, gb = str(Path(tmp) / "a.npy"), str(Path(tmp) / "b.npy")
                old = run(args.cap, "stored", loss, shape, ga)
                new = run(args.cap, "checkpointed", loss, shape, gb)
                print(f"{name:>16} stored       {fmt(old)}")
                print(f"{name:>16} checkpointed {fmt(new)}")
                if "error" in old or "error" in new:
                    continue
                a, b = np.load(ga), np.load(gb)
                scale = float(np.abs(a).max())
                print(f"{'':>16} loss |diff| {abs(old['loss'] - new['loss']):.2e}, gradient max "
                      f"|diff| {float(np.abs(a - b).max()):.2e} (max |grad| {scale:.2e}); "
                      f"memory ratio stored/checkpointed {old['peak_gib'] / new['peak_gib']:.2f}x"
                      f", CPU time ratio {old['cpu_s'] / new['cpu_s']:.2f}x")
                fits[shape] = (old["peak_gib"], new["peak_gib"])
        if len(fits) == 2:
            (s1, (o1, n1)), (s2, (o2, n2)) = fits.items()
            v1, v2 = voxels(s1), voxels(s2)
            for shape in full:
                v = voxels(shape)
                old_est = o1 + (o2 - o1) * (v - v1) / (v2 - v1)
                new_est = n1 + (n2 - n1) * (v - v1) / (v2 - v1)
                print(f"{'x'.join(map(str, shape)):>16} extrapolated: stored {old_est:.1f} GiB, "
                      f"checkpointed {new_est:.1f} GiB")
        if args.quick:
            continue
        for shape in full:
            r = run(args.cap, "checkpointed", loss, shape)
            print(f"{'x'.join(map(str, shape)):>16} checkpointed {fmt(r)}")


if __name__ == "__main__":
    main()

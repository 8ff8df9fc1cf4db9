"""Every ```python and ```bash block of README.md and docs/*.md runs as written.

Blocks are discovered when the tests are collected, so a block added to any page is run without
touching this file. A block that uses names or files it does not make itself (``preds/``,
``logits``, ``runs/``) gets them from :data:`SETUPS`: files made in the temporary directory the
block runs in, and a few Python lines run before it. A setup is matched to its block by the
file and a piece of the block's text (not by position, so that blocks added above it do not
shift it). Blocks that cannot run here (a GPU, an nnU-Net installation, network access, the
whole test suite) are fenced as ```console or ```text in the docs and are not collected; blocks
that train networks run only with ``-m slow``.

Python blocks run in a fresh interpreter (``python block.py``; worker processes re-import it),
bash blocks with ``bash -e`` and the interpreter's ``bin/`` (the ``topobench`` command) first on
``PATH``; both in a temporary directory.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUN_LANGUAGES = ("python", "bash")
FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[^\s`]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```",
                   re.M | re.S)
TIMEOUT = 600  # seconds a block may run; slow (training) blocks: SLOW_TIMEOUT
SLOW_TIMEOUT = 3600


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: Path
    index: int  # among the page's fenced blocks, any language
    line: int
    lang: str
    code: str

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT).as_posix()}#{self.index}:L{self.line}"


def find_blocks(page: Path) -> list[Block]:
    """Every fenced block of ``page`` (``` fences, optionally indented)."""
    text = page.read_text(encoding="utf-8")
    blocks = []
    for index, match in enumerate(FENCE.finditer(text)):
        indent = match.group("indent")
        body = match.group("body")
        if indent:
            body = "\n".join(line[len(indent):] if line.startswith(indent) else line
                             for line in body.splitlines())
        line = text.count("\n", 0, match.start()) + 1
        blocks.append(Block(page, index, line, match.group("lang").lower(), body))
    return blocks


# --------------------------------------------------------------------------------------------
# files the blocks use: made in the block's working directory


def _lines_mask(rng: np.random.Generator, shape: tuple[int, int], n: int) -> np.ndarray:
    from skimage.draw import line

    mask = np.zeros(shape, bool)
    for _ in range(n):
        r0, r1 = rng.integers(2, shape[0] - 2, 2)
        c0, c1 = rng.integers(2, shape[1] - 2, 2)
        mask[line(int(r0), int(c0), int(r1), int(c1))] = True
    return mask


def make_masks(where: Path) -> None:
    """``labels/`` + ``preds/`` and ``gt/`` + ``pred/``: three 2D cases; ``mask.png``."""
    from topobench.io import write_mask

    rng = np.random.default_rng(0)
    for i in range(3):
        target = _lines_mask(rng, (64, 64), 3)
        pred = target.copy()
        pred[rng.integers(0, 64, 20), rng.integers(0, 64, 20)] ^= True
        for tdir, pdir in (("labels", "preds"), ("gt", "pred")):
            write_mask(where / tdir / f"case{i}.png", target)
            write_mask(where / pdir / f"case{i}.png", pred)
    write_mask(where / "mask.png", _lines_mask(rng, (32, 32), 2))


def make_runs(where: Path) -> None:
    """``runs/``: finished ``topobench train`` records of Dice & CE and CLoss (gamma 0.1, 0.2)
    on one dataset, with per-case metrics."""
    import pandas as pd

    from topobench.catalog import LOSSES, RUN_FORMAT

    rng = np.random.default_rng(1)
    cases = [f"case{i}" for i in range(6)]
    pretrained = {"dice": rng.uniform(0.6, 0.7, 6), "e0_gt": rng.uniform(1, 3, 6)}
    for loss, gamma in (("dice_ce", None), ("closs", 0.1), ("closs", 0.2)):
        run = where / "runs" / f"Dataset__{loss}{'' if gamma is None else f'_g{gamma}'}__fold0"
        run.mkdir(parents=True)
        record = {
            "format": RUN_FORMAT, "topobench_version": "0.1.0", "dataset": "Dataset",
            "loss": loss, "method": LOSSES[loss].display, "gamma": gamma,
            "alpha": LOSSES[loss].alpha, "critical_mask": LOSSES[loss].critical_mask,
            "epochs": 100, "finetune_epochs": 5, "fold": 0, "seed": 0,
            "protocol": {"name": "default"}, "device": "cpu", "status": "complete",
            "seconds_per_epoch": {"pretrain": 1.0, "finetune": 1.5},
            "seconds_total": {"pretrain": 100.0, "finetune": 7.5},
        }
        (run / "run.json").write_text(json.dumps(record))
        shift = 0.0 if gamma is None else gamma / 2
        for kind, values in (("pretrained", pretrained),
                             ("raw", {"dice": pretrained["dice"] + shift / 2,
                                      "e0_gt": pretrained["e0_gt"] * (1 - shift)}),
                             ("postprocessed", {"dice": pretrained["dice"] + shift,
                                                "e0_gt": pretrained["e0_gt"] * (1 - 2 * shift)})):
            frame = pd.DataFrame({"case": cases, "dice": values["dice"],
                                  "cldice": values["dice"], "e": 2.0, "e0": 1.0, "e1": 1.0,
                                  "e0_gt": values["e0_gt"], "ags": values["dice"],
                                  "seconds": 0.1})
            frame.to_csv(run / f"metrics_{kind}.csv", index=False)


def make_leaderboards(where: Path) -> None:
    """``leaderboards/``: a copy of the packaged leaderboard files (written to by some blocks)."""
    import topobench

    packaged = Path(topobench.__file__).parent / "leaderboards"
    source = packaged if packaged.is_dir() else ROOT / "leaderboards"
    (where / "leaderboards").mkdir()
    for csv in source.glob("*.csv"):
        shutil.copy(csv, where / "leaderboards" / csv.name)


def make_dataset(where: Path) -> None:
    """``Dataset/``: a tiny nnU-Net-style 2D training set (thin lines in noise)."""
    import imageio.v3 as iio

    from topobench.io import write_mask

    rng = np.random.default_rng(2)
    (where / "Dataset" / "imagesTr").mkdir(parents=True)
    for i in range(5):
        label = _lines_mask(rng, (32, 32), 3)
        image = np.clip((label + rng.normal(0, 0.3, label.shape)) * 100 + 60, 0, 255)
        iio.imwrite(where / "Dataset" / "imagesTr" / f"case_{i:03d}_0000.png",
                    image.astype(np.uint8))
        write_mask(where / "Dataset" / "labelsTr" / f"case_{i:03d}.png", label)


MAKERS: dict[str, Callable[[Path], None]] = {
    "masks": make_masks, "runs": make_runs, "leaderboards": make_leaderboards,
    "dataset": make_dataset,
}

# --------------------------------------------------------------------------------------------
# placeholders: Python lines that define what a block uses without making it

TORCH_PAIR = """
import torch
torch.manual_seed(0)
logits = torch.randn(2, 2, 32, 32)
labels = (torch.rand(2, 1, 32, 32) > 0.7).long()
"""
NUMPY_PAIR = """
import numpy as np
_rng = np.random.default_rng(0)
target = np.zeros((48, 48), bool); target[24, 4:44] = True; target[8:40, 30] = True
pred_binary = target.copy(); pred_binary[24, 20:23] = False; pred_binary[5, 5:9] = True
pred_pretrained = target.copy(); pred_pretrained[24, 20:23] = False
pred_finetuned = target.copy(); pred_finetuned[40, 5:9] = True
ft, pre = pred_finetuned, pred_pretrained
"""
TRAINING_LOOP = """
import torch
torch.manual_seed(0)
torch.set_num_threads(1)
def MyUNet(in_channels, out_channels):
    return torch.nn.Sequential(torch.nn.Conv2d(in_channels, 8, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.Conv2d(8, out_channels, 3, padding=1))
_target = torch.zeros(2, 1, 24, 24, dtype=torch.long); _target[:, :, 12, 2:22] = 1
loader = [(_target.float() + 0.1 * torch.randn(2, 1, 24, 24), _target)]
"""
TINY_NETWORK = """
import torch
torch.set_num_threads(1)
my_network = torch.nn.Conv2d(1, 2, 3, padding=1)
"""


@dataclass(frozen=True)
class Setup:
    """What one block needs: files (:data:`MAKERS`), a Python preamble, whether it is slow."""

    page: str
    contains: str
    files: tuple[str, ...] = ()
    preamble: str = ""
    slow: bool = False
    why: str = ""


SETUPS: tuple[Setup, ...] = (
    Setup("README.md", "topobench evaluate preds/ labels/", files=("masks",)),
    Setup("README.md", 'loss_fn = make_loss("closs"', preamble=TORCH_PAIR),
    Setup("README.md", "topobench train Dataset/", files=("dataset",), slow=True,
          why="trains 100 + 5 epochs twice"),
    Setup("README.md", "topobench table ", files=("runs", "leaderboards")),
    Setup("docs/losses.md", "critical_components(pred_binary", preamble=NUMPY_PAIR),
    Setup("docs/losses.md", "keep_supported(pred_finetuned", preamble=NUMPY_PAIR),
    Setup("docs/losses.md", "model = MyUNet(", preamble=TRAINING_LOOP),
    Setup("docs/evaluate.md", 'run_evaluation("pred", "gt"', files=("masks",)),
    Setup("docs/results.md", "topobench table ", files=("runs", "leaderboards")),
    Setup("docs/results.md", 'load_results(["runs/"])', files=("runs",)),
    Setup("docs/training.md", "topobench train Dataset/", files=("dataset",), slow=True,
          why="trains 100 + 5 epochs, then three fine-tunings"),
    Setup("docs/training.md", "train(TrainConfig(", files=("dataset",), preamble=TINY_NETWORK,
          slow=True, why="trains 100 + 5 and 20 + 1 epochs"),
)


def setup_of(block: Block) -> Setup:
    page = block.page.relative_to(ROOT).as_posix()
    found = [s for s in SETUPS if s.page == page and s.contains in block.code]
    return found[0] if found else Setup(page, "")


def collected() -> list[object]:
    params = []
    for page in PAGES:
        for block in find_blocks(page):
            if block.lang not in RUN_LANGUAGES:
                continue
            marks = [pytest.mark.slow] if setup_of(block).slow else []
            params.append(pytest.param(block, id=block.name, marks=marks))
    return params


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(MPLBACKEND="Agg", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONUNBUFFERED="1", COLUMNS="200")
    return env


def run_block(block: Block, where: Path) -> subprocess.CompletedProcess[str]:
    """Make the block's files in ``where`` and run it there."""
    setup = setup_of(block)
    for name in setup.files:
        MAKERS[name](where)
    if block.lang == "python":
        script = where / "doc_block.py"
        script.write_text(setup.preamble + "\n" + block.code, encoding="utf-8")
        command = [sys.executable, script.name]
    else:
        script = where / "doc_block.sh"
        script.write_text(block.code, encoding="utf-8")
        command = ["bash", "-e", script.name]
    return subprocess.run(command, cwd=where, env=_environment(), capture_output=True,
                          text=True, timeout=SLOW_TIMEOUT if setup.slow else TIMEOUT)


@pytest.mark.parametrize("block", collected())
def test_doc_block_runs_as_written(block: Block, tmp_path: Path) -> None:
    result = run_block(block, tmp_path)
    assert result.returncode == 0, (
        f"{block.name} ({block.lang}) failed with status {result.returncode}:\n{block.code}\n"
        f"--- stdout ---\n{result.stdout[-3000:]}\n--- stderr ---\n{result.stderr[-3000:]}"
    )


def test_blocks_are_found_and_every_setup_matches_a_block() -> None:
    blocks = [b for page in PAGES for b in find_blocks(page)]
    assert any(b.lang == "python" for b in blocks) and any(b.lang == "bash" for b in blocks)
    for setup in SETUPS:
        page = ROOT / setup.page
        assert any(setup.contains in b.code for b in find_blocks(page)
                   if b.lang in RUN_LANGUAGES), f"no block of {setup.page} holds {setup.contains!r}"


def test_fences_are_balanced() -> None:
    """An odd number of ``` lines would swallow the rest of a page into one block."""
    for page in PAGES:
        fences = [ln for ln in page.read_text(encoding="utf-8").splitlines()
                  if ln.lstrip().startswith("```")]
        assert len(fences) % 2 == 0, f"{page.name}: unbalanced ``` fences"

"""End-to-end runs on tiny synthetic data: the run record, reuse of a pretraining, resume."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from topobench.catalog import RUN_FORMAT
from topobench.errors import InvalidParameterError
from topobench.metrics import evaluate_case
from topobench.training import (
    DatasetError,
    RunError,
    TrainConfig,
    TrainEvent,
    UNet,
    finetune_epochs,
    train,
)
from topobench.training.loop import poly_lr

RECORD_KEYS = {
    "format", "topobench_version", "dataset", "loss", "method", "gamma", "alpha",
    "critical_mask", "epochs", "finetune_epochs", "fold", "seed", "protocol", "device",
    "versions", "seconds_per_epoch", "seconds_total", "peak_memory_mb", "pretrained_from",
    "status",
}


def _config(data: Path, out: Path, **kw: object) -> TrainConfig:
    ndim = 2 if "2d" in data.name else 3
    base = dict(data=data, out=out, epochs=3, iterations_per_epoch=3, batch_size=2, depth=2,
                width=4, patch_size=(16, 16) if ndim == 2 else (8, 16, 16), loss="closs")
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def _cases_csv(run: Path, kind: str) -> Path:
    return run / "evaluation" / kind / "cases.csv"


def _metric_rows(run: Path) -> dict[str, list[dict[str, str]]]:
    out = {}
    for kind in ("pretrained", "raw", "postprocessed"):
        out[kind] = [{k: v for k, v in r.items() if k != "seconds"}
                     for r in _rows(_cases_csv(run, kind))]
    return out


def test_poly_lr_is_nnunet_schedule() -> None:
    factor = poly_lr(4)
    assert [factor(e) for e in range(4)] == pytest.approx(
        [1.0, 0.75**0.9, 0.5**0.9, 0.25**0.9])
    assert factor(10) == pytest.approx(0.25**0.9)  # never 0, even past the last epoch


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")
def test_poly_lr_equals_torchs_polynomial_lr_to_rounding() -> None:
    """torch's PolynomialLR gives the same rates but multiplies them up epoch by epoch, so they
    differ in the last bits (about 1e-15 relative); the closed form is kept so that runs stay
    bit for bit what they were."""
    for epochs in (1, 3, 50, 250):
        params = [torch.nn.Parameter(torch.zeros(1))]
        ours = torch.optim.SGD(params, lr=0.01)
        theirs = torch.optim.SGD(params, lr=0.01)
        ours_s = torch.optim.lr_scheduler.LambdaLR(ours, poly_lr(epochs))
        theirs_s = torch.optim.lr_scheduler.PolynomialLR(theirs, total_iters=epochs, power=0.9)
        for epoch in range(epochs):
            expected = 0.01 * (1 - epoch / epochs) ** 0.9
            assert ours.param_groups[0]["lr"] == pytest.approx(expected, rel=1e-15)
            assert theirs.param_groups[0]["lr"] == pytest.approx(expected, rel=1e-12)
            ours_s.step()
            theirs_s.step()


def test_finetune_epochs_is_five_percent_at_least_one() -> None:
    assert finetune_epochs(1000, 0.05) == 50
    assert finetune_epochs(100, 0.05) == 5
    assert finetune_epochs(50, 0.05) == 3  # half up
    assert finetune_epochs(49, 0.05) == 2
    assert finetune_epochs(10, 0.05) == 1
    assert finetune_epochs(3, 0.05) == 1


@pytest.mark.parametrize("dataset", ["tiny2d", "tiny3d"])
def test_run_record(dataset: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    data = request.getfixturevalue(dataset)
    events: list[TrainEvent] = []
    result = train(_config(data, tmp_path / "runs", gamma=0.2, finetune_lr=5e-4),
                   progress=events.append)
    run = result.run_dir
    assert run == tmp_path / "runs" / f"{dataset}__closs_g0.2__fold0__seed0"
    record = json.loads((run / "run.json").read_text())
    assert RECORD_KEYS <= set(record)
    assert record["format"] == RUN_FORMAT and record["status"] == "complete"
    assert (record["loss"], record["method"], record["gamma"]) == ("closs", "CLoss", 0.2)
    assert (record["alpha"], record["critical_mask"]) == (0.5, "context")
    assert (record["epochs"], record["finetune_epochs"]) == (3, 1)
    assert record["protocol"]["name"] == ("default" if dataset == "tiny2d" else "vessap")
    assert set(record["versions"]) >= {"topobench", "torch", "numpy", "python"}
    assert record["seconds_per_epoch"]["pretrain"] > 0 and record["peak_memory_mb"] > 0
    assert all(v is not None and v >= 0 for v in record["seconds_total"].values())
    assert record["pretrained_from"] is None and record["device"] == "cpu"

    log = _rows(run / "log.csv")
    assert list(log[0]) == ["epoch", "phase", "loss", "seconds", "lr"]
    assert [(r["epoch"], r["phase"]) for r in log] == [
        ("1", "pretrain"), ("2", "pretrain"), ("3", "pretrain"), ("1", "finetune")]
    # nnU-Net's polynomial decay per phase, restarted from finetune_lr: lr (1 - e / N) ** 0.9
    expected_lr = [1e-3, 1e-3 * (2 / 3) ** 0.9, 1e-3 * (1 / 3) ** 0.9, 5e-4]
    assert [float(r["lr"]) for r in log] == pytest.approx(expected_lr, rel=1e-5)
    assert all(float(r["loss"]) > 0 and float(r["seconds"]) > 0 for r in log)

    # per-case stores: case, shape, evaluate_case's columns, seconds; one row per held-out case
    (case,) = record["eval_cases"]
    suffix = ".png" if dataset == "tiny2d" else ".tif"
    from topobench.io import read_mask

    target = read_mask(next((data / "labelsTr").glob(f"{case}.*")))
    for kind in ("pretrained", "raw", "postprocessed"):
        rows = _rows(_cases_csv(run, kind))
        pred = read_mask(run / "predictions" / kind / f"{case}{suffix}")
        expected = evaluate_case(pred, target, protocol=record["protocol"]["name"])
        assert list(rows[0]) == ["case", "shape", *expected, "seconds"]
        assert rows[0]["case"] == case
        for key, value in expected.items():
            assert float(rows[0][key]) == pytest.approx(value)
        assert result.summary[kind] == pytest.approx(expected)
    # post-processing never adds pixels
    raw = read_mask(run / "predictions" / "raw" / f"{case}{suffix}")
    post = read_mask(run / "predictions" / "postprocessed" / f"{case}{suffix}")
    assert not np.any(post & ~raw)
    # ... and is exactly keep_supported(fine-tuned, pretrained) at the evaluation connectivity
    from topobench.postprocess import keep_supported

    pre = read_mask(run / "predictions" / "pretrained" / f"{case}{suffix}")
    assert np.array_equal(post, keep_supported(raw, pre))

    # the results aggregator reads the record
    from topobench.results.records import read_run

    tidy = read_run(run)
    assert set(tidy["postprocessing"]) >= {"with", "without"}
    assert "CLoss" in set(tidy["method"])

    kinds = {(e.kind, e.phase) for e in events}
    assert {("stage", "pretrain"), ("step", "pretrain"), ("epoch", "finetune"),
            ("stage", "inference"), ("stage", "evaluation")} <= kinds


def test_3d_default_protocol_gives_e2(tiny3d: Path, tmp_path: Path) -> None:
    result = train(_config(tiny3d, tmp_path, loss="dice_ce", protocol="default", epochs=1))
    header = list(_rows(_cases_csv(result.run_dir, "raw"))[0])
    assert header == ["case", "shape", "dice", "cldice", "e", "e0", "e1", "e2", "e0_gt", "ags",
                      "seconds"]


def test_training_learns_the_lines(tiny2d: Path, tmp_path: Path) -> None:
    cfg = _config(tiny2d, tmp_path, loss="dice_ce", epochs=15, iterations_per_epoch=8,
                  batch_size=4, width=8, lr=3e-3, foreground_fraction=0.5)
    result = train(cfg)
    log = _rows(result.run_dir / "log.csv")
    assert float(log[-2]["loss"]) < 0.6 * float(log[0]["loss"])
    assert result.summary["pretrained"]["dice"] > 0.6


def test_finetunes_share_one_pretraining(tiny2d: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    base = train(_config(tiny2d, runs, loss="dice_ce"))
    assert base.record["gamma"] is None and base.record["method"] == "Dice & CE"
    other = train(_config(tiny2d, runs, loss="compound_cldice", gamma=0.3, epochs=99,
                          pretrained=base.run_dir))
    rec = other.record
    assert rec["pretrained_from"] == str(base.run_dir)
    assert rec["epochs"] == 3  # N comes from the pretraining
    assert rec["seconds_per_epoch"]["pretrain"] is None
    assert rec["seconds_total"]["pretrain"] is None
    assert [r["phase"] for r in _rows(other.run_dir / "log.csv")] == ["finetune"]
    assert _metric_rows(other.run_dir)["pretrained"] == _metric_rows(base.run_dir)["pretrained"]
    with pytest.raises(RunError, match="same dataset and fold"):
        train(_config(tiny2d, runs, loss="closs", fold=1, pretrained=base.run_dir))
    with pytest.raises(RunError, match="model_pretrained"):
        train(_config(tiny2d, runs, loss="closs", pretrained=tmp_path))


class _Interrupt(Exception):
    pass


def _interrupt_at(phase: str, epoch: int, step: int):
    def hook(event: TrainEvent) -> None:
        if (event.kind, event.phase, event.epoch, event.step) == ("step", phase, epoch, step):
            raise _Interrupt

    return hook


@pytest.mark.parametrize(("phase", "epoch", "step"), [("pretrain", 2, 2), ("finetune", 2, 1)])
def test_resume_gives_the_uninterrupted_result(tiny2d: Path, tmp_path: Path, phase: str,
                                               epoch: int, step: int) -> None:
    kw = dict(loss="thin_closs", epochs=3, finetune_epochs=2)
    full = train(_config(tiny2d, tmp_path / "a", **kw))
    with pytest.raises(_Interrupt):
        train(_config(tiny2d, tmp_path / "b", **kw), progress=_interrupt_at(phase, epoch, step))
    run_b = tmp_path / "b" / full.run_dir.name
    assert json.loads((run_b / "run.json").read_text())["status"] == "running"
    assert not (run_b / "evaluation").exists()
    with pytest.raises(RunError, match="resume"):
        train(_config(tiny2d, tmp_path / "b", **kw))
    with pytest.raises(RunError, match="differs in loss"):
        train(_config(tiny2d, tmp_path / "b", **{**kw, "loss": "closs"}, run_name=run_b.name,
                      resume=True))
    resumed = train(_config(tiny2d, tmp_path / "b", **kw, resume=True))
    assert resumed.record["status"] == "complete"
    for name in ("model_pretrained.pt", "model_finetuned.pt"):
        a = torch.load(full.run_dir / name, weights_only=False)["model"]
        b = torch.load(run_b / name, weights_only=False)["model"]
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert _metric_rows(run_b) == _metric_rows(full.run_dir)
    drop = ("seconds",)
    log_a = [{k: v for k, v in r.items() if k not in drop} for r in _rows(full.run_dir / "log.csv")]
    log_b = [{k: v for k, v in r.items() if k not in drop} for r in _rows(run_b / "log.csv")]
    assert log_a == log_b


def test_same_seed_same_weights_other_seed_differs(tiny2d: Path, tmp_path: Path) -> None:
    a = train(_config(tiny2d, tmp_path / "a", loss="dice_ce", epochs=1))
    b = train(_config(tiny2d, tmp_path / "b", loss="dice_ce", epochs=1))
    c = train(_config(tiny2d, tmp_path / "c", loss="dice_ce", epochs=1, seed=1))
    wa, wb, wc = (torch.load(r.run_dir / "model_finetuned.pt", weights_only=False)["model"]
                  for r in (a, b, c))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)


def test_custom_module_and_threads(tiny2d: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = UNet(ndim=2, depth=2, width=3)
    result = train(_config(tiny2d, tmp_path, loss="dice_ce", epochs=1), model=net)
    assert result.record["model"]["width"] == 3
    torch.manual_seed(0)
    tiny = torch.nn.Conv2d(1, 2, 3, padding=1)
    result = train(_config(tiny2d, tmp_path, loss="dice_ce", epochs=1, run_name="conv",
                           threads=2), model=tiny)
    assert result.record["model"] == "Conv2d"
    assert torch.get_num_threads() == 1  # restored after the run


def test_bad_options_and_data_fail_before_training(
    tiny2d: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(InvalidParameterError, match="loss must be one of"):
        train(_config(tiny2d, tmp_path, loss="focal"))
    with pytest.raises(InvalidParameterError, match="multiples of 2"):
        train(_config(tiny2d, tmp_path, patch_size=(15, 16)))
    # Both CUDA refusals on any machine: the device is resolved before anything touches CUDA.
    count = torch.cuda.device_count() if torch.cuda.is_available() else 1
    with monkeypatch.context() as patch:
        patch.setattr(torch.cuda, "is_available", lambda: True)
        patch.setattr(torch.cuda, "device_count", lambda: count)
        with pytest.raises(InvalidParameterError, match=f"only {count} CUDA device"):
            train(_config(tiny2d, tmp_path, device=f"cuda:{count}"))
    with monkeypatch.context() as patch:
        patch.setattr(torch.cuda, "is_available", lambda: False)
        with pytest.raises(InvalidParameterError, match="CUDA is not available"):
            train(_config(tiny2d, tmp_path, device="cuda"))
    (tiny2d / "labelsTr" / "case_000.png").unlink()
    with pytest.raises(DatasetError, match="case_000_0000.png"):
        train(_config(tiny2d, tmp_path))
    # no run directory was started by any of them
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == ["tiny2d"]


def test_eval_on_test_set(tiny2d: Path, tmp_path: Path) -> None:
    import shutil

    (tiny2d / "imagesTs").mkdir()
    (tiny2d / "labelsTs").mkdir()
    for name in ("case_000", "case_001"):
        shutil.copy(tiny2d / "imagesTr" / f"{name}_0000.png",
                    tiny2d / "imagesTs" / f"t{name}_0000.png")
        shutil.copy(tiny2d / "labelsTr" / f"{name}.png", tiny2d / "labelsTs" / f"t{name}.png")
    result = train(_config(tiny2d, tmp_path, loss="dice_ce", epochs=1, eval_set="test"))
    assert result.record["eval_cases"] == ["tcase_000", "tcase_001"]
    assert [r["case"] for r in _rows(_cases_csv(result.run_dir, "raw"))] == result.record[
        "eval_cases"]
    shutil.rmtree(tiny2d / "labelsTs")
    with pytest.raises(InvalidParameterError, match="labelsTs"):
        train(_config(tiny2d, tmp_path, loss="dice_ce", epochs=1, eval_set="test",
                      run_name="again"))


def test_mixed_precision_path_runs_on_cpu(tiny2d: Path, tmp_path: Path) -> None:
    # CUDA is not needed to exercise autocast and the gradient scaler (bfloat16 on CPU)
    result = train(_config(tiny2d, tmp_path, loss="closs", epochs=1, amp=True))
    assert result.record["amp"] is True
    state = torch.load(result.run_dir / "checkpoint.pt", weights_only=False)
    assert "scaler" in state and state["phase"] == "finetune"
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


_KILL_SCRIPT = """
import multiprocessing, os, signal, sys, torch
from pathlib import Path
from topobench.training import TrainConfig, train
torch.set_num_threads(1)
cfg = TrainConfig(data=Path(sys.argv[1]), out=Path(sys.argv[2]), loss="closs", epochs=3,
                  finetune_epochs=2, iterations_per_epoch=3, batch_size=2, depth=2, width=4,
                  patch_size=(16, 16), num_workers=int(sys.argv[3]), resume=len(sys.argv) > 4)
def hook(event):
    if (event.kind, event.phase, event.epoch, event.step) == ("step", "pretrain", 2, 2):
        pids = [p.pid for p in multiprocessing.active_children()]
        Path(sys.argv[2], "workers.txt").write_text(" ".join(map(str, pids)))
        os.kill(os.getpid(), signal.SIGKILL)  # no clean-up at all, as a real crash
train(cfg, progress=None if cfg.resume else hook)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.is_file() and stat.read_text().split()[2] == "Z")  # a zombie has ended


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_after_sigkill(tiny2d: Path, tmp_path: Path, workers: int) -> None:
    import subprocess
    import sys
    import time

    full = train(_config(tiny2d, tmp_path / "a", loss="closs", epochs=3, finetune_epochs=2))
    args = [sys.executable, "-c", _KILL_SCRIPT, str(tiny2d), str(tmp_path / "b"), str(workers)]
    killed = subprocess.run(args, capture_output=True, timeout=300)
    assert killed.returncode == -9
    run_b = tmp_path / "b" / full.run_dir.name
    assert torch.load(run_b / "checkpoint.pt", weights_only=False)["epoch"] == 1
    # the patch workers end with the killed training process
    pids = [int(p) for p in (tmp_path / "b" / "workers.txt").read_text().split()]
    assert len(pids) == workers
    deadline = time.monotonic() + 30
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(p) for p in pids)
    resumed = subprocess.run([*args, "--resume"], capture_output=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert _same_weights(run_b, full.run_dir)
    assert _metric_rows(run_b) == _metric_rows(full.run_dir)


def test_one_patch_size_means_a_square_or_cube_patch() -> None:

    from topobench.training.networks import patch_size

    for ndim, expected in ((2, (32, 32)), (3, (32, 32, 32))):
        assert patch_size((32,), ndim, [(64,) * ndim], 8) == expected
    with pytest.raises(ValueError, match="2 sides for 2D"):
        patch_size((32, 32, 32), 2, [(64, 64)], 8)


def _run_files(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run.iterdir()) if p.is_file()}


@pytest.mark.parametrize(("change", "named"), [
    ({"connectivity": 4}, "connectivity: None -> 4"),
    ({"threads": 2}, "threads: 1 -> 2"),
    ({"save_predictions": False, "overlap": 0.25}, "overlap: 0.5 -> 0.25"),
])
def test_resume_of_a_finished_run_with_other_options_is_refused(
        tiny2d: Path, tmp_path: Path, change: dict[str, object], named: str) -> None:
    kw = dict(loss="dice_ce", epochs=1, threads=1)
    done = train(_config(tiny2d, tmp_path, **kw))
    before = _run_files(done.run_dir)
    with pytest.raises(RunError, match="never overwritten") as info:
        train(_config(tiny2d, tmp_path, **{**kw, **change}, resume=True))
    assert named in str(info.value)
    for key in change:
        assert f"{key}:" in str(info.value)
    assert _run_files(done.run_dir) == before
    # the recorded options (data spelled another way) give the finished run back untouched
    again = train(_config(Path(str(tiny2d) + "/"), tmp_path, **kw, resume=True))
    assert again.record == done.record and again.summary == done.summary
    assert _run_files(done.run_dir) == before


def test_unavailable_device_is_refused_by_name(tiny2d: Path, tmp_path: Path) -> None:
    for device in ("mps", "cuda:99" if torch.cuda.is_available() else "cuda"):
        with pytest.raises(InvalidParameterError, match=f"device '{device}'"):
            train(_config(tiny2d, tmp_path, loss="dice_ce", epochs=1, device=device))
    assert not any(tmp_path.glob("*/run.json"))


def _same_weights(run_a: Path, run_b: Path) -> bool:
    for name in ("model_pretrained.pt", "model_finetuned.pt"):
        a = torch.load(run_a / name, weights_only=False)["model"]
        b = torch.load(run_b / name, weights_only=False)["model"]
        if a.keys() != b.keys() or not all(torch.equal(a[k], b[k]) for k in a):
            return False
    return True


def test_an_interrupted_evaluation_resumes_without_training_or_predicting_again(
        tiny2d: Path, tmp_path: Path) -> None:
    kw = dict(loss="closs", epochs=2)
    full = train(_config(tiny2d, tmp_path / "a", **kw))

    def stop(event: TrainEvent) -> None:
        if (event.kind, event.phase, event.step) == ("step", "evaluation", 2):
            raise _Interrupt

    with pytest.raises(_Interrupt):
        train(_config(tiny2d, tmp_path / "b", **kw), progress=stop)
    run_b = tmp_path / "b" / full.run_dir.name
    written = {p: p.stat().st_mtime_ns for p in (run_b / "predictions").rglob("*.png")}
    events: list[TrainEvent] = []
    resumed = train(_config(tiny2d, tmp_path / "b", **kw, resume=True), progress=events.append)
    # the finished steps are read back: only the evaluation runs again
    assert [e.phase for e in events if e.kind == "stage"] == ["evaluation"]
    assert {p: p.stat().st_mtime_ns for p in written} == written
    assert resumed.record["seconds_total"]["inference"] is not None
    assert _metric_rows(run_b) == _metric_rows(full.run_dir)
    assert resumed.summary == full.summary
    assert _same_weights(run_b, full.run_dir)


def test_workers_draw_the_same_batches_and_resume_with_another_count(
        tiny2d: Path, tmp_path: Path) -> None:
    kw = dict(loss="dice_ce", epochs=3, finetune_epochs=1)
    alone = train(_config(tiny2d, tmp_path / "a", **kw))
    with pytest.raises(_Interrupt):
        train(_config(tiny2d, tmp_path / "b", **kw, num_workers=2),
              progress=_interrupt_at("pretrain", 2, 2))
    resumed = train(_config(tiny2d, tmp_path / "b", **kw, num_workers=0, resume=True))
    assert resumed.record["config"]["num_workers"] == 0
    assert _same_weights(resumed.run_dir, alone.run_dir)
    assert _metric_rows(resumed.run_dir) == _metric_rows(alone.run_dir)

"""Every result ``run_evaluation`` writes is right or refused by name: resume, lock, geometry,
probability maps, unreadable entries, failed writes, case names, columns."""

from __future__ import annotations

import csv
import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import nibabel
import numpy as np
import pytest
from typer.testing import CliRunner

from topobench.cli import app
from topobench.errors import InvalidParameterError
from topobench.evaluate import (
    DiskFullError,
    OutputError,
    OutputLockedError,
    ResumeError,
    pair_files,
    run_evaluation,
)
from topobench.io import write_mask
from topobench.metrics import evaluate_case

runner = CliRunner()


def _evaluate(*args: str | Path):
    return runner.invoke(app, ["evaluate", *map(str, args)])


def _rows(out: Path, name: str = "cases.csv") -> list[dict[str, str]]:
    with open(out / name, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _masks(folder: Path, n: int, *, seed: int = 0, shape=(24, 28), suffix=".png") -> dict:
    """``n`` random masks ``c0 ...`` written to ``folder``; returns name -> mask."""
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(n):
        mask = rng.random(shape) > 0.55
        write_mask(folder / f"c{i}{suffix}", mask)
        out[f"c{i}"] = mask
    return out


@pytest.fixture
def folders(tmp_path) -> tuple[Path, Path, dict, dict]:
    targets = _masks(tmp_path / "gt", 4, seed=1)
    preds = _masks(tmp_path / "pred", 4, seed=2)
    return tmp_path / "pred", tmp_path / "gt", preds, targets


# --------------------------------------------------------------------------------------------
# Resume
# --------------------------------------------------------------------------------------------


def test_resume_with_other_folders_is_refused_naming_both(tmp_path, folders):
    pred, gt, _, _ = folders
    other = tmp_path / "other_model"
    _masks(other, 4, seed=3)
    out = tmp_path / "res"
    run_evaluation(pred, gt, out, workers=1)
    with pytest.raises(ResumeError) as info:
        run_evaluation(other, gt, out, workers=1, resume=True)
    message = str(info.value)
    assert f"pred_dir: {str(pred.resolve())!r} -> {str(other.resolve())!r}" in message
    assert "target_dir" not in message  # only what differs
    rows = _rows(out)
    assert len(rows) == 4  # nothing of the other model was mixed in
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pred_dir"] == str(pred.resolve())


def test_resume_names_each_differing_configuration_key(tmp_path, folders):
    pred, gt, _, _ = folders
    out = tmp_path / "res"
    run_evaluation(pred, gt, out, workers=1)
    with pytest.raises(ResumeError) as info:
        run_evaluation(pred, gt, out, workers=1, resume=True, threshold=0.5, connectivity=4)
    message = str(info.value)
    assert "threshold: None -> 0.5" in message
    assert "protocol.connectivity: None -> 4" in message
    assert "protocol.betti_window" not in message and "{" not in message  # no JSON blobs
    result = _evaluate(pred, gt, "-o", out, "--resume", "-c", "4", "-j", "1")
    assert result.exit_code == 2
    assert "protocol.connectivity: None -> 4" in result.output
    assert "--overwrite" in result.output and "overwrite=True" not in result.output


def test_already_holds_results_says_when_to_resume_and_when_to_overwrite(tmp_path, folders):
    pred, gt, _, _ = folders
    out = tmp_path / "res"
    run_evaluation(pred, gt, out, workers=1)
    with pytest.raises(InvalidParameterError) as info:
        run_evaluation(pred, gt, out, workers=1)
    message = str(info.value)
    assert "4 cases" in message and "status complete" in message
    assert "interrupted" in message and "resume=True" in message
    assert "overwrite=True" in message and "other predictions" in message
    result = _evaluate(pred, gt, "-o", out, "-j", "1")
    assert result.exit_code == 2
    assert "--resume" in result.output and "--overwrite" in result.output
    assert "resume=True" not in result.output


def test_resume_re_evaluates_changed_files_and_drops_vanished_ones(tmp_path, folders):
    pred, gt, preds, targets = folders
    out = tmp_path / "res"
    first = run_evaluation(pred, gt, out, workers=1)
    assert first.ok
    inputs = {r["case"]: r for r in _rows(out, "inputs.csv")}
    assert sorted(inputs) == ["c0", "c1", "c2", "c3"]
    assert all(r["pred_fingerprint"].count(":") == 2 for r in inputs.values())
    # c1's prediction is replaced by the target (same size of array, other content), c3 vanishes.
    write_mask(pred / "c1.png", targets["c1"])
    (pred / "c3.png").unlink()
    (gt / "c3.png").unlink()
    # c2 is touched but keeps its content: its row stays.
    os.utime(pred / "c2.png", ns=(1, 1))
    report = run_evaluation(pred, gt, out, workers=1, resume=True)
    assert report.reevaluated == ("c1",) and report.dropped == ("c3",)
    assert (report.n_skipped, report.n_evaluated) == (2, 1)
    rows = {r["case"]: r for r in _rows(out)}
    assert sorted(rows) == ["c0", "c1", "c2"]
    assert float(rows["c1"]["dice"]) == 1.0
    expected = evaluate_case(preds["c0"], targets["c0"])["dice"]
    assert float(rows["c0"]["dice"]) == pytest.approx(expected)
    assert report.summary["resume"] == {"kept": 2, "reevaluated": ["c1"], "dropped": ["c3"]}
    assert sorted(r["case"] for r in _rows(out, "inputs.csv")) == ["c0", "c1", "c2"]
    # Another model's prediction of the same size (an .npy of the same shape) is caught too.
    np.save(pred / "c0.npy", preds["c0"])
    (pred / "c0.png").unlink()
    run_evaluation(pred, gt, out, workers=1, resume=True)  # the file name changed: evaluated
    size = (pred / "c0.npy").stat().st_size
    np.save(pred / "c0.npy", targets["c0"])
    assert (pred / "c0.npy").stat().st_size == size
    again = run_evaluation(pred, gt, out, workers=1, resume=True)
    assert again.reevaluated == ("c0",)
    assert float({r["case"]: r for r in _rows(out)}["c0"]["dice"]) == 1.0


def test_resume_of_rows_without_fingerprint_evaluates_them_again(tmp_path, folders):
    pred, gt, _, _ = folders
    out = tmp_path / "res"
    run_evaluation(pred, gt, out, workers=1)
    (out / "inputs.csv").unlink()  # e.g. a run of an older version
    report = run_evaluation(pred, gt, out, workers=1, resume=True)
    assert report.n_skipped == 0 and len(report.reevaluated) == 4 and report.ok
    assert len(_rows(out)) == 4


# --------------------------------------------------------------------------------------------
# Lock
# --------------------------------------------------------------------------------------------

_HOLD = (
    "import sys, time; from pathlib import Path; from topobench.evaluate.lock import OutputLock; "
    "lock = OutputLock(Path(sys.argv[1])); lock.acquire(); print('locked', flush=True); "
    "time.sleep(60)"
)


def test_a_second_process_on_the_same_output_is_refused_naming_the_first(tmp_path, folders):
    pred, gt, _, _ = folders
    out = tmp_path / "res"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(out)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        for kwargs in ({}, {"overwrite": True}, {"resume": True}):
            with pytest.raises(OutputLockedError, match=f"process {holder.pid} on "):
                run_evaluation(pred, gt, out, workers=1, **kwargs)
        result = _evaluate(pred, gt, "-o", out, "-j", "1", "--overwrite")
        assert result.exit_code == 2 and f"process {holder.pid}" in result.output
        assert not (out / "cases.csv").exists()  # the refused runs wrote nothing
    finally:
        holder.kill()
        holder.wait()
    # The holder died without releasing anything: its stale lock is taken over.
    assert json.loads((out / ".topobench-evaluate.lock").read_text())["pid"] == holder.pid
    assert run_evaluation(pred, gt, out, workers=1).ok
    assert json.loads((out / ".topobench-evaluate.lock").read_text())["pid"] == os.getpid()


@pytest.mark.slow
@pytest.mark.parametrize("backend", [{"workers": 2}, {"workers": 2, "dask": "local"}])
def test_lock_is_held_while_a_process_pool_or_dask_run_writes(tmp_path, folders, backend):
    pred, gt, _, _ = folders
    out = tmp_path / "res"
    answers = []

    def try_lock(result) -> None:
        if not answers:  # from another process, while the pool run is under way
            probe = subprocess.run(
                [sys.executable, "-c", _HOLD.replace("time.sleep(60)", ""), str(out)],
                capture_output=True,
                text=True,
            )
            answers.append(probe.stderr)

    if "dask" in backend:
        pytest.importorskip("distributed")
    assert run_evaluation(pred, gt, out, on_result=try_lock, **backend).ok
    assert "OutputLockedError" in answers[0] and str(os.getpid()) in answers[0]


def test_stale_pid_file_without_flock_is_taken_over(tmp_path, folders, monkeypatch):
    import topobench.evaluate.lock as ev

    pred, gt, _, _ = folders
    out = tmp_path / "res"
    out.mkdir()
    monkeypatch.setattr(ev, "_fcntl", None)  # a platform without flock: the pid file decides
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = __import__("socket").gethostname()
    lock = out / ".topobench-evaluate.lock"
    lock.write_text(json.dumps({"pid": dead.pid, "host": host}))
    assert run_evaluation(pred, gt, out, workers=1).ok
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        lock.write_text(json.dumps({"pid": alive.pid, "host": host}))
        with pytest.raises(OutputLockedError, match=str(alive.pid)):
            run_evaluation(pred, gt, out, workers=1, overwrite=True)
    finally:
        alive.kill()
        alive.wait()


# --------------------------------------------------------------------------------------------
# NIfTI geometry
# --------------------------------------------------------------------------------------------


def _save_nifti(path: Path, xyz: np.ndarray, affine: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nibabel.save(nibabel.Nifti1Image(xyz.astype(np.uint8), affine), str(path))


def test_flipped_axis_copy_of_the_same_volume_scores_dice_1(tmp_path):
    rng = np.random.default_rng(5)
    xyz = rng.random((12, 10, 6)) > 0.5
    affine = np.diag([0.7, 0.7, 2.5, 1.0])
    flip = np.eye(4)
    flip[1, 1], flip[1, 3] = -1, xyz.shape[1] - 1  # y reversed, same physical positions
    _save_nifti(tmp_path / "gt" / "v.nii.gz", xyz, affine)
    _save_nifti(tmp_path / "pred" / "v.nii.gz", np.flip(xyz, axis=1), affine @ flip)
    report = run_evaluation(tmp_path / "pred", tmp_path / "gt", tmp_path / "res", workers=1)
    assert report.ok, report.failures
    (row,) = _rows(tmp_path / "res")
    assert float(row["dice"]) == 1.0 and float(row["e"]) == 0.0
    assert report.summary["spacing"] == {"v": [2.5, 0.7, 0.7]}
    (record,) = _rows(tmp_path / "res", "inputs.csv")
    assert record["spacing"] == "2.5x0.7x0.7"


def test_nifti_pairs_on_different_grids_are_refused_by_name(tmp_path):
    xyz = np.zeros((8, 8, 4), bool)
    xyz[2:6, 3, :] = True
    _save_nifti(tmp_path / "gt" / "v.nii.gz", xyz, np.diag([1.0, 1.0, 1.0, 1.0]))
    _save_nifti(tmp_path / "pred" / "v.nii.gz", xyz, np.diag([1.0, 1.0, 3.0, 1.0]))
    report = run_evaluation(tmp_path / "pred", tmp_path / "gt", tmp_path / "res", workers=1)
    ((case, reason),) = report.failures
    assert case == "v" and "same voxel grid" in reason and "v.nii.gz" in reason
    assert _rows(tmp_path / "res") == []


def test_spacing_is_passed_to_metrics_that_take_it(tmp_path, monkeypatch):
    import topobench.evaluate.case as ev

    seen = []

    def fake_evaluate_case(pred, target, *, protocol=None, workers=1, spacing=None):
        seen.append(spacing)
        return {"dice": 1.0}

    monkeypatch.setattr(ev, "evaluate_case", fake_evaluate_case)
    monkeypatch.setattr(ev, "_SPACING_METRICS", None)
    xyz = np.ones((4, 4, 3), bool)
    _save_nifti(tmp_path / "gt" / "v.nii.gz", xyz, np.diag([0.5, 0.25, 3.0, 1.0]))
    _save_nifti(tmp_path / "pred" / "v.nii.gz", xyz, np.diag([0.5, 0.25, 3.0, 1.0]))
    run_evaluation(tmp_path / "pred", tmp_path / "gt", tmp_path / "r", workers=1, metrics=["dice"])
    assert seen == [(3.0, 0.25, 0.5)]
    monkeypatch.setattr(ev, "_SPACING_METRICS", None)


# --------------------------------------------------------------------------------------------
# Probability maps
# --------------------------------------------------------------------------------------------


def test_16_bit_probability_maps_are_scaled_before_the_threshold(tmp_path):
    rng = np.random.default_rng(7)
    target = rng.random((40, 44)) > 0.6
    prob = np.where(target, 0.6 + 0.4 * rng.random(target.shape), 0.4 * rng.random(target.shape))
    (tmp_path / "pred").mkdir()
    iio.imwrite(tmp_path / "pred" / "x.png", np.round(prob * 65535).astype(np.uint16))
    write_mask(tmp_path / "gt" / "x.png", target)
    report = run_evaluation(
        tmp_path / "pred", tmp_path / "gt", tmp_path / "r", workers=1, threshold=0.5
    )
    assert report.ok
    assert float(_rows(tmp_path / "r")[0]["dice"]) == 1.0


def test_8_bit_probability_maps_without_threshold_fail_with_one_message(tmp_path):
    rng = np.random.default_rng(8)
    for i in range(14):
        target = rng.random((20, 24)) > 0.6
        write_mask(tmp_path / "gt" / f"m{i:02d}.png", target)
        (tmp_path / "pred").mkdir(exist_ok=True)
        grey = np.where(target, 200, 30).astype(np.uint8)
        iio.imwrite(tmp_path / "pred" / f"m{i:02d}.png", grey)
    report = run_evaluation(tmp_path / "pred", tmp_path / "gt", tmp_path / "r1", workers=1)
    assert len(report.not_binary) == 14 and len(report.failures) == 14
    assert "14 predictions" in report.hint and "threshold=" in report.hint
    assert "--threshold" not in report.hint
    result = _evaluate(tmp_path / "pred", tmp_path / "gt", "-o", tmp_path / "r2", "-j", "1")
    assert result.exit_code == 1
    assert result.output.count("--threshold") == 1 and "-t T" in result.output
    assert "threshold=" not in result.output
    assert "failed m03" not in result.output  # one message for the run, not one per case
    ok = _evaluate(
        tmp_path / "pred", tmp_path / "gt", "-o", tmp_path / "r3", "-j", "1", "-t", "0.5"
    )
    assert ok.exit_code == 0, ok.output
    assert all(float(r["dice"]) == 1.0 for r in _rows(tmp_path / "r3"))


def test_nnunet_probabilities_with_a_channel(tmp_path):
    rng = np.random.default_rng(10)
    target = rng.random((3, 12, 14)) > 0.6
    fg = np.where(target, 0.8, 0.1).astype(np.float32)
    probs = np.stack([1 - fg, fg])
    (tmp_path / "pred").mkdir()
    np.savez_compressed(tmp_path / "pred" / "case.npz", probabilities=probs)
    write_mask(tmp_path / "gt" / "case.nii.gz", target)
    result = _evaluate(
        tmp_path / "pred", tmp_path / "gt", "-o", tmp_path / "a", "-j", "1", "-t", "0.5"
    )
    assert result.exit_code == 1 and "--channel C" in result.output
    result = _evaluate(
        tmp_path / "pred",
        tmp_path / "gt",
        "-o",
        tmp_path / "b",
        "-j",
        "1",
        "-t",
        "0.5",
        "--channel",
        "1",
    )
    assert result.exit_code == 0, result.output
    assert float(_rows(tmp_path / "b")[0]["dice"]) == 1.0
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary["config"]["channel"] == 1


# --------------------------------------------------------------------------------------------
# Unreadable entries and case names
# --------------------------------------------------------------------------------------------


def test_broken_symlinks_and_loops_are_failures_by_name(tmp_path, folders):
    pred, gt, _, _ = folders
    (pred / "gone.png").symlink_to(tmp_path / "nowhere.png")
    (gt / "gone.png").symlink_to(tmp_path / "nowhere_either.png")
    (pred / "loop.png").symlink_to(pred / "loop.png")
    write_mask(gt / "loop.png", np.ones((4, 4), bool))
    (gt / "c0.png").unlink()
    (gt / "c0.png").symlink_to(tmp_path / "missing_target.png")
    report = run_evaluation(pred, gt, tmp_path / "res", workers=1)
    reasons = dict(report.failures)
    assert set(reasons) == {"gone", "loop", "c0"}
    assert "broken symbolic link" in reasons["gone"] and "nowhere_either.png" in reasons["gone"]
    assert "loop" in reasons["loop"]
    assert "broken symbolic link" in reasons["c0"] and "missing_target.png" in reasons["c0"]
    failures = {r["case"] for r in _rows(tmp_path / "res", "failures.csv")}
    assert failures == {"gone", "loop", "c0"}
    assert report.summary["n_failed"] == 3 and report.summary["n_succeeded"] == 3


@pytest.mark.parametrize("char", ["\n", "\r", "\x0c", "\u2028", "\x85", "\x1e"])
def test_case_names_with_line_breaks_are_refused_at_pairing(tmp_path, folders, char):
    pred, gt, _, _ = folders
    name = f"bad{char}name.png"
    try:
        write_mask(pred / name, np.ones((4, 4), bool))
        write_mask(gt / name, np.ones((4, 4), bool))
    except OSError:
        pytest.skip("the file system does not take this name")
    pairing = pair_files(pred, gt)
    assert f"bad{char}name" not in {p.case for p in pairing.pairs}
    report = run_evaluation(pred, gt, tmp_path / "res", workers=1)
    ((case, reason),) = report.failures
    assert case == f"bad{char}name" and f"U+{ord(char):04X}" in reason
    assert [r["case"] for r in _rows(tmp_path / "res")] == ["c0", "c1", "c2", "c3"]
    resumed = run_evaluation(pred, gt, tmp_path / "res", workers=1, resume=True)
    assert resumed.n_skipped == 4  # cases.csv reads back whole
    with open(tmp_path / "res" / "failures.csv", newline="", encoding="utf-8") as f:
        assert [r["case"] for r in csv.DictReader(f)] == [f"bad{char}name"]


# --------------------------------------------------------------------------------------------
# Error maps and the output folder
# --------------------------------------------------------------------------------------------


def _failing_maps(monkeypatch, fail_on: set[str], error: OSError) -> None:
    import topobench.maps

    real = topobench.maps.write_error_map

    def write(path, pred, target):
        if Path(path).stem in fail_on:
            raise error
        return real(path, pred, target)

    monkeypatch.setattr(topobench.maps, "write_error_map", write)


def test_an_error_map_that_fails_to_write_fails_its_case_and_resume_retries(
    tmp_path, folders, monkeypatch
):
    pred, gt, _, _ = folders
    out, maps = tmp_path / "res", tmp_path / "maps"
    _failing_maps(monkeypatch, {"c1"}, OSError(errno.EIO, "Input/output error"))
    report = run_evaluation(pred, gt, out, workers=1, maps_dir=maps)
    ((case, reason),) = report.failures
    assert case == "c1" and "error map" in reason and "Input/output error" in reason
    assert [r["case"] for r in _rows(out)] == ["c0", "c2", "c3"]
    monkeypatch.undo()
    again = run_evaluation(pred, gt, out, workers=1, maps_dir=maps, resume=True)
    assert again.ok and again.n_evaluated == 1 and (maps / "c1.png").is_file()


def test_a_full_disk_ends_the_run_with_a_resume_message(tmp_path, folders, monkeypatch):
    pred, gt, _, _ = folders
    out, maps = tmp_path / "res", tmp_path / "maps"
    _failing_maps(monkeypatch, {"c1"}, OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(DiskFullError, match="resume=True"):
        run_evaluation(pred, gt, out, workers=1, maps_dir=maps)
    assert [r["case"] for r in _rows(out)] == ["c0"]  # stopped at the full disk
    result = _evaluate(pred, gt, "-o", tmp_path / "cli", "-j", "1", "--maps", maps)
    assert result.exit_code == 2 and not isinstance(result.exception, OSError)
    assert "no space left" in result.output and "--resume" in result.output
    assert "Traceback" not in result.output
    monkeypatch.undo()
    report = run_evaluation(pred, gt, out, workers=1, maps_dir=maps, resume=True)
    assert report.ok and report.n_skipped == 1 and len(_rows(out)) == 4


def test_a_full_disk_while_writing_cases_csv_is_a_clean_error(tmp_path, folders, monkeypatch):
    import topobench.evaluate.store as ev

    pred, gt, _, _ = folders
    real = ev.LineLog.append
    calls = []

    def append(self, values, **kwargs):
        if self.path.name == "cases.csv":
            calls.append(values)
            if len(calls) == 2:
                raise OSError(errno.ENOSPC, "No space left on device", str(self.path))
        real(self, values, **kwargs)

    monkeypatch.setattr(ev.LineLog, "append", append)
    result = _evaluate(pred, gt, "-o", tmp_path / "res", "-j", "1")
    assert result.exit_code == 2
    assert "no space left" in result.output and "--resume" in result.output


def test_output_folder_that_is_a_file_or_not_writable(tmp_path, folders, monkeypatch):
    pred, gt, _, _ = folders
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="is a file"):
        run_evaluation(pred, gt, tmp_path / "file", workers=1)
    result = _evaluate(pred, gt, "-o", tmp_path / "file" / "below", "-j", "1")
    assert result.exit_code == 2 and "is a file" in result.output
    assert not isinstance(result.exception, OSError)
    real_mkdir = Path.mkdir

    def mkdir(self, *args, **kwargs):
        if self.name == "denied":
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    result = _evaluate(pred, gt, "-o", tmp_path / "denied", "-j", "1")
    assert result.exit_code == 2 and "Permission denied" in result.output
    assert not isinstance(result.exception, OSError)


# --------------------------------------------------------------------------------------------
# Columns
# --------------------------------------------------------------------------------------------


def test_e2_column_from_each_case_dimension_not_the_first_one(tmp_path):
    rng = np.random.default_rng(12)
    for i in range(6):  # 2D cases sort first
        mask = rng.random((20, 20)) > 0.5
        write_mask(tmp_path / "gt" / f"a{i}.png", mask)
        write_mask(tmp_path / "pred" / f"a{i}.png", mask)
    target = np.zeros((8, 12, 12), bool)
    target[2:6, 2:10, 2:10] = True
    target[3:5, 4:8, 4:8] = False  # a cavity: b2 = 1
    pred = target.copy()
    pred[3:5, 4:8, 4:8] = True  # filled: an e2 error of 1
    write_mask(tmp_path / "gt" / "z.nii.gz", target)
    write_mask(tmp_path / "pred" / "z.nii.gz", pred)
    report = run_evaluation(tmp_path / "pred", tmp_path / "gt", tmp_path / "r", workers=1)
    assert report.ok, report.failures
    rows = {r["case"]: r for r in _rows(tmp_path / "r")}
    assert "e2" in rows["z"]
    assert float(rows["z"]["e2"]) == evaluate_case(pred, target)["e2"] == 1.0
    assert rows["a0"]["e2"] == ""  # 2D cases have no e2
    assert report.summary["metrics"]["e2"]["n"] == 1
    # A 2D protocol keeps 2D columns; --slices too.
    two = run_evaluation(
        tmp_path / "pred", tmp_path / "gt", tmp_path / "s", workers=1, betti_slices=True
    )
    assert "e2" not in _rows(tmp_path / "s")[0] and two.summary["columns"][-2] == "ags"


def test_cases_csv_keeps_its_numeric_columns_and_the_lock_file_stays(tmp_path, folders):
    # The results loader reads cases.csv: no non-numeric column is added to it.
    pred, gt, _, _ = folders
    out = tmp_path / "res"
    run_evaluation(pred, gt, out, workers=1)
    assert list(_rows(out)[0]) == [
        "case",
        "shape",
        "dice",
        "cldice",
        "e",
        "e0",
        "e1",
        "e0_gt",
        "ags",
        "seconds",
    ]
    assert (out / ".topobench-evaluate.lock").is_file()

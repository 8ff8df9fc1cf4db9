"""A run killed with SIGKILL loses at most the case in flight, and resumes to the same result."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from topobench.evaluate import run_evaluation
from topobench.synth import synthesize

CLI = "from topobench.cli import main; main()"
#: Another thread in the main process: the pool then starts a forkserver instead of forking.
THREAD = (
    "import threading, time; "
    "threading.Thread(target=time.sleep, args=(600,), daemon=True).start(); "
)


def _evaluate_in_background(
    data: Path, out: Path, workers: int, *, threaded: bool = False
) -> subprocess.Popen:
    """``topobench evaluate data/pred data/gt -o out -j workers -q`` in a child process."""
    return subprocess.Popen(
        [sys.executable, "-c", (THREAD if threaded else "") + CLI, "evaluate",
         str(data / "pred"), str(data / "gt"), "-o", str(out), "-j", str(workers), "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_sigkill_mid_run_then_resume(tmp_path):
    data = tmp_path / "data"
    synthesize(data, kind="roads2d", n=16, seed=1, shape=(320, 320))
    reference = run_evaluation(data / "pred", data / "gt", tmp_path / "ref", workers=1)
    assert reference.ok
    out = tmp_path / "killed"
    proc = _evaluate_in_background(data, out, workers=1)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            path = out / "cases.csv"
            if path.exists() and path.read_text().count("\n") >= 4:  # header + 3 cases
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the run finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    # The run was really interrupted: it never reached its end.
    assert json.loads((out / "summary.json").read_text())["status"] == "running"
    rows = _rows(out / "cases.csv")
    header, done = rows[0], rows[1:]
    assert 3 <= len(done) < 16
    # Every line on disk is whole, apart from at most a torn last one.
    assert all(len(r) == len(header) for r in done[:-1])
    report = run_evaluation(data / "pred", data / "gt", out, workers=1, resume=True)
    assert report.ok
    assert report.n_skipped >= 3 and report.n_evaluated >= 1
    assert report.n_skipped + report.n_evaluated == 16
    strip = [[v for k, v in zip(header, r) if k != "seconds"] for r in _rows(out / "cases.csv")]
    ref = [
        [v for k, v in zip(header, r) if k != "seconds"]
        for r in _rows(tmp_path / "ref" / "cases.csv")
    ]
    assert strip == ref


def _descendants(pid: int) -> list[int]:
    """Processes below ``pid`` (children, their children, ...), from /proc."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    out, frontier = [], {pid}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier}
        out += sorted(frontier)
    return out


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
@pytest.mark.parametrize("threaded", [False, True], ids=["fork", "forkserver"])
def test_pool_workers_and_forkserver_end_with_a_killed_main_process(tmp_path, threaded):
    data = tmp_path / "data"
    synthesize(data, kind="vessels2d", n=2, seed=3, shape=(256, 256))
    for folder in ("pred", "gt"):  # many cases, cheaply: links to two files
        for i in range(80):
            os.link(data / folder / f"vessels2d_{i % 2:03d}.png", data / folder / f"c{i:03d}.png")
    out = tmp_path / "killed"
    proc = _evaluate_in_background(data, out, workers=2, threaded=threaded)
    workers: list[int] = []
    left: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            path = out / "cases.csv"
            if path.exists() and path.read_text().count("\n") >= 3:
                workers = _descendants(proc.pid)
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the run finished before it could be killed"
        # the two workers (forked), or the forkserver, resource tracker and the two workers
        assert len(workers) >= (3 if threaded else 2), workers
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_running(p) for p in workers):
            time.sleep(0.1)
        left = [p for p in workers if _running(p)]
    finally:
        if proc.poll() is None:
            proc.kill()
    for pid in left:  # do not leave them behind even when the test fails
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert not left, f"still running after their parent was killed: {left}"
    assert json.loads((out / "summary.json").read_text())["status"] == "running"


@pytest.mark.skipif(sys.platform != "linux", reason="fork and forkserver: Linux")
def test_workers_fork_only_from_a_single_threaded_process():
    code = "from topobench.evaluate.backends import start_method; print(start_method())"
    alone = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    beside = subprocess.run([sys.executable, "-c", THREAD + code], capture_output=True, text=True)
    assert (alone.stdout.strip(), beside.stdout.strip()) == ("fork", "forkserver")

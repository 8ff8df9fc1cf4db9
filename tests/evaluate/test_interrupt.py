"""A run killed with SIGKILL loses at most the case in flight, and resumes to the same result."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from topobench.evaluate import run_evaluation
from topobench.synth import synthesize

CLI = "from topobench.cli import main; main()"


def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_sigkill_mid_run_then_resume(tmp_path):
    data = tmp_path / "data"
    synthesize(data, kind="roads2d", n=16, seed=1, shape=(320, 320))
    reference = run_evaluation(data / "pred", data / "gt", tmp_path / "ref", workers=1)
    assert reference.ok
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CLI,
            "evaluate",
            str(data / "pred"),
            str(data / "gt"),
            "-o",
            str(out),
            "-j",
            "1",
            "-q",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
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
    rows = _rows(out / "cases.csv")
    header, done = rows[0], rows[1:]
    assert 3 <= len(done) < 16
    # Every line on disk is whole, apart from at most a torn last one.
    assert all(len(r) == len(header) for r in done[:-1])
    report = run_evaluation(data / "pred", data / "gt", out, workers=1, resume=True)
    assert report.ok
    assert report.n_skipped >= 3 and report.n_skipped + report.n_evaluated == 16
    strip = [[v for k, v in zip(header, r) if k != "seconds"] for r in _rows(out / "cases.csv")]
    ref = [
        [v for k, v in zip(header, r) if k != "seconds"]
        for r in _rows(tmp_path / "ref" / "cases.csv")
    ]
    assert strip == ref

"""The packaged leaderboard: found by name from any directory, and shipped in the wheel."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from topobench.cli import app
from topobench.errors import InvalidParameterError
from topobench.leaderboards import leaderboard_names, leaderboard_path, resolve_source

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_packaged_leaderboard_is_found_by_name_and_path_wins(tmp_path, monkeypatch):
    assert "contextloss2025" in leaderboard_names()
    path = leaderboard_path("contextloss2025")
    assert path == leaderboard_path("contextloss2025.csv")
    assert path.is_file() and path.parent.name == "leaderboards"
    monkeypatch.chdir(tmp_path)
    assert resolve_source("contextloss2025") == path
    (tmp_path / "contextloss2025").mkdir()  # a folder of that name in the cwd is used instead
    assert resolve_source("contextloss2025") == Path("contextloss2025")
    with pytest.raises(InvalidParameterError, match="contextloss2025"):
        leaderboard_path("nope")


def test_table_by_name_outside_the_repository(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    by_name = runner.invoke(app, ["table", "contextloss2025", "--table", "1"])
    assert by_name.exit_code == 0, by_name.output
    by_path = runner.invoke(app, ["table", str(leaderboard_path("contextloss2025")), "-t", "1"])
    assert by_name.output == by_path.output
    assert "Table 1" in by_name.output and "CLoss" in by_name.output


@pytest.mark.slow
def test_wheel_ships_the_leaderboard_and_table_runs_from_it(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         str(ROOT), "-w", str(wheels)],
        check=True,
    )
    (wheel,) = wheels.glob("topobench-*.whl")
    assert "topobench/leaderboards/contextloss2025.csv" in zipfile.ZipFile(wheel).namelist()
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
         str(wheel)],
        check=True,
    )
    code = (
        "import sys, topobench; assert topobench.__file__.startswith(sys.argv[1]); "
        "from topobench.cli import main; "
        "sys.argv = ['topobench', 'table', 'contextloss2025', '--table', '1']; main()"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, str(target)], cwd=tmp_path, capture_output=True,
        text=True, env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
    )
    assert run.returncode == 0, run.stderr
    assert "Table 1" in run.stdout

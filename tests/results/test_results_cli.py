"""The table, leaderboard add and plot commands on synthetic runs and the leaderboard."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from typer.testing import CliRunner

from topobench.cli import app
from topobench.errors import InvalidParameterError
from topobench.results import load_results, plot_case_scatter, plot_gamma_sweep

LEADERBOARD = (
    Path(__file__).resolve().parents[2] / "topobench" / "leaderboards" / "contextloss2025.csv"
)
runner = CliRunner()


@pytest.fixture
def roads_runs(make_run: Callable[..., Path], tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    base = rng.uniform(0.6, 0.8, 10)
    cases = [f"c{i}" for i in range(10)]
    make_run("dce", loss="dice_ce", method="Dice & CE", gamma=None, cases=cases,
             values={"postprocessed": {"dice": base, "e0_gt": np.full(10, 2.0)}})
    for gamma in (0.1, 0.2):
        make_run(f"closs{gamma}", gamma=gamma, cases=cases,
                 values={"postprocessed": {"dice": base - gamma / 10,
                                           "e0_gt": np.full(10, 2.0 - gamma)}})
    return tmp_path / "runs"


def test_table_command_writes_each_format(roads_runs: Path, tmp_path: Path) -> None:
    for fmt, marker in (("md", "| Dataset |"), ("latex", r"\begin{tabular}"),
                        ("csv", "table,dataset")):
        out = tmp_path / f"t1.{fmt}"
        result = runner.invoke(app, ["table", str(roads_runs), "-t", "1", "-f", fmt,
                                     "-o", str(out)])
        assert result.exit_code == 0, result.output
        assert marker in out.read_text()
    result = runner.invoke(app, ["table", str(roads_runs), "-t", "all", "-f", "md"])
    assert result.exit_code == 0
    assert "**Table 1:" in result.output and "**Table 7:" in result.output
    assert "**Table 4:" not in result.output  # no Thin CLoss runs: no table 4


@pytest.mark.parametrize(
    ("args", "message"),
    [(["nowhere"], "no such file"), (["{runs}", "-t", "9"], "1-7 or all"),
     (["{runs}", "-f", "docx"], "csv, md or latex")],
)
def test_table_command_errors(roads_runs: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["table", *(a.format(runs=roads_runs) for a in args)])
    assert result.exit_code == 2
    assert message in result.output


def test_leaderboard_add_renders_published_and_own_rows(roads_runs: Path,
                                                        tmp_path: Path) -> None:
    board = tmp_path / "board.csv"
    shutil.copy(LEADERBOARD, board)
    args = ["leaderboard", "add", str(roads_runs), "--name", "rerun", "-l", str(board)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, args).exit_code == 2  # the name is taken
    assert runner.invoke(app, [*args, "--replace"]).exit_code == 0
    tidy = load_results([board])
    assert set(tidy["source"]) == {"Schacht et al. 2025", "rerun"}
    # the published rows are rewritten unchanged, the new ones appended
    original = LEADERBOARD.read_text().splitlines()
    assert board.read_text().splitlines()[: len(original)] == original
    assert (tidy["source"] == "rerun").sum() == (load_results([roads_runs])).shape[0]
    result = runner.invoke(app, ["table", str(board), "-t", "1", "-f", "md", "-d", "Roads"])
    lines = result.output.splitlines()
    header = next(ln for ln in lines if ln.startswith("| Dataset"))
    assert header.startswith("| Dataset | Source | Method |")
    # the paper's figures ("roads") and the rerun's recorded protocol are two configurations:
    # numbered, shown side by side, never marked against each other
    assert any(ln.startswith("<!-- metric configuration: [1] roads") for ln in lines)
    assert any(ln.startswith("Metrics [2] {") for ln in lines)
    assert any("| rerun | nnU-Net |" in ln for ln in lines)
    assert any("| Schacht et al. 2025 | nnU-Net |" in ln for ln in lines)
    published = next(ln for ln in lines if "| 0.08 |" in ln)
    assert "79.82" in published


def test_plot_command_and_pngs(roads_runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "sweep.png"
    result = runner.invoke(app, ["plot", str(roads_runs), "--out", str(out)])
    assert result.exit_code == 0, result.output
    image = iio.imread(out)
    assert image.shape[0] > 200 and image.shape[1] > 300
    assert np.unique(image.reshape(-1, image.shape[-1]), axis=0).shape[0] > 50
    scatter = tmp_path / "scatter.pdf"
    result = runner.invoke(app, ["plot", str(roads_runs), "--kind", "scatter", "--x",
                                 "Dice & CE", "--y", "CLoss@0.2", "-m", "dice",
                                 "--out", str(scatter)])
    assert result.exit_code == 0, result.output
    assert scatter.read_bytes().startswith(b"%PDF")


def test_plot_errors(roads_runs: Path, tmp_path: Path) -> None:
    tidy = load_results([roads_runs])
    with pytest.raises(InvalidParameterError, match="several weights"):
        plot_case_scatter(tidy, tmp_path / "s.png", x="Dice & CE", y="CLoss")
    with pytest.raises(InvalidParameterError, match="ending in"):
        plot_gamma_sweep(tidy, tmp_path / "s.jpg")
    with pytest.raises(InvalidParameterError, match="found none"):
        plot_case_scatter(tidy, tmp_path / "s.png", x="Dice & CE", y="clDice")
    result = runner.invoke(app, ["plot", str(roads_runs), "--kind", "scatter",
                                 "--out", str(tmp_path / "s.png")])
    assert result.exit_code == 2

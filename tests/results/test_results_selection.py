"""Which rows each table takes from runs: the selection rules of topobench.results.tables."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from topobench.results import build_table, load_results, render_tables

CASES = [f"c{i}" for i in range(6)]


def _run(make_run: Callable[..., Path], name: str, loss: str, method: str,
         gamma: float | None, *, cldice: float = 0.5, dataset: str = "CLD") -> None:
    make_run(name, dataset=dataset, loss=loss, method=method, gamma=gamma, cases=CASES,
             values={"postprocessed": {"cldice": np.full(len(CASES), cldice)}})


@pytest.fixture
def ablation(make_run: Callable[..., Path], tmp_path: Path) -> Path:
    _run(make_run, "dce", "dice_ce", "Dice & CE", None)
    for gamma, cl in ((0.1, 0.80), (0.3, 0.86), (0.5, 0.84)):
        _run(make_run, f"cc{gamma}", "compound_cldice", "Compound clDice", gamma, cldice=cl)
    _run(make_run, "cl0.3", "cldice", "clDice", 0.3)
    _run(make_run, "thin", "thin_closs", "Thin CLoss", 0.2)
    for gamma in (0.08, 0.2):
        _run(make_run, f"closs{gamma}", "closs", "CLoss", gamma)
    _run(make_run, "other-dce", "dice_ce", "Dice & CE", None, dataset="Roads")
    _run(make_run, "other-cc", "compound_cldice", "Compound clDice", 0.5, dataset="Roads")
    return tmp_path / "runs"


def _rows(table) -> list[tuple]:
    return [(r.dataset, r.group, r.method, r.gamma) for r in table.rows]


def test_table_1_keeps_the_best_cldice_weight(ablation: Path) -> None:
    rows = _rows(build_table(load_results([ablation]), 1, datasets=["CLD"]))
    assert rows == [("CLD", "", "nnU-Net", None), ("CLD", "", "Dice & CE", None),
                    ("CLD", "", "clDice", 0.3), ("CLD", "", "Compound clDice", 0.3),
                    ("CLD", "", "CLoss", 0.08), ("CLD", "", "CLoss", 0.2)]


def test_table_4_critical_masks_on_datasets_with_thin_closs(ablation: Path) -> None:
    rows = _rows(build_table(load_results([ablation]), 4))
    assert [r[1] for r in rows] == ["w/o", "Full skeleton", "Full skeleton", "Full skeleton",
                                    "Skeleton at topological errors",
                                    "Context at topological errors",
                                    "Context at topological errors"]
    assert {r[0] for r in rows} == {"CLD"}  # Roads has no Thin CLoss run


def test_table_5_pairs_cldice_and_compound_at_one_weight(ablation: Path) -> None:
    rows = _rows(build_table(load_results([ablation]), 5))
    assert rows == [("CLD", "", "clDice", 0.3), ("CLD", "", "Compound clDice", 0.3)]


def test_table_6_needs_a_sweep(ablation: Path) -> None:
    rows = _rows(build_table(load_results([ablation]), 6))
    assert [r[2] for r in rows] == ["nnU-Net", "Dice & CE", "Compound clDice",
                                    "Compound clDice", "Compound clDice", "CLoss", "CLoss"]
    assert {r[0] for r in rows} == {"CLD"}


def test_std_and_latex_escaping(make_run: Callable[..., Path], tmp_path: Path) -> None:
    make_run("odd", method="U-Net_v2 & 50%", loss="closs", gamma=0.1, cases=CASES,
             values={"postprocessed": {"dice": np.linspace(0.5, 0.6, 6)}})
    table = build_table(load_results([tmp_path / "runs"]), 1, baseline=None)
    latex = render_tables([table], "latex", show_std=True)
    assert r"U-Net\_v2 \& 50\%" in latex
    std = 100 * np.linspace(0.5, 0.6, 6).std(ddof=1)
    assert f"55.00 $\\pm$ {std:.2f}" in latex
    md = render_tables([table], "md", show_std=True)
    assert f"55.00 ± {std:.2f}" in md


def test_evaluate_folders_are_found_recursively(tmp_path: Path) -> None:
    out = tmp_path / "results" / "unet"
    out.mkdir(parents=True)
    (out / "cases.csv").write_text("case,shape,dice,seconds\nx,4x4,0.5,0.1\ny,4x4,0.7,0.1\n")
    tidy = load_results([tmp_path / "results"])
    assert set(tidy["method"]) == {"unet"}
    table = build_table(tidy, 1, baseline=None)
    assert table.rows[0].cells[0].text() == "60.00"
    assert table.rows[0].cells[1].text() == "n/a"

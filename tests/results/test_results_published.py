"""``topobench table`` on the published leaderboard reproduces the paper's Tables 1-7.

Figure by figure: every printed figure appears in its row (dataset, method, weight, and the
table's leading column) and column, with the paper's number of decimals. The expected figures
come from the leaderboard (whose ``reference`` column names the tables a figure is printed in)
and, where ``../shared/paper`` exists, from the paper's own CSVs.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from topobench.cli import app

ROOT = Path(__file__).resolve().parents[2]
LEADERBOARD = ROOT / "topobench" / "leaderboards" / "contextloss2025.csv"
PAPER = ROOT.parent / "shared" / "paper"
COLUMNS = {"dice": "Dice", "cldice": "clDice", "e": "$e$", "e1": "$e_1$", "e0": "$e_0$",
           "e0_gt": "$e_0$-Gt", "ags": "AGS", "seconds_per_epoch": "Time/epoch",
           "minutes_per_training": "Time/training"}
UNITS = {"seconds_per_epoch": "s", "minutes_per_training": "min"}
MASKS = {"none": "w/o", "skeleton": "Full skeleton", "thin": "Skeleton at topological errors",
         "context": "Context at topological errors"}
GROUP_HEADERS = ("Post-Processing", "Epochs", "Critical pixel mask")


def render(number: int, *extra: str) -> str:
    result = CliRunner().invoke(
        app, ["table", str(LEADERBOARD), "--table", str(number), "--format", "latex", *extra]
    )
    assert result.exit_code == 0, result.output
    return result.output


def _clean(cell: str) -> str:
    cell = cell.replace(r"$^\dagger$", "").strip()
    match = re.fullmatch(r"\\textbf\{(.*)\}", cell)
    return (match.group(1) if match else cell).replace(r"\&", "&")


def _split(line: str) -> list[str]:
    return re.split(r"(?<!\\)&", line[:-2])


def parse_latex(text: str) -> tuple[list[str], list[dict[str, str]]]:
    """Header names and rows (label columns forward-filled as the layout implies)."""
    body = text.split(r"\toprule", 1)[1].split(r"\bottomrule", 1)[0]
    lines = [ln.strip() for ln in body.splitlines() if ln.strip().endswith(r"\\")]
    header = [_clean(c) for c in _split(lines[0])]
    header = [h.replace(r" $\uparrow$", "").replace(r" $\downarrow$", "") for h in header]
    rows: list[dict[str, str]] = []
    for line in lines[1:]:
        cells = dict(zip(header, (_clean(c) for c in _split(line))))
        previous = rows[-1] if rows else {}
        continued = cells.get("Method", cells.get("Loss")) == ""
        for name in ("Dataset", "Critical pixel mask", "Method"):
            if name in cells and cells[name] == "":
                cells[name] = previous[name]
        weight = "Weight $\\gamma$"
        if weight in cells and cells[weight] == "" and continued and "Critical pixel mask" \
                not in cells:
            cells[weight] = previous[weight]
        rows.append(cells)
    return header, rows


def expected_rows(number: int) -> pd.DataFrame:
    frame = pd.read_csv(LEADERBOARD, dtype=str, keep_default_na=False)
    return frame[frame["reference"].str.contains(rf"Table {number}\b")]


def row_key(number: int, dataset: str, method: str, gamma: str, group: str) -> tuple:
    return (dataset, method, gamma if number != 7 else "", group)


def parsed_index(number: int, text: str, datasets: set[str]) -> dict[tuple, dict[str, str]]:
    header, rows = parse_latex(text)
    group_column = next((h for h in header if h in GROUP_HEADERS), None)
    index = {}
    for cells in rows:
        dataset = cells.get("Dataset", next(iter(datasets)) if len(datasets) == 1 else "")
        method = cells.get("Method", cells.get("Loss"))
        key = row_key(number, dataset, method, cells.get("Weight $\\gamma$", ""),
                      cells.get(group_column, "") if group_column else "")
        assert key not in index, f"duplicate row {key}"
        index[key] = cells
    return index


def leaderboard_group(number: int, row: pd.Series) -> str:
    if number == 2:
        return {"with": "with", "without": "w/o"}[row["postprocessing"]]
    if number == 3:
        return row["finetune_epochs"]
    if number == 4:
        return MASKS[row["critical_mask"]]
    return ""


@pytest.mark.parametrize("number", [1, 2, 3, 4, 5, 6, 7])
def test_every_published_figure_appears_as_printed(number: int) -> None:
    expected = expected_rows(number)
    datasets = set(expected["dataset"])
    extra = ["--dataset", "Roads"] if number == 6 else []
    index = parsed_index(number, render(number, *extra), datasets)
    configs = set()
    for _, row in expected.iterrows():
        key = row_key(number, row["dataset"], row["method"], row["gamma"],
                      leaderboard_group(number, row))
        configs.add(key)
        assert key in index, f"Table {number}: no row {key}; rows: {sorted(index)}"
        scale = 100 if row["metric"] in ("dice", "cldice", "ags") else 1
        value = float(row["value"]) * scale
        text = f"{value:.{int(row['decimals'])}f}{UNITS.get(row['metric'], '')}"
        assert index[key][COLUMNS[row["metric"]]] == text, (number, key, row["metric"])
    # exactly the paper's rows, no more
    assert set(index) == configs


def test_table_6_without_a_dataset_filter_keeps_the_roads_block() -> None:
    text = render(6)
    index = parsed_index(6, text, set())
    roads = {k for k in index if k[0] == "Roads"}
    assert len(roads) == 10
    assert {k[0] for k in index} == {"Roads", "CLD"}  # Vessap has no sweep (two weights)


def test_best_figures_are_bold() -> None:
    text = render(1)
    assert r"\textbf{89.47}" in text  # Roads clDice, CLoss 0.08
    assert r"\textbf{0.494}" in text  # Roads e0-Gt, CLoss 0.2
    assert r"\textbf{1.525}" in text  # CLD e0-Gt, CLoss (Dice)
    assert r"\textbf{79.69}" not in text


@pytest.fixture
def paper() -> Path:
    if not (PAPER / "published_results.csv").is_file():
        pytest.skip("../shared/paper is not present")
    return PAPER


def _paper_group(number: int, row: pd.Series) -> str:
    if number == 2:
        return {"with": "with", "without": "w/o"}[row["postprocessing"]]
    if number == 3:
        return row["epochs"]
    if number == 4:
        text = row["critical_mask"]
        return "w/o" if text == "none" else text[0].upper() + text[1:]
    return ""


@pytest.mark.parametrize("number", [1, 2, 3, 4, 5, 6])
def test_tables_agree_with_the_shared_paper_csv(paper: Path, number: int) -> None:
    published = pd.read_csv(paper / "published_results.csv", dtype=str, keep_default_na=False)
    published = published[published["table"] == str(number)]
    extra = ["--dataset", "Roads"] if number == 6 else []
    index = parsed_index(number, render(number, *extra), set(published["dataset"]))
    for _, row in published.iterrows():
        key = row_key(number, row["dataset"], row["method"], row["gamma"],
                      _paper_group(number, row))
        assert key in index, f"Table {number}: no row {key}"
        for metric in ("dice", "cldice", "e", "e1", "e0", "e0_gt", "ags"):
            assert float(index[key][COLUMNS[metric]]) == float(row[metric]), (key, metric)
    assert len(index) == len(published)


def test_runtime_agrees_with_the_shared_paper_csv(paper: Path) -> None:
    published = pd.read_csv(paper / "published_runtime.csv", dtype=str)
    index = parsed_index(7, render(7), {"Roads"})
    for _, row in published.iterrows():
        cells = index[("Roads", row["loss"], "", "")]
        assert cells["Time/epoch"] == f"{row['seconds_per_epoch']}s"
        assert cells["Time/training"] == f"{row['minutes_per_training']}min"
    assert len(index) == len(published)

"""The results loader refuses wrong numbers by name and never merges rows of different runs."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from topobench.errors import ReadError
from topobench.results import aggregate_cells, build_table, load_results, write_tidy_csv


def write_evaluation(folder: Path, values: dict[str, Sequence[float]],
                     cases: Sequence[str] = ("a", "b", "c"), *, dataset: str = "Roads",
                     threshold: float | None = None, window: int | None = 375) -> Path:
    """A ``topobench evaluate`` output: cases.csv and a complete summary.json."""
    folder.mkdir(parents=True)
    frame = pd.DataFrame({"case": list(cases), "shape": "8x8"})
    for metric, column in values.items():
        frame[metric] = list(column)
    frame["seconds"] = 0.1
    frame.to_csv(folder / "cases.csv", index=False)
    protocol = {"name": "roads", "betti_window": window, "topobench_version": "0.1.0"}
    (folder / "summary.json").write_text(json.dumps({
        "format": "topobench-evaluate/1", "status": "complete", "dataset": dataset,
        "config": {"protocol": protocol, "threshold": threshold}}))
    return folder


def _means(tidy: pd.DataFrame, metric: str = "dice") -> dict[str, float]:
    cells = aggregate_cells(tidy)
    cells = cells[cells["metric"] == metric]
    return dict(zip(cells["method"], cells["mean"]))


# item: runs in different parents with one folder name ----------------------------------------


def test_evaluations_with_one_folder_name_in_two_parents_stay_apart(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    write_evaluation(runs / "exp1" / "modelA", {"dice": [0.9, 0.8, 0.7]})
    write_evaluation(runs / "exp2" / "modelA", {"dice": [0.3, 0.2, 0.1]})
    write_evaluation(runs / "exp2" / "modelB", {"dice": [0.5, 0.5, 0.5]})
    tidy = load_results([runs])
    assert set(tidy["run"]) == {"exp1/modelA", "exp2/modelA", "exp2/modelB"}
    # the clashing names become their run paths; a unique one keeps its folder name
    assert _means(tidy) == pytest.approx({"exp1/modelA": 0.8, "exp2/modelA": 0.2,
                                          "modelB": 0.5})
    table = build_table(tidy, 1, baseline=None)
    assert sorted(r.method for r in table.rows) == ["exp1/modelA", "exp2/modelA", "modelB"]
    # the same folders given one by one: the run id is the path as given
    tidy = load_results([runs / "exp1" / "modelA", runs / "exp2" / "modelA" / "cases.csv"])
    assert set(tidy["method"]) == {(runs / "exp1" / "modelA").as_posix(),
                                   (runs / "exp2" / "modelA").as_posix()}
    # a folder reached twice is read once
    tidy = load_results([runs, runs / "exp1"])
    assert len(tidy) == 9


def test_training_runs_of_one_configuration_in_two_parents_are_refused(
        make_run: Callable[..., Path], tmp_path: Path) -> None:
    make_run("exp1/closs", values={"postprocessed": {"dice": [0.9, 0.8, 0.7]}})
    make_run("exp2/closs", values={"postprocessed": {"dice": [0.3, 0.2, 0.1]}})
    with pytest.raises(ReadError, match="runs 'exp1/closs' and 'exp2/closs'") as info:
        load_results([tmp_path / "runs"])
    assert "never averaged" in str(info.value) and "case 'a'" in str(info.value)
    # one of them alone is fine
    tidy = load_results([tmp_path / "runs" / "exp1"])
    assert _means(tidy[tidy["postprocessing"] == "with"])["CLoss"] == pytest.approx(0.8)


def test_runs_sharing_one_pretrained_model_count_its_rows_once(
        make_run: Callable[..., Path], tmp_path: Path) -> None:
    pre = {"pretrained": {"dice": [0.4, 0.6, 0.8]}}
    make_run("dce", loss="dice_ce", method="Dice & CE", gamma=None, values=pre)
    make_run("closs", values=pre)
    tidy = load_results([tmp_path / "runs"])
    cells = aggregate_cells(tidy)
    nnunet = cells[(cells["method"] == "nnU-Net") & (cells["metric"] == "dice")].iloc[0]
    assert (nnunet["mean"], nnunet["n"]) == (pytest.approx(0.6), 3)
    make_run("closs-other-cases", gamma=0.3, cases=("a", "b"),
             values={"pretrained": {"dice": [0.4, 0.6]}})
    with pytest.raises(ReadError, match="hold different cases"):
        load_results([tmp_path / "runs"])


# item: duplicate case rows and values out of range ------------------------------------------


def test_duplicate_case_rows_with_different_values_are_refused(tmp_path: Path) -> None:
    folder = write_evaluation(tmp_path / "runs" / "m", {"dice": [0.9, 0.5, 0.7]},
                              cases=("a", "b", "a"))
    with pytest.raises(ReadError, match=r"run 'm'.*case 'a'.*different dice values \(0.7 and "
                                        r"0.9\)"):
        load_results([tmp_path / "runs"])
    (folder / "cases.csv").write_text("case,dice\na,0.9\nb,0.5\na,0.9\n")
    tidy = load_results([tmp_path / "runs"])  # an exact repeat counts once
    cells = aggregate_cells(tidy)
    assert cells["n"].tolist() == [2] and cells["mean"].tolist() == [pytest.approx(0.7)]


@pytest.mark.parametrize(("metric", "text", "message"), [
    ("dice", "1.7", "dice = 1.7 is outside the range of Dice, [0, 1]"),
    ("e0", "-5", "e0 = -5 is outside the range of e0, [0, inf]"),
    ("cldice", "79.5", "not in percent (divide by 100)"),
    ("e", "inf", "e = inf is not finite"),
    ("ags", "-inf", "ags = -inf is not finite"),
    ("dice", "nan", "holds NaN"),
    ("dice", "NaN", "holds NaN"),
])
def test_impossible_figures_are_refused_by_run_case_and_metric(
        tmp_path: Path, metric: str, text: str, message: str) -> None:
    folder = tmp_path / "runs" / "exp" / "m"
    write_evaluation(folder, {"dice": [0.5, 0.5], "cldice": [0.5, 0.5], "e": [1, 1],
                              "e0": [1, 1], "ags": [0.5, 0.5]}, cases=("a", "b"))
    frame = pd.read_csv(folder / "cases.csv", dtype=str)
    frame.loc[1, metric] = text
    frame.to_csv(folder / "cases.csv", index=False)
    with pytest.raises(ReadError) as info:
        load_results([tmp_path / "runs"])
    assert message in str(info.value)
    if "NaN" not in message:
        assert "run 'exp/m'" in str(info.value) and "case 'b'" in str(info.value)
    else:
        assert "cases.csv" in str(info.value) and repr(metric) in str(info.value)


def test_an_empty_field_is_a_metric_not_measured(tmp_path: Path) -> None:
    folder = write_evaluation(tmp_path / "m", {"dice": [0.5, 0.7]}, cases=("a", "b"))
    (folder / "cases.csv").write_text("case,dice,e2\na,0.5,\nb,0.7,3\n")
    cells = aggregate_cells(load_results([folder])).set_index("metric")
    assert cells.loc["dice", "n"] == 2 and cells.loc["e2", "n"] == 1


def test_runs_and_leaderboards_are_checked_too(make_run: Callable[..., Path],
                                               tmp_path: Path) -> None:
    make_run("closs", values={"raw": {"e0_gt": [1.0, -2.0, 0.0]}})
    with pytest.raises(ReadError, match=r"run 'closs'.*without post-processing.*case 'b'.*"
                                        r"e0_gt = -2 is outside"):
        load_results([tmp_path / "runs"])
    board = tmp_path / "board.csv"
    write_tidy_csv(pd.DataFrame({"source": ["x"], "dataset": ["Roads"], "method": ["CLoss"],
                                 "metric": ["dice"], "value": [79.69]}), board)
    with pytest.raises(ReadError, match=r"board.csv: entry 'x'.*dice = 79.69.*divide by 100"):
        load_results([board])
    write_tidy_csv(pd.DataFrame({"source": ["x", "x"], "dataset": ["Roads"] * 2,
                                 "method": ["CLoss"] * 2, "metric": ["dice"] * 2,
                                 "value": [0.7, 0.8]}), board)
    with pytest.raises(ReadError, match="more than once with different dice values"):
        load_results([board])


def test_published_leaderboard_passes_the_checks() -> None:
    board = Path(__file__).resolve().parents[2]
    path = next(p for p in (board / "topobench" / "leaderboards" / "contextloss2025.csv",
                            board / "leaderboards" / "contextloss2025.csv") if p.is_file())
    tidy = load_results([path])
    assert len(tidy) == len(pd.read_csv(path))
    assert np.isfinite(tidy["value"]).all()

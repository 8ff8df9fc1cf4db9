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


# item: methods on different cases; the metric configuration is part of the key ---------------


@pytest.fixture
def uneven(tmp_path: Path) -> Path:
    """Method A on cases a-d (d very good), B on a-c only; B is better on a-c."""
    runs = tmp_path / "runs"
    write_evaluation(runs / "A", {"dice": [0.5, 0.5, 0.5, 1.0], "e0": [2, 2, 2, 0]},
                     cases=("a", "b", "c", "d"))
    write_evaluation(runs / "B", {"dice": [0.6, 0.6, 0.6], "e0": [1, 1, 1]},
                     cases=("a", "b", "c"))
    return runs


def _row(table, method: str):  # noqa: ANN001, ANN202
    return next(r for r in table.rows if r.method == method)


def test_methods_on_different_cases_are_compared_on_the_shared_ones(uneven: Path) -> None:
    from topobench.results import render_tables

    tidy = load_results([uneven])
    table = build_table(tidy, 1, baseline="A")
    a, b = _row(table, "A"), _row(table, "B")
    assert a.cells[0].value == pytest.approx(50.0) and a.cells[0].n == 3  # d left out
    assert b.cells[0].best and not a.cells[0].best
    assert b.cells[0].comparison is not None
    assert b.cells[0].comparison.mean_difference == pytest.approx(10.0)
    note = "Roads: Dice, e0 are compared on the 3 cases every row has (1 left out: d)."
    assert table.notes == (note,)
    for fmt in ("md", "latex"):
        assert note in render_tables([table], fmt)
    csv = pd.read_csv(__import__("io").StringIO(render_tables([table], "csv")))
    assert set(csv["note"]) == {note} and set(csv["dice_n"]) == {3}


def test_cases_all_keeps_own_cases_says_so_and_marks_no_best(uneven: Path) -> None:
    table = build_table(load_results([uneven]), 1, baseline=None, cases="all")
    a, b = _row(table, "A"), _row(table, "B")
    assert a.cells[0].value == pytest.approx(62.5) and a.cells[0].n == 4
    assert b.cells[0].value == pytest.approx(60.0) and b.cells[0].n == 3
    assert not any(c.best for r in table.rows for c in r.cells)
    assert "not the same ones (no best mark)" in table.caption


def test_rows_without_a_shared_case_are_refused(tmp_path: Path) -> None:
    from topobench.errors import InvalidParameterError

    write_evaluation(tmp_path / "runs" / "A", {"dice": [0.5]}, cases=("a",))
    write_evaluation(tmp_path / "runs" / "B", {"dice": [0.6]}, cases=("b",))
    with pytest.raises(InvalidParameterError, match=r"Roads: the rows A, B share no case for "
                                                    r"Dice.*cases='all'"):
        build_table(load_results([tmp_path / "runs"]), 1)


def test_other_protocol_or_threshold_is_another_row_never_compared(
        make_run: Callable[..., Path], tmp_path: Path) -> None:
    from topobench.results import render_tables

    make_run("dce", loss="dice_ce", method="Dice & CE", gamma=None,
             values={"postprocessed": {"dice": [0.5, 0.5, 0.5]}})
    make_run("c8", values={"postprocessed": {"dice": [0.7, 0.7, 0.7]}})
    c4 = make_run("c4", values={"postprocessed": {"dice": [0.9, 0.9, 0.9]}})
    record = json.loads((c4 / "run.json").read_text())
    record["protocol"]["connectivity"] = 4
    (c4 / "run.json").write_text(json.dumps(record))
    tidy = load_results([tmp_path / "runs"])  # not refused: c4 is another configuration
    table = build_table(tidy, 1)
    closs = [r for r in table.rows if r.method == "CLoss"]
    assert sorted(r.cells[0].value for r in closs) == pytest.approx([70.0, 90.0])
    by_value = {round(r.cells[0].value): r for r in closs}
    assert by_value[70].cells[0].comparison is not None  # against Dice & CE, same protocol
    assert by_value[90].cells[0].comparison is None  # no baseline in its configuration
    # each is the best of its own configuration: 90 is never set against 70
    assert by_value[90].cells[0].best and by_value[70].cells[0].best
    assert "compared only within one configuration" in table.caption
    md = render_tables([table], "md")
    assert "| Metrics |" in md and "[2]" in md and '"connectivity": 4' in md
    # an evaluation binarised at another threshold: its own configuration too
    for name, threshold in (("t0", None), ("t5", 0.5)):
        write_evaluation(tmp_path / "evals" / name, {"dice": [0.5, 0.6, 0.7]},
                         threshold=threshold)
    from topobench.results import read_case_csv
    rows = pd.concat([read_case_csv(tmp_path / "evals" / n / "cases.csv", method="M")
                      for n in ("t0", "t5")])
    keys = set(rows["protocol"])
    assert len(keys) == 2 and any('"threshold": 0.5' in k for k in keys)
    assert len(build_table(rows, 1, baseline=None).rows) == 2


# items: leaderboard add applies the checks; table with only unfinished sources ----------------


def test_leaderboard_add_refuses_wrong_figures_and_keeps_runs_apart(
        make_run: Callable[..., Path], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from topobench.cli import app

    runner = CliRunner()
    board = tmp_path / "board.csv"
    good = tmp_path / "good"
    write_evaluation(good / "exp1" / "modelA", {"dice": [0.9, 0.8, 0.7]})
    write_evaluation(good / "exp2" / "modelA", {"dice": [0.3, 0.2, 0.1]})
    res = runner.invoke(app, ["leaderboard", "add", str(good), "--name", "mine", "-l",
                              str(board)])
    assert res.exit_code == 0, res.output
    rows = pd.read_csv(board)
    assert set(rows["run"]) == {"exp1/modelA", "exp2/modelA"}
    assert rows.groupby("method")["value"].mean().to_dict() == pytest.approx(
        {"exp1/modelA": 0.8, "exp2/modelA": 0.2})
    before = board.read_bytes()
    make_run("bad", values={"postprocessed": {"dice": [0.5, 1.7, 0.5]}})
    dup = write_evaluation(tmp_path / "dup" / "m", {"dice": [0.9, 0.5]}, cases=("a", "a"))
    for source, message in ((tmp_path / "runs", "dice = 1.7 is outside"),
                            (dup.parent, "different dice values")):
        res = runner.invoke(app, ["leaderboard", "add", str(source), "--name", "other", "-l",
                                  str(board)])
        assert res.exit_code == 2, res.output
        assert message in res.output and "Traceback" not in res.output
        assert board.read_bytes() == before  # nothing appended


def test_table_of_unfinished_sources_is_a_clean_error(make_run: Callable[..., Path],
                                                      tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from topobench.cli import app

    make_run("busy", status="running")
    busy = write_evaluation(tmp_path / "evals" / "busy", {"dice": [0.5, 0.5, 0.5]})
    summary = json.loads((busy / "summary.json").read_text())
    (busy / "summary.json").write_text(json.dumps({**summary, "status": "running"}))
    runner = CliRunner()
    for source in (tmp_path / "runs", tmp_path / "evals"):
        res = runner.invoke(app, ["table", str(source)])
        assert res.exit_code == 2, res.output
        assert res.exception is None or isinstance(res.exception, SystemExit)
        assert "hold no results" in res.output and "--include-running" in res.output
    res = runner.invoke(app, ["table", str(tmp_path / "evals"), "--include-running",
                              "--baseline", "none"])
    assert res.exit_code == 0, res.output
    assert "| busy |" in res.output

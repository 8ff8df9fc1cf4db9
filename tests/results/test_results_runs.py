"""Run records to tidy rows, cells and tables, with known answers."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from topobench.errors import ReadError
from topobench.results import (
    PRETRAINED_METHOD,
    aggregate_cells,
    build_table,
    load_results,
    read_run,
    read_tidy_csv,
    render_tables,
    table_to_frame,
    write_tidy_csv,
)

FOLD_CASES = {0: [f"f0c{i}" for i in range(8)], 1: [f"f1c{i}" for i in range(4)]}
RNG = np.random.default_rng(2024)
DCE_DICE = {0: RNG.uniform(0.5, 0.7, 8), 1: RNG.uniform(0.7, 0.9, 4)}
DCE_E0GT = {0: RNG.uniform(1, 3, 8), 1: RNG.uniform(1, 3, 4)}
E0GT_SHIFT = {0: np.array([0.3, -0.2, 0.1, -0.4, 0.2, -0.1, 0.3, -0.3]),
              1: np.array([0.1, -0.2, 0.2, -0.1])}
PRE_DICE = {0: np.full(8, 0.4), 1: np.full(4, 0.45)}


@pytest.fixture
def runs(make_run: Callable[..., Path], tmp_path: Path) -> Path:
    """Dice & CE and CLoss (gamma 0.2) on Roads, two folds with disjoint cases.

    CLoss's post-processed Dice is Dice & CE's plus 0.05 on every case; its e0-Gt differs
    by small shifts of both signs.
    """
    for fold, cases in FOLD_CASES.items():
        pre = {"dice": PRE_DICE[fold]}
        make_run(f"dce-f{fold}", loss="dice_ce", method="Dice & CE", gamma=None, fold=fold,
                 cases=cases, seconds_per_epoch=2.0, seconds_finetune=600.0,
                 values={"pretrained": pre,
                         "raw": {"dice": DCE_DICE[fold] - 0.01, "e0_gt": DCE_E0GT[fold]},
                         "postprocessed": {"dice": DCE_DICE[fold], "e0_gt": DCE_E0GT[fold]}})
        make_run(f"closs-f{fold}", fold=fold, cases=cases, seconds_per_epoch=3.0,
                 seconds_finetune=900.0,
                 values={"pretrained": pre,
                         "raw": {"dice": DCE_DICE[fold]},
                         "postprocessed": {"dice": DCE_DICE[fold] + 0.05,
                                           "e0_gt": DCE_E0GT[fold] + E0GT_SHIFT[fold]}})
    return tmp_path / "runs"


def test_read_run_maps_the_three_files(runs: Path) -> None:
    rows = read_run(runs / "closs-f0")
    methods = rows.groupby("postprocessing")["method"].unique().to_dict()
    assert {k: list(v) for k, v in methods.items()} == {
        "": [PRETRAINED_METHOD, "CLoss"], "without": ["CLoss"], "with": ["CLoss"]
    }
    fine = rows[rows["method"] == "CLoss"]
    assert set(fine["critical_mask"]) == {"context"}  # from the loss: run.json has null
    assert set(fine["gamma"]) == {0.2}
    assert set(fine["pretrain_epochs"]) == {100.0} and set(fine["finetune_epochs"]) == {5.0}
    runtime = fine[fine["case"] == ""].set_index("metric")["value"]
    assert runtime.to_dict() == {"seconds_per_epoch": 3.0, "minutes_per_training": 15.0}
    assert json.loads(rows["protocol"].iloc[0])["betti_window"] == 375
    cases = rows[(rows["postprocessing"] == "with") & (rows["metric"] == "dice")]
    np.testing.assert_allclose(cases["value"], DCE_DICE[0] + 0.05)


def test_cell_is_mean_over_cases_then_folds(runs: Path) -> None:
    cells = aggregate_cells(load_results([runs]))
    dce = cells[(cells["method"] == "Dice & CE") & (cells["postprocessing"] == "with")
                & (cells["metric"] == "dice")].iloc[0]
    fold_means = [DCE_DICE[0].mean(), DCE_DICE[1].mean()]
    assert dce["mean"] == pytest.approx(np.mean(fold_means))
    assert dce["mean"] != pytest.approx(np.concatenate([DCE_DICE[0], DCE_DICE[1]]).mean())
    assert dce["fold_std"] == pytest.approx(np.std(fold_means, ddof=1))
    assert dce["std"] == pytest.approx(np.concatenate([DCE_DICE[0], DCE_DICE[1]]).std(ddof=1))
    assert (dce["n"], dce["n_folds"]) == (12, 2)
    # the pretrained model is read from two runs per fold: counted once
    pre = cells[(cells["method"] == PRETRAINED_METHOD) & (cells["metric"] == "dice")].iloc[0]
    assert pre["n"] == 12
    assert pre["mean"] == pytest.approx((0.4 + 0.45) / 2)


def test_table_1_compares_with_the_baseline_case_by_case(runs: Path) -> None:
    table = build_table(load_results([runs]), 1)
    assert [r.method for r in table.rows] == [PRETRAINED_METHOD, "Dice & CE", "CLoss"]
    frame = table_to_frame(table).set_index("method")
    assert frame.loc["CLoss", "dice_diff"] == pytest.approx(5.0)
    assert frame.loc["CLoss", "dice_ci_low"] == pytest.approx(5.0)
    assert frame.loc["CLoss", "dice_ci_high"] == pytest.approx(5.0)
    cl = np.concatenate([DCE_DICE[0] + 0.05, DCE_DICE[1] + 0.05])
    dce = np.concatenate([DCE_DICE[0], DCE_DICE[1]])
    assert frame.loc["CLoss", "dice_p"] == pytest.approx(stats.wilcoxon(cl - dce).pvalue)
    shift = np.concatenate([DCE_E0GT[f] + E0GT_SHIFT[f] - DCE_E0GT[f] for f in (0, 1)])
    assert frame.loc["CLoss", "e0_gt_p"] == pytest.approx(stats.wilcoxon(shift).pvalue)
    assert frame.loc["CLoss", "e0_gt_p"] > 0.05
    assert pd.isna(frame.loc["Dice & CE", "dice_p"])  # the baseline itself
    md = render_tables([table], "md")
    closs_line = next(ln for ln in md.splitlines() if "| CLoss |" in ln)
    cells = [c.strip() for c in closs_line.strip("|").split("|")]
    assert cells[3].endswith("\N{DAGGER}")  # Dice: significant
    assert not cells[8].endswith("\N{DAGGER}")  # e0-Gt: not significant
    assert cells[4] == "**50.00**" and cells[5] == "**0.500**"  # 0.5 on every case: all best


def test_missing_figures_print_as_na(runs: Path) -> None:
    tidy = load_results([runs])
    tidy = tidy[~((tidy["method"] == "CLoss") & (tidy["metric"] == "ags"))]
    md = render_tables([build_table(tidy, 1)], "md")
    closs_line = next(ln for ln in md.splitlines() if "| CLoss |" in ln)
    assert closs_line.rstrip(" |").endswith("n/a")


def test_tables_2_and_3_from_runs(runs: Path, make_run: Callable[..., Path]) -> None:
    table2 = build_table(load_results([runs]), 2)
    assert [(r.group, r.method) for r in table2.rows] == [
        ("w/o", "Dice & CE"), ("with", "Dice & CE"), ("w/o", "CLoss"), ("with", "CLoss")
    ]
    assert table2.rows[0].cells[0].value == pytest.approx(
        100 * (np.mean([DCE_DICE[0].mean(), DCE_DICE[1].mean()]) - 0.01))
    # fine-tuned longer from the same pretrained model: its nnU-Net rows are the same figures
    make_run("closs-long", fold=0, cases=FOLD_CASES[0], finetune_epochs=10,
             values={"pretrained": {"dice": PRE_DICE[0]},
                     "postprocessed": {"dice": np.full(8, 0.9)}})
    tidy = load_results([runs])
    table3 = build_table(tidy, 3)
    assert [(r.group, r.method) for r in table3.rows] == [("5", "CLoss"), ("10", "CLoss")]
    assert table3.rows[1].cells[0].value == pytest.approx(90.0)
    # Table 1 keeps the standard (shortest) fine-tuning length
    table1 = build_table(tidy, 1)
    closs = [r for r in table1.rows if r.method == "CLoss"]
    assert len(closs) == 1 and dict(closs[0].details)["finetune_epochs"] == 5


def test_table_7_from_runs(runs: Path) -> None:
    table = build_table(load_results([runs]), 7)
    texts = {r.method: [c.text() for c in r.cells] for r in table.rows}
    assert texts == {"Dice & CE": ["2.0s", "10min"], "CLoss": ["3.0s", "15min"]}
    assert "cpu" in table.caption


def test_incomplete_runs_are_skipped_with_a_warning(make_run: Callable[..., Path],
                                                    tmp_path: Path) -> None:
    make_run("done")
    running = make_run("busy", status="running")
    (running / "metrics_postprocessed.csv").unlink()
    with pytest.warns(UserWarning, match="busy"):
        tidy = load_results([tmp_path / "runs"])
    assert set(tidy["run"]) == {"done"}
    tidy = load_results([tmp_path / "runs"], include_running=True)
    assert set(tidy["run"]) == {"done", "busy"}
    assert "with" not in set(tidy.loc[tidy["run"] == "busy", "postprocessing"])


def test_malformed_inputs_raise_read_errors(make_run: Callable[..., Path],
                                           tmp_path: Path) -> None:
    run = make_run("bad")
    record = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps(dict(record, format="other/1")))
    with pytest.raises(ReadError, match="expected format"):
        read_run(run)
    (run / "run.json").write_text(json.dumps(record))
    (run / "metrics_raw.csv").write_text("case,dice\na,high\n")
    with pytest.raises(ReadError, match="expected numbers"):
        read_run(run)
    (run / "metrics_raw.csv").unlink()
    with pytest.raises(ReadError, match="without metrics_raw.csv"):
        read_run(run)
    with pytest.raises(ReadError, match="no such file"):
        load_results([tmp_path / "nowhere"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReadError, match="found none"):
        load_results([tmp_path / "empty"])


def test_evaluate_output_and_tidy_round_trip(tmp_path: Path, runs: Path) -> None:
    out = tmp_path / "my-model"
    out.mkdir()
    pd.DataFrame({"case": ["x", "y"], "shape": ["10x10", "10x10"], "dice": [0.8, 0.6],
                  "e0_gt": [1.0, 2.0], "seconds": [0.1, 0.2]}).to_csv(out / "cases.csv",
                                                                       index=False)
    (out / "summary.json").write_text(json.dumps(
        {"format": "topobench-evaluate/1", "topobench_version": "0.1.0",
         "config": {"protocol": {"name": "default"}}}))
    tidy = load_results([out / "cases.csv"])
    assert set(tidy["method"]) == {"my-model"}
    assert set(tidy["metric"]) == {"dice", "e0_gt"}
    assert json.loads(tidy["protocol"].iloc[0]) == {"name": "default"}
    both = load_results([runs, out / "cases.csv"])
    write_tidy_csv(both, tmp_path / "tidy.csv")
    back = read_tidy_csv(tmp_path / "tidy.csv")
    pd.testing.assert_frame_equal(back, both)
    again = load_results([tmp_path / "tidy.csv"])
    assert len(again) == len(both)


def test_an_absent_baseline_is_reported(runs: Path) -> None:
    tidy = load_results([runs])
    with pytest.warns(UserWarning, match="'U-Net' is not among the methods"):
        table = build_table(tidy, 1, baseline="U-Net")
    assert not table.has_comparisons()
    assert "Wilcoxon" not in table.caption


def test_mixed_metric_configurations_are_reported(runs: Path, make_run) -> None:
    other = make_run("closs-other", gamma=0.1, cases=FOLD_CASES[0])
    record = json.loads((other / "run.json").read_text())
    record["protocol"] = {"name": "default"}
    (other / "run.json").write_text(json.dumps(record))
    with pytest.warns(UserWarning, match="Roads: results were computed with 2 different"):
        build_table(load_results([runs]), 1)


def test_case_names_that_look_missing_stay_case_names(tmp_path: Path) -> None:
    out = tmp_path / "model"
    out.mkdir()
    (out / "cases.csv").write_text(
        "case,shape,dice,e0,seconds\nNA,4x4,0.5,1.0,0.1\nnull,4x4,0.7,,0.1\nb,4x4,0.9,2.0,0.1\n"
    )
    tidy = load_results([out / "cases.csv"])
    assert sorted(tidy["case"]) == ["NA", "NA", "b", "b", "null"]
    dice = tidy[tidy["metric"] == "dice"].set_index("case")["value"]
    assert dice.to_dict() == {"NA": 0.5, "null": 0.7, "b": 0.9}
    assert not ((tidy["case"] == "null") & (tidy["metric"] == "e0")).any()


def test_unfinished_evaluations_are_skipped_with_a_warning(tmp_path: Path) -> None:
    for name, status in (("done", "complete"), ("busy", "running")):
        out = tmp_path / "evals" / name
        out.mkdir(parents=True)
        (out / "cases.csv").write_text("case,shape,dice,seconds\na,4x4,0.5,0.1\n")
        (out / "summary.json").write_text(json.dumps(
            {"format": "topobench-evaluate/1", "status": status, "dataset": "d"}))
    with pytest.warns(UserWarning, match="busy"):
        tidy = load_results([tmp_path / "evals"])
    assert set(tidy["method"]) == {"done"}
    with pytest.warns(UserWarning, match="busy"):
        assert load_results([tmp_path / "evals" / "busy" / "cases.csv"]).empty
    tidy = load_results([tmp_path / "evals"], include_running=True)
    assert set(tidy["method"]) == {"done", "busy"}

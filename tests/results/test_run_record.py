"""The run record and case rows (topobench.run_record), and both run directory layouts."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest

from topobench import run_record as rr
from topobench.catalog import RUN_FORMAT, RUN_FORMATS_READ
from topobench.errors import InvalidParameterError, ReadError
from topobench.results import load_results, read_run
from topobench.run_record import (
    CaseRow,
    RunRecord,
    case_columns,
    read_run_record,
    write_run_record,
)

# What training/runner.py writes at the end of a run today (every key, in its order).
RUNNER_RECORD = {
    "format": RUN_FORMAT, "topobench_version": "0.1.0", "dataset": "isbi", "loss": "closs",
    "method": "CLoss", "gamma": 0.1, "alpha": 0.5, "critical_mask": "context",
    "loss_options": {"gamma": 0.1}, "epochs": 20, "finetune_epochs": 1, "fold": 0, "seed": 3,
    "protocol": {"name": "default", "betti_window": 48}, "postprocessing": "keep_supported",
    "device": "cpu", "amp": False, "versions": {"torch": "2.13.0"},
    "seconds_per_epoch": {"pretrain": 1.5, "finetune": 2.0},
    "seconds_total": {"pretrain": 30.0, "finetune": 2.0, "inference": 0.5, "evaluation": 0.25},
    "peak_memory_mb": 812.0, "pretrained_from": None, "status": "complete", "eval_set": "fold",
    "eval_cases": ["a", "b"], "splits_file": "/runs/splits.json", "patch_size": [64, 64],
    "batch_size": 4, "model": {"ndim": 2, "depth": 4}, "config": {"lr": 0.001},
    "started": "2026-12-01T10:00:00+0000", "summary": {"raw": {"dice": 0.8}},
    "finished": "2026-12-01T10:05:00+0000", "wall_seconds_last_session": 300.0,
}


def test_the_fields_are_the_keys_runners_write_and_each_has_a_check() -> None:
    record = RunRecord.from_dict(RUNNER_RECORD, origin="run.json")
    written = record.to_dict()
    assert list(written)[: len(RUNNER_RECORD)] == list(RUNNER_RECORD)
    assert {k: written[k] for k in RUNNER_RECORD} == RUNNER_RECORD
    assert set(written) - set(RUNNER_RECORD) == {"trainer", "threshold"}
    assert set(rr._CHECKS) == set(rr._KEYS) == {f.name for f in dataclasses.fields(RunRecord)
                                                 } - {"extra"}


def test_round_trip_through_a_file_keeps_everything(tmp_path: Path) -> None:
    data = dict(RUNNER_RECORD, trainer="nnUNetTrainerCLoss", threshold=0.5, custom={"x": [1]})
    record = RunRecord.from_dict(data)
    assert record.extra == {"custom": {"x": [1]}}
    path = tmp_path / "run.json"
    write_run_record(path, record)
    assert json.loads(path.read_text()) == data
    assert read_run_record(path) == record
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]  # no temporary file left
    updated = dataclasses.replace(record, status="running", finished=None)
    write_run_record(path, updated)
    assert read_run_record(path).status == "running" and record.status == "complete"


def test_a_minimal_record_gets_the_defaults() -> None:
    record = RunRecord.from_dict({"format": "topobench-run/1", "dataset": "Roads",
                                  "loss": "closs", "method": "CLoss", "device": None})
    assert record.format == "topobench-run/1"  # read records keep their format
    assert record.status == "complete" and record.device == "" and record.seed is None
    assert record.seconds_total == dict.fromkeys(("pretrain", "finetune", "inference",
                                                  "evaluation"))
    assert RunRecord(dataset="d", loss="l", method="m").format == RUN_FORMAT
    assert RUN_FORMATS_READ == ("topobench-run/1", "topobench-run/2")


@pytest.mark.parametrize(("change", "message"), [
    ({"format": "other/1"}, "expected format 'topobench-run/1' or 'topobench-run/2', got "
                            "'other/1'"),
    ({"dataset": None}, "key 'dataset' expected a string, got None"),
    ({"method": 3}, "key 'method' expected a string, got 3"),
    ({"fold": 1.5}, "key 'fold' expected an integer or null, got 1.5"),
    ({"seed": True}, "key 'seed' expected an integer or null, got True"),
    ({"gamma": "0.1"}, "key 'gamma' expected a finite number or null, got '0.1'"),
    ({"seconds_total": {"finetune": "long"}}, "key 'seconds_total' expected an object of "
                                              "finite numbers or nulls"),
    ({"eval_cases": ["a", 2]}, "key 'eval_cases' expected a list of strings or null"),
    ({"amp": "yes"}, "key 'amp' expected true or false or null"),
    ({"status": None}, "key 'status' expected a string, got None"),
])
def test_bad_records_are_refused_naming_the_file_and_key(change: dict, message: str) -> None:
    with pytest.raises(ReadError) as info:
        RunRecord.from_dict(dict(RUNNER_RECORD, **change), origin="runs/x/run.json")
    assert str(info.value).startswith("runs/x/run.json: ")
    assert message in str(info.value)


def test_missing_keys_unreadable_files_and_bad_construction(tmp_path: Path) -> None:
    data = dict(RUNNER_RECORD)
    del data["loss"]
    with pytest.raises(ReadError, match="key 'loss' is missing"):
        RunRecord.from_dict(data)
    with pytest.raises(ReadError, match="expected a JSON object, got list"):
        RunRecord.from_dict([1])  # type: ignore[arg-type]
    with pytest.raises(ReadError, match="missing"):
        read_run_record(tmp_path / "run.json")
    (tmp_path / "run.json").write_text("{not json")
    with pytest.raises(ReadError, match=r"cannot read .*run.json"):
        read_run_record(tmp_path / "run.json")
    with pytest.raises(InvalidParameterError, match="key 'fold' expected an integer"):
        RunRecord(dataset="d", loss="l", method="m", fold="0")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="extra keys"):
        RunRecord(dataset="d", loss="l", method="m", extra={"seed": 1})


def test_case_rows_round_trip_through_csv(tmp_path: Path) -> None:
    metrics = ["dice", "e0", "e2"]
    rows = [CaseRow("a", (3, 64, 64), {"dice": 0.1 + 0.2, "e0": 2.0}, 1.23456),
            CaseRow("NA", (), {"e2": 1e-17}, None)]
    path = tmp_path / "cases.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(case_columns(metrics))
        writer.writerows(r.to_row(metrics) for r in rows)
    assert path.read_text().splitlines()[:2] == [
        "case,shape,dice,e0,e2,seconds", "a,3x64x64,0.30000000000000004,2.0,,1.235"]
    with open(path, newline="") as f:
        back = [CaseRow.from_row(r) for r in csv.DictReader(f)]
    assert back[0] == dataclasses.replace(rows[0], seconds=1.235)  # values exact
    assert back[1] == rows[1]  # "NA" is a name, an empty field a metric not measured


@pytest.mark.parametrize(("row", "message"), [
    ({"case": "a", "dice": "high"}, "column 'dice' expected numbers, got 'high'"),
    ({"case": "a", "dice": "nan"}, "column 'dice' holds NaN in line 7"),
    ({"case": "a", "shape": "64 by 64"}, "column 'shape' expected a shape"),
    ({"dice": "0.5"}, "expected a 'case' column"),
])
def test_bad_case_rows_are_refused(row: dict, message: str) -> None:
    with pytest.raises(ReadError, match=message):
        CaseRow.from_row(row, origin="cases.csv", line=7)
    assert CaseRow.from_row({"case": "a", "dice": "nan"}, allow_nan=True).metrics["dice"] != 0


# --------------------------------------------------------------------------------------------
# both run directory layouts give the same tidy rows

V1_RECORD = {
    "format": "topobench-run/1", "topobench_version": "0.1.0", "dataset": "Roads",
    "loss": "closs", "method": "CLoss", "gamma": 0.2, "alpha": 0.5, "critical_mask": None,
    "epochs": 100, "finetune_epochs": 5, "fold": 1, "seed": 0,
    "protocol": {"name": "roads", "betti_window": 375}, "device": "cpu",
    "versions": {}, "seconds_per_epoch": {"pretrain": 1.0, "finetune": 3.0},
    "seconds_total": {"pretrain": 100.0, "finetune": 900.0, "inference": 1.0,
                      "evaluation": 1.0},
    "peak_memory_mb": 10.0, "pretrained_from": None, "status": "complete",
}
FIGURES = {  # variant -> lines after the header (case, dice, e0_gt)
    "pretrained": [("a", "0.4", "2.0"), ("b", "0.5", "1.0")],
    "raw": [("a", "0.6", "1.0"), ("b", "0.7", "")],
    "postprocessed": [("a", "0.65", "0.0"), ("b", "0.75", "1.0")],
}


def _write_v1(run_dir: Path) -> None:
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps(V1_RECORD))
    for variant, lines in FIGURES.items():
        text = "case,dice,e0_gt,seconds\n" + "".join(f"{c},{d},{e},0.1\n" for c, d, e in lines)
        (run_dir / f"metrics_{variant}.csv").write_text(text)


def _write_v2(run_dir: Path) -> None:
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps(dict(V1_RECORD, format="topobench-run/2")))
    for variant, lines in FIGURES.items():
        store = run_dir / "evaluation" / variant
        store.mkdir(parents=True)
        text = "case,shape,dice,e0_gt,seconds\n" + "".join(
            f"{c},64x64,{d},{e},0.100\n" for c, d, e in lines)
        (store / "cases.csv").write_text(text)
        (store / "summary.json").write_text(json.dumps({"status": "complete"}))


def test_both_layouts_give_the_same_tidy_rows(tmp_path: Path) -> None:
    _write_v1(tmp_path / "v1" / "run")
    _write_v2(tmp_path / "v2" / "run")
    one, two = read_run(tmp_path / "v1" / "run"), read_run(tmp_path / "v2" / "run")
    assert len(one) == 3 * 2 * 2 - 1 + 2  # 11 figures (one not measured), 2 timings
    pd.testing.assert_frame_equal(one, two)
    with_pp = one[(one["postprocessing"] == "with") & (one["metric"] == "dice")]
    assert with_pp["value"].tolist() == [0.65, 0.75]
    # the stores inside the run directory are not read again as evaluation outputs
    pd.testing.assert_frame_equal(load_results([tmp_path / "v1"]),
                                  load_results([tmp_path / "v2"]))


def test_a_v2_run_prefers_its_store_and_names_what_is_missing(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _write_v2(run)
    (run / "metrics_raw.csv").write_text("case,dice\na,0.0\nb,0.0\n")  # stale: not read
    rows = read_run(run)
    raw = rows[(rows["postprocessing"] == "without") & (rows["metric"] == "dice")]
    assert raw["value"].tolist() == [0.6, 0.7]
    (run / "metrics_raw.csv").unlink()
    (run / "evaluation" / "raw" / "cases.csv").unlink()
    with pytest.raises(ReadError, match=r"without evaluation/raw/cases.csv \(nor "
                                        r"metrics_raw.csv\)"):
        read_run(run)


def test_a_case_file_saved_with_a_byte_order_mark_reads_the_same(tmp_path: Path) -> None:
    from topobench.results.records import read_case_table

    plain, marked = tmp_path / "plain.csv", tmp_path / "marked.csv"
    plain.write_text("case,dice\na,0.5\n", encoding="utf-8")
    marked.write_text("case,dice\na,0.5\n", encoding="utf-8-sig")
    pd.testing.assert_frame_equal(read_case_table(plain), read_case_table(marked))

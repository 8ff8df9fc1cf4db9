"""``topobench evaluate`` over temporary folders: formats, failures, resume, maps, runners."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from typer.testing import CliRunner

from topobench.cli import app
from topobench.errors import TopobenchError
from topobench.evaluate import run_evaluation
from topobench.io import read_mask, write_mask
from topobench.maps import COLOURS, LEGEND_HEIGHT, MIN_WIDTH
from topobench.metrics import evaluate_case
from topobench.synth import make_case, synthesize

runner = CliRunner()
METRICS_2D = ["dice", "cldice", "e", "e0", "e1", "e0_gt", "ags"]


def _evaluate(*args: str | Path):
    return runner.invoke(app, ["evaluate", *map(str, args)])


def _rows(out: Path) -> list[dict[str, str]]:
    with open(out / "cases.csv", newline="") as f:
        return list(csv.DictReader(f))


def _metrics(rows: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {r["case"]: {k: v for k, v in r.items() if k != "seconds"} for r in rows}


@pytest.fixture(scope="module")
def synth2d(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("synth2d")
    manifest = synthesize(root, kind="vessels2d", n=4, seed=0, shape=(96, 112))
    return root, manifest


def test_synthetic_folder_end_to_end(tmp_path, synth2d):
    root, manifest = synth2d
    out = tmp_path / "res"
    result = _evaluate(root / "pred", root / "gt", "--out", out, "-j", "1", "--dataset", "synth")
    assert result.exit_code == 0, result.output
    rows = _rows(out)
    assert list(rows[0]) == ["case", "shape", *METRICS_2D, "seconds"]
    assert [r["case"] for r in rows] == [c["case"] for c in manifest["cases"]]
    for row, case in zip(rows, manifest["cases"]):
        assert row["shape"] == "96x112"
        assert float(row["e0_gt"]) == case["expected"]["e0_gt"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["dataset"] == "synth"
    assert summary["config"]["protocol"]["name"] == "default"
    assert summary["topobench_version"]
    assert summary["metrics"]["e0_gt"]["n"] == 4
    mean = np.mean([c["expected"]["e0_gt"] for c in manifest["cases"]])
    assert summary["metrics"]["e0_gt"]["mean"] == pytest.approx(mean)
    assert "e0-Gt" in result.output and "median" in result.output
    assert (out / "failures.csv").read_text().strip() == "case,pred,target,reason"


def test_every_format_pairs_by_stem(tmp_path):
    rng = np.random.default_rng(3)
    pred_dir, gt_dir = tmp_path / "pred", tmp_path / "gt"
    cases = {
        "a": ("png", "npy", (20, 24)),
        "b": ("bmp", "npz", (20, 24)),
        "c": ("tif", "png", (20, 24)),
        "d": ("nii.gz", "tif", (6, 20, 24)),
        "e": ("npz", "nii", (6, 20, 24)),
    }
    expected = {}
    for name, (p_ext, t_ext, shape) in cases.items():
        target = rng.random(shape) > 0.5
        pred = target ^ (rng.random(shape) > 0.9)
        write_mask(pred_dir / f"{name}.{p_ext}", pred)
        write_mask(gt_dir / f"{name}.{t_ext}", target)
        expected[name] = evaluate_case(pred, target)
    out = tmp_path / "res"
    result = _evaluate(pred_dir, gt_dir, "-o", out, "-j", "1", "-q")
    assert result.exit_code == 0, result.output
    rows = {r["case"]: r for r in _rows(out)}
    assert sorted(rows) == sorted(cases)
    for name, metrics in expected.items():
        for key in METRICS_2D:
            assert float(rows[name][key]) == pytest.approx(metrics[key]), (name, key)
    assert rows["d"]["shape"] == "6x20x24"


def test_corrupt_file_and_mismatched_pair_are_reported(tmp_path, synth2d):
    root, _ = synth2d
    pred_dir, gt_dir = tmp_path / "pred", tmp_path / "gt"
    pred_dir.mkdir()
    gt_dir.mkdir()
    for p in sorted((root / "pred").iterdir())[:2]:
        (pred_dir / p.name).write_bytes(p.read_bytes())
        (gt_dir / p.name).write_bytes((root / "gt" / p.name).read_bytes())
    (pred_dir / "corrupt.png").write_bytes(b"\x89PNG broken")
    write_mask(gt_dir / "corrupt.png", np.ones((8, 8), bool))
    write_mask(pred_dir / "mismatch.npy", np.ones((8, 9), bool))
    write_mask(gt_dir / "mismatch.npy", np.ones((8, 8), bool))
    write_mask(pred_dir / "orphan.png", np.ones((8, 8), bool))
    out = tmp_path / "res"
    result = _evaluate(pred_dir, gt_dir, "-o", out, "-j", "1")
    assert result.exit_code == 1
    assert len(_rows(out)) == 2  # the good cases are saved
    with open(out / "failures.csv", newline="") as f:
        failures = {r["case"]: r["reason"] for r in csv.DictReader(f)}
    assert set(failures) == {"corrupt", "mismatch", "orphan"}
    assert "cannot read" in failures["corrupt"]
    assert "same shape" in failures["mismatch"]
    assert "no target file" in failures["orphan"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_failed"] == 3 and summary["n_succeeded"] == 2
    assert {f["case"] for f in summary["failures"]} == set(failures)
    assert "mismatch" in result.output


def test_probability_maps_need_a_threshold(tmp_path):
    rng = np.random.default_rng(5)
    target = rng.random((30, 30)) > 0.6
    prob = np.clip(target * 0.8 + rng.random((30, 30)) * 0.3, 0, 1).astype(np.float32)
    (tmp_path / "p").mkdir()
    np.save(tmp_path / "p" / "x.npy", prob)
    write_mask(tmp_path / "g" / "x.png", target)
    result = _evaluate(tmp_path / "p", tmp_path / "g", "-o", tmp_path / "r1", "-j", "1")
    assert result.exit_code == 1
    assert "threshold" in (tmp_path / "r1" / "failures.csv").read_text()
    result = _evaluate(
        tmp_path / "p", tmp_path / "g", "-o", tmp_path / "r2", "-j", "1", "--threshold", "0.5"
    )
    assert result.exit_code == 0, result.output
    row = _rows(tmp_path / "r2")[0]
    assert float(row["dice"]) == pytest.approx(evaluate_case(prob > 0.5, target)["dice"])
    summary = json.loads((tmp_path / "r2" / "summary.json").read_text())
    assert summary["config"]["threshold"] == 0.5


def test_resume_drops_a_torn_line_and_skips_finished_cases(tmp_path, synth2d):
    root, _ = synth2d
    full = tmp_path / "full"
    assert _evaluate(root / "pred", root / "gt", "-o", full, "-j", "1").exit_code == 0
    out = tmp_path / "interrupted"
    assert _evaluate(root / "pred", root / "gt", "-o", out, "-j", "1").exit_code == 0
    lines = (out / "cases.csv").read_text().splitlines(keepends=True)
    # Killed while writing the fourth line: header + 2 whole rows + half a row.
    (out / "cases.csv").write_text("".join(lines[:3]) + lines[3][:17])
    report = run_evaluation(root / "pred", root / "gt", out, workers=1, resume=True)
    assert (report.n_skipped, report.n_evaluated) == (2, 2)
    assert _metrics(_rows(out)) == _metrics(_rows(full))
    assert report.summary["metrics"]["dice"]["n"] == 4


def test_resume_refuses_another_configuration(tmp_path, synth2d):
    root, _ = synth2d
    out = tmp_path / "res"
    assert _evaluate(root / "pred", root / "gt", "-o", out, "-j", "1").exit_code == 0
    result = _evaluate(root / "pred", root / "gt", "-o", out, "--resume", "-c", "4")
    assert result.exit_code == 2
    assert "configuration differs" in result.output


def test_existing_results_are_never_overwritten_by_accident(tmp_path, synth2d):
    root, _ = synth2d
    out = tmp_path / "res"
    assert _evaluate(root / "pred", root / "gt", "-o", out, "-j", "1", "-q").exit_code == 0
    again = _evaluate(root / "pred", root / "gt", "-o", out, "-j", "1")
    assert again.exit_code == 2
    assert "holds results" in again.output
    assert len(_rows(out)) == 4
    assert _evaluate(root / "pred", root / "gt", "-o", out, "-j", "1", "--overwrite").exit_code == 0
    assert len(_rows(out)) == 4


def test_error_maps_show_the_gaps(tmp_path, synth2d):
    root, manifest = synth2d
    maps = tmp_path / "maps"
    result = _evaluate(root / "pred", root / "gt", "-o", tmp_path / "r", "--maps", maps, "-j", "1")
    assert result.exit_code == 0, result.output
    scale = -(-MIN_WIDTH // 112)
    assert sum(len(case["gap_centers"]) for case in manifest["cases"]) >= 4
    for case in manifest["cases"]:
        image = iio.imread(maps / f"{case['case']}.png")
        assert image.shape == (96 * scale + LEGEND_HEIGHT, 112 * scale, 3)
        assert len(case["gap_centers"]) == case["errors"]["gaps"]
        for y, x in case["gap_centers"]:
            pixel = image[y * scale + scale // 2, x * scale + scale // 2]
            assert tuple(pixel) == COLOURS["missed connection"]
    # Some injected bridge shows as a false connection.
    image = iio.imread(maps / f"{manifest['cases'][0]['case']}.png")
    assert (image == COLOURS["false connection"]).all(axis=-1).any()


def test_error_map_of_a_volume_is_a_projection(tmp_path):
    root = tmp_path / "d"
    manifest = synthesize(root, kind="tubes3d", n=1, seed=2, shape=(16, 40, 48), bridges=0)
    maps = tmp_path / "maps"
    result = _evaluate(root / "pred", root / "gt", "-o", tmp_path / "r", "--maps", maps, "-j", "1")
    assert result.exit_code == 0, result.output
    image = iio.imread(maps / "tubes3d_000.png")
    scale = -(-MIN_WIDTH // 48)
    assert image.shape == (40 * scale + LEGEND_HEIGHT, 48 * scale, 3)
    gaps = manifest["cases"][0]["gap_centers"]
    assert len(gaps) == manifest["cases"][0]["errors"]["gaps"] >= 1
    for _, y, x in gaps:
        assert tuple(image[y * scale, x * scale]) == COLOURS["missed connection"]


@pytest.mark.parametrize(
    ("fmt", "file", "marker"),
    [("md", "summary.md", "| e0-Gt |"), ("latex", "summary.tex", r"\begin{tabular}")],
)
def test_summary_formats(tmp_path, synth2d, fmt, file, marker):
    root, _ = synth2d
    out = tmp_path / "res"
    result = _evaluate(root / "pred", root / "gt", "-o", out, "-j", "1", "--format", fmt)
    assert result.exit_code == 0, result.output
    text = (out / file).read_text()
    assert marker in text and "topobench" in text.splitlines()[0]
    assert marker in result.output


def test_metric_selection_and_protocol_options(tmp_path, synth2d):
    root, _ = synth2d
    out = tmp_path / "res"
    result = _evaluate(
        root / "pred",
        root / "gt",
        "-o",
        out,
        "-j",
        "1",
        "-q",
        "--metrics",
        "e0_gt,dice",
        "--protocol",
        "roads",
        "--window",
        "48",
    )
    assert result.exit_code == 0, result.output
    assert list(_rows(out)[0]) == ["case", "shape", "dice", "e0_gt", "seconds"]
    proto = json.loads((out / "summary.json").read_text())["config"]["protocol"]
    assert proto["name"] == "roads" and proto["e0_gt_window"] == 48 and proto["betti_window"] == 48
    result = _evaluate(
        root / "pred",
        root / "gt",
        "-o",
        out,
        "-j",
        "1",
        "-q",
        "--overwrite",
        "--protocol",
        "roads",
        "--window",
        "none",
    )
    proto = json.loads((out / "summary.json").read_text())["config"]["protocol"]
    assert proto["betti_window"] is None and proto["e0_gt_window"] is None


def test_protocol_of_another_dimension_fails_each_case(tmp_path, synth2d):
    root, _ = synth2d
    result = _evaluate(root / "pred", root / "gt", "-o", tmp_path / "r", "-j", "1", "-p", "vessap")
    assert result.exit_code == 1
    assert "expects 3D" in (tmp_path / "r" / "failures.csv").read_text()


def test_quiet_prints_nothing(tmp_path, synth2d):
    root, _ = synth2d
    result = runner.invoke(
        app,
        [
            "evaluate",
            str(root / "pred"),
            str(root / "gt"),
            "-o",
            str(tmp_path / "r"),
            "-q",
            "-j",
            "1",
        ],
    )
    assert result.exit_code == 0
    assert result.stdout == ""


def test_process_pool_equals_serial(tmp_path, synth2d):
    root, _ = synth2d
    assert _evaluate(root / "pred", root / "gt", "-o", tmp_path / "a", "-j", "1").exit_code == 0
    result = _evaluate(
        root / "pred", root / "gt", "-o", tmp_path / "b", "-j", "2", "--maps", tmp_path / "maps"
    )
    assert result.exit_code == 0, result.output
    assert _metrics(_rows(tmp_path / "a")) == _metrics(_rows(tmp_path / "b"))
    assert len(list((tmp_path / "maps").iterdir())) == 4


def test_dask_cluster_equals_local_run(tmp_path, synth2d):
    distributed = pytest.importorskip("distributed")
    root, _ = synth2d
    assert _evaluate(root / "pred", root / "gt", "-o", tmp_path / "a", "-j", "1").exit_code == 0
    with distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=2,
        processes=False,
        protocol="tcp",
        host="127.0.0.1",
        scheduler_port=0,
        dashboard_address=None,
    ) as cluster:
        result = _evaluate(
            root / "pred", root / "gt", "-o", tmp_path / "b", "--dask", cluster.scheduler_address
        )
    assert result.exit_code == 0, result.output
    assert _metrics(_rows(tmp_path / "a")) == _metrics(_rows(tmp_path / "b"))


def test_unreachable_dask_scheduler_is_a_clear_error(tmp_path, synth2d):
    pytest.importorskip("distributed")
    root, _ = synth2d
    with pytest.raises(TopobenchError, match="Dask scheduler"):
        run_evaluation(
            root / "pred", root / "gt", tmp_path / "r", dask="tcp://127.0.0.1:1", dask_timeout=1
        )


def test_read_back_masks_agree_with_the_synthetic_ones(synth2d):
    """The files hold, pixel for pixel, the cases make_case draws (case i with seed (seed, i))."""
    root, manifest = synth2d
    assert len(manifest["cases"]) == 4
    for i, entry in enumerate(manifest["cases"]):
        case = make_case(manifest["kind"], seed=(manifest["seed"], i),
                         shape=tuple(manifest["shape"]), **manifest["degradation"])
        target, pred = read_mask(root / entry["gt"]), read_mask(root / entry["pred"])
        assert target.shape == pred.shape == tuple(entry["shape"])
        assert target.any() and pred.any()
        np.testing.assert_array_equal(target, case.target)
        np.testing.assert_array_equal(pred, case.pred)


def test_dask_local_cluster_equals_local_run(tmp_path, synth2d):
    pytest.importorskip("distributed")
    root, _ = synth2d
    assert _evaluate(root / "pred", root / "gt", "-o", tmp_path / "a", "-j", "1").exit_code == 0
    result = _evaluate(
        root / "pred", root / "gt", "-o", tmp_path / "b", "--dask", "local", "-j", "2"
    )
    assert result.exit_code == 0, result.output
    assert _metrics(_rows(tmp_path / "a")) == _metrics(_rows(tmp_path / "b"))


def test_empty_folders_are_a_usage_error(tmp_path):
    (tmp_path / "p").mkdir()
    (tmp_path / "g").mkdir()
    result = _evaluate(tmp_path / "p", tmp_path / "g", "-o", tmp_path / "r")
    assert result.exit_code == 2
    assert "no mask files" in result.output


def test_jpeg_predictions_and_page_by_page_tiff_stacks(tmp_path):
    import tifffile

    target2d = np.zeros((40, 48), bool)
    target2d[10:14, 4:44] = True
    target2d[14:30, 20:24] = True
    write_mask(tmp_path / "gt" / "flat.png", target2d)
    (tmp_path / "pred").mkdir()
    iio.imwrite(tmp_path / "pred" / "flat.jpg", target2d.astype(np.uint8) * 255, quality=75)
    rng = np.random.default_rng(11)
    volume = rng.random((4, 16, 20)) > 0.5
    with tifffile.TiffWriter(tmp_path / "gt" / "stack.tif") as tif:
        for page in volume:
            tif.write(page.astype(np.uint8) * 255)
    write_mask(tmp_path / "pred" / "stack.nii.gz", volume)
    out = tmp_path / "r"
    result = _evaluate(tmp_path / "pred", tmp_path / "gt", "-o", out, "-j", "1", "-t", "0.5")
    assert result.exit_code == 0, result.output
    rows = {r["case"]: r for r in _rows(out)}
    assert rows["stack"]["shape"] == "4x16x20" and float(rows["stack"]["dice"]) == 1.0
    assert float(rows["flat"]["dice"]) == pytest.approx(1.0)


def test_output_files_do_not_depend_on_the_locale_encoding(tmp_path):
    # Every text file is opened as UTF-8: with the locale's encoding (cp1252 on Windows) a
    # non-ASCII case name would fail to write or read back. Python reports each open() that
    # relies on the locale with an EncodingWarning under -X warn_default_encoding.
    import subprocess
    import sys

    mask = np.zeros((16, 20), bool)
    mask[8, 2:18] = True
    for folder in ("pred", "gt"):
        write_mask(tmp_path / folder / "straße_é.png", mask)
    code = (
        "import warnings; "
        "warnings.filterwarnings('error', category=EncodingWarning, module='topobench'); "
        "from topobench.evaluate import run_evaluation; "
        "r = run_evaluation('pred', 'gt', 'out', workers=1); assert r.ok, r.failures; "
        "r = run_evaluation('pred', 'gt', 'out', workers=1, resume=True); assert r.ok"
    )
    proc = subprocess.run(
        [sys.executable, "-X", "warn_default_encoding", "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = list(csv.DictReader((tmp_path / "out" / "cases.csv").open(encoding="utf-8")))
    assert [r["case"] for r in rows] == ["straße_é"]
    assert float(rows[0]["dice"]) == 1.0

"""Synthetic data: the injected errors are where and how many the manifest says."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from topobench.cli import app
from topobench.errors import InvalidParameterError
from topobench.io import read_mask
from topobench.metrics import betti_numbers, e0_gt
from topobench.synth import KINDS, degrade, make_case, synthesize

KIND_NAMES = list(KINDS)


@pytest.mark.parametrize("kind", KIND_NAMES)
@pytest.mark.parametrize("seed", [0, 1])
def test_e0_gt_counts_the_injected_gaps(kind, seed):
    case = make_case(kind, seed=seed, gaps=3)
    assert case.target.shape == KINDS[kind]
    assert case.errors.gaps == 3
    assert e0_gt(case.pred, case.target) == pytest.approx(case.expected_e0_gt) == 3.0


@pytest.mark.parametrize("connectivity", [4, 8])
def test_gaps_are_designed_for_their_window_and_connectivity(connectivity):
    case = make_case("roads2d", seed=3, gaps=4, window=128, connectivity=connectivity)
    assert case.n_windows == 9
    assert case.errors.gaps == 4
    got = e0_gt(case.pred, case.target, window=128, connectivity=connectivity)
    assert got == pytest.approx(4 / 9)


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_false_positives_lie_outside_the_target(kind):
    case = make_case(kind, seed=2, gaps=0, thinning=False)
    # Without gaps and thinning the prediction covers the whole target ...
    assert np.all(case.pred[case.target])
    # ... and adds bridges, blobs and noise outside it.
    extra = case.pred & ~case.target
    assert extra.sum() >= case.errors.noise_pixels > 0
    assert case.errors.blobs > 0 and case.errors.bridges > 0


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_each_bridge_is_one_false_connection(kind):
    case = make_case(kind, seed=4, gaps=0, blobs=0, noise=0, thinning=False, bridges=2)
    assert case.errors.bridges >= 1
    b_pred, b_target = betti_numbers(case.pred), betti_numbers(case.target)
    # Each bridge either merges two pieces or closes one loop, nothing else.
    merged = b_target[0] - b_pred[0]
    loops = b_pred[1] - b_target[1]
    assert merged + loops == case.errors.bridges
    assert b_pred[2:] == b_target[2:]


def test_gap_centres_are_missing_from_the_prediction():
    case = make_case("vessels2d", seed=5, gaps=3)
    assert len(case.gap_centers) == case.errors.gaps == 3
    for centre in case.gap_centers:
        assert case.target[centre] and not case.pred[centre]


def test_same_seed_same_case_and_different_seeds_differ():
    a, b = make_case("tubes3d", seed=7), make_case("tubes3d", seed=7)
    np.testing.assert_array_equal(a.target, b.target)
    np.testing.assert_array_equal(a.pred, b.pred)
    assert not np.array_equal(a.target, make_case("tubes3d", seed=8).target)


def test_invalid_parameters():
    with pytest.raises(InvalidParameterError, match="kind"):
        make_case("spirals2d")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="shape"):
        make_case("vessels2d", shape=(64, 64, 64))
    with pytest.raises(InvalidParameterError, match="connectivity"):
        make_case("tubes3d", connectivity=8)
    with pytest.raises(InvalidParameterError, match="gaps"):
        make_case("vessels2d", gaps=-1)


def test_synthesize_writes_files_and_manifest(tmp_path):
    manifest = synthesize(tmp_path, kind="tubes3d", n=2, seed=1, shape=(24, 48, 48))
    assert manifest["kind"] == "tubes3d" and manifest["n"] == 2
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest
    for entry in manifest["cases"]:
        target = read_mask(tmp_path / entry["gt"])
        pred = read_mask(tmp_path / entry["pred"])
        assert entry["gt"].endswith(".nii.gz")
        assert target.shape == (24, 48, 48)
        assert e0_gt(pred, target) == entry["expected"]["e0_gt"] == entry["errors"]["gaps"]


def test_cases_do_not_depend_on_n(tmp_path):
    synthesize(tmp_path / "a", kind="vessels2d", n=1, seed=2)
    synthesize(tmp_path / "b", kind="vessels2d", n=3, seed=2)
    a = read_mask(tmp_path / "a" / "gt" / "vessels2d_000.png")
    b = read_mask(tmp_path / "b" / "gt" / "vessels2d_000.png")
    np.testing.assert_array_equal(a, b)


def test_synth_command(tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "synth",
            str(tmp_path / "d"),
            "--kind",
            "roads2d",
            "--n",
            "2",
            "--seed",
            "3",
            "--shape",
            "200",
            "--format",
            "tif",
        ],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "d" / "gt").iterdir()) == [
        "roads2d_000.tif",
        "roads2d_001.tif",
    ]
    assert read_mask(tmp_path / "d" / "pred" / "roads2d_001.tif").shape == (200, 200)
    assert "roads2d_001" in result.output


def test_synth_command_rejects_a_3d_png(tmp_path):
    result = CliRunner().invoke(
        app, ["synth", str(tmp_path), "--kind", "tubes3d", "--format", "png"]
    )
    assert result.exit_code == 2
    assert "png" in result.output


@pytest.mark.parametrize("kind", ["roads2d", "tubes3d"])
def test_degrade_a_given_target(kind):
    target = make_case(kind, seed=9).target
    case = degrade(target.astype(np.uint8) * 255, seed=1, gaps=2, bridges=1)
    np.testing.assert_array_equal(case.target, target)
    assert case.errors.gaps == 2 and case.errors.bridges == 1
    assert e0_gt(case.pred, target) == case.expected_e0_gt == 2.0
    for centre in case.gap_centers:
        assert target[centre] and not case.pred[centre]


@pytest.mark.parametrize("shape", [(32, 40), (12, 32, 40)])
def test_degrade_an_empty_target_adds_only_false_positives(shape):
    target = np.zeros(shape, bool)
    case = degrade(target, seed=0, gaps=2, bridges=1, blobs=1, noise=5)
    assert case.errors.gaps == 0 and case.errors.bridges == 0
    assert case.expected_e0_gt == 0.0
    assert not (case.pred & target).any()
    assert case.errors.noise_pixels == 5


# Digests of the cases the single-module topobench/synth.py drew before it became a package
# (sha256 of the arrays' bytes, shape and dtype; of the sorted-keys JSON of to_dict()): the
# package draws the very same cases for the same seeds.
_REFERENCE = {
    "vessels2d": ("c2d65e70c450c41c", "ff42c772ebf0b1b7", "6cd864a0f5153917"),
    "roads2d": ("37f89f7814fafc75", "e5e917be67f8939b", "bcdbd30eed31d3f3"),
    "tubes3d": ("5977f1a9dc52699c", "045363042cb14649", "593403df46fb5f37"),
    "membranes3d": ("08c872e60ee40478", "4e4ba3a84f66e71b", "2ba68d633770ce84"),
    "degrade": ("05d7d4fed773577c", "7634ed5ff7f4b425", "dd0585e3046134e1"),
    "synthesize": ("db4545f117224367", ("d061885af6bbcedb", "7eb1bc0e6277e26c",
                                        "cc2db8cc793dd2c6", "d3224ae16e38065c")),
}
_SHAPES = {"vessels2d": (96, 96), "roads2d": (128, 128), "tubes3d": (24, 48, 48),
           "membranes3d": (24, 48, 48)}


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _array_digest(array: np.ndarray) -> str:
    array = np.ascontiguousarray(array)
    return _digest(array.tobytes() + repr((array.shape, str(array.dtype))).encode())


def _case_digests(case) -> tuple[str, str, str]:
    text = json.dumps(case.to_dict(), sort_keys=True).encode()
    return _array_digest(case.target), _array_digest(case.pred), _digest(text)


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_cases_are_those_drawn_before_the_package_split(kind):
    assert _case_digests(make_case(kind, seed=3, shape=_SHAPES[kind])) == _REFERENCE[kind]


def test_degrade_and_synthesize_are_those_of_before_the_package_split(tmp_path):
    clean = make_case("vessels2d", seed=5, shape=(96, 96), gaps=0, bridges=0, blobs=0,
                      noise=0, thinning=False)
    case = degrade(clean.target, seed=1, window=48, connectivity=4)
    assert _case_digests(case) == _REFERENCE["degrade"]
    manifest = synthesize(tmp_path, kind="roads2d", n=2, seed=4, shape=(64, 64),
                          file_format="npy")
    manifest.pop("topobench_version")
    files = sorted(tmp_path.rglob("*.npy"))
    assert (_digest(json.dumps(manifest, sort_keys=True).encode()),
            tuple(_array_digest(np.load(p)) for p in files)) == _REFERENCE["synthesize"]


def test_every_name_of_the_module_is_still_there():
    import topobench.synth as synth
    from topobench.synth_images import make_image_case  # uses the drawing helpers

    assert set(synth.__all__) == {"KINDS", "InjectedErrors", "SynthCase", "SynthKind",
                                  "degrade", "make_case", "synthesize"}
    assert all(hasattr(synth, name) for name in
               ("_GENERATORS", "_Drawing", "_rasterise", "_thicken", *synth.__all__))
    assert callable(make_image_case)

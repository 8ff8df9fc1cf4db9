"""evaluate_labels: each label equals its own binary evaluation, merged equals the union."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage as ndi

from topobench.errors import InvalidMaskError, InvalidMaskTypeError, InvalidParameterError
from topobench.metrics import evaluate_case, evaluate_labels, label_average, read_label_names
from topobench.metrics.labels import resolve_labels


def label_maps(rng, shape, n_labels):
    """Two label maps of ``n_labels`` thin-ish structures, the prediction perturbed."""
    target = np.zeros(shape, np.uint8)
    for value in range(1, n_labels + 1):
        blob = ndi.gaussian_filter(rng.random(shape), 1.2) > 0.53
        target[blob & (target == 0)] = value
    pred = target.copy()
    flip = rng.random(shape) < 0.08
    pred[flip] = rng.integers(0, n_labels + 1, int(flip.sum()))
    return pred, target


@pytest.mark.parametrize(
    "shape,protocol",
    [((40, 44), "default"), ((40, 44), "topomortar"), ((10, 16, 14), "topcow"),
     ((10, 16, 14), "default")],
)
def test_each_label_equals_its_binary_run_and_merged_the_union(shape, protocol):
    rng = np.random.default_rng(len(shape) + len(protocol))
    pred, target = label_maps(rng, shape, 3)
    pred[0, 0] = target[0, 1] = 4  # a label that is not listed: ignored everywhere
    metrics = None if protocol != "default" else ["dice", "e0", "e1", "hd95", "vi_merge"]
    over = {} if metrics is None else {"metrics": metrics}
    r = evaluate_labels(pred, target, labels=[1, 2, 3], protocol=protocol, **over)
    assert list(r) == ["1", "2", "3", "merged"]
    merged_only = {"topcow": {"cldice"}}.get(protocol, set())
    for value in (1, 2, 3):
        binary = evaluate_case(pred == value, target == value, protocol=protocol, **over)
        assert r[str(value)] == {k: v for k, v in binary.items() if k not in merged_only}
    union = evaluate_case(np.isin(pred, [1, 2, 3]), np.isin(target, [1, 2, 3]),
                          protocol=protocol, **over)
    assert r["merged"] == union
    if protocol == "topcow":
        assert "cldice" not in r["1"] and "cldice" in r["merged"]
    no_merged = evaluate_labels(pred, target, labels=[1, 2, 3], protocol=protocol,
                                merged=False, **over)
    assert no_merged == {k: v for k, v in r.items() if k != "merged"}


ALL_METRICS = ["dice", "cldice", "e", "e0", "e1", "e2", "e0_gt", "ags", "hd95", "assd", "nsd",
               "vi_split", "vi_merge", "are"]


@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("shape", [(48, 52), (14, 30, 28)])
def test_labels_in_parts_of_the_image_equal_their_binary_runs(seed, shape):
    """Each label confined to a box (as vessel segments are): the per-label evaluation crops
    to the structures, which must not change a single value; windows turn the crop off."""
    rng = np.random.default_rng(100 + seed)
    target = np.zeros(shape, np.uint8)
    pred = np.zeros(shape, np.uint8)
    for value in (1, 2, 3):
        lo = [int(rng.integers(0, n // 2)) for n in shape]
        box = tuple(slice(a, a + int(rng.integers(3, n // 2 + 1))) for a, n in zip(lo, shape))
        if value == 3:  # one label touching the image border
            box = (slice(0, shape[0] // 3),) + box[1:]
        blob = np.zeros(shape, bool)
        blob[box] = ndi.gaussian_filter(rng.random(blob[box].shape), 1.0) > 0.5
        target[blob & (target == 0)] = value
        noisy = blob ^ (rng.random(shape) < 0.03) & ndi.binary_dilation(blob, iterations=2)
        pred[noisy & (pred == 0)] = value
    spacing = tuple(rng.uniform(0.5, 2.0, len(shape)))
    for over in ({}, {"betti_window": 16, "e0_gt_window": 16}):
        r = evaluate_labels(pred, target, labels=[1, 2, 3], metrics=ALL_METRICS,
                            spacing=spacing, **over)
        for value in (1, 2, 3):
            assert r[str(value)] == evaluate_case(pred == value, target == value,
                                                  metrics=ALL_METRICS, spacing=spacing, **over)
        assert r["merged"] == evaluate_case(pred > 0, target > 0, metrics=ALL_METRICS,
                                            spacing=spacing, **over)


def test_names_from_a_mapping_and_from_dataset_json(tmp_path):
    rng = np.random.default_rng(0)
    pred, target = label_maps(rng, (30, 30), 2)
    v2 = tmp_path / "dataset.json"
    v2.write_text(json.dumps({"labels": {"background": 0, "artery": 1, "vein": 2}}))
    v1 = tmp_path / "dataset_v1.json"
    v1.write_text(json.dumps({"labels": {"0": "background", "1": "artery", "2": "vein"}}))
    assert read_label_names(v2) == read_label_names(v1) == {"artery": 1, "vein": 2}
    by_names = evaluate_labels(pred, target, labels=["vein", "artery"], label_names=v2)
    by_ints = evaluate_labels(pred, target, labels=[2, 1], label_names=v1)
    by_map = evaluate_labels(pred, target, labels={"vein": 2, "artery": 1})
    assert list(by_names) == ["vein", "artery", "merged"]
    assert by_names == by_ints == by_map
    assert by_names["vein"] == evaluate_case(pred == 2, target == 2)
    # digit strings (as the CLI passes them) are values
    assert evaluate_labels(pred, target, labels=["1"]) == evaluate_labels(pred, target, labels=[1])


def test_label_missing_on_one_side_follows_the_empty_rules():
    target = np.zeros((12, 12), np.uint8)
    target[2, 1:11] = 1
    target[8, 1:11] = 2
    pred = target.copy()
    pred[pred == 2] = 0  # label 2 entirely missed
    pred[5, 3:6] = 3  # label 3 only in the prediction
    r = evaluate_labels(pred, target, labels=[1, 2, 3],
                        metrics=["dice", "cldice", "e0", "ags", "hd95", "nsd"])
    assert r["1"]["dice"] == 1.0 and r["1"]["hd95"] == 0.0
    assert r["2"]["dice"] == 0.0 and r["2"]["nsd"] == 0.0 and r["2"]["e0"] == 1.0
    assert r["2"]["hd95"] == pytest.approx(np.hypot(12, 12))
    assert r["3"]["dice"] == 0.0 and r["3"]["ags"] == 1.0  # empty target skeleton
    assert all(np.isfinite(v) for row in r.values() for v in row.values())
    both_empty = evaluate_labels(pred, target, labels=[7])
    assert both_empty["7"]["dice"] == 1.0 and both_empty["7"]["e0"] == 0.0


def test_label_average():
    rng = np.random.default_rng(4)
    pred, target = label_maps(rng, (8, 14, 12), 2)
    r = evaluate_labels(pred, target, labels=[1, 2], protocol="topcow")
    avg = label_average(r)
    assert avg["dice"] == pytest.approx((r["1"]["dice"] + r["2"]["dice"]) / 2)
    assert avg["e0"] == pytest.approx((r["1"]["e0"] + r["2"]["e0"]) / 2)
    assert avg["cldice"] == r["merged"]["cldice"]  # TopCoW's binary-merged clDice


def test_bad_inputs():
    m = np.zeros((6, 6), np.uint8)
    with pytest.raises(InvalidParameterError, match="background"):
        evaluate_labels(m, m, labels=[0])
    with pytest.raises(InvalidParameterError, match="unknown label name"):
        evaluate_labels(m, m, labels=["artery"])
    with pytest.raises(InvalidParameterError, match="twice"):
        resolve_labels([1, 1])
    with pytest.raises(InvalidParameterError, match="reserved"):
        resolve_labels({"merged": 1})
    with pytest.raises(InvalidParameterError, match="at least one"):
        resolve_labels([])
    with pytest.raises(InvalidMaskTypeError, match="integer label map"):
        evaluate_labels(m.astype(float), m, labels=[1])
    with pytest.raises(InvalidMaskError, match="same shape"):
        evaluate_labels(m, m[:5], labels=[1])
    with pytest.raises(InvalidMaskError, match=">= 0"):
        evaluate_labels(m.astype(np.int8) - 1, m, labels=[1])


def test_region_based_dataset_json_is_refused(tmp_path):
    path = tmp_path / "dataset.json"
    path.write_text(json.dumps({"labels": {"background": 0, "whole": [1, 2], "core": 2}}))
    with pytest.raises(InvalidParameterError, match="region-based"):
        read_label_names(path)

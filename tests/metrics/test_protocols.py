"""Protocol presets, overrides and evaluate_case."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pytest

import topobench.masks
import topobench.metrics.overlap
import topobench.metrics.protocols
import topobench.metrics.topology
import topobench.metrics.window_errors
import topobench.metrics.windows
from topobench.errors import InvalidMaskError, InvalidParameterError
from topobench.metrics import (
    METRIC_NAMES,
    PROTOCOLS,
    ags,
    betti_errors,
    cldice,
    dice,
    e0_gt,
    evaluate_case,
    resolve_protocol,
)


def vessels(shape, seed, n=6):
    rng = np.random.default_rng(seed)
    m = np.zeros(shape, bool)
    for _ in range(n):
        pos = np.array([s // 2 for s in shape])
        for _ in range(6 * max(shape)):
            pos = np.clip(pos + rng.integers(-1, 2, size=len(shape)), 0, np.array(shape) - 1)
            m[tuple(pos)] = True
    return m


def test_presets_follow_the_spec_table():
    assert PROTOCOLS["roads"].betti_window == 375 and PROTOCOLS["roads"].e0_gt_window == 375
    assert PROTOCOLS["roads"].cldice_window is None and PROTOCOLS["roads"].ags_window is None
    assert PROTOCOLS["hrf"].betti_window == 292 and PROTOCOLS["hrf"].e0_gt_window == 292
    assert PROTOCOLS["vessap"].betti_slices and PROTOCOLS["vessap"].e0_gt_window is None
    cld = PROTOCOLS["cld"]
    assert cld.betti_slices
    assert cld.cldice_window == cld.ags_window == cld.e0_gt_window == (64, 1024, 1024)
    d = PROTOCOLS["default"]
    assert not d.betti_slices and d.betti_window is None and d.ndim is None
    json.dumps(cld.to_dict())  # JSON-ready, with the version
    assert cld.to_dict()["topobench_version"]


def test_evaluate_case_equals_the_individual_metrics():
    target = vessels((60, 70), 0)
    pred = target.copy()
    pred[20:24, :] = False
    pred |= vessels((60, 70), 1, n=1)
    r = evaluate_case(pred, target, protocol="default", betti_window=20, e0_gt_window=25)
    assert list(r) == ["dice", "cldice", "e", "e0", "e1", "e0_gt", "ags"]
    errs = betti_errors(pred, target, window=20)
    assert r["dice"] == dice(pred, target)
    assert r["cldice"] == pytest.approx(cldice(pred, target))
    assert r["ags"] == pytest.approx(ags(pred, target))
    assert (r["e"], r["e0"], r["e1"]) == (errs.e, errs.e0, errs.e1)
    assert r["e0_gt"] == e0_gt(pred, target, window=25)


def test_3d_default_has_e2_and_vessap_uses_slices():
    target = vessels((8, 30, 30), 2)
    pred = target.copy()
    pred[4] = False
    r = evaluate_case(pred, target)
    assert "e2" in r and r["e"] == pytest.approx(r["e0"] + r["e1"] + r["e2"])
    v = evaluate_case(pred, target, protocol="vessap")
    assert "e2" not in v
    assert v["e0"] == betti_errors(pred, target, slices=True).e0


def test_cld_protocol_tiles_skeleton_metrics():
    target = vessels((10, 40, 40), 3)
    pred = target.copy()
    pred[:, 18:21] = False
    windows = (5, 20, 20)
    r = evaluate_case(pred, target, protocol="cld", cldice_window=windows, ags_window=windows,
                      e0_gt_window=windows)
    assert r["cldice"] == pytest.approx(cldice(pred, target, window=windows))
    assert r["ags"] == pytest.approx(ags(pred, target, window=windows))
    assert r["e0_gt"] == pytest.approx(e0_gt(pred, target, window=windows))


def test_metric_selection_and_overrides():
    m = vessels((30, 30), 4)
    r = evaluate_case(m, m, metrics=["ags", "dice"])
    assert list(r) == ["dice", "ags"]
    p = resolve_protocol("roads", betti_window=100, connectivity=4)
    assert p.betti_window == 100 and p.connectivity == 4 and p.e0_gt_window == 375
    assert resolve_protocol("roads", betti_window=None) == PROTOCOLS["roads"]
    assert resolve_protocol("cld", cldice_window=[8, 16, 16]).cldice_window == (8, 16, 16)
    whole = resolve_protocol("roads", betti_window="whole")
    assert whole.betti_window is None and whole.e0_gt_window == 375
    with pytest.raises(InvalidParameterError, match="window"):
        resolve_protocol("roads", betti_window="375")


def test_perfect_prediction_in_every_protocol():
    for protocol, shape in (("roads", (50, 60)), ("hrf", (40, 40)), ("vessap", (5, 30, 30)),
                            ("cld", (5, 30, 30)), ("default", (5, 30, 30))):
        m = vessels(shape, 5)
        r = evaluate_case(m, m, protocol=protocol)
        assert r["dice"] == r["cldice"] == r["ags"] == 1.0
        assert r["e"] == r["e0"] == r["e1"] == r["e0_gt"] == 0.0


def test_both_empty_and_one_empty_never_nan():
    z = np.zeros((6, 20, 20), bool)
    m = vessels((6, 20, 20), 6)
    for pred, target in ((z, z), (z, m), (m, z)):
        for protocol in ("default", "vessap"):
            r = evaluate_case(pred, target, protocol=protocol)
            assert not any(np.isnan(v) for v in r.values())
    r = evaluate_case(z, z)
    assert r["dice"] == r["cldice"] == r["ags"] == 1.0 and r["e"] == 0.0
    r = evaluate_case(z, m)
    assert r["dice"] == r["cldice"] == r["ags"] == 0.0


def test_2d_metrics_equal_slices_protocol_of_one_slice_volume():
    target = vessels((40, 50), 7)
    pred = target.copy()
    pred[10:13] = False
    flat = evaluate_case(pred, target, protocol="default")
    sliced = evaluate_case(pred[None], target[None], protocol="vessap")
    for key in ("dice", "e", "e0", "e1"):
        assert flat[key] == sliced[key]


def test_protocol_errors():
    m2 = np.zeros((10, 10), bool)
    m3 = np.zeros((3, 10, 10), bool)
    with pytest.raises(InvalidMaskError, match="expects 2D"):
        evaluate_case(m3, m3, protocol="roads")
    with pytest.raises(InvalidMaskError, match="expects 3D"):
        evaluate_case(m2, m2, protocol="vessap")
    with pytest.raises(InvalidParameterError, match="unknown protocol"):
        evaluate_case(m2, m2, protocol="drive")
    with pytest.raises(InvalidParameterError, match="unknown protocol parameter"):
        evaluate_case(m2, m2, windoww=3)
    with pytest.raises(InvalidParameterError, match="unknown metric"):
        evaluate_case(m2, m2, metrics=["betti"])
    with pytest.raises(InvalidParameterError, match="connectivity 26"):
        evaluate_case(m2, m2, connectivity=26)
    with pytest.raises(ValueError, match="window"):
        evaluate_case(m2, m2, betti_window=(3, 3, 3))
    assert set(METRIC_NAMES) >= {"dice", "cldice", "e", "e0", "e1", "e0_gt", "ags", "e2"}


@pytest.mark.parametrize(
    "module",
    [topobench.masks, topobench.metrics.topology, topobench.metrics.windows,
     topobench.metrics.overlap, topobench.metrics.window_errors, topobench.metrics.protocols],
)
def test_docstring_examples(module):
    result = doctest.testmod(module, extraglobs={"np": np})
    assert result.failed == 0 and result.attempted > 0


def test_evaluate_case_validates_the_pair_once(monkeypatch):
    """The pair is validated once (two masks) and the kernels take the validated arrays; the
    Betti matching error, whose kernel validates on its own, sees bool arrays (no work)."""
    import topobench.masks as masks

    calls = []
    real = masks.as_mask

    def counting(mask, **kwargs):
        calls.append(np.asarray(mask).dtype)
        return real(mask, **kwargs)

    monkeypatch.setattr(masks, "as_mask", counting)
    target = np.zeros((12, 14), np.uint8)
    target[3, 1:13] = 255
    pred = target.copy()
    pred[3, 6] = 0
    everything = [m for m in METRIC_NAMES if m not in ("e2", "bm", "bm0", "bm1", "bm2")]
    result = evaluate_case(pred, target, metrics=everything)
    assert len(calls) == 2 and set(result) == set(everything)
    calls.clear()
    evaluate_case(pred, target, metrics=["bm"])
    assert calls[:2] == [np.uint8, np.uint8] and set(calls[2:]) <= {np.dtype(bool)}


def test_every_metric_is_the_reduction_of_its_window_statistics():
    """One pattern: ``<statistics>_window_stats`` and ``<metric>_from_window_stats``."""
    import topobench.metrics as tm

    target = vessels((40, 40), seed=3)
    pred = target.copy()
    pred[18:22, :] = False
    kw = {"window": 20}
    skel = tm.skeleton_window_stats(pred, target, **kw)
    assert tm.cldice_from_window_stats(skel) == cldice(pred, target, **kw)
    assert tm.ags_from_window_stats(skel) == ags(pred, target, **kw)
    betti = tm.betti_window_stats(pred, target, **kw)
    assert tm.betti_errors_from_window_stats(betti) == betti_errors(pred, target, **kw)
    gt = tm.e0_gt_window_stats(pred, target, **kw)
    assert tm.e0_gt_from_window_stats(gt) == e0_gt(pred, target, **kw)
    bm = tm.betti_matching_window_stats(pred, target, **kw)
    assert tm.betti_matching_error_from_window_stats(bm) == tm.betti_matching_error(
        pred, target, **kw)

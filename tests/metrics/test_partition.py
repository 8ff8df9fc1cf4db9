"""VI split/merge and adapted Rand error against brute-force definitions on small masks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import ndimage as ndi

from topobench.metrics import (
    adapted_rand_error,
    evaluate_case,
    partition_scores,
    vi_merge,
    vi_split,
)


def components(mask, connectivity):
    structure = ndi.generate_binary_structure(mask.ndim, 1 if connectivity in (4, 6) else mask.ndim)
    return ndi.label(mask, structure=structure)[0]


def brute_force(pred, target, connectivity):
    """Conditional entropies from counted joint frequencies, and the Rand F-score from
    enumerated pixel pairs, over the target's foreground pixels."""
    lp = components(pred, connectivity)[target]
    lt = components(target, connectivity)[target]
    n = lt.size
    joint: dict[tuple[int, int], int] = {}
    for a, b in zip(lt, lp):
        joint[(a, b)] = joint.get((a, b), 0) + 1
    pt = {a: np.count_nonzero(lt == a) / n for a in set(lt)}
    pp = {b: np.count_nonzero(lp == b) / n for b in set(lp)}
    h_p_given_t = -sum(c / n * np.log2((c / n) / pt[a]) for (a, _), c in joint.items())
    h_t_given_p = -sum(c / n * np.log2((c / n) / pp[b]) for (_, b), c in joint.items())
    same_both = same_t = same_p = 0
    for i, j in itertools.permutations(range(n), 2):
        st, sp = lt[i] == lt[j], lp[i] == lp[j]
        same_t += st
        same_p += sp
        same_both += st and sp
    are = 1 - 2 * same_both / (same_t + same_p) if same_t + same_p else 0.0
    return h_p_given_t, h_t_given_p, are


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("shape,connectivity", [((14, 13), 8), ((14, 13), 4), ((6, 7, 5), 26),
                                                ((6, 7, 5), 6)])
def test_against_brute_force(seed, shape, connectivity):
    rng = np.random.default_rng(seed)
    target = ndi.gaussian_filter(rng.random(shape), 1.0) > 0.52
    pred = target ^ (rng.random(shape) < 0.15)
    if not target.any():
        target[(0,) * len(shape)] = True
    s = partition_scores(pred, target, connectivity=connectivity)
    split, merge, are = brute_force(pred, target, connectivity)
    assert s.vi_split == pytest.approx(split, abs=1e-9)
    assert s.vi_merge == pytest.approx(merge, abs=1e-9)
    if pred.any():
        assert s.are == pytest.approx(are, abs=1e-9)


def test_known_answers():
    target = np.zeros((7, 12), bool)
    target[2, 1:11] = True
    target[4, 1:11] = True
    assert partition_scores(target, target).to_dict() == {
        "vi_split": 0.0, "vi_merge": 0.0, "are": 0.0
    }
    bridged = target.copy()
    bridged[3, 5] = True  # the two lines merged into one component
    assert vi_merge(bridged, target) == pytest.approx(1.0)  # one bit: which of two halves
    assert vi_split(bridged, target) == 0.0
    assert 0 < adapted_rand_error(bridged, target) < 1
    cut = target.copy()
    cut[2, 6] = False
    assert vi_split(cut, target) > 0 and vi_merge(cut, target) == 0.0
    # connectivity: pieces touching at a corner are one piece under 8, two under 4
    diag = np.zeros((4, 4), bool)
    diag[1, 1] = diag[2, 2] = True
    one = diag.copy()
    one[1, 2] = True
    assert vi_merge(one, diag, connectivity=8) == 0.0
    assert vi_merge(one, diag, connectivity=4) == pytest.approx(1.0)


def test_empty_rules_never_nan():
    empty = np.zeros((6, 6), bool)
    line = empty.copy()
    line[3, 0:5] = True
    two = line.copy()
    two[3, 2] = False
    assert partition_scores(empty, empty).to_dict() == {"vi_split": 0.0, "vi_merge": 0.0,
                                                        "are": 0.0}
    s = partition_scores(two, empty)  # prediction only: two pieces of 2 pixels = 1 bit
    assert (s.vi_split, s.vi_merge, s.are) == (pytest.approx(1.0), 0.0, 1.0)
    s = partition_scores(empty, two)  # target only: merged into the background
    assert (s.vi_split, s.vi_merge, s.are) == (0.0, pytest.approx(1.0), 1.0)
    assert partition_scores(empty, line).are == 1.0
    single = empty.copy()
    single[0, 0] = True
    assert partition_scores(single, single).are == 0.0  # one pixel: no pairs, same partition


def test_in_evaluate_case_with_protocol_connectivity():
    diag = np.zeros((6, 6), bool)
    diag[1, 1] = diag[2, 2] = True
    pred = diag.copy()
    pred[1, 2] = True
    r4 = evaluate_case(pred, diag, metrics=["vi_split", "vi_merge", "are"], connectivity=4)
    r8 = evaluate_case(pred, diag, metrics=["vi_split", "vi_merge", "are"])
    assert list(r8) == ["vi_split", "vi_merge", "are"]
    assert r8 == partition_scores(pred, diag).to_dict()
    assert r4 == partition_scores(pred, diag, connectivity=4).to_dict()
    assert r4["vi_merge"] > r8["vi_merge"]

"""Paired statistics: known answers and scipy as the reference."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from topobench.errors import InvalidParameterError
from topobench.results import bootstrap_mean_ci, paired_comparison, wilcoxon_p


@pytest.mark.parametrize("shift", [0.25, -1.5, 3.0])
def test_constant_shift_gives_a_point_interval(shift: float) -> None:
    rng = np.random.default_rng(3)
    baseline = rng.uniform(0, 1, size=20)
    result = paired_comparison(baseline + shift, baseline)
    assert result.n == 20
    assert result.mean_difference == pytest.approx(shift)
    assert result.ci_low == pytest.approx(shift)
    assert result.ci_high == pytest.approx(shift)
    # 20 differences of one sign: far below 0.05, as scipy says
    assert result.p_value == pytest.approx(stats.wilcoxon(baseline + shift - baseline).pvalue)
    assert result.p_value < 1e-4


def test_wilcoxon_matches_scipy() -> None:
    rng = np.random.default_rng(7)
    d = rng.normal(0.3, 1.0, size=30)
    assert wilcoxon_p(d) == pytest.approx(stats.wilcoxon(d).pvalue)
    a = rng.normal(size=40)
    b = a - rng.normal(0.1, 0.5, size=40)
    assert paired_comparison(a, b).p_value == pytest.approx(stats.wilcoxon(a - b).pvalue)


def test_no_difference_is_p_one() -> None:
    assert wilcoxon_p([0.0, 0.0, 0.0]) == 1.0
    result = paired_comparison([1.0, 2.0], [1.0, 2.0])
    assert (result.p_value, result.ci_low, result.ci_high) == (1.0, 0.0, 0.0)


def test_bootstrap_interval_is_seeded_and_matches_the_standard_error() -> None:
    rng = np.random.default_rng(11)
    d = rng.normal(1.0, 2.0, size=400)
    low, high = bootstrap_mean_ci(d, seed=5)
    assert (low, high) == bootstrap_mean_ci(d, seed=5)
    assert low < d.mean() < high
    # percentile interval of a mean of 400 values: about mean -/+ 1.96 s / sqrt(n)
    half = 1.96 * d.std(ddof=1) / np.sqrt(d.size)
    assert low == pytest.approx(d.mean() - half, abs=0.1 * half)
    assert high == pytest.approx(d.mean() + half, abs=0.1 * half)
    narrow = bootstrap_mean_ci(d, confidence=0.5, seed=5)
    assert low < narrow[0] < narrow[1] < high


def _percentile_bootstrap(d: np.ndarray, confidence: float, n_resamples: int,
                          seed: int) -> tuple[float, float]:
    """topobench's interval before it used scipy.stats.bootstrap: cases resampled with a seeded
    generator in chunks of 1000, quantiles of the resampled means."""
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    for start in range(0, n_resamples, 1000):
        stop = min(start + 1000, n_resamples)
        idx = rng.integers(0, d.size, size=(stop - start, d.size))
        means[start:stop] = d[idx].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


@pytest.mark.parametrize(("n", "confidence", "n_resamples", "seed"), [
    (17, 0.95, 10_000, 0), (5, 0.9, 2_500, 3), (60, 0.5, 1_000, 11), (2, 0.95, 999, 1),
])
def test_bootstrap_interval_is_the_former_one(n: int, confidence: float, n_resamples: int,
                                              seed: int) -> None:
    d = np.random.default_rng(100 + n).normal(0.02, 0.1, size=n)
    expected = _percentile_bootstrap(d, confidence, n_resamples, seed)
    got = bootstrap_mean_ci(d, confidence=confidence, n_resamples=n_resamples, seed=seed)
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: bootstrap_mean_ci([]), "at least one"),
        (lambda: bootstrap_mean_ci([1.0, np.nan]), "finite"),
        (lambda: bootstrap_mean_ci([1.0, 2.0], confidence=1.5), "confidence"),
        (lambda: paired_comparison([1.0, 2.0], [1.0]), "one length"),
    ],
)
def test_invalid_input_is_rejected(call, message: str) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        call()


def test_scaled_converts_units_but_not_the_p_value() -> None:
    result = paired_comparison([0.8, 0.9, 0.7], [0.7, 0.8, 0.7]).scaled(100)
    assert result.mean_difference == pytest.approx(100 * 0.2 / 3)
    assert result.p_value == paired_comparison([0.8, 0.9, 0.7], [0.7, 0.8, 0.7]).p_value
    assert set(result.to_dict()) == {"n", "mean_difference", "ci_low", "ci_high", "p_value",
                                     "confidence"}

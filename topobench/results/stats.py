"""Paired statistics of a method against a baseline over the same cases.

Two complementary views of the per-case differences ``d = method - baseline``: the two-sided
Wilcoxon signed-rank test and a percentile bootstrap confidence interval of the mean
difference (seeded, so a table is reproducible), both from :mod:`scipy.stats`.
"""

from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from topobench.errors import InvalidParameterError

_BOOTSTRAP_CHUNK = 1000
# scipy >= 1.15 names the generator ``rng``; older versions ``random_state`` (same meaning).
_RNG_KEYWORD = "rng" if "rng" in inspect.signature(stats.bootstrap).parameters else "random_state"


@dataclass(frozen=True)
class PairedComparison:
    """A method compared with a baseline over ``n`` paired cases.

    Attributes
    ----------
    n : int
        Number of cases present in both.
    mean_difference : float
        Mean of ``method - baseline`` over the cases (units of the inputs).
    ci_low, ci_high : float
        Percentile bootstrap interval of the mean difference at ``confidence``.
    p_value : float
        Two-sided Wilcoxon signed-rank p-value (1.0 when every difference is 0).
    confidence : float
        Confidence level of the interval, e.g. 0.95.
    """

    n: int
    mean_difference: float
    ci_low: float
    ci_high: float
    p_value: float
    confidence: float

    def to_dict(self) -> dict[str, float]:
        """The fields as a plain dict."""
        return asdict(self)

    def scaled(self, factor: float) -> PairedComparison:
        """The same comparison in other units (differences and interval times ``factor``)."""
        return PairedComparison(
            n=self.n,
            mean_difference=self.mean_difference * factor,
            ci_low=self.ci_low * factor,
            ci_high=self.ci_high * factor,
            p_value=self.p_value,
            confidence=self.confidence,
        )


def _differences(values: ArrayLike) -> np.ndarray:
    d = np.asarray(values, dtype=float).ravel()
    if d.size == 0:
        raise InvalidParameterError("expected at least one paired case, got none")
    if not np.all(np.isfinite(d)):
        raise InvalidParameterError("expected finite paired differences, got NaN or inf")
    return d


def bootstrap_mean_ci(
    differences: ArrayLike,
    *,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean of ``differences``.

    :func:`scipy.stats.bootstrap` (``method="percentile"``) with a
    ``numpy.random.default_rng(seed)`` generator, resampling the cases in batches of 1000.

    Parameters
    ----------
    differences : array_like, shape (n,)
        Per-case paired differences.
    confidence : float
        Two-sided level in (0, 1).
    n_resamples : int
        Number of bootstrap resamples (cases drawn with replacement).
    seed : int
        Seed of the generator, so the interval is reproducible.

    Returns
    -------
    (low, high) : tuple of float
        The ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of the resampled
        means. A constant shift ``c`` gives ``(c, c)``.

    Examples
    --------
    >>> bootstrap_mean_ci([0.5, 0.5, 0.5])
    (0.5, 0.5)
    """
    d = _differences(differences)
    if not 0.0 < confidence < 1.0:
        raise InvalidParameterError(f"expected confidence in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise InvalidParameterError(f"expected n_resamples >= 1, got {n_resamples}")
    if np.all(d == d[0]):
        return float(d[0]), float(d[0])
    result = stats.bootstrap(
        (d,),
        np.mean,
        n_resamples=n_resamples,
        batch=_BOOTSTRAP_CHUNK,
        vectorized=True,
        confidence_level=confidence,
        method="percentile",
        **{_RNG_KEYWORD: np.random.default_rng(seed)},
    )
    interval = result.confidence_interval
    return float(interval.low), float(interval.high)


def wilcoxon_p(differences: ArrayLike) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired differences.

    scipy's :func:`scipy.stats.wilcoxon` with its defaults (zero differences dropped, exact
    distribution for small samples without ties); 1.0 when every difference is zero, since
    there is then no evidence of a difference at all.
    """
    d = _differences(differences)
    if np.all(d == 0):
        return 1.0
    return float(stats.wilcoxon(d).pvalue)


def paired_comparison(
    values: ArrayLike,
    baseline: ArrayLike,
    *,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> PairedComparison:
    """Compare per-case ``values`` of a method with the ``baseline`` on the same cases.

    Parameters
    ----------
    values, baseline : array_like, shape (n,)
        Per-case figures, aligned case by case.
    confidence, n_resamples, seed
        Options of :func:`bootstrap_mean_ci`.

    Returns
    -------
    PairedComparison
    """
    a = np.asarray(values, dtype=float).ravel()
    b = np.asarray(baseline, dtype=float).ravel()
    if a.shape != b.shape:
        raise InvalidParameterError(
            f"expected paired arrays of one length, got {a.size} and {b.size}"
        )
    d = _differences(a - b)
    low, high = bootstrap_mean_ci(d, confidence=confidence, n_resamples=n_resamples, seed=seed)
    return PairedComparison(
        n=int(d.size),
        mean_difference=float(d.mean()),
        ci_low=low,
        ci_high=high,
        p_value=wilcoxon_p(d),
        confidence=confidence,
    )

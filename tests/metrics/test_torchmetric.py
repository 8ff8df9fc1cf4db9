"""TopologyMetrics equals evaluate_case / evaluate_labels on the same cases."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from topobench.metrics import evaluate_case, evaluate_labels, label_average

torch = pytest.importorskip("torch")
try:
    from topobench.metrics import TopologyMetrics
except Exception as exc:  # torchmetrics absent, or unimportable in this environment
    pytest.skip(f"torchmetrics is not importable: {exc}", allow_module_level=True)


def cases(seed, shape, n, n_labels=1):
    from scipy import ndimage as ndi

    rng = np.random.default_rng(seed)
    targets, preds = [], []
    for _ in range(n):
        t = np.zeros(shape, np.int64)
        for value in range(1, n_labels + 1):
            t[(ndi.gaussian_filter(rng.random(shape), 1.2) > 0.53) & (t == 0)] = value
        p = t.copy()
        flip = rng.random(shape) < 0.1
        p[flip] = rng.integers(0, n_labels + 1, int(flip.sum()))
        targets.append(t)
        preds.append(p)
    return np.stack(preds), np.stack(targets)


def mean_of(rows):
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def as_floats(result):
    return {k: float(v) for k, v in result.items()}


def test_import_of_metrics_needs_no_torch():
    code = "import sys, topobench.metrics; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


@pytest.mark.parametrize("shape", [(20, 24), (6, 12, 10)])
def test_logits_probabilities_and_labels_equal_evaluate_case(shape):
    preds, targets = cases(1, shape, 5)
    rows = [evaluate_case(p, t) for p, t in zip(preds, targets)]
    want = mean_of(rows)
    onehot = torch.nn.functional.one_hot(torch.from_numpy(preds), 2).movedim(-1, 1).float()
    logits = onehot * 6.0 - 3.0 + 0.1 * torch.randn(onehot.shape, generator=torch.Generator()
                                                     .manual_seed(0))
    probs = torch.softmax(logits, dim=1)
    inputs = {
        "logits C=2": (logits, torch.from_numpy(targets)),
        "probabilities C=2, target (B, 1, ...)": (probs, torch.from_numpy(targets)[:, None]),
        "logits C=1": (logits[:, 1:] - logits[:, :1], torch.from_numpy(targets)),
        "probabilities C=1": (probs[:, 1:], torch.from_numpy(targets)),
        "labels": (torch.from_numpy(preds), torch.from_numpy(targets)),
    }
    for name, (p, t) in inputs.items():
        metric = TopologyMetrics()
        metric.update(p[:2], t[:2])  # two batches
        metric.update(p[2:], t[2:])
        got = as_floats(metric.compute())
        assert got == pytest.approx(want, abs=1e-12), name
        assert metric.per_case() == rows, name
        metric.reset()
        with pytest.warns(UserWarning, match="before the ``update``"):  # torchmetrics' note
            assert metric.compute() == {}
        assert metric.per_case() == []


def test_labels_and_protocol_options():
    preds, targets = cases(2, (8, 14, 12), 3, n_labels=2)
    metric = TopologyMetrics("topcow", labels={"artery": 1, "vein": 2})
    logits = torch.nn.functional.one_hot(torch.from_numpy(preds), 3).movedim(-1, 1).float()
    metric.update(logits, torch.from_numpy(targets))
    got = as_floats(metric.compute())
    per_case = [
        evaluate_labels(p, t, labels={"artery": 1, "vein": 2}, protocol="topcow")
        for p, t in zip(preds, targets)
    ]
    for label in ("artery", "vein", "merged"):
        for m, v in mean_of([r[label] for r in per_case]).items():
            assert got[f"{label}/{m}"] == pytest.approx(v, abs=1e-12)
    nested = {k: mean_of([r[k] for r in per_case]) for k in per_case[0]}
    for m, v in label_average(nested).items():
        assert got[m] == pytest.approx(v, abs=1e-12)
    assert "artery/cldice" not in got and got["cldice"] == got["merged/cldice"]
    # protocol parameters pass through; Metric options too
    m2 = TopologyMetrics(metrics=["dice", "hd95"], spacing=(2.0, 1.0, 1.0),
                         dist_sync_on_step=False)
    m2.update(torch.from_numpy(preds > 0), torch.from_numpy(targets > 0))
    want = mean_of([evaluate_case(p > 0, t > 0, metrics=["dice", "hd95"],
                                  spacing=(2.0, 1.0, 1.0)) for p, t in zip(preds, targets)])
    assert as_floats(m2.compute()) == pytest.approx(want)


def test_state_is_a_cat_list_and_merging_equals_one_metric():
    """What DDP does: per-case rows of every process concatenated before the mean."""
    preds, targets = cases(3, (16, 18), 6)
    p, t = torch.from_numpy(preds), torch.from_numpy(targets)
    a, b, whole = TopologyMetrics(), TopologyMetrics(), TopologyMetrics()
    assert a._defaults["values"] == [] and a._reductions["values"].__name__ == "dim_zero_cat"
    a.update(p[:4], t[:4])
    b.update(p[4:], t[4:])
    whole.update(p, t)
    a.merge_state(b)
    assert as_floats(a.compute()) == pytest.approx(as_floats(whole.compute()), abs=1e-12)
    # a synchronised state is one concatenated tensor: compute reads that too
    whole.values = torch.cat(whole.values)
    assert as_floats(whole.compute()) == pytest.approx(as_floats(a.compute()), abs=1e-12)


def test_bad_inputs():
    metric = TopologyMetrics()
    with pytest.raises(ValueError, match="expected preds"):
        metric.update(torch.zeros(2, 2, 8, 8), torch.zeros(2, 7, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="integer labels"):
        metric.update(torch.zeros(1, 8, 8, dtype=torch.long), torch.full((1, 8, 8), 0.5))
    with pytest.raises(ValueError):  # three classes without labels=: not a binary mask
        metric.update(torch.full((1, 8, 8), 2), torch.zeros(1, 8, 8, dtype=torch.long))

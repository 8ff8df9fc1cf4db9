"""The open choices of CLoss's masked term (ce_normalization, mask_smooth) against a reference
written out from the formula in docs/losses.md."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from topobench.critical import critical_mask  # noqa: E402
from topobench.errors import InvalidParameterError  # noqa: E402
from topobench.losses import ContextLoss, make_loss  # noqa: E402
from topobench.losses.functional import context_loss, dice_ce_loss  # noqa: E402


def _case(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    target = torch.zeros(2, 1, 32, 32, dtype=torch.long)
    target[:, :, 16, 2:30] = 1
    target[:, :, 4:28, 8] = 1
    logits = torch.randn(2, 2, 32, 32, generator=g)
    logits[:, 1] += 3.0 * target[:, 0] - 1.5
    logits[:, 1, 16, 12:16] = -4.0  # a gap in the horizontal line
    return logits, target


def _reference(logits, target, gamma, alpha, smooth, mask_smooth, normalization):  # noqa: ANN001
    prob = torch.softmax(logits, 1)[:, 1:2]
    y = target.float()
    m = critical_mask(logits[:, 1:2] > logits[:, 0:1], target.bool()).float()
    ce = torch.nn.functional.cross_entropy(logits, target[:, 0], reduction="none").unsqueeze(1)
    out = []
    for b in range(logits.shape[0]):
        pixel = dice_ce_loss(logits[b : b + 1], target[b : b + 1], alpha=alpha, smooth=smooth)
        pm, ym, mb = prob[b] * m[b], y[b] * m[b], m[b]
        dice = 1 - (2 * (pm * ym).sum() + mask_smooth) / (pm.sum() + ym.sum() + mask_smooth)
        denom = mb.sum() if normalization == "mask" else mb.numel()
        masked = (1 - alpha) * dice + alpha * (ce[b] * mb).sum() / denom
        out.append((1 - gamma) * pixel + gamma * masked)
    return torch.stack(out).mean()


@pytest.mark.parametrize("normalization", ["mask", "all"])
@pytest.mark.parametrize("mask_smooth", [None, 1e-3])
def test_masked_term_follows_the_formula(normalization: str, mask_smooth: float | None) -> None:
    logits, target = _case()
    got = context_loss(logits, target, gamma=0.3, ce_normalization=normalization,
                       mask_smooth=mask_smooth)
    want = _reference(logits, target, 0.3, 0.5, 1.0,
                      1.0 if mask_smooth is None else mask_smooth, normalization)
    assert got.item() == pytest.approx(want.item(), rel=1e-5)


def test_normalising_over_all_pixels_divides_the_masked_ce_by_n_instead_of_m() -> None:
    logits, target = _case(1)
    kw = dict(gamma=0.5, alpha=1.0, reduction="none")  # CE only
    over_mask = context_loss(logits, target, ce_normalization="mask", **kw)
    over_all = context_loss(logits, target, ce_normalization="all", **kw)
    m = critical_mask(logits[:, 1:2] > logits[:, 0:1], target.bool()).float()
    ce = torch.nn.functional.cross_entropy(logits, target[:, 0], reduction="none").unsqueeze(1)
    masked_sum = (ce * m).flatten(1).sum(1)
    size, n = m.flatten(1).sum(1), m[0].numel()
    assert bool((size > 0).all()) and bool((size < n).all())
    expected = 0.5 * masked_sum * (1 / size - 1 / n)
    assert torch.allclose(over_mask - over_all, expected, rtol=1e-5)


def test_options_reach_the_module_and_make_loss() -> None:
    logits, target = _case(2)
    direct = context_loss(logits, target, gamma=0.2, ce_normalization="all", mask_smooth=0.01)
    module = ContextLoss(0.2, ce_normalization="all", mask_smooth=0.01)(logits, target)
    built = make_loss("closs", gamma=0.2, ce_normalization="all", mask_smooth=0.01)(logits, target)
    assert direct.item() == module.item() == built.item()
    assert "ce_normalization='all'" in repr(ContextLoss(0.2, ce_normalization="all"))


def test_bad_options_are_refused() -> None:
    logits, target = _case()
    with pytest.raises(InvalidParameterError, match="ce_normalization"):
        context_loss(logits, target, gamma=0.2, ce_normalization="pixels")
    with pytest.raises(InvalidParameterError, match="mask_smooth must be a positive number"):
        context_loss(logits, target, gamma=0.2, mask_smooth=0.0)


def test_the_default_normalisation_is_one_fact() -> None:
    import inspect

    from topobench.losses import functional as LF

    module_default = inspect.signature(ContextLoss).parameters["ce_normalization"].default
    function_default = inspect.signature(context_loss).parameters["ce_normalization"].default
    assert module_default == function_default == LF.DEFAULT_CE_NORMALIZATION == "all"
    logits, target = _case(3)
    assert context_loss(logits, target, gamma=0.2).item() == pytest.approx(
        _reference(logits, target, 0.2, 0.5, 1.0, 1.0, "all").item(), rel=1e-5)

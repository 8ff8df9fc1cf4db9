"""The PyTorch losses: formulas, soft skeleton, input checks, gradients, factory."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

torch = pytest.importorskip("torch")

from topobench.critical import binary_soft_skeleton  # noqa: E402
from topobench.errors import (  # noqa: E402
    InvalidMaskError,
    InvalidMaskTypeError,
    InvalidParameterError,
)
from topobench.losses import (  # noqa: E402
    LOSS_DISPLAY_NAMES,
    LOSS_NAMES,
    ClDiceLoss,
    CompoundClDiceLoss,
    ContextLoss,
    DiceCELoss,
    make_loss,
    soft_skeleton,
)

GAMMA = {name: (None if name == "dice_ce" else 0.3) for name in LOSS_NAMES}


def _toy(ndim: int, batch: int = 2, seed: int = 0):
    """Random logits (B, 2, ...) and a blobby target (B, 1, ...)."""
    gen = torch.Generator().manual_seed(seed)
    shape = (12, 16) if ndim == 2 else (6, 10, 12)
    logits = torch.randn((batch, 2, *shape), generator=gen, dtype=torch.float64)
    rng = np.random.default_rng(seed)
    target = ndi.binary_dilation(rng.random((batch, 1, *shape)) > 0.9, iterations=1)
    return logits, torch.from_numpy(target.astype(np.int64))


def _blobs(shape, seed):
    rng = np.random.default_rng(seed)
    return ndi.binary_dilation(rng.random(shape) > 0.97, iterations=int(rng.integers(1, 4)))


# --- soft skeleton -------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(64, 64), (16, 32, 32)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_soft_skeleton_of_a_binary_mask(shape, seed):
    mask = _blobs(shape, seed)
    skel = soft_skeleton(torch.from_numpy(mask[None, None].astype(np.float32)))[0, 0].numpy()
    assert set(np.unique(skel)) <= {0.0, 1.0}
    skel = skel > 0
    assert np.array_equal(skel, binary_soft_skeleton(mask))  # exact numpy twin
    assert not (skel & ~mask).any()  # inside the mask
    assert skel.sum() < 0.5 * mask.sum()  # thin
    labels, n = ndi.label(mask, np.ones((3,) * mask.ndim))
    assert set(np.unique(labels[skel])) == set(range(1, n + 1))  # every component kept


def test_soft_skeleton_of_a_thick_line_is_its_centre_line():
    mask = np.zeros((11, 30), bool)
    mask[3:8, 2:28] = True
    skel = soft_skeleton(torch.from_numpy(mask[None, None]).float())[0, 0] > 0
    assert skel[5, 5:25].all() and not skel[[3, 4, 6, 7], 5:25].any()


def test_soft_skeleton_gradient_is_finite():
    gen = torch.Generator().manual_seed(0)
    prob = torch.rand((2, 1, 6, 12, 12), generator=gen, requires_grad=True)
    soft_skeleton(prob).sum().backward()
    assert torch.isfinite(prob.grad).all() and prob.grad.abs().sum() > 0


def test_soft_skeleton_rejects_bad_input():
    with pytest.raises(InvalidMaskError):
        soft_skeleton(torch.zeros(4, 4))
    with pytest.raises(InvalidParameterError):
        soft_skeleton(torch.zeros(1, 1, 4, 4), iterations=-2)


# --- formulas ------------------------------------------------------------------------------------


def _soft_dice(prob, target, smooth=1.0):
    inter = (prob * target).flatten(1).sum(1)
    return 1 - (2 * inter + smooth) / (prob.flatten(1).sum(1) + target.flatten(1).sum(1) + smooth)


@pytest.mark.parametrize("ndim", [2, 3])
def test_dice_ce_matches_its_definition(ndim):
    logits, target = _toy(ndim)
    prob = torch.softmax(logits, 1)[:, 1:2]
    dice = _soft_dice(prob, target.double())
    ce = torch.nn.functional.cross_entropy(logits, target[:, 0], reduction="none").flatten(1)
    for alpha in (0.0, 0.5, 1.0):
        expected = ((1 - alpha) * dice + alpha * ce.mean(1)).mean()
        torch.testing.assert_close(DiceCELoss(alpha)(logits, target), expected)


@pytest.mark.parametrize("name", LOSS_NAMES)
@pytest.mark.parametrize("ndim", [2, 3])
def test_one_channel_sigmoid_equals_two_channel_softmax(name, ndim):
    logits, target = _toy(ndim)
    z = logits[:, 1:2] - logits[:, 0:1]
    two = torch.cat([torch.zeros_like(z), z], dim=1)
    loss = make_loss(name, gamma=GAMMA[name])
    torch.testing.assert_close(loss(z, target), loss(two, target))
    torch.testing.assert_close(loss(z, target[:, 0]), loss(two, target))  # (B, ...) labels


@pytest.mark.parametrize("name", ["closs", "compound_cldice"])
def test_gamma_zero_gives_the_pixel_loss(name):
    logits, target = _toy(2)
    torch.testing.assert_close(make_loss(name, gamma=0.0)(logits, target),
                               DiceCELoss()(logits, target))
    assert float(make_loss(name, gamma=0.5)(logits, target)) != pytest.approx(
        float(DiceCELoss()(logits, target)))


def test_cldice_with_gamma_zero_is_soft_dice():
    logits, target = _toy(3)
    torch.testing.assert_close(ClDiceLoss(0.0)(logits, target), DiceCELoss(0.0)(logits, target))


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("mask", ["context", "thin"])
def test_perfect_prediction_leaves_only_the_pixel_term(ndim, mask):
    _, target = _toy(ndim)
    logits = torch.cat([-3.0 * (2 * target - 1.0), 3.0 * (2 * target - 1.0)], dim=1).double()
    gamma = 0.2
    pixel = DiceCELoss()(logits, target)
    torch.testing.assert_close(ContextLoss(gamma, mask=mask)(logits, target), (1 - gamma) * pixel)


def test_context_loss_matches_a_direct_computation():
    from topobench.critical import critical_mask

    logits, target = _toy(2, seed=3)
    gamma, alpha = 0.3, 0.5
    prob = torch.softmax(logits, 1)[:, 1:2]
    m = critical_mask(logits[:, 1:2] > logits[:, 0:1], target.bool())
    assert m.any()
    m = m.double()
    y = target.double()
    ce = torch.nn.functional.cross_entropy(logits, target[:, 0], reduction="none")[:, None]
    dice_m = _soft_dice(prob * m, y * m)
    ce_sum = (ce * m).flatten(1).sum(1)
    pixel = DiceCELoss(alpha, reduction="none")(logits, target)
    # default: the masked CE is the mean of the Hadamard product over all pixels
    masked = (1 - alpha) * dice_m + alpha * ce_sum / m[0].numel()
    expected = ((1 - gamma) * pixel + gamma * masked).mean()
    torch.testing.assert_close(ContextLoss(gamma, alpha)(logits, target), expected)
    # ce_normalization="mask": averaged over the pixels of M
    masked = (1 - alpha) * dice_m + alpha * ce_sum / m.flatten(1).sum(1).clamp_min(1)
    expected = ((1 - gamma) * pixel + gamma * masked).mean()
    got = ContextLoss(gamma, alpha, ce_normalization="mask")(logits, target)
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("channels", [1, 2])
def test_critical_mask_binarises_ties_to_background(channels):
    """Zero logits (probability 0.5 everywhere) binarise to an empty prediction: the whole
    target is then missed-connection context, and no false connection is marked."""
    from topobench.critical import critical_mask

    target = torch.zeros((1, 1, 9, 20), dtype=torch.long)
    target[0, 0, 3:6, 2:18] = 1
    logits = torch.zeros((1, channels, 9, 20), dtype=torch.float64)
    m = critical_mask(torch.zeros_like(target, dtype=torch.bool), target.bool())
    assert torch.equal(m, target.bool())
    gamma, alpha = 0.3, 0.5
    prob = torch.full_like(logits[:, :1], 0.5)
    y, w = target.double(), m.double()
    ce = torch.full_like(prob, float(np.log(2.0)))
    masked = (1 - alpha) * _soft_dice(prob * w, y * w) + alpha * (ce * w).sum() / w.numel()
    pixel = DiceCELoss(alpha)(logits, target)
    expected = (1 - gamma) * pixel + gamma * masked.mean()
    torch.testing.assert_close(ContextLoss(gamma, alpha)(logits, target), expected)


def test_cldice_term_matches_its_definition():
    logits, target = _toy(2, seed=4)
    prob = torch.softmax(logits, 1)[:, 1:2]
    y = target.double()
    sp, sy = soft_skeleton(prob), soft_skeleton(y)
    tprec = ((sp * y).flatten(1).sum(1) + 1) / (sp.flatten(1).sum(1) + 1)
    tsens = ((sy * prob).flatten(1).sum(1) + 1) / (sy.flatten(1).sum(1) + 1)
    cl = 1 - 2 * tprec * tsens / (tprec + tsens)
    g = 0.4
    expected = ((1 - g) * _soft_dice(prob, y) + g * cl).mean()
    torch.testing.assert_close(ClDiceLoss(g)(logits, target), expected)
    pixel = DiceCELoss(reduction="none")(logits, target)
    expected = ((1 - g) * pixel + g * cl).mean()
    torch.testing.assert_close(CompoundClDiceLoss(g)(logits, target), expected)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_reductions(name):
    logits, target = _toy(2, batch=3)
    per = make_loss(name, gamma=GAMMA[name], reduction="none")(logits, target)
    assert per.shape == (3,)
    torch.testing.assert_close(make_loss(name, gamma=GAMMA[name])(logits, target), per.mean())
    torch.testing.assert_close(
        make_loss(name, gamma=GAMMA[name], reduction="sum")(logits, target), per.sum()
    )
    # the loss follows the prediction: never a constant
    assert not torch.allclose(per, make_loss(name, gamma=GAMMA[name], reduction="none")(
        -logits, target))


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_half_precision_logits_are_upcast(name):
    logits, target = _toy(3)
    loss = make_loss(name, gamma=GAMMA[name])
    half = logits.to(torch.bfloat16).requires_grad_(True)
    value = loss(half, target)
    assert value.dtype == torch.float32
    torch.testing.assert_close(value, loss(half.detach().float(), target))
    value.backward()
    assert half.grad is not None and half.grad.dtype == torch.bfloat16


# --- gradients -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", LOSS_NAMES)
@pytest.mark.parametrize("ndim", [2, 3])
def test_gradcheck(name, ndim):
    gen = torch.Generator().manual_seed(1)
    shape = (6, 7) if ndim == 2 else (3, 4, 5)
    logits = torch.randn((1, 2, *shape), generator=gen, dtype=torch.float64)
    target = (torch.rand((1, 1, *shape), generator=gen) > 0.5).long()
    logits.requires_grad_(True)
    # a few skeleton iterations empty such small inputs already
    params = {} if name == "dice_ce" else {"gamma": GAMMA[name], "iterations": 8}
    loss = make_loss(name, **params)
    assert torch.autograd.gradcheck(lambda x: loss(x, target), (logits,), eps=1e-6, atol=1e-5)


# --- input checks --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", LOSS_NAMES)
@pytest.mark.parametrize(
    ("logits", "target", "error"),
    [
        (torch.zeros(2, 8, 8), torch.zeros(2, 8, 8, dtype=torch.long), InvalidMaskError),
        (torch.zeros(2, 3, 8, 8), torch.zeros(2, 1, 8, 8, dtype=torch.long), InvalidMaskError),
        (torch.zeros(2, 2, 8, 8), torch.zeros(2, 2, 8, 8, dtype=torch.long), InvalidMaskError),
        (torch.zeros(2, 1, 8, 8), torch.zeros(2, 1, 8, 9, dtype=torch.long), InvalidMaskError),
        (torch.zeros(2, 1, 8, 8), torch.full((2, 1, 8, 8), 2), InvalidMaskError),
        (torch.zeros(2, 1, 8, 8), torch.full((2, 1, 8, 8), 0.5), InvalidMaskError),
        (torch.full((2, 2, 8, 8), float("nan")), torch.zeros(2, 8, 8, dtype=torch.long),
         InvalidMaskError),
        (torch.zeros(2, 1, 8, 8, dtype=torch.long), torch.zeros(2, 8, 8, dtype=torch.long),
         InvalidMaskTypeError),
        (torch.zeros(0, 2, 8, 8), torch.zeros(0, 8, 8, dtype=torch.long), InvalidMaskError),
    ],
)
def test_bad_inputs_raise(name, logits, target, error):
    with pytest.raises(error):
        make_loss(name, gamma=GAMMA[name])(logits, target)


def test_bad_options_raise():
    logits, target = _toy(2)
    for bad in (
        lambda: ContextLoss(1.5)(logits, target),
        lambda: DiceCELoss(alpha=-0.1)(logits, target),
        lambda: DiceCELoss(reduction="avg")(logits, target),
        lambda: ContextLoss(0.2, mask="full"),
        lambda: make_loss("focal"),
        lambda: make_loss("closs"),
        lambda: make_loss("closs_dice", gamma=0.2, alpha=0.5),
        lambda: make_loss("dice_ce", gamma=0.2),
        lambda: make_loss("closs", gamma=0.2, beta=1),
    ):
        with pytest.raises(InvalidParameterError):
            bad()


def test_numpy_scalar_options_are_accepted():
    logits, target = _toy(2)
    expected = make_loss("closs", gamma=0.25, iterations=10)(logits, target)
    value = make_loss("closs", gamma=np.float32(0.25), iterations=np.int64(10),
                      smooth=np.float32(1.0))(logits, target)
    torch.testing.assert_close(value, expected)
    torch.testing.assert_close(
        ClDiceLoss(np.float64(0.3), iterations=np.int32(10))(logits, target),
        ClDiceLoss(0.3, iterations=10)(logits, target),
    )
    with pytest.raises(InvalidParameterError, match="smooth"):
        DiceCELoss(smooth=float("nan"))(logits, target)
    with pytest.raises(InvalidParameterError, match="gamma"):
        ContextLoss(np.float32(float("nan")))(logits, target)


def test_factory_names():
    assert LOSS_NAMES == ("dice_ce", "cldice", "compound_cldice", "closs", "closs_dice",
                          "thin_closs")
    assert set(LOSS_DISPLAY_NAMES) == set(LOSS_NAMES)
    assert LOSS_DISPLAY_NAMES["closs_dice"] == "CLoss (Dice)"
    assert make_loss("closs_dice", gamma=0.1).alpha == 0.0
    assert make_loss("thin_closs", gamma=0.1).mask == "thin"
    assert isinstance(make_loss("dice_ce", gamma=None), DiceCELoss)

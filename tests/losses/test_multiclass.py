"""MultiClassLoss: the binary loss for C = 2, nnU-Net's pixel term, one topology term per class."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from topobench.catalog import LOSSES  # noqa: E402
from topobench.errors import InvalidMaskError, InvalidParameterError  # noqa: E402
from topobench.losses import make_loss  # noqa: E402
from topobench.losses.multiclass import MultiClassLoss, class_vs_rest_logits  # noqa: E402

NAMES = list(LOSSES)


@pytest.fixture(autouse=True)
def one_thread():
    """Small tensors: threads only contend on a loaded machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def batch(channels: int, shape=(16, 16), seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    target = torch.zeros(2, 1, *shape, dtype=torch.long)
    for c in range(1, channels):
        target[:, :, (3 * c) % shape[0], 2:-2] = c  # one thin line per class
        target[:, :, 2:5, 2 * c: 2 * c + 3] = c
    logits = torch.randn(2, channels, *shape, generator=gen) * 2
    return logits, target


def gamma_of(name: str) -> float | None:
    return 0.3 if LOSSES[name].has_gamma else None


def short(name: str) -> dict:
    """Fewer soft-skeleton iterations: the identities hold for any number, and it is faster."""
    return {"iterations": 10} if LOSSES[name].has_gamma else {}


@pytest.mark.parametrize("name", NAMES)
def test_two_classes_equal_the_binary_loss(name):
    logits, target = batch(2)
    a_in = logits.clone().requires_grad_(True)
    b_in = logits.clone().requires_grad_(True)
    a = MultiClassLoss(name, gamma=gamma_of(name), **short(name))(a_in, target)
    b = make_loss(name, gamma=gamma_of(name), **short(name))(b_in, target)
    assert float(a.detach()) == pytest.approx(float(b.detach()), rel=1e-6, abs=1e-7)
    a.backward()
    b.backward()
    assert torch.allclose(a_in.grad, b_in.grad, atol=1e-6)


def test_class_vs_rest_is_the_softmax_probability():
    logits, _ = batch(5)
    for c in range(5):
        two = class_vs_rest_logits(logits, c)
        assert torch.allclose(torch.softmax(two, 1)[:, 1], torch.softmax(logits, 1)[:, c],
                              atol=1e-6)


@pytest.mark.parametrize("name", ["cldice", "compound_cldice", "closs", "thin_closs"])
def test_topology_term_per_class(name):
    """gamma = 1: the mean over classes of the binary topology term of each class, checked with
    two-channel logits built another way (log probabilities)."""
    logits, target = batch(4, seed=1)
    got = MultiClassLoss(name, gamma=1.0, iterations=10)(logits, target)
    prob = torch.softmax(logits, 1)
    binary = make_loss(name, gamma=1.0, iterations=10)
    per_class = []
    for c in (1, 2, 3):
        two = torch.stack([torch.log1p(-prob[:, c]), torch.log(prob[:, c])], dim=1)
        per_class.append(binary(two, (target == c).long()))
    assert float(got) == pytest.approx(float(torch.stack(per_class).mean()), rel=1e-5)
    only = MultiClassLoss(name, gamma=1.0, classes=[2], iterations=10)(logits, target)
    assert float(only) == pytest.approx(float(per_class[1]), rel=1e-5)


def test_pixel_term_is_nnunets():
    nnunet = pytest.importorskip("nnunetv2.training.loss.dice")
    from nnunetv2.training.loss.robust_ce_loss import RobustCrossEntropyLoss
    from nnunetv2.utilities.helpers import softmax_helper_dim1

    logits, target = batch(4, seed=2)
    dice = nnunet.MemoryEfficientSoftDiceLoss(
        apply_nonlin=softmax_helper_dim1, batch_dice=False, do_bg=False, smooth=1.0
    )
    ce = RobustCrossEntropyLoss()
    want = 0.5 * (1 + dice(logits, target)) + 0.5 * ce(logits, target)
    got = MultiClassLoss("closs", gamma=0.0)(logits, target)
    assert float(got) == pytest.approx(float(want), rel=1e-5)
    got = MultiClassLoss("dice_ce")(logits, target)
    assert float(got) == pytest.approx(float(want), rel=1e-5)


def test_gradients_and_reduction():
    logits, target = batch(3, shape=(6, 12, 12))
    logits.requires_grad_(True)
    per_sample = MultiClassLoss("closs", reduction="none", iterations=10)(logits, target[:, 0])
    assert per_sample.shape == (2,)
    per_sample.sum().backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_bad_inputs():
    logits, target = batch(3)
    with pytest.raises(InvalidMaskError, match=r"\[0, 2\]"):
        MultiClassLoss("closs")(logits, target + 1)
    with pytest.raises(InvalidMaskError, match="C >= 2"):
        MultiClassLoss("closs")(logits[:, :1], target.clamp(max=0))
    with pytest.raises(InvalidMaskError, match="one-hot"):
        MultiClassLoss("closs")(logits, target.repeat(1, 3, 1, 1))
    with pytest.raises(InvalidParameterError, match="takes no gamma"):
        MultiClassLoss("dice_ce", gamma=0.2)
    with pytest.raises(InvalidParameterError, match="classes"):
        MultiClassLoss("closs", classes=[0])
    with pytest.raises(InvalidParameterError, match="channels"):
        MultiClassLoss("closs", classes=[5])(logits, target)

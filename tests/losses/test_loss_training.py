"""A tiny model trained on a toy gap image: losses decrease and CLoss closes the gaps."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from topobench.losses import make_loss  # noqa: E402
from topobench.metrics import e0_gt  # noqa: E402


def _toy_batch(seed: int, n: int = 4, size: int = 48):
    """Three 3-pixel-wide lines per image; the image shows a 3-pixel gap in each line."""
    rng = np.random.default_rng(seed)
    images, targets = [], []
    for _ in range(n):
        target = np.zeros((size, size), bool)
        image = np.zeros((size, size), np.float32)
        for row in (8, 24, 40):
            target[row - 1 : row + 2, 2:-2] = True
            image[row - 1 : row + 2, 2:-2] = 1.0
            start = int(rng.integers(10, size - 14))
            image[row - 1 : row + 2, start : start + 3] = 0.0
        image += rng.normal(0.0, 0.1, image.shape).astype(np.float32)
        images.append(image)
        targets.append(target)
    x = torch.from_numpy(np.stack(images)[:, None])
    y = torch.from_numpy(np.stack(targets)[:, None].astype(np.int64))
    return x, y


def _model():
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(8, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(8, 2, 1),
    )


def _train(net, loss, x, y, steps):
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    values = []
    for _ in range(steps):
        opt.zero_grad()
        value = loss(net(x), y)
        value.backward()
        opt.step()
        values.append(float(value.detach()))
    return values


def _gap_error(net, x, y) -> float:
    """Summed e0-Gt over the batch (extra pieces the target lines fall into)."""
    with torch.no_grad():
        pred = net(x).argmax(1).numpy().astype(bool)
    return sum(e0_gt(p, t) for p, t in zip(pred, y[:, 0].numpy().astype(bool), strict=True))


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # bitwise reproducible convolutions
    yield
    torch.set_num_threads(threads)


def test_closs_closes_gaps_at_least_as_well_as_dice_ce(one_thread):
    gaps = {"pretrained": 0.0, "dice_ce": 0.0, "closs": 0.0}
    for seed in (0, 1, 2):
        x, y = _toy_batch(seed)
        torch.manual_seed(seed)
        net = _model()
        pretrain = _train(net, make_loss("dice_ce"), x, y, 60)
        assert pretrain[-1] < 0.5 * pretrain[0]
        gaps["pretrained"] += _gap_error(net, x, y)
        state = {k: v.clone() for k, v in net.state_dict().items()}
        for name, gamma in (("dice_ce", None), ("closs", 0.5)):
            net.load_state_dict(state)
            values = _train(net, make_loss(name, gamma=gamma), x, y, 30)
            assert values[-1] < values[0], name  # the loss decreases
            gaps[name] += _gap_error(net, x, y)
    assert gaps["pretrained"] > 0  # the toy task does leave gaps after pretraining
    assert gaps["closs"] <= gaps["dice_ce"]
    assert gaps["closs"] < gaps["pretrained"]


@pytest.mark.parametrize("name", ["cldice", "compound_cldice", "closs_dice", "thin_closs"])
def test_every_loss_trains(name, one_thread):
    x, y = _toy_batch(5, n=2)
    torch.manual_seed(5)
    values = _train(_model(), make_loss(name, gamma=0.3, iterations=10), x, y, 15)
    assert np.isfinite(values).all() and values[-1] < values[0]

"""The runner's networks: nnU-Net's PlainConvUNet planned as nnU-Net plans it, and the patch."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pytest
import torch

from topobench.errors import InvalidParameterError, MissingDependencyError
from topobench.training import RunError, TrainConfig, train
from topobench.training.networks import build_network, network_spec, plainconv_plan


def test_plan_is_nnunets_for_unit_spacing() -> None:
    """Cross-checked against nnU-Net's own planner on 2D and 3D patches, odd sides included."""
    pytest.importorskip("nnunetv2")
    from nnunetv2.experiment_planning.experiment_planners.network_topology import (
        get_pool_and_conv_props,
    )

    patches = [*itertools.product([5, 12, 16, 33, 96, 160], repeat=2),
               *itertools.product([8, 20, 32, 64, 80], repeat=3)]
    for patch in patches:
        _, strides, _, _, divisor = get_pool_and_conv_props([1.0] * len(patch), patch, 4, 999999)
        plan = plainconv_plan(patch, depth=99, width=32)
        assert plan["strides"] == [list(s) for s in strides], patch
        assert plan["divisor"] == list(divisor), patch


def test_plan_shapes_with_known_answers() -> None:
    plan = plainconv_plan((128, 128), depth=99, width=32)
    assert len(plan["strides"]) == 6  # 128 -> 4 in five halvings, as nnU-Net's 2D plans
    assert plan["features"] == [32, 64, 128, 256, 512, 512]  # capped at 512 in 2D
    assert plainconv_plan((128, 128), depth=4, width=16)["features"] == [16, 32, 64, 128]
    assert plainconv_plan((64, 64, 64), depth=99, width=32)["features"][-1] == 320
    with pytest.raises(InvalidParameterError, match=r"multiples of \(8, 8\)"):
        network_spec("plainconv", ndim=2, in_channels=1, depth=4, width=8, norm="instance",
                     patch=(33, 32))
    _, patch = network_spec("plainconv", ndim=2, in_channels=1, depth=4, width=8,
                            norm="instance", patch=(33, 32), explicit_patch=False)
    assert patch == (40, 32)  # a default patch is rounded up, as nnU-Net pads it


@pytest.mark.parametrize("patch", [(32, 48), (8, 16, 24)])
def test_plainconv_maps_a_patch_to_two_channel_logits(patch: tuple[int, ...]) -> None:
    pytest.importorskip("dynamic_network_architectures")
    spec, _ = network_spec("plainconv", ndim=len(patch), in_channels=2, depth=4, width=4,
                           norm="instance", patch=patch)
    torch.manual_seed(0)
    net = build_network(spec)
    assert type(net).__name__ == "PlainConvUNet"
    assert net(torch.zeros(2, 2, *patch)).shape == (2, 2, *patch)
    torch.manual_seed(0)
    again = build_network(spec)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(),
                                                 again.state_dict().values(), strict=True))


def test_plainconv_without_its_package_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dynamic_network_architectures", None)
    monkeypatch.setitem(sys.modules, "dynamic_network_architectures.architectures.unet", None)
    spec, _ = network_spec("plainconv", ndim=2, in_channels=1, depth=2, width=4,
                           norm="instance", patch=(16, 16))
    with pytest.raises(MissingDependencyError, match="dynamic_network_architectures"):
        build_network(spec)


def test_runs_with_plainconv_and_refuses_another_network_for_its_pretraining(
        tiny2d: Path, tmp_path: Path) -> None:
    pytest.importorskip("dynamic_network_architectures")
    base = dict(data=tiny2d, out=tmp_path, epochs=1, iterations_per_epoch=2, batch_size=2,
                depth=3, width=4, patch_size=(16, 16))
    result = train(TrainConfig(loss="dice_ce", network="plainconv", **base))
    assert result.run_dir.name == "tiny2d__dice_ce__fold0__seed0__plainconv"
    assert result.record["model"]["network"] == "plainconv"
    assert result.record["model"]["strides"] == [[1, 1], [2, 2], [2, 2]]
    assert 0.0 <= result.summary["raw"]["dice"] <= 1.0
    ft = train(TrainConfig(loss="closs", network="plainconv", pretrained=result.run_dir, **base))
    assert ft.record["model"] == result.record["model"]
    with pytest.raises(RunError, match="network 'plainconv'.*network 'unet'"):
        train(TrainConfig(loss="closs", pretrained=result.run_dir, run_name="u", **base))
    with pytest.raises(InvalidParameterError, match=r"multiples of \(4, 4\)"):
        train(TrainConfig(loss="closs", network="plainconv", pretrained=result.run_dir,
                          run_name="p", **{**base, "patch_size": (18, 16)}))

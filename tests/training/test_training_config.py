"""TrainConfig: frozen, validated when made (each invalid option named), JSON round trip."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from topobench.errors import InvalidParameterError
from topobench.training import TrainConfig


def test_config_is_frozen_and_normalises_paths_and_patch() -> None:
    cfg = TrainConfig(data="Dataset", out="runs", patch_size=[32, 32], pretrained="runs/pre")
    assert cfg.data == Path("Dataset") and cfg.out == Path("runs")
    assert cfg.pretrained == Path("runs/pre") and cfg.patch_size == (32, 32)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.epochs = 3  # type: ignore[misc]
    assert TrainConfig(data="d", out="o", patch_size=16).patch_size == (16,)


def test_every_invalid_option_is_named_at_once() -> None:
    with pytest.raises(InvalidParameterError) as info:
        TrainConfig(data="d", out="o", epochs=0, fold=7, network="vnet", num_workers=-1,
                    lr=0.0, batch_size=0, connectivity=5, patch_size=(0, 16))
    message = str(info.value)
    for named in ("epochs must be an integer >= 1, got 0", "fold must be in 0..4, got 7",
                  "network must be one of unet, plainconv, got 'vnet'",
                  "num_workers must be an integer >= 0, got -1", "lr must be > 0, got 0.0",
                  "batch_size must be an integer >= 1, got 0", "connectivity must be 4 or 8",
                  "patch_size must be positive integers"):
        assert named in message
    with pytest.raises(InvalidParameterError, match="dice_ce has no gamma"):
        TrainConfig(data="d", out="o", loss="dice_ce", gamma=0.2)
    with pytest.raises(InvalidParameterError, match="epochs must be an integer"):
        TrainConfig(data="d", out="o", epochs=True)  # a bool is not a count
    with pytest.raises(InvalidParameterError, match="norm 'group' is not available"):
        TrainConfig(data="d", out="o", network="plainconv", norm="group")


def test_to_dict_is_json_and_from_dict_gives_the_same_config() -> None:
    cfg = TrainConfig(data=Path("Dataset"), out=Path("runs"), loss="closs", gamma=0.1,
                      patch_size=(32, 64), network="plainconv", num_workers=2)
    d = json.loads(json.dumps(cfg.to_dict()))
    assert d["patch_size"] == [32, 64] and d["data"] == "Dataset"
    assert TrainConfig.from_dict(d) == cfg
    with pytest.raises(InvalidParameterError, match="unknown option.*iterations"):
        TrainConfig.from_dict({**d, "iterations": 3})
    with pytest.raises(InvalidParameterError, match="missing option.*out"):
        TrainConfig.from_dict({"data": "Dataset"})
    assert cfg.replace(epochs=5).epochs == 5
    with pytest.raises(InvalidParameterError, match="epochs"):
        cfg.replace(epochs=-1)

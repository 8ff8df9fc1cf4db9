"""The runner's networks and patch size: topobench's U-Net or nnU-Net's ``PlainConvUNet``.

A network is described by a plain dict (its *spec*), stored in ``model_pretrained.pt`` and
recorded as ``run.json``'s ``model``, from which :func:`build_network` builds it again:

- ``{"network": "unet", **UNetConfig.to_dict()}``: :class:`topobench.training.model.UNet`;
- ``{"network": "plainconv", "ndim", "in_channels", "out_channels", "features", "strides",
  "norm"}``: ``dynamic_network_architectures``' ``PlainConvUNet`` (the network nnU-Net trains),
  laid out as nnU-Net's planner lays it out for the patch (:func:`plainconv_plan`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import nn

from topobench.errors import InvalidParameterError, MissingDependencyError
from topobench.training.model import UNet, UNetConfig

__all__ = ["build_network", "network_spec", "patch_size", "plainconv_plan", "spec_of"]

# nnU-Net's planner (ExperimentPlanner): feature maps are not halved below 4 voxels, at most
# 7 stages in 2D and 6 in 3D, features capped at 512 (2D) and 320 (3D).
_MIN_FEATURE_MAP = 4
_MAX_STAGES = {2: 7, 3: 6}
_MAX_FEATURES = {2: 512, 3: 320}


def plainconv_plan(patch: Sequence[int], *, depth: int, width: int) -> dict[str, list]:
    """Stages of a ``PlainConvUNet`` for ``patch``, as nnU-Net plans them, at most ``depth``.

    Each stage after the first halves every axis whose feature map stays at least 4 voxels
    (and is even), so anisotropic patches get per-axis strides; stages stop when no axis can be
    halved, at ``depth`` or at nnU-Net's maximum (7 in 2D, 6 in 3D). Features start at
    ``width`` and double per stage, capped as nnU-Net caps them (512 in 2D, 320 in 3D);
    nnU-Net's own plans use ``width=32``.

    Returns
    -------
    dict
        ``features``: channels per stage; ``strides``: one list of per-axis strides per stage.

    Examples
    --------
    >>> plainconv_plan((32, 64, 64), depth=5, width=16)["strides"]
    [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2], [1, 2, 2]]
    """
    nd = len(patch)
    size = [int(s) for s in patch]
    strides = [[1] * nd]
    while len(strides) < min(depth, _MAX_STAGES.get(nd, 6)):
        step = [2 if s % 2 == 0 and s // 2 >= _MIN_FEATURE_MAP else 1 for s in size]
        if 2 not in step:
            break
        strides.append(step)
        size = [s // v for s, v in zip(size, step, strict=True)]
    features = [min(width * 2**i, _MAX_FEATURES.get(nd, 320)) for i in range(len(strides))]
    return {"features": features, "strides": strides}


def network_spec(network: str, *, ndim: int, in_channels: int, depth: int, width: int,
                 norm: str, patch: Sequence[int]) -> dict[str, Any]:
    """The spec of the network ``network`` ("unet" or "plainconv") for this data and patch."""
    if network == "unet":
        config = UNetConfig(ndim=ndim, in_channels=in_channels, depth=depth, width=width,
                            norm=norm)  # type: ignore[arg-type]
        return {"network": "unet", **config.to_dict()}
    return {"network": "plainconv", "ndim": ndim, "in_channels": in_channels,
            "out_channels": 2, **plainconv_plan(patch, depth=depth, width=width), "norm": norm}


def spec_of(model: nn.Module) -> dict[str, Any] | str:
    """The spec of a network this module built, else the class name of the caller's module."""
    spec = getattr(model, "topobench_spec", None)
    if spec is not None:
        return dict(spec)
    if isinstance(model, UNet):
        return {"network": "unet", **model.config.to_dict()}
    return type(model).__name__


def build_network(spec: dict[str, Any]) -> nn.Module:
    """Build the network of ``spec`` (initial weights from torch's global generator).

    Specs without ``"network"`` (checkpoints written before it was recorded) are U-Nets.

    Raises
    ------
    MissingDependencyError
        For "plainconv" without ``dynamic_network_architectures`` (``topobench[nnunet]``).
    """
    spec = dict(spec)
    kind = spec.pop("network", "unet")
    if kind == "unet":
        return UNet(UNetConfig(**spec))
    if kind != "plainconv":
        raise InvalidParameterError(f"network must be unet or plainconv, got {kind!r}")
    try:
        from dynamic_network_architectures.architectures.unet import PlainConvUNet
    except ImportError as exc:
        raise MissingDependencyError(
            "network 'plainconv' needs dynamic_network_architectures (nnU-Net's networks), "
            "which is not installed: pip install 'topobench[nnunet]' or "
            "pip install dynamic_network_architectures") from exc
    nd = spec["ndim"]
    conv = nn.Conv2d if nd == 2 else nn.Conv3d
    norms = {"instance": (nn.InstanceNorm2d, nn.InstanceNorm3d),
             "batch": (nn.BatchNorm2d, nn.BatchNorm3d)}
    norm_op = norms[spec["norm"]][nd - 2] if spec["norm"] in norms else None
    n = len(spec["features"])
    # nnU-Net's choices (get_network_from_plans): 2 convolutions per stage in the encoder and
    # the decoder, kernel 3, convolution bias, eps 1e-5 affine instance norm, LeakyReLU 0.01,
    # He initialisation (PlainConvUNet.initialize). No deep supervision: the runner's losses
    # take the full-resolution output.
    net = PlainConvUNet(
        spec["in_channels"], n, list(spec["features"]), conv, 3, [list(s) for s in
                                                                  spec["strides"]],
        2, spec["out_channels"], 2, conv_bias=True, norm_op=norm_op,
        norm_op_kwargs={"eps": 1e-5, "affine": True} if norm_op is not None else None,
        nonlin=nn.LeakyReLU, nonlin_kwargs={"negative_slope": 1e-2, "inplace": True},
        deep_supervision=False,
    )
    net.apply(PlainConvUNet.initialize)
    net.topobench_spec = {"network": "plainconv", **spec}  # type: ignore[assignment]
    return net


def patch_size(requested: Sequence[int] | None, ndim: int, shapes: Sequence[tuple[int, ...]],
               divisor: int | None) -> tuple[int, ...]:
    """The training and inference patch.

    Parameters
    ----------
    requested : sequence of int, optional
        The configured patch: one side per axis, or one side for a square (cube) patch; None:
        128x128 (2D) or 32x64x64 (3D) clipped to the smallest case, rounded up to ``divisor``.
    ndim : int
    shapes : sequence of tuple of int
        The training cases' spatial shapes.
    divisor : int, optional
        Sides must be positive multiples of it (a U-Net's ``2 ** (depth - 1)``); None: any
        side (a network planned for the patch); the default still rounds to 8.
    """
    if requested is not None:
        patch = tuple(int(p) for p in requested)
        if len(patch) == 1:  # one size: a square (cube) patch
            patch = patch * ndim
        if len(patch) != ndim:
            raise InvalidParameterError(
                f"patch_size must have {ndim} sides for {ndim}D data, got {patch}")
    else:
        default = (128, 128) if ndim == 2 else (32, 64, 64)
        smallest = np.min(np.array(shapes), axis=0)
        step = divisor or 8
        # clip to the data, rounded up to the network's divisor
        patch = tuple(int(min(d, -(-int(s) // step) * step))
                      for d, s in zip(default, smallest, strict=True))
    if divisor is not None and any(p % divisor or p < divisor for p in patch):
        raise InvalidParameterError(
            f"patch sides must be positive multiples of {divisor} (2 ** (depth - 1)), got {patch}"
        )
    return patch

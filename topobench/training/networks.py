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

# nnU-Net's planner: feature maps are not halved below 4 voxels (min_feature_map_size),
# features capped at 512 (2D) and 320 (3D).
_MIN_FEATURE_MAP = 4
_MAX_FEATURES = {2: 512, 3: 320}


def plainconv_plan(patch: Sequence[int], *, depth: int, width: int) -> dict[str, list]:
    """Stages of a ``PlainConvUNet`` for ``patch``, as nnU-Net plans them, at most ``depth``.

    nnU-Net's rule (``get_pool_and_conv_props``) for unit voxel spacing: a stage halves every
    axis that is at least 8 voxels long (so that the bottleneck keeps at least 4) and whose
    spacing is within a factor 2 of the finest of those axes (a halved axis doubles its
    spacing, so a long axis waits for the others); a lone axis is halved only from 12 voxels
    on; odd sides are halved rounding up (the patch must then be a multiple of ``divisor``).
    Stages stop when no axis can be halved or at ``depth``. Features start at ``width`` and
    double per stage, capped as nnU-Net caps them (512 in 2D, 320 in 3D); nnU-Net's own plans
    use ``width=32`` and no stage limit.

    Returns
    -------
    dict
        ``features``: channels per stage; ``strides``: one list of per-axis strides per stage;
        ``divisor``: per axis, the product of its strides (patch sides must be multiples).

    Examples
    --------
    >>> plainconv_plan((32, 64, 64), depth=9, width=16)["strides"]
    [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2], [1, 2, 2]]
    """
    nd = len(patch)
    size = [float(s) for s in patch]
    spacing = [1.0] * nd
    strides = [[1] * nd]
    while len(strides) < depth:
        valid = [i for i in range(nd) if size[i] >= 2 * _MIN_FEATURE_MAP]
        if not valid:
            break
        finest = min(spacing[i] for i in valid)
        valid = [i for i in valid if spacing[i] / finest < 2]
        if not valid or (len(valid) == 1 and size[valid[0]] < 3 * _MIN_FEATURE_MAP):
            break
        strides.append([2 if i in valid else 1 for i in range(nd)])
        for i in valid:
            spacing[i] *= 2
            size[i] = float(np.ceil(size[i] / 2))
    features = [min(width * 2**i, _MAX_FEATURES.get(nd, 320)) for i in range(len(strides))]
    divisor = [int(np.prod([s[i] for s in strides])) for i in range(nd)]
    return {"features": features, "strides": strides, "divisor": divisor}


def network_spec(network: str, *, ndim: int, in_channels: int, depth: int, width: int,
                 norm: str, patch: Sequence[int],
                 explicit_patch: bool = True) -> tuple[dict[str, Any], tuple[int, ...]]:
    """The spec of the network ``network`` ("unet" or "plainconv") for this data and patch,
    and the patch it trains on.

    For "plainconv" the patch must be a multiple of the plan's per-axis divisor: an explicit
    patch that is not is refused, a default one is rounded up (as nnU-Net pads its patch).
    """
    patch = tuple(int(p) for p in patch)
    if network == "unet":
        config = UNetConfig(ndim=ndim, in_channels=in_channels, depth=depth, width=width,
                            norm=norm)  # type: ignore[arg-type]
        return {"network": "unet", **config.to_dict()}, patch
    plan = plainconv_plan(patch, depth=depth, width=width)
    divisor = plan.pop("divisor")
    if any(p % d for p, d in zip(patch, divisor, strict=True)):
        if explicit_patch:
            raise InvalidParameterError(
                f"patch_size {patch} does not fit network 'plainconv': its plan for this patch "
                f"needs sides that are multiples of {tuple(divisor)}")
        patch = tuple(-(-p // d) * d for p, d in zip(patch, divisor, strict=True))
    spec = {"network": "plainconv", "ndim": ndim, "in_channels": in_channels,
            "out_channels": 2, **plan, "norm": norm}
    return spec, patch


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

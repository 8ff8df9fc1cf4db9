"""A plain U-Net for 2D and 3D segmentation (Ronneberger et al. 2015, nnU-Net-style blocks).

Each stage is two (convolution, normalisation, LeakyReLU) blocks; the encoder downsamples by
strided convolution, the decoder upsamples by transposed convolution and concatenates the skip.
The output is ``out_channels`` logits at full resolution (2 by default: softmax, foreground is
channel 1, as the losses expect).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import torch
from torch import nn

from topobench.errors import InvalidParameterError

__all__ = ["UNetConfig", "UNet"]

Norm = Literal["instance", "batch", "group", "none"]


@dataclass(frozen=True)
class UNetConfig:
    """Architecture of a :class:`UNet`.

    Attributes
    ----------
    ndim : int
        2 or 3 spatial dimensions.
    in_channels, out_channels : int
        Image channels in; logits out (2: softmax with foreground channel 1).
    depth : int
        Number of resolution levels (``depth - 1`` downsamplings by 2).
    width : int
        Feature channels of the first level; doubled per level, capped at ``max_width``.
    max_width : int
    norm : {"instance", "batch", "group", "none"}
    """

    ndim: int = 2
    in_channels: int = 1
    out_channels: int = 2
    depth: int = 4
    width: int = 16
    max_width: int = 256
    norm: Norm = "instance"

    def to_dict(self) -> dict:
        """Plain-dict form, stored in checkpoints."""
        return asdict(self)

    @property
    def divisor(self) -> int:
        """Patch sides must be multiples of this (``2 ** (depth - 1)``)."""
        return 2 ** (self.depth - 1)


def _norm(kind: str, channels: int, ndim: int) -> nn.Module:
    if kind == "instance":
        return (nn.InstanceNorm2d if ndim == 2 else nn.InstanceNorm3d)(channels, affine=True)
    if kind == "batch":
        return (nn.BatchNorm2d if ndim == 2 else nn.BatchNorm3d)(channels)
    if kind == "group":
        return nn.GroupNorm(min(8, channels), channels)
    return nn.Identity()


class _Block(nn.Sequential):
    def __init__(self, cin: int, cout: int, ndim: int, norm: str, stride: int = 1) -> None:
        conv = nn.Conv2d if ndim == 2 else nn.Conv3d
        super().__init__(
            conv(cin, cout, 3, stride=stride, padding=1, bias=norm == "none"),
            _norm(norm, cout, ndim),
            nn.LeakyReLU(0.01, inplace=True),
            conv(cout, cout, 3, padding=1, bias=norm == "none"),
            _norm(norm, cout, ndim),
            nn.LeakyReLU(0.01, inplace=True),
        )


class UNet(nn.Module):
    """U-Net over ``(B, in_channels, *spatial)`` returning ``(B, out_channels, *spatial)`` logits.

    Spatial sides must be multiples of ``config.divisor``.

    Examples
    --------
    >>> net = UNet(UNetConfig(ndim=2, depth=3, width=4))
    >>> net(torch.zeros(1, 1, 16, 16)).shape
    torch.Size([1, 2, 16, 16])
    """

    def __init__(self, config: UNetConfig | None = None, **overrides: object) -> None:
        super().__init__()
        config = config or UNetConfig()
        if overrides:
            config = UNetConfig(**{**config.to_dict(), **overrides})  # type: ignore[arg-type]
        if config.ndim not in (2, 3):
            raise InvalidParameterError(f"UNet: expected ndim 2 or 3, got {config.ndim}")
        if config.depth < 1 or config.width < 1:
            raise InvalidParameterError(
                f"UNet: expected depth >= 1 and width >= 1, got {config.depth} and {config.width}"
            )
        if config.norm not in ("instance", "batch", "group", "none"):
            raise InvalidParameterError(
                f"UNet: expected norm instance|batch|group|none, got {config.norm!r}"
            )
        self.config = config
        nd, norm = config.ndim, config.norm
        widths = [min(config.width * 2**i, config.max_width) for i in range(config.depth)]
        self.encoder = nn.ModuleList()
        cin = config.in_channels
        for i, w in enumerate(widths):
            self.encoder.append(_Block(cin, w, nd, norm, stride=1 if i == 0 else 2))
            cin = w
        up = nn.ConvTranspose2d if nd == 2 else nn.ConvTranspose3d
        self.upsample = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for i in range(config.depth - 1, 0, -1):
            self.upsample.append(up(widths[i], widths[i - 1], 2, stride=2, bias=False))
            self.decoder.append(_Block(2 * widths[i - 1], widths[i - 1], nd, norm))
        conv = nn.Conv2d if nd == 2 else nn.Conv3d
        self.head = conv(widths[0], config.out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for block in self.encoder:
            x = block(x)
            skips.append(x)
        skips.pop()
        for upsample, block in zip(self.upsample, self.decoder, strict=True):
            x = upsample(x)
            x = block(torch.cat([x, skips.pop()], dim=1))
        return self.head(x)

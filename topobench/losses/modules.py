"""``torch.nn.Module`` wrappers of the loss functions and the ``make_loss`` factory."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from topobench.catalog import LOSSES
from topobench.critical import MaskKind
from topobench.errors import InvalidParameterError
from topobench.losses import functional as LF
from topobench.losses.functional import Reduction

__all__ = [
    "LOSS_DISPLAY_NAMES",
    "LOSS_NAMES",
    "ClDiceLoss",
    "CompoundClDiceLoss",
    "ContextLoss",
    "DiceCELoss",
    "make_loss",
]


class DiceCELoss(nn.Module):
    """``L_pixel = (1 - alpha) L_Dice + alpha L_CE``; see :func:`~.functional.dice_ce_loss`."""

    def __init__(self, alpha: float = 0.5, *, smooth: float = 1.0, reduction: Reduction = "mean"):
        super().__init__()
        self.alpha, self.smooth, self.reduction = alpha, smooth, reduction

    def forward(self, pred_logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss of logits ``(B, C, ...)`` against labels ``(B, 1, ...)`` or ``(B, ...)``."""
        return LF.dice_ce_loss(
            pred_logits, target, alpha=self.alpha, smooth=self.smooth, reduction=self.reduction
        )

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, reduction={self.reduction!r}"


class ClDiceLoss(nn.Module):
    """clDice loss ``(1 - gamma) L_Dice + gamma L_clDice``; see :func:`~.functional.cldice_loss`."""

    def __init__(
        self,
        gamma: float,
        iterations: int = 50,
        *,
        smooth: float = 1.0,
        reduction: Reduction = "mean",
    ):
        super().__init__()
        self.gamma, self.iterations, self.smooth, self.reduction = (
            gamma, iterations, smooth, reduction
        )

    def forward(self, pred_logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss of logits ``(B, C, ...)`` against labels ``(B, 1, ...)`` or ``(B, ...)``."""
        return LF.cldice_loss(
            pred_logits, target, gamma=self.gamma, iterations=self.iterations,
            smooth=self.smooth, reduction=self.reduction,
        )

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, iterations={self.iterations}, reduction={self.reduction!r}"


class CompoundClDiceLoss(nn.Module):
    """``(1 - gamma) L_pixel + gamma L_clDice``; see :func:`~.functional.compound_cldice_loss`."""

    def __init__(
        self,
        gamma: float,
        alpha: float = 0.5,
        iterations: int = 50,
        *,
        smooth: float = 1.0,
        reduction: Reduction = "mean",
    ):
        super().__init__()
        self.gamma, self.alpha, self.iterations = gamma, alpha, iterations
        self.smooth, self.reduction = smooth, reduction

    def forward(self, pred_logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss of logits ``(B, C, ...)`` against labels ``(B, 1, ...)`` or ``(B, ...)``."""
        return LF.compound_cldice_loss(
            pred_logits, target, gamma=self.gamma, alpha=self.alpha, iterations=self.iterations,
            smooth=self.smooth, reduction=self.reduction,
        )

    def extra_repr(self) -> str:
        return (
            f"gamma={self.gamma}, alpha={self.alpha}, iterations={self.iterations}, "
            f"reduction={self.reduction!r}"
        )


class ContextLoss(nn.Module):
    """CLoss ``(1 - gamma) L_pixel + gamma L_pixel⊙M``; see :func:`~.functional.context_loss`.

    ``alpha=0`` gives CLoss (Dice); ``mask="thin"`` gives Thin CLoss.
    """

    def __init__(
        self,
        gamma: float,
        alpha: float = 0.5,
        mask: MaskKind = "context",
        iterations: int = 50,
        *,
        smooth: float = 1.0,
        reduction: Reduction = "mean",
        ce_normalization: LF.CENormalization = LF.DEFAULT_CE_NORMALIZATION,
        mask_smooth: float | None = None,
    ):
        super().__init__()
        if mask not in ("context", "thin"):
            raise InvalidParameterError(f"mask must be 'context' or 'thin', got {mask!r}")
        self.gamma, self.alpha, self.mask, self.iterations = gamma, alpha, mask, iterations
        self.smooth, self.reduction = smooth, reduction
        self.ce_normalization, self.mask_smooth = ce_normalization, mask_smooth

    def forward(self, pred_logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss of logits ``(B, C, ...)`` against labels ``(B, 1, ...)`` or ``(B, ...)``."""
        return LF.context_loss(
            pred_logits, target, gamma=self.gamma, alpha=self.alpha, mask=self.mask,
            iterations=self.iterations, smooth=self.smooth, reduction=self.reduction,
            ce_normalization=self.ce_normalization, mask_smooth=self.mask_smooth,
        )

    def extra_repr(self) -> str:
        return (
            f"gamma={self.gamma}, alpha={self.alpha}, mask={self.mask!r}, "
            f"iterations={self.iterations}, reduction={self.reduction!r}, "
            f"ce_normalization={self.ce_normalization!r}, mask_smooth={self.mask_smooth}"
        )


# name -> (class, parameters the name fixes). The values of the fixed parameters (``mask``: the
# critical mask, ``alpha``) and the default ``alpha`` come from topobench.catalog.LOSSES.
_REGISTRY: dict[str, tuple[type[nn.Module], tuple[str, ...]]] = {
    "dice_ce": (DiceCELoss, ()),
    "cldice": (ClDiceLoss, ()),
    "compound_cldice": (CompoundClDiceLoss, ()),
    "closs": (ContextLoss, ("mask",)),
    "closs_dice": (ContextLoss, ("mask", "alpha")),
    "thin_closs": (ContextLoss, ("mask",)),
}

LOSS_NAMES: tuple[str, ...] = tuple(LOSSES)
"""The names ``make_loss`` accepts, in the paper's order (:data:`topobench.catalog.LOSSES`)."""

LOSS_DISPLAY_NAMES: dict[str, str] = {name: info.display for name, info in LOSSES.items()}
"""Display name of each loss, as printed in the paper's tables (from the catalog)."""


def _fixed(name: str) -> dict[str, Any]:
    info = LOSSES[name]
    values = {"mask": info.critical_mask, "alpha": info.alpha}
    return {key: values[key] for key in _REGISTRY[name][1]}


_PARAMS = {
    DiceCELoss: ("alpha", "smooth", "reduction"),
    ClDiceLoss: ("gamma", "iterations", "smooth", "reduction"),
    CompoundClDiceLoss: ("gamma", "alpha", "iterations", "smooth", "reduction"),
    ContextLoss: ("gamma", "alpha", "mask", "iterations", "smooth", "reduction",
                  "ce_normalization", "mask_smooth"),
}


def make_loss(name: str, **params: Any) -> nn.Module:
    """Build a loss by name.

    Parameters
    ----------
    name : str
        One of :data:`LOSS_NAMES`: ``dice_ce``, ``cldice``, ``compound_cldice``, ``closs``,
        ``closs_dice`` (CLoss with ``alpha = 0``), ``thin_closs`` (CLoss with ``mask="thin"``).
    **params
        Constructor parameters (``gamma``, ``alpha``, ``iterations``, ``smooth``,
        ``reduction``). ``gamma`` is required by every loss but ``dice_ce``; ``gamma=None`` is
        ignored, so callers may pass it uniformly. Parameters fixed by the name (``mask``, and
        ``alpha`` of ``closs_dice``) cannot be overridden.

    Raises
    ------
    InvalidParameterError
        Unknown name, unknown or conflicting parameter, missing ``gamma``.

    Examples
    --------
    >>> make_loss("closs", gamma=0.2)
    ContextLoss(gamma=0.2, alpha=0.5, mask='context', iterations=50, reduction='mean')
    """
    if name not in _REGISTRY:
        raise InvalidParameterError(
            f"unknown loss {name!r}: expected one of {', '.join(LOSS_NAMES)}"
        )
    cls, fixed = _REGISTRY[name][0], _fixed(name)
    params = {k: v for k, v in params.items() if not (k == "gamma" and v is None)}
    allowed = _PARAMS[cls]
    for key, value in params.items():
        if key not in allowed:
            raise InvalidParameterError(
                f"loss {name!r} takes no parameter {key!r} (it takes {', '.join(allowed)})"
            )
        if key in fixed and value != fixed[key]:
            raise InvalidParameterError(
                f"loss {name!r} fixes {key}={fixed[key]!r}, got {key}={value!r}"
            )
    if "gamma" in allowed and "gamma" not in params:
        raise InvalidParameterError(f"loss {name!r} needs a weight gamma in [0, 1]")
    if "alpha" in allowed and LOSSES[name].alpha is not None:
        params.setdefault("alpha", LOSSES[name].alpha)
    return cls(**{**params, **fixed})

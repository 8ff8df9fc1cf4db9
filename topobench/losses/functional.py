"""Functional cores of the losses (docs/losses.md). The ``nn.Module`` classes wrap these.

Every function takes ``(pred_logits, target)``:

- ``pred_logits``: float tensor ``(B, C, H, W)`` or ``(B, C, D, H, W)``. ``C = 2``: softmax, the
  foreground probability is channel 1 (nnU-Net style); ``C = 1``: sigmoid.
- ``target``: integer (or bool, or integral float) labels in {0, 1}, ``(B, 1, ...)`` or
  ``(B, ...)``.

Each term is computed per sample and then reduced over the batch (``reduction``: "mean", "sum"
or "none" for a ``(B,)`` tensor). Soft Dice uses an additive ``smooth`` (1.0) in numerator and
denominator, as in the clDice reference code.
"""

from __future__ import annotations

import numbers
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from topobench.critical import (
    Backend,
    MaskKind,
    binary_soft_skeleton,
    critical_mask,
    resolve_backend,
)
from topobench.errors import InvalidMaskError, InvalidMaskTypeError, InvalidParameterError
from topobench.losses.skeleton import soft_skeleton

__all__ = [
    "Reduction",
    "cldice_loss",
    "compound_cldice_loss",
    "context_loss",
    "dice_ce_loss",
    "foreground_probability",
    "prepare",
    "soft_cldice_term",
]

Reduction = Literal["mean", "sum", "none"]
CENormalization = Literal["mask", "all"]
#: How CLoss's masked CE is normalised by default: summed over the critical mask and divided by
#: all pixels of the sample (the mean of the Hadamard product ``L_CE ⊙ M``), chosen on the
#: gap-closing benchmark (docs/losses.md, "Defaults").
DEFAULT_CE_NORMALIZATION: CENormalization = "all"
_REDUCTIONS = ("mean", "sum", "none")
_INTEGER_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def prepare(pred_logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Check a (logits, labels) pair and return the target as a bool tensor ``(B, 1, ...)``.

    Raises
    ------
    InvalidMaskError
        Wrong rank, a channel count other than 1 or 2, a one-hot or multi-channel target, a
        shape mismatch, target values outside {0, 1}, NaN or infinite logits.
    InvalidMaskTypeError
        Non-floating logits, or a target dtype that cannot hold labels.
    """
    if not isinstance(pred_logits, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise InvalidMaskTypeError(
            f"expected torch tensors, got {type(pred_logits).__name__} and "
            f"{type(target).__name__}"
        )
    if pred_logits.ndim not in (4, 5):
        raise InvalidMaskError(
            "pred_logits: expected (B, C, H, W) or (B, C, D, H, W), got "
            f"{pred_logits.ndim}D shape {tuple(pred_logits.shape)}"
        )
    if not pred_logits.is_floating_point():
        raise InvalidMaskTypeError(f"pred_logits: expected a float tensor, got {pred_logits.dtype}")
    if pred_logits.numel() == 0:
        raise InvalidMaskError(
            f"pred_logits: expected a non-empty batch, got shape {tuple(pred_logits.shape)}"
        )
    channels = pred_logits.shape[1]
    if channels not in (1, 2):
        raise InvalidMaskError(
            f"pred_logits: expected C = 1 (sigmoid) or C = 2 (softmax, foreground = channel 1), "
            f"got C = {channels} in shape {tuple(pred_logits.shape)}"
        )
    spatial = pred_logits.shape[2:]
    batch = pred_logits.shape[0]
    if target.ndim == pred_logits.ndim:
        if target.shape[1] != 1:
            raise InvalidMaskError(
                f"target: expected labels (B, 1, ...) or (B, ...), got {target.shape[1]} channels "
                f"in shape {tuple(target.shape)} (one-hot targets are not accepted)"
            )
        target = target[:, 0]
    if target.ndim != pred_logits.ndim - 1 or tuple(target.shape) != (batch, *spatial):
        raise InvalidMaskError(
            f"target: expected shape ({batch}, 1, {', '.join(map(str, spatial))}) or without the "
            f"channel axis, got {tuple(target.shape)} for pred_logits {tuple(pred_logits.shape)}"
        )
    labels_ok = None
    if target.dtype == torch.bool:
        labels = target
    elif target.is_floating_point() or target.dtype in _INTEGER_DTYPES:
        labels = target != 0
        lo, hi = torch.aminmax(target)
        labels_ok = (lo >= 0) & (hi <= 1)
        if target.is_floating_point():
            labels_ok &= ~(labels != target).any()
    else:
        raise InvalidMaskTypeError(f"target: expected integer labels, got dtype {target.dtype}")
    valid = torch.isfinite(pred_logits).all()
    if labels_ok is not None:
        valid &= labels_ok
    # one boolean read for all value checks: the loss's only synchronisation besides the
    # critical mask's window check (docs/losses.md, "Losses on the device")
    if not bool(valid):
        if labels_ok is not None and not bool(labels_ok):
            bad = (target != 0) & (target != 1)
            values = torch.unique(target[bad])[:5].tolist()
            raise InvalidMaskError(f"target: expected class labels in {{0, 1}}, got also {values}")
        raise InvalidMaskError("pred_logits: expected finite values, got NaN or infinity")
    return labels.unsqueeze(1)


def _full_precision(pred_logits: torch.Tensor) -> torch.Tensor:
    """Upcast half-precision logits (mixed precision) to float32; the gradient flows back.

    Sums over a volume would overflow float16.
    """
    if pred_logits.dtype in (torch.float16, torch.bfloat16):
        return pred_logits.float()
    return pred_logits


def foreground_probability(pred_logits: torch.Tensor) -> torch.Tensor:
    """Foreground probability ``(B, 1, ...)``: softmax channel 1 for C = 2, sigmoid for C = 1."""
    if pred_logits.shape[1] == 2:
        return torch.softmax(pred_logits, dim=1)[:, 1:2]
    return torch.sigmoid(pred_logits)


def _binarise(pred_logits: torch.Tensor) -> torch.Tensor:
    """Hard prediction ``(B, 1, ...)`` bool: argmax for C = 2 (ties -> background), logit > 0."""
    with torch.no_grad():
        if pred_logits.shape[1] == 2:
            return (pred_logits[:, 1:2] > pred_logits[:, 0:1])
        return pred_logits > 0


def _sum_spatial(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).sum(dim=1)


def _soft_dice(
    prob: torch.Tensor, target: torch.Tensor, smooth: float, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-sample soft Dice loss ``1 - (2 sum(p y) + s) / (sum(p) + sum(y) + s)``, ``(B,)``.

    With ``weight`` (a {0, 1} mask) the sums run over its pixels only; an empty mask gives 0.
    """
    if weight is not None:
        prob = prob * weight
        target = target * weight
    inter = _sum_spatial(prob * target)
    denom = _sum_spatial(prob) + _sum_spatial(target)
    return 1.0 - (2.0 * inter + smooth) / (denom + smooth)


def _cross_entropy_map(pred_logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-pixel cross-entropy ``(B, 1, ...)`` (softmax CE for C = 2, binary CE for C = 1)."""
    if pred_logits.shape[1] == 2:
        return F.cross_entropy(pred_logits, target[:, 0].long(), reduction="none").unsqueeze(1)
    return F.binary_cross_entropy_with_logits(
        pred_logits, target.to(pred_logits.dtype), reduction="none"
    )


def _pixel_terms(
    ce_map: torch.Tensor | None,
    prob: torch.Tensor,
    target: torch.Tensor,
    alpha: float,
    smooth: float,
    weight: torch.Tensor | None = None,
    ce_normalization: CENormalization = "mask",
) -> torch.Tensor:
    """``(1 - alpha) L_Dice + alpha L_CE`` per sample; with ``weight``, restricted to its pixels.

    ``ce_map`` is the per-pixel cross-entropy (None when ``alpha == 0``), ``target`` the labels
    as a float tensor like ``prob``. With ``weight``, the CE is summed over its pixels and divided
    by their number (``ce_normalization="mask"``) or by all pixels of the sample (``"all"``).
    """
    loss = (1.0 - alpha) * _soft_dice(prob, target, smooth, weight) if alpha < 1 else 0.0
    if ce_map is not None and alpha > 0:
        if weight is None:
            ce_term = ce_map.flatten(1).mean(dim=1)
        elif ce_normalization == "all":
            ce_term = _sum_spatial(ce_map * weight) / weight[0].numel()
        else:
            count = _sum_spatial(weight).clamp_min(1.0)
            ce_term = _sum_spatial(ce_map * weight) / count
        loss = loss + alpha * ce_term
    return loss


def _pixel_loss(
    pred_logits: torch.Tensor, labels: torch.Tensor, alpha: float, smooth: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Per-sample ``L_pixel`` and what the masked term reuses: (loss, prob, target, CE map)."""
    prob = foreground_probability(pred_logits)
    tgt = labels.to(prob.dtype)
    ce_map = _cross_entropy_map(pred_logits, labels) if alpha > 0 else None
    return _pixel_terms(ce_map, prob, tgt, alpha, smooth), prob, tgt, ce_map


def _reduce(per_sample: torch.Tensor, reduction: Reduction) -> torch.Tensor:
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    return per_sample


def _check_weight(name: str, value: float) -> float:
    # numbers.Real: also numpy scalars such as np.float32 (not bool, which is an int)
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 1:
        raise InvalidParameterError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def _check_common(reduction: str, smooth: float) -> None:
    if reduction not in _REDUCTIONS:
        raise InvalidParameterError(
            f"reduction must be one of {', '.join(_REDUCTIONS)}, got {reduction!r}"
        )
    _check_smooth("smooth", smooth)


def _check_smooth(name: str, value: float) -> None:
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not value > 0:
        raise InvalidParameterError(f"{name} must be a positive number, got {value!r}")


def dice_ce_loss(
    pred_logits: torch.Tensor,
    target: torch.Tensor,
    *,
    alpha: float = 0.5,
    smooth: float = 1.0,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """``L_pixel = (1 - alpha) L_Dice + alpha L_CE`` (ContextLoss paper, Eq. 1).

    ``alpha = 0`` is the soft Dice loss alone, ``alpha = 1`` cross-entropy alone. Returns a
    scalar, or ``(B,)`` with ``reduction="none"``.
    """
    alpha = _check_weight("alpha", alpha)
    _check_common(reduction, smooth)
    labels = prepare(pred_logits, target)
    pred_logits = _full_precision(pred_logits)
    return _reduce(_pixel_loss(pred_logits, labels, alpha, smooth)[0], reduction)


def _target_skeleton(
    labels: torch.Tensor, iterations: int, dtype: torch.dtype, backend: Backend | None = None
) -> torch.Tensor:
    """Soft skeleton of a binary target (exact binary morphology, no gradient needed).

    On the labels' device (:func:`topobench.losses.device.binary_skeleton`) unless ``backend``
    resolves to "numpy" (:func:`topobench.critical.resolve_backend`; a CPU tensor with "auto").
    """
    if resolve_backend(backend, labels) == "torch":
        from topobench.losses.device import binary_skeleton

        return binary_skeleton(labels.detach(), iterations).to(dtype)
    arr = labels.detach().cpu().numpy()
    skel = np.zeros(arr.shape, dtype=bool)
    for b in range(arr.shape[0]):
        skel[b, 0] = binary_soft_skeleton(arr[b, 0], iterations)
    return torch.from_numpy(skel).to(device=labels.device, dtype=dtype)


def soft_cldice_term(
    prob: torch.Tensor,
    labels: torch.Tensor,
    *,
    iterations: int = 50,
    smooth: float = 1.0,
    backend: Backend | None = None,
) -> torch.Tensor:
    """Per-sample ``L_clDice = 1 - 2 Tprec Tsens / (Tprec + Tsens)`` (Shit et al. 2021), ``(B,)``.

    ``Tprec = (sum(S(p) y) + s) / (sum(S(p)) + s)``, ``Tsens = (sum(S(y) p) + s) / (sum(S(y)) + s)``
    with ``S`` the soft skeleton; ``prob`` the foreground probability ``(B, 1, ...)``, ``labels``
    a bool tensor of the same shape; ``backend`` chooses where the target skeleton is computed
    (:func:`topobench.critical.resolve_backend`).
    """
    tgt = labels.to(prob.dtype)
    skel_pred = soft_skeleton(prob, iterations)
    skel_true = _target_skeleton(labels, iterations, prob.dtype, backend)
    tprec = (_sum_spatial(skel_pred * tgt) + smooth) / (_sum_spatial(skel_pred) + smooth)
    tsens = (_sum_spatial(skel_true * prob) + smooth) / (_sum_spatial(skel_true) + smooth)
    return 1.0 - 2.0 * tprec * tsens / (tprec + tsens)


def cldice_loss(
    pred_logits: torch.Tensor,
    target: torch.Tensor,
    *,
    gamma: float,
    iterations: int = 50,
    smooth: float = 1.0,
    reduction: Reduction = "mean",
    backend: Backend | None = None,
) -> torch.Tensor:
    """The clDice loss of Shit et al. (2021): ``(1 - gamma) L_Dice + gamma L_clDice``.

    ``backend``: where the target skeleton is computed (:func:`topobench.critical.resolve_backend`).
    """
    gamma = _check_weight("gamma", gamma)
    _check_common(reduction, smooth)
    labels = prepare(pred_logits, target)
    pred_logits = _full_precision(pred_logits)
    prob = foreground_probability(pred_logits)
    loss = (1.0 - gamma) * _soft_dice(prob, labels.to(prob.dtype), smooth)
    if gamma > 0:
        loss = loss + gamma * soft_cldice_term(
            prob, labels, iterations=iterations, smooth=smooth, backend=backend
        )
    return _reduce(loss, reduction)


def compound_cldice_loss(
    pred_logits: torch.Tensor,
    target: torch.Tensor,
    *,
    gamma: float,
    alpha: float = 0.5,
    iterations: int = 50,
    smooth: float = 1.0,
    reduction: Reduction = "mean",
    backend: Backend | None = None,
) -> torch.Tensor:
    """Compound clDice: ``(1 - gamma) L_pixel + gamma L_clDice`` (ContextLoss paper, Tab. 1).

    ``backend``: where the target skeleton is computed (:func:`topobench.critical.resolve_backend`).
    """
    gamma = _check_weight("gamma", gamma)
    alpha = _check_weight("alpha", alpha)
    _check_common(reduction, smooth)
    labels = prepare(pred_logits, target)
    pred_logits = _full_precision(pred_logits)
    pixel, prob, _, _ = _pixel_loss(pred_logits, labels, alpha, smooth)
    loss = (1.0 - gamma) * pixel
    if gamma > 0:
        loss = loss + gamma * soft_cldice_term(
            prob, labels, iterations=iterations, smooth=smooth, backend=backend
        )
    return _reduce(loss, reduction)


def context_loss(
    pred_logits: torch.Tensor,
    target: torch.Tensor,
    *,
    gamma: float,
    alpha: float = 0.5,
    mask: MaskKind = "context",
    iterations: int = 50,
    smooth: float = 1.0,
    reduction: Reduction = "mean",
    ce_normalization: CENormalization = DEFAULT_CE_NORMALIZATION,
    mask_smooth: float | None = None,
    backend: Backend | None = None,
) -> torch.Tensor:
    """ContextLoss (Schacht et al. 2025, Eq. 2): ``(1 - gamma) L_pixel + gamma L_pixel⊙M``.

    ``M`` is the critical mask of the binarised prediction and the target
    (:func:`topobench.critical.critical_mask`), a constant without gradient. The masked term is
    the same pixel loss over the pixels of ``M`` only (soft Dice over ``M``, CE summed over ``M``);
    it is 0 for a sample whose ``M`` is empty. ``alpha = 0`` gives CLoss (Dice),
    ``mask="thin"`` Thin CLoss.

    Two choices the paper leaves open are parameters (docs/losses.md, "Defaults"):
    ``ce_normalization`` divides the masked CE by all pixels of the sample ("all", the default:
    the plain mean of the Hadamard product) or by the pixels of ``M`` ("mask"); ``mask_smooth``
    is the additive smoothing of the masked soft Dice (None: ``smooth``). ``backend`` chooses the
    implementation of ``M`` (:func:`topobench.critical.resolve_backend`): with "torch" (the
    default on an accelerator) it is computed on the logits' device, without a host copy.
    """
    gamma = _check_weight("gamma", gamma)
    alpha = _check_weight("alpha", alpha)
    _check_common(reduction, smooth)
    if ce_normalization not in ("mask", "all"):
        raise InvalidParameterError(
            f"ce_normalization must be 'mask' or 'all', got {ce_normalization!r}"
        )
    if mask_smooth is None:
        mask_smooth = smooth
    _check_smooth("mask_smooth", mask_smooth)
    labels = prepare(pred_logits, target)
    pred_logits = _full_precision(pred_logits)
    pixel, prob, tgt, ce_map = _pixel_loss(pred_logits, labels, alpha, smooth)
    loss = (1.0 - gamma) * pixel
    if gamma > 0:
        critical = critical_mask(
            _binarise(pred_logits), labels, mask=mask, iterations=iterations, backend=backend
        )
        # no branch on critical.any() (a synchronisation): an empty mask adds exactly 0
        weight = critical.to(prob.dtype)
        loss = loss + gamma * _pixel_terms(
            ce_map, prob, tgt, alpha, mask_smooth, weight, ce_normalization
        )
    return _reduce(loss, reduction)

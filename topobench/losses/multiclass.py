"""Multi-class losses: ``C > 2`` softmax logits against integer labels.

:class:`MultiClassLoss` combines

- the pixel term as nnU-Net computes it for several classes: soft Dice averaged over the
  foreground classes (background left out, nnU-Net's ``do_bg=False``) and the softmax
  cross-entropy over all ``C`` classes, weighted ``(1 - alpha) L_Dice + alpha L_CE``;
- the topology term of a binary topobench loss (clDice, compound clDice, CLoss, ...) for each
  foreground class ``c`` on its own (one critical mask, one soft skeleton per class), averaged
  over the classes: class ``c`` against the rest is the two-channel softmax with logits
  ``(logsumexp of the other channels, logit_c)``, whose channel 1 is exactly the softmax
  probability of ``c``; the binary loss with ``gamma = 1`` is its topology term alone;

``L = (1 - gamma) L_pixel + gamma mean_c L_topo(c)``. With ``C = 2`` this is the binary loss
itself (tested), so the same class serves binary and multi-class nnU-Net datasets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from topobench.catalog import LOSSES
from topobench.errors import InvalidMaskError, InvalidMaskTypeError, InvalidParameterError
from topobench.losses.functional import Reduction

__all__ = ["MultiClassLoss", "class_vs_rest_logits"]


def class_vs_rest_logits(pred_logits: torch.Tensor, cls: int) -> torch.Tensor:
    """Two-channel logits ``(B, 2, ...)`` of class ``cls`` against the other classes.

    Channel 0 is ``logsumexp`` of the other channels, channel 1 the logit of ``cls``, so that
    ``softmax(out, 1)[:, 1] == softmax(pred_logits, 1)[:, cls]`` (and gradients flow to every
    channel).
    """
    others = torch.cat([pred_logits[:, :cls], pred_logits[:, cls + 1:]], dim=1)
    return torch.stack([torch.logsumexp(others, dim=1), pred_logits[:, cls]], dim=1)


class MultiClassLoss(nn.Module):
    """A topobench loss for ``C >= 2`` softmax logits and integer labels.

    Parameters
    ----------
    loss : str
        A :func:`topobench.losses.make_loss` name (``dice_ce``: the pixel term alone).
    gamma : float, optional
        Weight of the topology term (default: the loss's default, topobench.catalog.LOSSES).
    classes : sequence of int, optional
        Foreground classes that get a topology term (default: every class 1 .. C-1). The pixel
        term always covers every class, as nnU-Net's.
    alpha : float, optional
        Weight of CE in the pixel term (default: the loss's; 0 for clDice, whose pixel part is
        the soft Dice alone).
    smooth : float
        Additive smoothing of the soft Dice (topobench's 1.0).
    reduction : {"mean", "sum", "none"}
        Over the batch.
    **params
        Further parameters of the binary loss (``iterations``, ...).

    Examples
    --------
    >>> loss_fn = MultiClassLoss("closs", gamma=0.2)
    >>> logits = torch.randn(2, 4, 32, 32, requires_grad=True)   # background + 3 classes
    >>> labels = torch.randint(0, 4, (2, 1, 32, 32))
    >>> loss = loss_fn(logits, labels); loss.backward(); bool(torch.isfinite(loss))
    True
    """

    def __init__(
        self,
        loss: str = "closs",
        gamma: float | None = None,
        *,
        classes: Sequence[int] | None = None,
        alpha: float | None = None,
        smooth: float = 1.0,
        reduction: Reduction = "mean",
        **params: Any,
    ) -> None:
        super().__init__()
        from topobench.losses.modules import make_loss

        if loss not in LOSSES:
            raise InvalidParameterError(
                f"unknown loss {loss!r}: expected one of {', '.join(LOSSES)}"
            )
        info = LOSSES[loss]
        if reduction not in ("mean", "sum", "none"):
            raise InvalidParameterError(
                f"reduction: expected 'mean', 'sum' or 'none', got {reduction!r}"
            )
        self.loss_name = loss
        if not info.has_gamma and gamma is not None:
            raise InvalidParameterError(f"loss {loss!r} takes no gamma, got {gamma!r}")
        chosen = info.default_gamma if gamma is None else gamma
        self.gamma = float(chosen) if info.has_gamma and chosen is not None else 0.0
        if not 0.0 <= self.gamma <= 1.0:
            raise InvalidParameterError(f"gamma must be a number in [0, 1], got {gamma!r}")
        default_alpha = info.alpha if info.alpha is not None else 0.0
        self.alpha = float(default_alpha if alpha is None else alpha)
        if not 0.0 <= self.alpha <= 1.0:
            raise InvalidParameterError(f"alpha must be a number in [0, 1], got {alpha!r}")
        self.smooth = float(smooth)
        self.reduction = reduction
        self.classes = None if classes is None else tuple(int(c) for c in classes)
        if self.classes is not None and (not self.classes or min(self.classes) < 1):
            raise InvalidParameterError(
                f"classes: expected foreground classes >= 1, got {list(classes or [])}"
            )
        # The topology term of the binary loss: the loss itself with gamma = 1.
        self.topology = (
            make_loss(loss, gamma=1.0, reduction="none", **params) if info.has_gamma else None
        )

    def _labels(self, pred_logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if not isinstance(pred_logits, torch.Tensor) or not isinstance(target, torch.Tensor):
            raise InvalidMaskTypeError("expected torch tensors for pred_logits and target")
        if pred_logits.ndim not in (4, 5) or not pred_logits.is_floating_point():
            raise InvalidMaskError(
                "pred_logits: expected float (B, C, H, W) or (B, C, D, H, W), got "
                f"{pred_logits.dtype} of shape {tuple(pred_logits.shape)}"
            )
        channels = pred_logits.shape[1]
        if channels < 2:
            raise InvalidMaskError(
                f"pred_logits: expected C >= 2 softmax channels, got C = {channels}"
            )
        if target.ndim == pred_logits.ndim:
            if target.shape[1] != 1:
                raise InvalidMaskError(
                    f"target: expected labels (B, 1, ...) or (B, ...), got shape "
                    f"{tuple(target.shape)} (one-hot targets are not accepted)"
                )
            target = target[:, 0]
        if tuple(target.shape) != (pred_logits.shape[0], *pred_logits.shape[2:]):
            raise InvalidMaskError(
                f"target: shape {tuple(target.shape)} does not match pred_logits "
                f"{tuple(pred_logits.shape)}"
            )
        if target.is_floating_point():
            if not bool((target == target.round()).all()):
                raise InvalidMaskError("target: expected integer class labels")
        elif target.dtype == torch.bool:
            target = target.long()
        labels = target.long()
        lo, hi = torch.aminmax(labels)
        if int(lo) < 0 or int(hi) >= channels:
            raise InvalidMaskError(
                f"target: expected class labels in [0, {channels - 1}], got values in "
                f"[{int(lo)}, {int(hi)}]"
            )
        if self.classes is not None and max(self.classes) >= channels:
            raise InvalidParameterError(
                f"classes {list(self.classes)}: the logits have only {channels} channels"
            )
        return labels

    def forward(self, pred_logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss of logits ``(B, C, ...)`` against labels ``(B, 1, ...)`` or ``(B, ...)``."""
        labels = self._labels(pred_logits, target)
        if pred_logits.dtype in (torch.float16, torch.bfloat16):
            pred_logits = pred_logits.float()
        channels = pred_logits.shape[1]
        prob = torch.softmax(pred_logits, dim=1)
        onehot = F.one_hot(labels, channels).movedim(-1, 1).to(prob.dtype)
        fg_prob, fg_target = prob[:, 1:].flatten(2), onehot[:, 1:].flatten(2)
        inter = (fg_prob * fg_target).sum(-1)
        denom = fg_prob.sum(-1) + fg_target.sum(-1)
        dice = 1.0 - ((2.0 * inter + self.smooth) / (denom + self.smooth)).mean(dim=1)
        pixel = (1.0 - self.alpha) * dice
        if self.alpha > 0:
            ce = F.cross_entropy(pred_logits, labels, reduction="none").flatten(1).mean(dim=1)
            pixel = pixel + self.alpha * ce
        total = pixel
        if self.topology is not None and self.gamma > 0:
            classes = self.classes or tuple(range(1, channels))
            terms = [
                self.topology(class_vs_rest_logits(pred_logits, c), (labels == c).unsqueeze(1))
                for c in classes
            ]
            topo = torch.stack(terms, dim=0).mean(dim=0)
            total = (1.0 - self.gamma) * pixel + self.gamma * topo
        if self.reduction == "mean":
            return total.mean()
        if self.reduction == "sum":
            return total.sum()
        return total

    def extra_repr(self) -> str:
        classes = "all" if self.classes is None else list(self.classes)
        return (
            f"loss={self.loss_name!r}, gamma={self.gamma}, alpha={self.alpha}, "
            f"classes={classes}, reduction={self.reduction!r}"
        )

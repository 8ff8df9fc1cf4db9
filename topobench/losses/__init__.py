"""Topology-aware segmentation losses in PyTorch (docs/losses.md).

``DiceCELoss`` (L_pixel), ``ClDiceLoss`` (Shit et al. 2021), ``CompoundClDiceLoss`` and
``ContextLoss`` (CLoss, Schacht et al. 2025; also CLoss (Dice) and Thin CLoss), their functional
cores in :mod:`topobench.losses.functional`, the soft skeleton, and ``make_loss``;
``MultiClassLoss`` for ``C > 2`` classes (the topology term per foreground class).
Every loss is called as ``loss(pred_logits, target)``.
"""

from topobench.errors import require

require("torch", feature="topobench.losses", extra="torch")

from topobench.critical import critical_mask  # noqa: E402
from topobench.losses.functional import (  # noqa: E402
    cldice_loss,
    compound_cldice_loss,
    context_loss,
    dice_ce_loss,
)
from topobench.losses.modules import (  # noqa: E402
    LOSS_DISPLAY_NAMES,
    LOSS_NAMES,
    ClDiceLoss,
    CompoundClDiceLoss,
    ContextLoss,
    DiceCELoss,
    make_loss,
)
from topobench.losses.multiclass import MultiClassLoss  # noqa: E402
from topobench.losses.skeleton import soft_skeleton  # noqa: E402

__all__ = [
    "LOSS_DISPLAY_NAMES",
    "LOSS_NAMES",
    "ClDiceLoss",
    "CompoundClDiceLoss",
    "ContextLoss",
    "DiceCELoss",
    "MultiClassLoss",
    "cldice_loss",
    "compound_cldice_loss",
    "context_loss",
    "critical_mask",
    "dice_ce_loss",
    "make_loss",
    "soft_skeleton",
]

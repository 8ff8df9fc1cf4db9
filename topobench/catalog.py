"""The facts about topobench's metrics and losses, in one place.

Every other module (metrics, evaluation, tables, the trainers, the CLI, the docs) derives its
metric names, labels, scales, valid ranges, directions, loss names, display names, default
weights and critical masks from the two registries here. This module imports nothing heavy
(no numpy, no torch), so that any layer can use it.

>>> METRICS["e0_gt"].label, METRICS["dice"].percent
('e0-Gt', True)
>>> LOSSES["closs"].display, LOSSES["closs"].critical_mask
('CLoss', 'context')
>>> finetune_epoch_count(1000), finetune_epoch_count(61)
(50, 3)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "FINETUNE_FRACTION",
    "LOSSES",
    "METRICS",
    "RUN_FORMAT",
    "RUN_FORMATS_READ",
    "LossInfo",
    "MetricInfo",
    "finetune_epoch_count",
    "loss_of_display_name",
    "metric_label",
    "metric_names",
]

#: Format name written into every run record (``run.json``) by topobench's trainers: version 2
#: keeps each prediction variant's per-case figures in ``evaluation/<variant>/cases.csv``.
RUN_FORMAT = "topobench-run/2"
#: Run record formats the results reader accepts (version 1: ``metrics_<variant>.csv`` beside
#: ``run.json``).
RUN_FORMATS_READ: tuple[str, ...] = ("topobench-run/1", "topobench-run/2")

#: Share of the pretraining epochs that fine-tuning runs (the paper: 50 of 1000).
FINETUNE_FRACTION = 0.05


@dataclass(frozen=True)
class MetricInfo:
    """What a metric is and how it is shown.

    Attributes
    ----------
    name : str
        Key in results (``cases.csv`` columns, ``evaluate_case`` keys).
    label : str
        Plain-text display name (tables, plots, CLI).
    latex : str
        LaTeX display name, without the arrow.
    kind : {"fraction", "count", "distance", "bits"}
        ``fraction``: a share in [0, 1], shown in percent; ``count``: a mean of counts of
        topological features, >= 0; ``distance``: a length in the mask's units, >= 0;
        ``bits``: an information-theoretic quantity (conditional entropy), >= 0.
    higher_is_better : bool
        Direction of the table arrow and of the "best" mark.
    low, high : float
        Valid range of a per-case value (inclusive); values outside are refused by the
        results readers.
    dims : tuple of int
        Dimensions of the image for which the metric exists (``e2`` only in 3D).
    """

    name: str
    label: str
    latex: str
    kind: Literal["fraction", "count", "distance", "bits"]
    higher_is_better: bool
    low: float = 0.0
    high: float = math.inf
    dims: tuple[int, ...] = (2, 3)

    @property
    def percent(self) -> bool:
        """Whether tables print this metric multiplied by 100 (fractions, as in the paper)."""
        return self.kind == "fraction"

    @property
    def scale(self) -> float:
        """Factor from stored units to printed units."""
        return 100.0 if self.percent else 1.0

    @property
    def decimals(self) -> int:
        """Decimals printed in tables."""
        return 2 if self.percent else 3

    def in_range(self, value: float) -> bool:
        """Whether ``value`` is a finite value this metric can take."""
        return math.isfinite(value) and self.low <= value <= self.high


def _fraction(name: str, label: str, latex: str | None = None) -> MetricInfo:
    return MetricInfo(name, label, latex or label, "fraction", True, 0.0, 1.0)


def _count(name: str, label: str, latex: str, dims: tuple[int, ...] = (2, 3)) -> MetricInfo:
    return MetricInfo(name, label, latex, "count", False, 0.0, math.inf, dims)


#: Every per-case metric topobench computes, in the order of ``evaluate_case``'s keys and of
#: the ``cases.csv`` columns.
METRICS: dict[str, MetricInfo] = {
    m.name: m
    for m in (
        _fraction("dice", "Dice"),
        _fraction("cldice", "clDice"),
        _count("e", "e", "$e$"),
        _count("e0", "e0", "$e_0$"),
        _count("e1", "e1", "$e_1$"),
        _count("e2", "e2", "$e_2$", dims=(3,)),
        _count("e0_gt", "e0-Gt", "$e_0$-Gt"),
        _fraction("ags", "AGS"),
        # Surface distances (topobench.metrics.distance), in spacing units (pixels by default).
        MetricInfo("hd95", "HD95", "HD95", "distance", False),
        MetricInfo("assd", "ASSD", "ASSD", "distance", False),
        _fraction("nsd", "NSD"),
        # Partitions of the connected components (topobench.metrics.partition).
        MetricInfo("vi_split", "VI split", "VI$_{split}$", "bits", False),
        MetricInfo("vi_merge", "VI merge", "VI$_{merge}$", "bits", False),
        MetricInfo("are", "ARE", "ARE", "fraction", False, 0.0, 1.0),
        # Betti matching error (topobench.metrics.betti_matching): mean unmatched pairs.
        _count("bm", "BM", "BM"),
        _count("bm0", "BM0", "BM$_0$"),
        _count("bm1", "BM1", "BM$_1$"),
        _count("bm2", "BM2", "BM$_2$", dims=(3,)),
    )
}


def metric_names(dim: int | None = None) -> tuple[str, ...]:
    """Names of the metrics (those that exist in dimension ``dim`` when it is given)."""
    return tuple(m.name for m in METRICS.values() if dim is None or dim in m.dims)


def metric_label(name: str, *, unit: bool = False) -> str:
    """Display name of a metric (``e0_gt`` -> ``e0-Gt``); ``unit`` adds `` (%)`` to fractions.

    Unknown names (a user's own column) are returned unchanged.
    """
    info = METRICS.get(name)
    if info is None:
        return name
    return f"{info.label} (%)" if unit and info.percent else info.label


@dataclass(frozen=True)
class LossInfo:
    """What a loss is, how it is named and what it defaults to.

    Attributes
    ----------
    name : str
        ``topobench.losses.make_loss`` name (also ``topobench train --loss``).
    display : str
        Name printed in the paper's tables.
    class_stem : str
        Part of the nnU-Net trainer class name (``nnUNetTrainer<stem>``).
    alpha : float or None
        Weight of CE in the pixel loss ``(1 - alpha) L_Dice + alpha L_CE``; None for clDice,
        whose pixel term is the soft Dice alone.
    critical_mask : {"none", "skeleton", "thin", "context"}
        Pixels the topological term looks at (the paper's Table 4 wording): none (a pixel
        loss), the full soft skeleton (clDice), the skeleton at the topological errors
        (Thin CLoss) or their whole context (CLoss).
    default_gamma : float or None
        Weight of the topological term when none is given (None: the loss has no such term).
    """

    name: str
    display: str
    class_stem: str
    alpha: float | None
    critical_mask: Literal["none", "skeleton", "thin", "context"]
    default_gamma: float | None

    @property
    def has_gamma(self) -> bool:
        """Whether the loss has a topological term weighted by ``gamma``."""
        return self.default_gamma is not None


#: The losses of the ContextLoss paper, in its order. The default weights are topobench's
#: choice, made on the synthetic gap-closing benchmark (docs/losses.md, "Defaults").
LOSSES: dict[str, LossInfo] = {
    info.name: info
    for info in (
        LossInfo("dice_ce", "Dice & CE", "DiceCE", 0.5, "none", None),
        LossInfo("cldice", "clDice", "ClDice", None, "skeleton", 0.2),
        LossInfo("compound_cldice", "Compound clDice", "CompoundClDice", 0.5, "skeleton", 0.2),
        LossInfo("closs", "CLoss", "CLoss", 0.5, "context", 0.2),
        LossInfo("closs_dice", "CLoss (Dice)", "CLossDice", 0.0, "context", 0.2),
        LossInfo("thin_closs", "Thin CLoss", "ThinCLoss", 0.5, "thin", 0.2),
    )
}


def loss_of_display_name(display: str) -> str | None:
    """``make_loss`` name of a display name (``"CLoss"`` -> ``"closs"``), None if unknown."""
    for info in LOSSES.values():
        if info.display == display:
            return info.name
    return None


def finetune_epoch_count(pretraining_epochs: int, fraction: float = FINETUNE_FRACTION) -> int:
    """Fine-tuning epochs after ``pretraining_epochs``: ``fraction`` of them, rounded half up,
    at least 1 (1000 -> 50, 250 -> 13, 61 -> 3, 70 -> 4).

    The one rule used by ``topobench train`` and by the nnU-Net ``_ft`` trainers.
    """
    if pretraining_epochs < 1:
        raise ValueError(f"pretraining_epochs must be >= 1, got {pretraining_epochs}")
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    return max(1, math.floor(fraction * pretraining_epochs + 0.5 + 1e-9))

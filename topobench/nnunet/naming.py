"""Names of the nnU-Net trainer classes that topobench provides.

nnU-Net finds a trainer by its class name alone (``nnUNetv2_train ... -tr NAME``, and the
``trainer_name`` stored in every checkpoint), so each loss configuration has a name of its own:

``nnUNetTrainer<Loss>[_g<gamma>][_ft][_<N>epochs][_<M>iters]``

- ``<Loss>``: ``CLoss``, ``CLossDice``, ``ThinCLoss``, ``ClDice``, ``CompoundClDice``, ``DiceCE``
  (the :func:`topobench.losses.make_loss` names ``closs``, ``closs_dice``, ``thin_closs``,
  ``cldice``, ``compound_cldice``, ``dice_ce``; :attr:`topobench.catalog.LossInfo.class_stem`);
- ``_g<gamma>``: the loss weight with ``p`` for the decimal point (``_g0p08`` is 0.08); left out
  for the default weight of the loss (:data:`DEFAULT_GAMMA`);
- ``_ft``: the fine-tuning variant, which trains for :data:`FINETUNE_FRACTION` of nnU-Net's epochs
  (:func:`~topobench.catalog.finetune_epoch_count`), meant to start from a pretrained checkpoint
  (the paper's protocol);
- ``_<N>epochs``: train for ``N`` epochs instead (as nnU-Net's own ``nnUNetTrainer_250epochs``);
  with ``_ft``, e.g. 5% of a shorter pretraining (``nnUNetTrainerCLoss_ft_13epochs``);
- ``_<M>iters``: ``M`` training iterations per epoch instead of nnU-Net's 250 (validation
  iterations in nnU-Net's proportion, 50 per 250), for short runs
  (``nnUNetTrainerCLoss_2epochs_10iters``).

This module needs neither torch nor nnU-Net.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from topobench.catalog import FINETUNE_FRACTION, LOSSES, finetune_epoch_count
from topobench.errors import InvalidParameterError

__all__ = [
    "DEFAULT_GAMMA",
    "FINETUNE_FRACTION",
    "LOSS_CLASS_STEMS",
    "TrainerSpec",
    "finetune_epoch_count",
    "parse_trainer_name",
    "trainer_class_name",
]

LOSS_CLASS_STEMS: dict[str, str] = {name: info.class_stem for name, info in LOSSES.items()}
"""Loss name (as in :func:`topobench.losses.make_loss`) -> the part of the class name
(from :data:`topobench.catalog.LOSSES`)."""

DEFAULT_GAMMA: dict[str, float | None] = {
    name: info.default_gamma for name, info in LOSSES.items()
}
"""Loss weight ``gamma`` used when a name has no ``_g`` part: the loss's default in
:data:`topobench.catalog.LOSSES` (docs/losses.md, "Defaults")."""


_PREFIX = "nnUNetTrainer"
_STEM_TO_LOSS = {stem: loss for loss, stem in LOSS_CLASS_STEMS.items()}
# Longest stems first, so that "CLossDice" is not read as "CLoss" + "Dice".
_NAME_RE = re.compile(
    rf"^{_PREFIX}(?P<stem>{'|'.join(sorted(_STEM_TO_LOSS, key=len, reverse=True))})"
    r"(?:_g(?P<gamma>\d+(?:p\d+)?))?(?P<ft>_ft)?(?:_(?P<epochs>[1-9]\d*)epochs)?"
    r"(?:_(?P<iterations>[1-9]\d*)iters)?$"
)


@dataclass(frozen=True)
class TrainerSpec:
    """One trainer configuration: the loss, its weight and whether it fine-tunes.

    Attributes
    ----------
    loss : str
        A :func:`topobench.losses.make_loss` name.
    gamma : float or None
        Loss weight; None only for ``dice_ce``.
    finetune : bool
        Fine-tuning from a pretrained checkpoint: :data:`FINETUNE_FRACTION` of nnU-Net's
        epochs unless ``epochs`` is given.
    epochs : int or None
        Number of epochs; None keeps nnU-Net's (or the fine-tuning share of it).
    iterations : int or None
        Training iterations per epoch; None keeps nnU-Net's 250. The validation iterations
        follow in nnU-Net's proportion (50 per 250, at least 1).
    """

    loss: str
    gamma: float | None
    finetune: bool = False
    epochs: int | None = None
    iterations: int | None = None

    def __post_init__(self) -> None:
        if self.loss not in LOSS_CLASS_STEMS:
            raise InvalidParameterError(
                f"unknown loss {self.loss!r}: expected one of {', '.join(LOSS_CLASS_STEMS)}"
            )
        if self.epochs is not None and (not isinstance(self.epochs, int) or self.epochs < 1):
            raise InvalidParameterError(f"epochs: expected a positive integer, got {self.epochs}")
        if self.iterations is not None and (
            isinstance(self.iterations, bool)
            or not isinstance(self.iterations, int)
            or self.iterations < 1
        ):
            raise InvalidParameterError(
                f"iterations: expected a positive integer, got {self.iterations}"
            )
        if self.loss == "dice_ce":
            if self.gamma is not None:
                raise InvalidParameterError(f"loss 'dice_ce' takes no gamma, got {self.gamma}")
            return
        if self.gamma is None or not (0.0 <= self.gamma <= 1.0) or math.isnan(self.gamma):
            raise InvalidParameterError(
                f"gamma of {self.loss!r}: expected a number in [0, 1], got {self.gamma}"
            )

    @property
    def class_name(self) -> str:
        """The nnU-Net trainer class name, e.g. ``nnUNetTrainerCLoss_g0p1_ft``."""
        name = _PREFIX + LOSS_CLASS_STEMS[self.loss]
        if self.gamma is not None and not math.isclose(self.gamma, DEFAULT_GAMMA[self.loss]):
            name += "_g" + _format_gamma(self.gamma)
        name += "_ft" if self.finetune else ""
        name += f"_{self.epochs}epochs" if self.epochs is not None else ""
        return name + (f"_{self.iterations}iters" if self.iterations is not None else "")

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form, with the class name."""
        return {
            "loss": self.loss,
            "gamma": self.gamma,
            "finetune": self.finetune,
            "epochs": self.epochs,
            "iterations": self.iterations,
            "trainer": self.class_name,
        }


def _format_gamma(gamma: float) -> str:
    text = f"{gamma:.6f}".rstrip("0")
    if text.endswith("."):
        text += "0"
    return text.replace(".", "p")


def trainer_class_name(
    loss: str,
    gamma: float | None = None,
    *,
    finetune: bool = False,
    epochs: int | None = None,
    iterations: int | None = None,
) -> str:
    """Class name of the trainer for ``loss`` with weight ``gamma`` (None: the default weight).

    Examples
    --------
    >>> trainer_class_name("closs")
    'nnUNetTrainerCLoss'
    >>> trainer_class_name("closs", 0.08, finetune=True)
    'nnUNetTrainerCLoss_g0p08_ft'
    >>> trainer_class_name("cldice", finetune=True, epochs=13)
    'nnUNetTrainerClDice_ft_13epochs'
    >>> trainer_class_name("closs", epochs=2, iterations=10)
    'nnUNetTrainerCLoss_2epochs_10iters'
    """
    if loss in DEFAULT_GAMMA and gamma is None:
        gamma = DEFAULT_GAMMA[loss]
    return TrainerSpec(loss, gamma, finetune, epochs, iterations).class_name


def parse_trainer_name(name: str) -> TrainerSpec | None:
    """The configuration a trainer class name stands for, or None for a name not of this scheme.

    Examples
    --------
    >>> parse_trainer_name("nnUNetTrainerCLoss_g0p1_ft")
    TrainerSpec(loss='closs', gamma=0.1, finetune=True, epochs=None, iterations=None)
    >>> parse_trainer_name("nnUNetTrainer") is None
    True
    """
    match = _NAME_RE.match(name)
    if match is None:
        return None
    loss = _STEM_TO_LOSS[match["stem"]]
    text = match["gamma"]
    if text is None:
        gamma = DEFAULT_GAMMA[loss]
    elif loss == "dice_ce":
        return None
    else:
        gamma = float(text.replace("p", "."))
        if gamma > 1.0:
            return None
    epochs = int(match["epochs"]) if match["epochs"] else None
    iterations = int(match["iterations"]) if match["iterations"] else None
    spec = TrainerSpec(loss, gamma, match["ft"] is not None, epochs, iterations)
    # One spelling per configuration: "_g0p2" for CLoss (the default) or "_g0p10" are not names.
    return spec if spec.class_name == name else None

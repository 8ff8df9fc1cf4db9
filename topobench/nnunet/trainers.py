"""nnU-Net v2 trainers that train with topobench's losses.

Each class is nnU-Net's ``nnUNetTrainer`` with another ``_build_loss``: the loss named by the
class (see :mod:`topobench.nnunet.naming`), applied to the full-resolution output, with the
pixel part of the loss on the lower deep-supervision outputs
(:class:`~topobench.nnunet.deep_supervision.DeepSupervisionTopologyLoss`). Everything else
(planning, data augmentation, optimiser, schedule, inference) is nnU-Net's.

Besides the classes written out below, any name of the scheme
``nnUNetTrainer<Loss>[_g<gamma>][_ft][_<N>epochs]`` is served on demand
(``nnUNetTrainerCLoss_g0p3``), so that nnU-Net's lookup by name finds it both for training and,
later, for inference from the checkpoint.

Importing this module needs nnU-Net v2 (``pip install "topobench[nnunet]"``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, ClassVar

try:
    import torch
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "topobench.nnunet.trainers needs nnU-Net v2 and PyTorch; install them with "
        "pip install \"topobench[nnunet]\""
    ) from exc

from topobench import __version__
from topobench.catalog import LOSSES
from topobench.errors import InvalidParameterError
from topobench.losses import MultiClassLoss, make_loss
from topobench.nnunet.deep_supervision import (
    DeepSupervisionTopologyLoss,
    TopologyScales,
    deep_supervision_weights,
)
from topobench.nnunet.evaluation import TRAINER_CONFIG_FILE
from topobench.nnunet.naming import (
    FINETUNE_FRACTION,
    TrainerSpec,
    finetune_epoch_count,
    parse_trainer_name,
)

__all__ = [
    "nnUNetTrainerTopobench",
    "nnUNetTrainerCLoss",
    "nnUNetTrainerCLoss_g0p08",
    "nnUNetTrainerCLoss_g0p1",
    "nnUNetTrainerCLossDice",
    "nnUNetTrainerThinCLoss",
    "nnUNetTrainerClDice",
    "nnUNetTrainerCompoundClDice",
    "nnUNetTrainerDiceCE",
    "nnUNetTrainerCLoss_ft",
    "nnUNetTrainerCLoss_g0p08_ft",
    "nnUNetTrainerCLoss_g0p1_ft",
    "nnUNetTrainerCLossDice_ft",
    "nnUNetTrainerThinCLoss_ft",
    "nnUNetTrainerClDice_ft",
    "nnUNetTrainerCompoundClDice_ft",
    "nnUNetTrainerDiceCE_ft",
    "trainer_class",
]

CONFIG_FILE = TRAINER_CONFIG_FILE
"""File written into the fold's output folder with the loss configuration and versions."""


class nnUNetTrainerTopobench(nnUNetTrainer):  # noqa: N801 - nnU-Net's naming
    """Base of the topobench trainers; subclasses set :attr:`spec`.

    Class attributes
    ----------------
    spec : TrainerSpec
        Loss, weight ``gamma`` and fine-tuning flag.
    topology_scales : {"full", "all"}
        Deep-supervision outputs that get the topology loss (the others get its pixel part).
    """

    spec: ClassVar[TrainerSpec | None] = None
    topology_scales: ClassVar[TopologyScales] = "full"

    def __init__(
        self,
        plans: dict,
        configuration: str,
        fold: int,
        dataset_json: dict,
        device: torch.device = torch.device("cuda"),  # noqa: B008 - nnU-Net's signature
    ):
        if self.spec is None:
            raise InvalidParameterError(
                f"{type(self).__name__} has no loss configuration; use one of its subclasses, "
                "e.g. nnUNetTrainerCLoss"
            )
        super().__init__(plans, configuration, fold, dataset_json, device)
        if self.spec.epochs is not None:
            self.num_epochs = self.spec.epochs
        elif self.spec.finetune:
            self.num_epochs = finetune_epoch_count(self.num_epochs)
        if self.spec.iterations is not None:
            # nnU-Net's proportion: 50 validation iterations per 250 training iterations.
            self.num_val_iterations_per_epoch = max(
                1, math.ceil(self.spec.iterations * self.num_val_iterations_per_epoch
                             / self.num_iterations_per_epoch)
            )
            self.num_iterations_per_epoch = self.spec.iterations

    def _check_labels(self) -> None:
        manager = self.label_manager
        if manager.has_regions or manager.num_segmentation_heads < 2:
            raise InvalidParameterError(
                f"{type(self).__name__}: expected a dataset of background and one or more "
                "foreground classes (region-based labels are not supported), got labels "
                f"{self.dataset_json.get('labels')}"
            )
        if manager.ignore_label is not None:
            raise InvalidParameterError(
                f"{type(self).__name__}: datasets with an ignore label are not supported, got "
                f"ignore label {manager.ignore_label}"
            )

    def _build_loss(self) -> DeepSupervisionTopologyLoss:
        self._check_labels()
        spec = self.spec
        if self.label_manager.num_segmentation_heads > 2:
            # Several classes: nnU-Net's multi-class Dice & CE, the topology term per class.
            loss: torch.nn.Module = MultiClassLoss(spec.loss, gamma=spec.gamma)
            pixel_loss: torch.nn.Module = MultiClassLoss("dice_ce", alpha=loss.alpha)
        else:
            loss = make_loss(spec.loss, gamma=spec.gamma)
            # The pixel part: Dice & CE with the loss's alpha; clDice's pixel part is Dice alone.
            pixel_loss = make_loss("dice_ce", alpha=float(getattr(loss, "alpha", 0.0)))
        if self.enable_deep_supervision:
            compiled = bool(getattr(self, "_do_i_compile", lambda: False)())
            weights = deep_supervision_weights(
                len(self._get_deep_supervision_scales()),
                keep_lowest=self.is_ddp and not compiled,
            )
        else:
            weights = (1.0,)
        return DeepSupervisionTopologyLoss(
            loss, pixel_loss, weights, topology_scales=self.topology_scales
        )

    def topobench_config(self) -> dict[str, Any]:
        """The loss configuration and versions, as written to ``topobench.json``."""
        import nnunetv2

        loss = self.loss.loss if self.loss is not None else None
        return {
            **self.spec.to_dict(),
            "trainer": type(self).__name__,
            "method": LOSSES[self.spec.loss].display,
            "alpha": getattr(loss, "alpha", None),
            "critical_mask": LOSSES[self.spec.loss].critical_mask,
            "dataset": self.plans_manager.dataset_name,
            "configuration": self.configuration_name,
            "fold": self.fold,
            "loss_module": repr(loss) if loss is not None else None,
            "deep_supervision_weights": list(self.loss.weights) if self.loss is not None else None,
            "topology_scales": self.topology_scales,
            "num_epochs": self.num_epochs,
            "num_iterations_per_epoch": self.num_iterations_per_epoch,
            "finetune_fraction": FINETUNE_FRACTION if self.spec.finetune else None,
            "versions": {
                "topobench": __version__,
                "nnunetv2": getattr(nnunetv2, "__version__", _distribution_version("nnunetv2")),
                "torch": torch.__version__,
            },
        }

    def on_train_start(self) -> None:
        super().on_train_start()
        if self.local_rank == 0:
            config = self.topobench_config()
            self.print_to_log_file(f"topobench loss configuration: {json.dumps(config)}")
            path = Path(self.output_folder) / CONFIG_FILE
            path.write_text(json.dumps(config, indent=2), encoding="utf-8")


def _distribution_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _default(loss: str, finetune: bool = False) -> TrainerSpec:
    """``loss`` at its default weight (:data:`topobench.catalog.LOSSES`)."""
    return TrainerSpec(loss, LOSSES[loss].default_gamma, finetune)


# The paper's configurations, written out (see topobench.nnunet.naming for the scheme). The
# default weights are the catalog's (docs/losses.md, "Defaults").
class nnUNetTrainerCLoss(nnUNetTrainerTopobench):  # noqa: N801
    """CLoss, default gamma."""

    spec = _default("closs")


class nnUNetTrainerCLoss_g0p08(nnUNetTrainerTopobench):  # noqa: N801
    """CLoss, gamma 0.08."""

    spec = TrainerSpec("closs", 0.08)


class nnUNetTrainerCLoss_g0p1(nnUNetTrainerTopobench):  # noqa: N801
    """CLoss, gamma 0.1."""

    spec = TrainerSpec("closs", 0.1)


class nnUNetTrainerCLossDice(nnUNetTrainerTopobench):  # noqa: N801
    """CLoss (Dice): CLoss with L_pixel = soft Dice, default gamma."""

    spec = _default("closs_dice")


class nnUNetTrainerThinCLoss(nnUNetTrainerTopobench):  # noqa: N801
    """Thin CLoss (critical mask = error skeleton only), default gamma."""

    spec = _default("thin_closs")


class nnUNetTrainerClDice(nnUNetTrainerTopobench):  # noqa: N801
    """clDice loss (Shit et al. 2021): (1 - gamma) Dice + gamma clDice, default gamma."""

    spec = _default("cldice")


class nnUNetTrainerCompoundClDice(nnUNetTrainerTopobench):  # noqa: N801
    """Compound clDice: (1 - gamma) L_pixel + gamma clDice, default gamma."""

    spec = _default("compound_cldice")


class nnUNetTrainerDiceCE(nnUNetTrainerTopobench):  # noqa: N801
    """topobench's L_pixel = 0.5 Dice + 0.5 CE (the paper's "Dice & CE" fine-tuning)."""

    spec = TrainerSpec("dice_ce", None)


class nnUNetTrainerCLoss_ft(nnUNetTrainerTopobench):  # noqa: N801
    """CLoss fine-tuning, default gamma, 5% of the epochs."""

    spec = _default("closs", finetune=True)


class nnUNetTrainerCLoss_g0p08_ft(nnUNetTrainerTopobench):  # noqa: N801
    """CLoss fine-tuning, gamma 0.08, 5% of the epochs."""

    spec = TrainerSpec("closs", 0.08, finetune=True)


class nnUNetTrainerCLoss_g0p1_ft(nnUNetTrainerTopobench):  # noqa: N801
    """CLoss fine-tuning, gamma 0.1, 5% of the epochs."""

    spec = TrainerSpec("closs", 0.1, finetune=True)


class nnUNetTrainerCLossDice_ft(nnUNetTrainerTopobench):  # noqa: N801
    """CLoss (Dice) fine-tuning, default gamma, 5% of the epochs."""

    spec = _default("closs_dice", finetune=True)


class nnUNetTrainerThinCLoss_ft(nnUNetTrainerTopobench):  # noqa: N801
    """Thin CLoss fine-tuning, default gamma, 5% of the epochs."""

    spec = _default("thin_closs", finetune=True)


class nnUNetTrainerClDice_ft(nnUNetTrainerTopobench):  # noqa: N801
    """clDice fine-tuning, default gamma, 5% of the epochs."""

    spec = _default("cldice", finetune=True)


class nnUNetTrainerCompoundClDice_ft(nnUNetTrainerTopobench):  # noqa: N801
    """Compound clDice fine-tuning, default gamma, 5% of the epochs."""

    spec = _default("compound_cldice", finetune=True)


class nnUNetTrainerDiceCE_ft(nnUNetTrainerTopobench):  # noqa: N801
    """Dice & CE fine-tuning, 5% of the epochs."""

    spec = TrainerSpec("dice_ce", None, finetune=True)


def trainer_class(name: str) -> type[nnUNetTrainerTopobench]:
    """The trainer class called ``name``: a class above, or one made for a name of the scheme.

    Raises
    ------
    InvalidParameterError
        ``name`` is not a topobench trainer name.
    """
    found = globals().get(name)
    if isinstance(found, type) and issubclass(found, nnUNetTrainerTopobench) and found.spec:
        return found
    spec = parse_trainer_name(name)
    if spec is None:
        raise InvalidParameterError(
            f"expected a topobench trainer name such as nnUNetTrainerCLoss or "
            f"nnUNetTrainerCLoss_g0p3_ft, got {name!r}"
        )
    cls = type(
        name,
        (nnUNetTrainerTopobench,),
        {"spec": spec, "__module__": __name__, "__doc__": f"{spec.loss}, gamma {spec.gamma}."},
    )
    globals()[name] = cls  # later lookups and pickling find the same class
    return cls


def __getattr__(name: str) -> type[nnUNetTrainerTopobench]:
    """Serve trainer names of the scheme that are not written out (``hasattr`` lookups)."""
    if parse_trainer_name(name) is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return trainer_class(name)

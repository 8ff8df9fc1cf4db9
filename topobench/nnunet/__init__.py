"""nnU-Net v2 integration: trainers with topobench's losses, a launcher, topology evaluation.

- :mod:`topobench.nnunet.trainers`: ``nnUNetTrainerCLoss``, ``nnUNetTrainerClDice``, ... (needs
  nnU-Net: ``pip install "topobench[nnunet]"``); names in :mod:`topobench.nnunet.naming`.
- :func:`train` / :func:`predict`: nnU-Net's own training and prediction entries, with the
  trainers found without copying files (:mod:`topobench.nnunet.lookup` for the other routes).
- :func:`evaluate_predictions`: topology metrics and the topological post-processing for
  nnU-Net's prediction folders.

Importing this package needs neither torch nor nnU-Net.
"""

from topobench.nnunet.evaluation import VARIANTS, NnunetEvaluation, evaluate_predictions
from topobench.nnunet.launch import (
    TrainRequest,
    finetune_epochs_for_checkpoint,
    predict,
    resolve_trainer_name,
    serve_trainers,
    train,
)
from topobench.nnunet.lookup import (
    ext_trainer_dir,
    ext_trainer_environment,
    install_trainers,
    nnunet_trainer_dir,
    shim_installed,
    uninstall_trainers,
)
from topobench.nnunet.naming import (
    DEFAULT_GAMMA,
    FINETUNE_FRACTION,
    LOSS_CLASS_STEMS,
    TrainerSpec,
    parse_trainer_name,
    trainer_class_name,
)

__all__ = [
    "DEFAULT_GAMMA",
    "FINETUNE_FRACTION",
    "LOSS_CLASS_STEMS",
    "VARIANTS",
    "NnunetEvaluation",
    "TrainRequest",
    "TrainerSpec",
    "evaluate_predictions",
    "ext_trainer_dir",
    "ext_trainer_environment",
    "finetune_epochs_for_checkpoint",
    "install_trainers",
    "nnunet_trainer_dir",
    "parse_trainer_name",
    "predict",
    "resolve_trainer_name",
    "serve_trainers",
    "shim_installed",
    "train",
    "trainer_class_name",
    "uninstall_trainers",
]

"""Reference training runner for the paper's protocol (docs/training.md).

Pretrain a segmentation network with Dice & CE, fine-tune it with a topology-aware loss for a
short share of the epochs, predict with both models, post-process and evaluate::

    from topobench.training import TrainConfig, train
    result = train(TrainConfig(data="Dataset001", out="runs", loss="closs", gamma=0.1))
    result.summary["postprocessed"]["e0_gt"]

Needs the ``torch`` extra.
"""

from topobench.errors import require

require("torch", feature="topobench train", extra="torch")

from topobench.training.config import NETWORKS, TrainConfig, run_name  # noqa: E402
from topobench.training.data import (  # noqa: E402
    Case,
    Dataset,
    DatasetError,
    PatchSampler,
    load_case,
    load_or_create_splits,
    make_splits,
    normalize_intensity,
    scan_dataset,
)
from topobench.training.inference import predict_case, sliding_window_positions  # noqa: E402
from topobench.training.loop import TrainEvent  # noqa: E402
from topobench.training.model import UNet, UNetConfig  # noqa: E402
from topobench.training.rundir import RunError, TrainResult  # noqa: E402
from topobench.training.runner import LOSSES, finetune_epochs, train  # noqa: E402

__all__ = [
    "LOSSES",
    "NETWORKS",
    "Case",
    "Dataset",
    "DatasetError",
    "PatchSampler",
    "RunError",
    "TrainConfig",
    "TrainEvent",
    "TrainResult",
    "UNet",
    "UNetConfig",
    "finetune_epochs",
    "load_case",
    "load_or_create_splits",
    "make_splits",
    "normalize_intensity",
    "predict_case",
    "run_name",
    "scan_dataset",
    "sliding_window_positions",
    "train",
]

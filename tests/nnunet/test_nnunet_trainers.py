"""The trainer classes and how nnU-Net's lookup finds them (no training here: see the slow test)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("nnunetv2")
torch = pytest.importorskip("torch")

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer  # noqa: E402
from nnunetv2.utilities.find_class_by_name import recursive_find_python_class  # noqa: E402

import topobench.nnunet.trainers as trainers  # noqa: E402
from topobench.errors import InvalidParameterError  # noqa: E402
from topobench.nnunet import (  # noqa: E402
    ext_trainer_dir,
    install_trainers,
    resolve_trainer_name,
    serve_trainers,
)
from topobench.nnunet.lookup import EXT_TRAINER_VARIABLE  # noqa: E402


def test_written_out_classes_match_their_names() -> None:
    names = [
        n for n in trainers.__all__
        if n.startswith("nnUNetTrainer") and n != "nnUNetTrainerTopobench"
    ]
    assert len(names) == 16
    for name in names:
        cls = getattr(trainers, name)
        assert issubclass(cls, nnUNetTrainer)
        assert cls.spec.class_name == name
    assert trainers.nnUNetTrainerCLoss.spec.gamma == 0.2
    assert trainers.nnUNetTrainerCLoss_g0p08.spec.gamma == 0.08
    assert trainers.nnUNetTrainerCLoss_g0p1.spec.gamma == 0.1
    assert trainers.nnUNetTrainerCLoss_ft.spec.finetune


def test_names_served_on_demand() -> None:
    cls = trainers.nnUNetTrainerCompoundClDice_g0p3_ft_20epochs
    assert cls.__name__ == "nnUNetTrainerCompoundClDice_g0p3_ft_20epochs"
    assert cls.spec.gamma == 0.3 and cls.spec.finetune and cls.spec.epochs == 20
    assert trainers.trainer_class(cls.__name__) is cls  # one class per name
    assert not hasattr(trainers, "nnUNetTrainerSomethingElse")
    with pytest.raises(InvalidParameterError):
        trainers.trainer_class("nnUNetTrainer")


def test_epochs_and_iterations_from_the_name(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_init(self, plans, configuration, fold, dataset_json, device=None):  # nnU-Net's
        self.num_epochs, self.num_iterations_per_epoch, self.num_val_iterations_per_epoch = (
            1000, 250, 50
        )

    monkeypatch.setattr(trainers.nnUNetTrainer, "__init__", fake_init)
    short = trainers.trainer_class("nnUNetTrainerCLoss_2epochs_10iters")({}, "2d", 0, {})
    assert (short.num_epochs, short.num_iterations_per_epoch) == (2, 10)
    assert short.num_val_iterations_per_epoch == 2  # nnU-Net's 50 per 250
    one = trainers.trainer_class("nnUNetTrainerDiceCE_1iters")({}, "2d", 0, {})
    assert (one.num_epochs, one.num_iterations_per_epoch, one.num_val_iterations_per_epoch) == (
        1000, 1, 1
    )
    ft = trainers.trainer_class("nnUNetTrainerCLoss_ft_7iters")({}, "2d", 0, {})
    assert (ft.num_epochs, ft.num_iterations_per_epoch) == (50, 7)


def test_base_class_needs_a_configuration() -> None:
    with pytest.raises(InvalidParameterError, match="no loss configuration"):
        trainers.nnUNetTrainerTopobench({}, "2d", 0, {})


@pytest.mark.parametrize("name", ["nnUNetTrainerCLoss", "nnUNetTrainerClDice_g0p4_ft"])
def test_nnunet_finds_them_in_the_ext_folder(name: str) -> None:
    """nnU-Net's own search over an nnUNet_extTrainer folder, as its lookup runs it."""
    folder = str(ext_trainer_dir())
    found = recursive_find_python_class(
        folder, name, None, base_folder=folder, cleanup_imports_from_base_folder=True
    )
    assert found is trainers.trainer_class(name)


def test_nnunet_finds_them_through_the_shim(tmp_path: Path) -> None:
    folder = tmp_path / "nnUNetTrainer"
    folder.mkdir()
    install_trainers(folder)
    found = recursive_find_python_class(
        str(folder), "nnUNetTrainerCLoss_g0p1", None, cleanup_imports_from_base_folder=True
    )
    assert found is trainers.nnUNetTrainerCLoss_g0p1


def test_serve_trainers_patches_and_restores(monkeypatch: pytest.MonkeyPatch) -> None:
    import nnunetv2.inference.predict_from_raw_data as predict_module
    import nnunetv2.run.run_training as run_module

    monkeypatch.setenv(EXT_TRAINER_VARIABLE, "/my/trainers")
    originals = (run_module.recursive_find_trainer_class_by_name,
                 predict_module.recursive_find_trainer_class_by_name)

    class nnUNetTrainerMine(trainers.nnUNetTrainerCLoss):  # noqa: N801
        pass

    with serve_trainers(nnUNetTrainerMine):
        for module in (run_module, predict_module):
            find = module.recursive_find_trainer_class_by_name
            assert find("nnUNetTrainerMine") is nnUNetTrainerMine
            assert find("nnUNetTrainerCLoss_g0p3") is trainers.nnUNetTrainerCLoss_g0p3
        assert os.environ[EXT_TRAINER_VARIABLE].split(os.pathsep) == [
            "/my/trainers", str(ext_trainer_dir())
        ]
    assert (run_module.recursive_find_trainer_class_by_name,
            predict_module.recursive_find_trainer_class_by_name) == originals
    assert os.environ[EXT_TRAINER_VARIABLE] == "/my/trainers"


@pytest.mark.parametrize(("epochs_done", "expected"), [
    (1000, "nnUNetTrainerCLoss_ft"),
    (250, "nnUNetTrainerCLoss_ft_13epochs"),
])
def test_finetuning_length_from_checkpoint(tmp_path: Path, epochs_done: int, expected: str) -> None:
    ckpt = tmp_path / "checkpoint_final.pth"
    torch.save({"current_epoch": epochs_done, "trainer_name": "nnUNetTrainer"}, ckpt)
    assert resolve_trainer_name(loss="closs", pretrained=ckpt) == expected
    name = resolve_trainer_name(loss="closs", pretrained=ckpt, epochs=7)
    assert name == "nnUNetTrainerCLoss_ft_7epochs"
    name = resolve_trainer_name(loss="closs", pretrained=ckpt, finetune=False)
    assert name == "nnUNetTrainerCLoss"


def test_explicit_trainer_name_wins() -> None:
    assert resolve_trainer_name(trainer="nnUNetTrainer_250epochs") == "nnUNetTrainer_250epochs"
    with pytest.raises(InvalidParameterError):
        resolve_trainer_name(trainer="nnUNetTrainer", gamma=0.1)


def test_unreadable_checkpoint(tmp_path: Path) -> None:
    from topobench.errors import TopobenchError

    bad = tmp_path / "checkpoint_final.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(TopobenchError, match="cannot read the nnU-Net checkpoint"):
        resolve_trainer_name(loss="closs", pretrained=bad)
    with pytest.raises(TopobenchError, match="cannot read"):
        resolve_trainer_name(loss="closs", pretrained=tmp_path / "absent.pth")


@pytest.mark.parametrize(("regions", "heads", "ignore", "message"), [
    (False, 1, None, "one or more foreground classes"),
    (True, 2, None, "region-based"),
    (False, 2, 2, "ignore label"),
])
def test_label_checks(regions: bool, heads: int, ignore: int | None, message: str) -> None:
    from types import SimpleNamespace

    fake = SimpleNamespace(
        label_manager=SimpleNamespace(
            has_regions=regions, num_segmentation_heads=heads, ignore_label=ignore
        ),
        dataset_json={"labels": {"background": 0, "a": 1, "b": 2}},
    )
    with pytest.raises(InvalidParameterError, match=message):
        trainers.nnUNetTrainerCLoss._check_labels(fake)
    fake.label_manager = SimpleNamespace(has_regions=False, num_segmentation_heads=2,
                                         ignore_label=None)
    trainers.nnUNetTrainerCLoss._check_labels(fake)  # binary: accepted
    fake.label_manager.num_segmentation_heads = 4
    trainers.nnUNetTrainerCLoss._check_labels(fake)  # several classes: accepted


@pytest.mark.parametrize(("heads", "kind"), [(2, "ContextLoss"), (4, "MultiClassLoss")])
def test_multi_class_datasets_get_the_multi_class_loss(heads: int, kind: str) -> None:
    from types import SimpleNamespace

    fake = SimpleNamespace(
        label_manager=SimpleNamespace(has_regions=False, num_segmentation_heads=heads,
                                      ignore_label=None),
        dataset_json={}, spec=trainers.nnUNetTrainerCLoss_g0p1.spec,
        enable_deep_supervision=False, topology_scales="full",
    )
    fake._check_labels = lambda: trainers.nnUNetTrainerCLoss._check_labels(fake)
    wrapper = trainers.nnUNetTrainerCLoss._build_loss(fake)
    assert type(wrapper.loss).__name__ == kind and wrapper.loss.gamma == 0.1
    assert wrapper.loss.alpha == wrapper.pixel_loss.alpha == 0.5

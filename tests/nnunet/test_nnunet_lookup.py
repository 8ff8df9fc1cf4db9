"""The routes by which nnU-Net finds the trainers: shim file, nnUNet_extTrainer folder."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from topobench.errors import TopobenchError
from topobench.nnunet.lookup import (
    EXT_TRAINER_VARIABLE,
    SHIM_FILE_NAME,
    ext_trainer_dir,
    ext_trainer_environment,
    install_trainers,
    shim_installed,
    uninstall_trainers,
)

HAS_NNUNET = importlib.util.find_spec("nnunetv2") is not None


@pytest.fixture
def fake_trainer_dir(tmp_path: Path) -> Path:
    """A stand-in for nnunetv2/training/nnUNetTrainer."""
    folder = tmp_path / "nnunetv2" / "training" / "nnUNetTrainer"
    folder.mkdir(parents=True)
    (folder / "nnUNetTrainer.py").write_text("class nnUNetTrainer: pass\n")
    return folder


def test_install_and_uninstall(fake_trainer_dir: Path) -> None:
    assert not shim_installed(fake_trainer_dir)
    path = install_trainers(fake_trainer_dir)
    assert path == fake_trainer_dir / SHIM_FILE_NAME
    assert shim_installed(fake_trainer_dir)
    assert install_trainers(fake_trainer_dir) == path  # twice is harmless
    cache = fake_trainer_dir / "__pycache__"
    cache.mkdir()
    compiled = cache / f"{path.stem}.cpython-311.pyc"
    compiled.write_bytes(b"")
    assert uninstall_trainers(fake_trainer_dir) == path
    assert not path.exists() and not compiled.exists()
    assert not shim_installed(fake_trainer_dir)
    assert uninstall_trainers(fake_trainer_dir) is None
    assert (fake_trainer_dir / "nnUNetTrainer.py").exists()  # nnU-Net's own file untouched


def test_foreign_file_is_left_alone(fake_trainer_dir: Path) -> None:
    foreign = fake_trainer_dir / SHIM_FILE_NAME
    foreign.write_text("# someone else's module\n")
    with pytest.raises(TopobenchError, match="not written by topobench"):
        install_trainers(fake_trainer_dir)
    with pytest.raises(TopobenchError, match="not written by topobench"):
        uninstall_trainers(fake_trainer_dir)
    assert foreign.read_text() == "# someone else's module\n"


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(TopobenchError, match="not a folder"):
        install_trainers(tmp_path / "absent")


def test_shim_is_harmless_when_import_fails(fake_trainer_dir: Path) -> None:
    """The shim must never break nnU-Net's lookup, even when topobench cannot be imported."""
    path = install_trainers(fake_trainer_dir)
    text = path.read_text().replace("topobench.nnunet.trainers", "topobench_not_installed")
    namespace: dict[str, object] = {}
    exec(compile(text, str(path), "exec"), namespace)  # noqa: S102 - the shim's own text
    assert "nnUNetTrainerCLoss" not in namespace


@pytest.mark.skipif(not HAS_NNUNET, reason="nnunetv2 is not installed")
def test_shim_exports_the_trainers(fake_trainer_dir: Path) -> None:
    path = install_trainers(fake_trainer_dir)
    namespace: dict[str, object] = {"__name__": "shim"}
    exec(compile(path.read_text(), str(path), "exec"), namespace)  # noqa: S102
    assert namespace["nnUNetTrainerCLoss"].__name__ == "nnUNetTrainerCLoss"
    assert namespace["__getattr__"]("nnUNetTrainerClDice_g0p3").spec.gamma == 0.3


def test_ext_environment_appends_once() -> None:
    folder = str(ext_trainer_dir())
    env = ext_trainer_environment({"PATH": "/bin"})
    assert env[EXT_TRAINER_VARIABLE] == folder and env["PATH"] == "/bin"
    mine = os.pathsep.join(["/my/trainers", folder])
    env = ext_trainer_environment({EXT_TRAINER_VARIABLE: "/my/trainers"})
    assert env[EXT_TRAINER_VARIABLE] == mine
    assert ext_trainer_environment(env)[EXT_TRAINER_VARIABLE] == mine


def test_ext_folder_holds_one_module() -> None:
    """nnU-Net imports every module of an nnUNet_extTrainer folder: keep it to the re-export."""
    modules = sorted(p.name for p in ext_trainer_dir().glob("*.py"))
    assert modules == ["__init__.py", "topobench_nnunet_trainers.py"]

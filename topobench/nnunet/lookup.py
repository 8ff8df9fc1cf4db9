"""Making nnU-Net find topobench's trainers by name, without copying files into nnU-Net.

nnU-Net finds a trainer class by name (``-tr NAME``, and the name stored in each checkpoint when
it predicts) by importing the modules of its own ``nnunetv2/training/nnUNetTrainer`` folder and
then of the folders listed in the environment variable ``nnUNet_extTrainer`` (in the versions that
have it; 2.8.1, the version topobench is tested with, does). Three routes, from least to most
invasive:

1. ``topobench nnunet train`` (:func:`topobench.nnunet.launch.train`) runs nnU-Net's training in
   the same process and hands it the class directly: nothing to set up.
2. ``export nnUNet_extTrainer=$(topobench nnunet ext-path)`` makes nnU-Net's own commands
   (``nnUNetv2_train``, ``nnUNetv2_predict``, ...) find the trainers (:func:`ext_trainer_dir`).
3. ``topobench nnunet install-trainers`` writes a small shim module into nnU-Net's trainer folder
   (:func:`install_trainers`), for nnU-Net versions without ``nnUNet_extTrainer`` or setups that
   cannot set variables; ``uninstall-trainers`` removes it.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path

from topobench.errors import TopobenchError

__all__ = [
    "EXT_TRAINER_VARIABLE",
    "SHIM_FILE_NAME",
    "ext_trainer_dir",
    "ext_trainer_environment",
    "install_trainers",
    "nnunet_trainer_dir",
    "shim_installed",
    "uninstall_trainers",
]

EXT_TRAINER_VARIABLE = "nnUNet_extTrainer"
SHIM_FILE_NAME = "topobench_trainers.py"
_SHIM_MARKER = "# topobench-nnunet-shim"
_SHIM_TEXT = f'''{_SHIM_MARKER}
"""topobench's trainers (nnUNetTrainerCLoss, ...), for nnU-Net's lookup by name.

Written by `topobench nnunet install-trainers`; remove with `topobench nnunet uninstall-trainers`.
"""
try:
    from topobench.nnunet.trainers import *  # noqa: F403
    from topobench.nnunet.trainers import __getattr__  # noqa: F401
except ImportError:  # topobench was uninstalled: stay out of nnU-Net's way
    pass
'''


def ext_trainer_dir() -> Path:
    """The folder to put in ``nnUNet_extTrainer`` so that nnU-Net finds topobench's trainers."""
    return Path(__file__).resolve().parent / "_ext"


def ext_trainer_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of ``environ`` (default: ``os.environ``) with :func:`ext_trainer_dir` added to
    ``nnUNet_extTrainer`` (after the folders already there)."""
    env = dict(os.environ if environ is None else environ)
    folder = str(ext_trainer_dir())
    present = [p for p in env.get(EXT_TRAINER_VARIABLE, "").split(os.pathsep) if p]
    if folder not in present:
        present.append(folder)
    env[EXT_TRAINER_VARIABLE] = os.pathsep.join(present)
    return env


def nnunet_trainer_dir() -> Path:
    """nnU-Net's own trainer folder, ``.../nnunetv2/training/nnUNetTrainer``.

    Raises
    ------
    TopobenchError
        nnunetv2 is not installed.
    """
    spec = importlib.util.find_spec("nnunetv2")
    if spec is None or not spec.submodule_search_locations:
        raise TopobenchError(
            "nnU-Net v2 is not installed; install it with pip install \"topobench[nnunet]\""
        )
    return Path(list(spec.submodule_search_locations)[0]) / "training" / "nnUNetTrainer"


def _shim_path(trainer_dir: str | Path | None) -> Path:
    folder = nnunet_trainer_dir() if trainer_dir is None else Path(trainer_dir)
    if not folder.is_dir():
        raise TopobenchError(f"expected nnU-Net's trainer folder, got {folder} (not a folder)")
    return folder / SHIM_FILE_NAME


def _is_ours(path: Path) -> bool:
    try:
        return path.read_text(encoding="utf-8").startswith(_SHIM_MARKER)
    except OSError:
        return False


def shim_installed(trainer_dir: str | Path | None = None) -> bool:
    """Whether the shim module is in nnU-Net's trainer folder (or ``trainer_dir``)."""
    path = _shim_path(trainer_dir)
    return path.is_file() and _is_ours(path)


def install_trainers(trainer_dir: str | Path | None = None) -> Path:
    """Write the shim module into nnU-Net's trainer folder; returns its path.

    Installing twice is harmless. A file of the same name that topobench did not write is left
    alone (error).

    Parameters
    ----------
    trainer_dir : path, optional
        The folder to write to; default :func:`nnunet_trainer_dir`.

    Raises
    ------
    TopobenchError
        nnU-Net missing, the folder missing or not writable, or a foreign file in the way.
    """
    path = _shim_path(trainer_dir)
    if path.exists() and not _is_ours(path):
        raise TopobenchError(f"{path} exists and was not written by topobench; not replacing it")
    try:
        path.write_text(_SHIM_TEXT, encoding="utf-8")
    except OSError as exc:
        raise TopobenchError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path


def uninstall_trainers(trainer_dir: str | Path | None = None) -> Path | None:
    """Remove the shim module (and its compiled copies); returns the removed path, or None when
    there was none.

    Raises
    ------
    TopobenchError
        The file there was not written by topobench, or cannot be removed.
    """
    path = _shim_path(trainer_dir)
    if not path.exists():
        return None
    if not _is_ours(path):
        raise TopobenchError(f"{path} was not written by topobench; not removing it")
    try:
        path.unlink()
        cache = path.parent / "__pycache__"
        for compiled in cache.glob(f"{path.stem}.*.pyc") if cache.is_dir() else ():
            compiled.unlink()
    except OSError as exc:
        raise TopobenchError(f"cannot remove {path}: {exc.strerror or exc}") from exc
    return path

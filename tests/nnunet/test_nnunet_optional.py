"""The extra is optional: topobench and topobench.nnunet import without torch or nnU-Net."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest


def test_package_imports_without_torch_and_nnunet() -> None:
    code = (
        "import sys\n"
        "sys.modules['torch'] = None\n"
        "sys.modules['nnunetv2'] = None\n"
        "import topobench, topobench.nnunet, topobench.cli\n"
        "from topobench.nnunet import trainer_class_name\n"
        "assert trainer_class_name('closs', 0.1) == 'nnUNetTrainerCLoss_g0p1'\n"
        "try:\n"
        "    import topobench.nnunet.trainers\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert 'pip install "topobench[nnunet]"' in result.stdout


def test_trainers_module_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nnunetv2", None)
    monkeypatch.setitem(sys.modules, "nnunetv2.training.nnUNetTrainer.nnUNetTrainer", None)
    monkeypatch.delitem(sys.modules, "topobench.nnunet.trainers", raising=False)
    with pytest.raises(ImportError, match=r"topobench\[nnunet\]"):
        importlib.import_module("topobench.nnunet.trainers")

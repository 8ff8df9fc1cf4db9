"""Without torch, the core works and the torch parts say which extra to install."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from topobench.cli import app
from topobench.errors import MissingDependencyError


def test_core_modules_do_not_import_torch():
    code = (
        "import sys, topobench.metrics, topobench.critical, topobench.postprocess, "
        "topobench.evaluate, topobench.results, topobench.cli; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.fixture
def no_torch(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes "import torch" fail
    for name in list(sys.modules):
        if name.startswith(("topobench.losses", "topobench.training")):
            monkeypatch.delitem(sys.modules, name)


def test_torch_parts_name_the_extra(no_torch, tmp_path):
    with pytest.raises(MissingDependencyError, match=r"pip install 'topobench\[torch\]'"):
        importlib.import_module("topobench.losses")
    with pytest.raises(ImportError, match="topobench train needs torch"):
        importlib.import_module("topobench.training")
    result = CliRunner().invoke(app, ["train", str(tmp_path), "--loss", "closs"])
    assert result.exit_code == 2
    assert "topobench[torch]" in result.output

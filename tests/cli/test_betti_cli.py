"""``topobench betti`` over files, and library errors turned into exit status 2."""

from __future__ import annotations

import numpy as np
from typer.testing import CliRunner

from topobench.cli import app
from topobench.io import write_mask

runner = CliRunner()


def test_betti_command_prints_numbers_per_file(tmp_path):
    ring = np.zeros((7, 7), bool)
    ring[1:6, 1:6] = True
    ring[2:5, 2:5] = False
    hollow = np.ones((5, 5, 5), bool)
    hollow[1:4, 1:4, 1:4] = False
    a = write_mask(tmp_path / "ring.png", ring)
    b = write_mask(tmp_path / "hollow.nii.gz", hollow)
    result = runner.invoke(app, ["betti", str(a), str(b), "--csv"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "file,shape,connectivity,b0,b1,b2",
        f"{a},7x7,8,1,1,",
        f"{b},5x5x5,26,1,0,1",
    ]
    result = runner.invoke(app, ["betti", str(a), "-c", "4"])
    assert result.exit_code == 0 and "│ 4 " in result.output and "│ 1 " in result.output


def test_betti_command_reports_bad_input_with_exit_2(tmp_path):
    path = tmp_path / "bad.npy"
    np.save(path, np.array([[0, 3], [1, 0]], np.uint8))
    result = runner.invoke(app, ["betti", str(path)])
    assert result.exit_code == 2
    assert "bad.npy" in result.output and "values" in result.output
    flat = write_mask(tmp_path / "flat.png", np.ones((4, 4), bool))
    result = runner.invoke(app, ["betti", str(flat), "--connectivity", "26"])
    assert result.exit_code == 2 and "connectivity 26 is not valid for a 2D" in result.output

"""The package's one atomic writer: whole new content or the old one, no temporary left."""

from __future__ import annotations

from pathlib import Path

import pytest

from topobench.atomic import atomic_write_bytes, atomic_write_text


def test_replaces_the_content_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("old\n")
    atomic_write_text(path, "a,b\r\n1,2\r\n")
    assert path.read_bytes() == b"a,b\r\n1,2\r\n"  # line ends as given
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.csv"]


def test_a_failed_write_keeps_the_old_file_and_removes_its_temporary(tmp_path, monkeypatch):
    path = tmp_path / "run.json"
    path.write_bytes(b"old")

    def no_rename(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("topobench.atomic.os.replace", no_rename)
    with pytest.raises(OSError, match="No space"):
        atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]

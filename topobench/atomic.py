"""Whole-file writes that a crash never leaves half done: a temporary file beside the target,
flushed and fsync'ed, then renamed over it. The one such writer of the package (evaluation
stores, run records, training logs and checkpoints); standard library only."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["atomic_write_bytes", "atomic_write_text"]


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Replace ``path`` by ``data`` atomically.

    A reader sees the old content or the new one, never a part; the new one survives a power
    loss once this returns. The temporary file is named after this process, so two writers never
    share one, and it is removed when the write fails.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    try:  # make the rename itself durable (not possible on every platform)
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: str | Path, text: str) -> None:
    """:func:`atomic_write_bytes` of ``text`` in UTF-8, line ends written as given."""
    atomic_write_bytes(path, text.encode("utf-8"))

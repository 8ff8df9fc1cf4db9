"""The output folder's lock: one run writes a folder at a time (:class:`OutputLock`)."""

from __future__ import annotations

import errno
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from topobench.evaluate.errors import OutputLockedError
from topobench.evaluate.store import LOCK_FILE

__all__ = ["OutputLock"]

try:
    import fcntl as _fcntl
except ImportError:  # not on POSIX: a pid file, checked for a live process
    _fcntl = None  # type: ignore[assignment]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    except OSError:
        return False
    return True


class OutputLock:
    """An exclusive lock on an output folder, held for the whole run.

    POSIX: ``fcntl.flock`` on ``<out>/.topobench-evaluate.lock``, which records the holder's
    pid, host and start time. The kernel drops the lock when its process ends, however it ends,
    so the lock of a dead process is simply taken over. Elsewhere (or on a file system without
    ``flock``), the pid file alone: a lock whose process is not alive on this host is taken over.
    The file stays in the folder after the run (removing it would let two later runs lock two
    different files).
    """

    def __init__(self, out: Path):
        self.path = out / LOCK_FILE
        self._fd: int | None = None

    def _holder(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return {}

    def _refuse(self, holder: dict[str, Any]) -> OutputLockedError:
        who = (
            f"process {holder.get('pid', '?')} on {holder.get('host', '?')}"
            + (f" (started {holder['started']})" if holder.get("started") else "")
            + (f": {holder['command']}" if holder.get("command") else "")
        )
        return OutputLockedError(
            f"{self.path.parent} is being written by another evaluation, {who}; wait until it "
            "ends (or stop it), or write to another output folder"
        )

    def acquire(self) -> None:
        import sys

        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": " ".join(sys.argv)[:300],
        }
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            locked = False
            if _fcntl is not None:
                try:
                    _fcntl.flock(fd, _fcntl.LOCK_EX | _fcntl.LOCK_NB)
                    locked = True
                except BlockingIOError:
                    for _ in range(20):  # the holder may not have written its pid yet
                        holder = self._holder()
                        if holder.get("pid"):
                            break
                        time.sleep(0.05)
                    raise self._refuse(holder) from None
                except OSError as exc:
                    if exc.errno not in (errno.ENOLCK, errno.ENOTSUP, errno.EOPNOTSUPP):
                        raise
            if not locked:
                holder = self._holder()
                pid = holder.get("pid")
                if (
                    isinstance(pid, int)
                    and pid != os.getpid()
                    and holder.get("host") == record["host"]
                    and _pid_alive(pid)
                ):
                    raise self._refuse(holder)
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, (json.dumps(record) + "\n").encode("utf-8"))
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # drops the flock
            self._fd = None


"""The exceptions of the evaluation engine (all :class:`~topobench.errors.TopobenchError`)."""

from __future__ import annotations

from topobench.errors import TopobenchError

__all__ = ["DiskFullError", "OutputError", "OutputLockedError", "ResumeError"]


class ResumeError(TopobenchError):
    """A run cannot be resumed (different configuration, foreign or corrupt ``cases.csv``)."""


class OutputError(TopobenchError, OSError):
    """The output folder cannot be written (a file, not writable, a write that failed)."""


class DiskFullError(OutputError):
    """The disk (or quota) holding the output folder or the error maps is full."""


class OutputLockedError(TopobenchError, RuntimeError):
    """Another process is writing the same output folder."""


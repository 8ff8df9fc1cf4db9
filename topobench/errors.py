"""Exception types raised by topobench.

Library code raises these; only the command-line layer turns them into messages and exit codes.
Each one also derives from the matching built-in type, so ``except ValueError`` keeps working.
"""

from __future__ import annotations


class TopobenchError(Exception):
    """Base class of every error topobench raises on purpose."""


class InvalidMaskError(TopobenchError, ValueError):
    """A mask has the wrong shape, values or dimension, or two masks do not match."""


class InvalidMaskTypeError(TopobenchError, TypeError):
    """A mask has a dtype that cannot be read as binary (e.g. float without a threshold)."""


class InvalidParameterError(TopobenchError, ValueError):
    """An option (connectivity, window, protocol, ...) is out of its allowed range."""


class ReadError(TopobenchError, OSError):
    """A file could not be read as a mask or image."""

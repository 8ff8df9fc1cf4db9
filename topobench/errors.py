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


class MissingDependencyError(TopobenchError, ImportError):
    """An optional dependency (an extra such as ``torch``) is not installed."""


def require(module: str, *, feature: str, extra: str) -> None:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the extra to install."""
    import importlib

    try:
        importlib.import_module(module)
    except ImportError as exc:
        hint = " (install torch first, e.g. 'pip install torch==2.13.0' for a CPU build)"
        raise MissingDependencyError(
            f"{feature} needs {module}, which is not installed: pip install 'topobench[{extra}]'"
            + (hint if module == "torch" else "")
        ) from exc

"""topobench: topology metrics, losses and evaluation for thin-structure segmentation."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("topobench")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]

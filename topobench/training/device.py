"""Where a run computes: the torch device of ``--device``, versions and peak memory."""

from __future__ import annotations

import platform
import resource

import numpy as np
import torch

from topobench import __version__
from topobench.errors import InvalidParameterError

__all__ = ["peak_memory_mb", "resolve_device", "versions"]


def resolve_device(name: str) -> torch.device:
    """The torch device of ``--device``; refused by name when it is not available here.

    ``"auto"`` is CUDA when present, else the CPU.

    Raises
    ------
    InvalidParameterError
        An unknown device name, or a device this machine or torch build does not have.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise InvalidParameterError(f"unknown device {name!r}: {exc}") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InvalidParameterError(
                f"device {name!r} requested, but CUDA is not available; use cpu or auto")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise InvalidParameterError(
                f"device {name!r} requested, but only {count} CUDA device(s) are visible")
        return device
    backend = getattr(torch.backends, device.type, None) or getattr(torch, device.type, None)
    is_available = getattr(backend, "is_available", None)
    if not callable(is_available) or not is_available():
        raise InvalidParameterError(
            f"device {name!r} requested, but it is not available in this torch build or on "
            "this machine; use cpu, cuda or auto")
    return device


def versions() -> dict[str, str]:
    """Versions recorded in ``run.json``: topobench, torch, numpy, python."""
    return {"topobench": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory of the run in MiB: CUDA allocations on a GPU, else the process's RSS."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB

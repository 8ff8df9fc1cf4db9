"""Writing a synthetic data set to a folder: ``gt/``, ``pred/`` and ``manifest.json``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from topobench import __version__
from topobench.errors import InvalidParameterError
from topobench.io import write_mask
from topobench.synth.cases import _GAP_NOTE, make_case
from topobench.synth.drawing import KINDS, SynthKind


def synthesize(
    out_dir: str | Path,
    *,
    kind: SynthKind = "vessels2d",
    n: int = 6,
    seed: int = 0,
    shape: Sequence[int] | None = None,
    file_format: str | None = None,
    **degradation: Any,
) -> dict[str, Any]:
    """Write ``n`` synthetic cases to ``out_dir`` and return the manifest.

    Writes ``out_dir/gt/<case><ext>``, ``out_dir/pred/<case><ext>`` and ``out_dir/manifest.json``.
    Case ``i`` is drawn with seed ``(seed, i)``, so cases do not depend on ``n``.

    Parameters
    ----------
    out_dir : path
    kind : {"vessels2d", "roads2d", "tubes3d", "membranes3d"}
    n : int
        Number of cases.
    seed : int
    shape : sequence of int, optional
        See :func:`make_case`.
    file_format : str, optional
        Suffix of the files: ``png`` (2D default), ``nii.gz`` (3D default), ``tif``, ``npy``,
        ``npz``.
    **degradation
        ``gaps``, ``bridges``, ``blobs``, ``noise``, ``thinning``, ``window``, ``connectivity``
        as in :func:`make_case`.

    Returns
    -------
    dict
        The manifest: ``format``, ``topobench_version``, the generation parameters, ``note`` and
        one entry per case (files, injected error counts, gap and bridge centres, expected
        e0-Gt).
    """
    if kind not in KINDS:
        raise InvalidParameterError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if n < 1:
        raise InvalidParameterError(f"n must be >= 1, got {n}")
    ext = _file_suffix(kind, file_format)
    out = Path(out_dir)
    cases = []
    for i in range(n):
        case = make_case(kind, seed=(seed, i), shape=shape, **degradation)
        name = f"{kind}_{i:03d}"
        write_mask(out / "gt" / f"{name}.{ext}", case.target)
        write_mask(out / "pred" / f"{name}.{ext}", case.pred)
        cases.append(
            {"case": name, "gt": f"gt/{name}.{ext}", "pred": f"pred/{name}.{ext}", **case.to_dict()}
        )
    manifest = {
        "format": "topobench-synth/1",
        "topobench_version": __version__,
        "kind": kind,
        "n": n,
        "seed": seed,
        "shape": list(case.target.shape),
        "connectivity": case.connectivity,
        "window": None if case.window is None else list(case.window),
        "n_windows": case.n_windows,
        "degradation": {
            k: v for k, v in degradation.items() if k not in ("window", "connectivity")
        },
        "note": _GAP_NOTE,
        "cases": cases,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def _file_suffix(kind: str, file_format: str | None) -> str:
    """The files' suffix for ``kind`` (``png`` in 2D, ``nii.gz`` in 3D by default), checked."""
    ndim = len(KINDS[kind])
    ext = (file_format or ("png" if ndim == 2 else "nii.gz")).lstrip(".").lower()
    allowed = (
        ("png", "bmp", "tif", "tiff", "npy", "npz")
        if ndim == 2
        else ("nii.gz", "nii", "tif", "tiff", "npy", "npz")
    )
    if ext not in allowed:
        raise InvalidParameterError(
            f"{kind} masks can be written as {', '.join(allowed)}, got {file_format!r}"
        )
    return ext

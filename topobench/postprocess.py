"""Topological post-processing of ContextLoss (docs/losses.md; Schacht et al. 2025, Alg. 2).

Keep each connected component of the fine-tuned prediction that overlaps the pretrained one.
The result is a subset of the fine-tuned mask, so it can remove false connections and noise but
never create a connection. This module is the numpy/cc3d reference and does not import torch;
tensors are accepted, and with the "torch" backend (default for tensors on an accelerator,
:func:`topobench.critical.resolve_backend`) they go to
:func:`topobench.losses.device.keep_supported_torch`, which gives the same mask on the device.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from topobench.critical import Backend, resolve_backend
from topobench.masks import as_mask, map_mask_pairs, resolve_connectivity
from topobench.metrics.topology import label_components

__all__ = ["keep_supported"]


def _keep_supported_one(ft: np.ndarray, pre: np.ndarray, connectivity: int | None) -> np.ndarray:
    ft = as_mask(ft, name="finetuned")
    pre = as_mask(pre, name="pretrained")
    c = resolve_connectivity(connectivity, ft.ndim)
    if not ft.any():
        return ft.copy()
    labels, _ = label_components(ft, c)  # background stays 0 (cc3d's 2D bool path: see there)
    supported = np.unique(labels[ft & pre])
    keep = np.zeros(int(labels.max()) + 1, dtype=bool)
    keep[supported] = True
    keep[0] = False
    return keep[labels]


def keep_supported(
    finetuned: Any,
    pretrained: Any,
    *,
    connectivity: int | None = None,
    backend: Backend | None = None,
) -> Any:
    """Keep the components of ``finetuned`` that overlap ``pretrained``; drop the rest.

    Parameters
    ----------
    finetuned : numpy.ndarray or torch.Tensor
        Binarised fine-tuning prediction: ``(H, W)``, ``(D, H, W)``, or a batch ``(B, 1, H, W)`` /
        ``(B, 1, D, H, W)`` (bool or {0, 1} / {0, 255} integers).
    pretrained : same kind and shape
        Binarised pretraining prediction.
    connectivity : int, optional
        Foreground connectivity of the components: 4 or 8 in 2D, 6 or 26 in 3D (default: 8 / 26).
    backend : {"auto", "numpy", "torch"}, optional
        Implementation for tensors (:func:`topobench.critical.resolve_backend`; default: the
        process default, initially "auto"). Both give the same mask.

    Returns
    -------
    numpy.ndarray or torch.Tensor of bool
        Same kind (a tensor stays on its device) and shape; a subset of ``finetuned``.

    Examples
    --------
    >>> ft = np.array([[1, 1, 0, 1], [0, 0, 0, 1]], dtype=np.uint8)
    >>> pre = np.array([[1, 0, 0, 0], [0, 0, 0, 0]], dtype=np.uint8)
    >>> keep_supported(ft, pre).astype(int).tolist()
    [[1, 1, 0, 0], [0, 0, 0, 0]]
    """
    if resolve_backend(backend, finetuned) == "torch":
        from topobench.losses.device import keep_supported_torch  # torch is loaded already

        return keep_supported_torch(finetuned, pretrained, connectivity=connectivity)
    return map_mask_pairs(
        lambda ft, pre: _keep_supported_one(ft, pre, connectivity),
        finetuned,
        pretrained,
        names=("finetuned", "pretrained"),
    )

""":class:`TopologyMetrics`, a ``torchmetrics.Metric`` over :func:`evaluate_case`.

For training and validation loops: ``update(preds, target)`` with a batch on any device,
``compute()`` for the protocol's metrics averaged over the cases seen, ``reset()``. The per-case
values are the metric's state (a list state reduced by concatenation), so distributed training
synchronises the cases of every process before averaging, and the figures equal
:func:`topobench.metrics.evaluate_case` (or :func:`topobench.metrics.evaluate_labels`) on the
same cases, averaged.

Needs the torch extra (``pip install 'topobench[torch]'``, which brings torchmetrics).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import fields
from typing import Any

import numpy as np

from topobench.errors import (
    InvalidMaskError,
    InvalidParameterError,
    MissingDependencyError,
    require,
)

require("torch", feature="TopologyMetrics", extra="torch")

import torch  # noqa: E402

try:
    from torchmetrics import Metric
    from torchmetrics.utilities import dim_zero_cat
except ImportError as exc:
    raise MissingDependencyError(
        "TopologyMetrics needs torchmetrics, which is not installed: pip install "
        "'topobench[torch]'"
    ) from exc
except RuntimeError as exc:  # pragma: no cover - depends on the installation
    # torchmetrics imports torchvision when it is installed; a torchvision built for another
    # torch (PyPI's CUDA wheel beside a CPU torch) fails while loading its operators.
    raise MissingDependencyError(
        f"torchmetrics could not be imported ({exc}); this happens when the installed "
        "torchvision does not match torch (e.g. a CUDA torchvision beside a CPU torch): "
        "install the torchvision built for your torch, or uninstall torchvision"
    ) from exc

from topobench.metrics.distance import Spacing  # noqa: E402
from topobench.metrics.labels import (  # noqa: E402
    MERGED,
    LabelNames,
    evaluate_labels,
    label_average,
    resolve_labels,
)
from topobench.metrics.protocols import Protocol, evaluate_case, resolve_protocol  # noqa: E402

__all__ = ["TopologyMetrics"]

_PROTOCOL_FIELDS = {f.name for f in fields(Protocol)} - {"name", "ndim"}


class TopologyMetrics(Metric):
    """Topology, overlap and distance metrics of a protocol, accumulated over batches.

    Parameters
    ----------
    protocol : str or Protocol
        Preset or configuration, as in :func:`topobench.metrics.evaluate_case`.
    labels : iterable of int or str, or mapping of str to int, optional
        Evaluate these labels of integer label maps (:func:`topobench.metrics.evaluate_labels`)
        instead of one binary structure.
    merged : bool
        With ``labels``: also the union of the labels (key prefix ``merged/``).
    label_names : mapping or path of an nnU-Net dataset.json, optional
        Names of label values.
    threshold : float
        Foreground threshold of single-channel probabilities (after a sigmoid for logits).
    spacing : float or sequence of float, optional
        Voxel size for the surface distances.
    workers : int
        Threads per case inside :func:`evaluate_case` (default 1).
    **kwargs
        Protocol parameters (``connectivity``, ``betti_window``, ``metrics``, ...) and
        ``torchmetrics.Metric`` options (``dist_sync_on_step``, ``sync_on_compute``, ...).

    Notes
    -----
    Inputs to :meth:`update`:

    - ``preds`` of shape ``(B, C, H, W)`` / ``(B, C, D, H, W)``, floating: class scores. With
      ``C >= 2`` the class is the argmax over ``C`` (the same for logits and probabilities);
      with ``C == 1`` the foreground is ``p > threshold``, where ``p`` is the input when all its
      values lie in [0, 1] and its sigmoid otherwise (logits), as torchmetrics does.
    - ``preds`` of shape ``(B, H, W)`` / ``(B, D, H, W)`` (or with a channel of size 1): integer
      or bool labels, or floating probabilities/logits thresholded as above.
    - ``target`` of shape ``(B, ...)`` or ``(B, 1, ...)``: integer labels (binary {0, 1} unless
      ``labels`` is given).

    :meth:`compute` returns a dict of scalar tensors: ``{metric: mean}`` without labels; with
    labels ``{"<label>/<metric>": mean}`` for each label and ``merged``, plus ``{metric: ...}``
    for the class average (:func:`topobench.metrics.label_average`). :meth:`per_case` gives
    the per-case values.

    Examples
    --------
    >>> import torch
    >>> metric = TopologyMetrics("default", metrics=["dice", "e0"])
    >>> target = torch.zeros(2, 16, 16, dtype=torch.long); target[:, 8, 2:14] = 1
    >>> logits = torch.stack([1 - target, target], 1).float() * 4 - 2
    >>> metric.update(logits, target)
    >>> {k: round(float(v), 3) for k, v in metric.compute().items()}
    {'dice': 1.0, 'e0': 0.0}
    """

    is_differentiable = False
    higher_is_better = None
    full_state_update = False

    values: list[torch.Tensor]

    def __init__(
        self,
        protocol: str | Protocol = "default",
        *,
        labels: Iterable[int | str] | Mapping[str, int] | None = None,
        merged: bool = True,
        label_names: LabelNames = None,
        threshold: float = 0.5,
        spacing: Spacing = None,
        workers: int = 1,
        **kwargs: Any,
    ) -> None:
        overrides = {k: kwargs.pop(k) for k in list(kwargs) if k in _PROTOCOL_FIELDS}
        super().__init__(**kwargs)
        self.protocol = resolve_protocol(protocol, **overrides)
        self.labels = (
            None if labels is None else resolve_labels(labels, label_names=label_names)
        )
        self.merged = bool(merged)
        if not np.isfinite(threshold):
            raise InvalidParameterError(f"threshold: expected a finite number, got {threshold}")
        self.threshold = float(threshold)
        self.spacing = spacing
        self.workers = workers
        self._keys: list[str] | None = None
        self.add_state("values", default=[], dist_reduce_fx="cat")

    # -- inputs ---------------------------------------------------------------------------

    def _foreground(self, scores: torch.Tensor) -> torch.Tensor:
        probs = scores
        if scores.numel() and (scores.min() < 0 or scores.max() > 1):
            probs = torch.sigmoid(scores)
        return probs > self.threshold

    def _as_label_batch(self, preds: torch.Tensor, target: torch.Tensor) -> tuple[Any, Any]:
        if not isinstance(preds, torch.Tensor):
            preds = torch.as_tensor(np.asarray(preds))
        if not isinstance(target, torch.Tensor):
            target = torch.as_tensor(np.asarray(target))
        if target.is_floating_point():
            if not torch.equal(target, target.round()):
                raise InvalidMaskError("target: expected integer labels, got non-integer values")
            target = target.long()
        floating = preds.is_floating_point()
        if floating and preds.ndim == target.ndim + 1:
            channels = True
        elif (
            floating
            and preds.ndim == target.ndim
            and preds.ndim in (4, 5)
            and target.shape[1] == 1
            and preds.shape[1] != 1
        ):
            target, channels = target[:, 0], True
        else:
            channels = False
        if channels:
            if preds.shape[1] == 1:
                labels = self._foreground(preds[:, 0]).to(torch.uint8)
            else:
                labels = preds.argmax(dim=1)
        else:
            if preds.ndim == target.ndim + 1 and preds.shape[1] == 1:
                preds = preds[:, 0]
            if target.ndim == preds.ndim + 1 and target.shape[1] == 1:
                target = target[:, 0]
            if preds.ndim == target.ndim and preds.ndim in (4, 5) and preds.shape[1] == 1:
                preds, target = preds[:, 0], target[:, 0]
            labels = self._foreground(preds).to(torch.uint8) if floating else preds
        if labels.shape != target.shape or labels.ndim not in (3, 4):
            raise InvalidMaskError(
                "expected preds (B, C, ...) scores or (B, ...) labels and target (B, ...) or "
                f"(B, 1, ...) with 2D or 3D cases, got preds {tuple(preds.shape)} and target "
                f"{tuple(target.shape)}"
            )
        return labels.detach().cpu().numpy(), target.detach().cpu().numpy()

    # -- torchmetrics interface -----------------------------------------------------------

    def _evaluate(self, pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
        if self.labels is None:
            return evaluate_case(
                pred, target, protocol=self.protocol, spacing=self.spacing, workers=self.workers
            )
        results = evaluate_labels(
            pred,
            target,
            labels={s.name: s.value for s in self.labels},
            protocol=self.protocol,
            merged=self.merged,
            spacing=self.spacing,
            workers=self.workers,
        )
        return {f"{label}/{m}": v for label, row in results.items() for m, v in row.items()}

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """Evaluate each case of a batch and keep its values.

        Parameters
        ----------
        preds : torch.Tensor
            ``(B, C, ...)`` class scores (logits or probabilities) or ``(B, ...)`` labels.
        target : torch.Tensor
            ``(B, ...)`` or ``(B, 1, ...)`` integer labels.
        """
        pred_np, target_np = self._as_label_batch(preds, target)
        rows = [self._evaluate(p, t) for p, t in zip(pred_np, target_np)]
        if not rows:
            return
        keys = list(rows[0])
        if self._keys is None:
            self._keys = keys
        elif keys != self._keys:
            raise InvalidMaskError(
                f"cases give different metrics ({keys} after {self._keys}); keep one image "
                "dimension per metric object"
            )
        dtype = torch.float32 if self.device.type == "mps" else torch.float64
        self.values.append(
            torch.tensor([[r[k] for k in keys] for r in rows], dtype=dtype, device=self.device)
        )

    def _all_values(self) -> torch.Tensor | None:
        if isinstance(self.values, torch.Tensor):
            return self.values if self.values.numel() else None
        if not self.values:
            return None
        return dim_zero_cat(self.values)

    def per_case(self) -> list[dict[str, float]]:
        """The values of every case seen (on this process, or all of them after a sync)."""
        values = self._all_values()
        if values is None or self._keys is None:
            return []
        return [dict(zip(self._keys, row.tolist())) for row in values.cpu()]

    def compute(self) -> dict[str, torch.Tensor]:
        """Mean of each metric over the cases seen (see the class notes for the keys)."""
        values = self._all_values()
        if values is None or self._keys is None:
            return {}
        means = values.mean(dim=0)
        out = {k: means[i] for i, k in enumerate(self._keys)}
        if self.labels is None:
            return out
        nested: dict[str, dict[str, float]] = {}
        for key, value in out.items():
            label, metric = key.rsplit("/", 1)
            nested.setdefault(label, {})[metric] = float(value)
        average = label_average(nested, exclude=(MERGED,))
        for metric, value in average.items():
            out[metric] = torch.tensor(value, dtype=means.dtype, device=means.device)
        return out

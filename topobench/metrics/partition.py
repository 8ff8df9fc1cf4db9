"""Partition metrics over connected components: variation of information and adapted Rand error.

For membranes and dense networks, where what matters is whether the target's pieces are split or
merged. Each mask is turned into a partition by labelling its foreground's connected components
with the protocol's connectivity (cc3d); the prediction's background is one more segment (label
0). As in the ISBI 2012 and CREMI evaluations, the pixels of the target's background are left
out (scikit-image's ``ignore_labels=(0,)`` on the target), so the scores measure how the target's
components are covered: split across several predicted pieces, merged with each other, or lost to
the background. Predicted foreground on the target's background is not seen; pair these with the
Betti errors or Dice.

- :func:`vi_split` = ``H(P | T)``, the conditional entropy (bits) of the predicted partition
  given the target's: false splits (over-segmentation).
- :func:`vi_merge` = ``H(T | P)``: false merges (under-segmentation).
- :func:`adapted_rand_error`: ``1 - F`` of the Rand precision and recall of pixel pairs
  (Arganda-Carreras et al. 2015), in [0, 1], lower is better.

The values come from ``skimage.metrics.variation_of_information`` and
``skimage.metrics.adapted_rand_error`` on those labellings.

Empty masks (never NaN): both empty gives 0 for all three. An empty target with a non-empty
prediction: the target's background is taken as one segment, so ``vi_split`` is the entropy of the
prediction's components over its foreground, ``vi_merge`` is 0 and the adapted Rand error is 1.0.
An empty prediction with a non-empty target: the VI values follow from the prediction being one
background segment (``vi_merge`` is the entropy of the target's components, ``vi_split`` 0) and
the adapted Rand error is 1.0 (nothing of the target is found).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from topobench.masks import as_mask_pair, resolve_connectivity
from topobench.metrics.topology import label_components

__all__ = ["PartitionScores", "adapted_rand_error", "partition_scores", "vi_merge", "vi_split"]


@dataclass(frozen=True)
class PartitionScores:
    """Variation of information (split, merge) and adapted Rand error of one pair.

    Attributes
    ----------
    vi_split, vi_merge : float
        Conditional entropies in bits, >= 0, lower is better.
    are : float
        Adapted Rand error in [0, 1], lower is better.
    """

    vi_split: float
    vi_merge: float
    are: float

    def to_dict(self) -> dict[str, float]:
        return {"vi_split": self.vi_split, "vi_merge": self.vi_merge, "are": self.are}


def _entropy_bits(labels: np.ndarray) -> float:
    counts = np.bincount(labels.ravel())
    counts = counts[counts > 0].astype(np.float64)
    if counts.size <= 1:
        return 0.0
    prob = counts / counts.sum()
    return float(-(prob * np.log2(prob)).sum())


def partition_scores(
    pred: np.ndarray, target: np.ndarray, *, connectivity: int | None = None
) -> PartitionScores:
    """VI split, VI merge and adapted Rand error of the connected components of two masks.

    Parameters
    ----------
    pred, target : array_like, shape (H, W) or (Z, H, W)
        Binary masks of the same shape.
    connectivity : {4, 8} in 2D, {6, 26} in 3D, optional
        Foreground connectivity of the components (default 8 / 26).

    Returns
    -------
    PartitionScores

    Examples
    --------
    >>> target = np.zeros((5, 9), bool); target[2, 1:8] = True
    >>> pred = target.copy(); pred[2, 4] = False          # the line split in two
    >>> s = partition_scores(pred, target)
    >>> round(s.vi_split, 3), s.vi_merge, round(s.are, 3)
    (1.449, 0.0, 0.556)
    """
    p, t = as_mask_pair(pred, target)
    return _partition_validated(p, t, resolve_connectivity(connectivity, p.ndim))


def _partition_validated(p: np.ndarray, t: np.ndarray, c: int) -> PartitionScores:
    """:func:`partition_scores` of validated masks and a resolved connectivity."""
    from skimage.metrics import adapted_rand_error as _are
    from skimage.metrics import variation_of_information as _vi

    lp = label_components(p, c)[0].astype(np.int64, copy=False)
    lt = label_components(t, c)[0].astype(np.int64, copy=False)
    if not t.any():
        if not p.any():
            return PartitionScores(0.0, 0.0, 0.0)
        return PartitionScores(_entropy_bits(lp[p]), 0.0, 1.0)
    split, merge = (float(v) for v in _vi(lt, lp, ignore_labels=(0,)))
    if not p.any():
        are = 1.0
    else:
        sel = t
        if np.unique(lt[sel]).size == sel.sum() and np.unique(lp[sel]).size == sel.sum():
            are = 0.0  # every segment a single pixel on both sides: the same partition
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                # precision or recall alone is 0/0 when one side has only single pixels; the
                # F-score's denominator is then still positive.
                are = float(_are(lt, lp, ignore_labels=(0,))[0])
    # Entropies of identical partitions can come out as -0.0 or 1e-16 from the sparse sums.
    return PartitionScores(max(split, 0.0), max(merge, 0.0), min(max(are, 0.0), 1.0))


def vi_split(pred: np.ndarray, target: np.ndarray, *, connectivity: int | None = None) -> float:
    """False splits, ``H(P | T)`` in bits, over the target's foreground (see
    :func:`partition_scores`)."""
    return partition_scores(pred, target, connectivity=connectivity).vi_split


def vi_merge(pred: np.ndarray, target: np.ndarray, *, connectivity: int | None = None) -> float:
    """False merges, ``H(T | P)`` in bits, over the target's foreground (see
    :func:`partition_scores`)."""
    return partition_scores(pred, target, connectivity=connectivity).vi_merge


def adapted_rand_error(
    pred: np.ndarray, target: np.ndarray, *, connectivity: int | None = None
) -> float:
    """Adapted Rand error of the connected components, in [0, 1] (see
    :func:`partition_scores`)."""
    return partition_scores(pred, target, connectivity=connectivity).are

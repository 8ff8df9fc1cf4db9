"""Synthetic thin-structure masks with predictions degraded in controlled, counted ways.

:func:`make_case` draws one ground-truth mask of curvilinear structures (2D vessel trees, 2D road
networks, 3D tubes, 3D membrane sheets) and a prediction made from it by injecting

- **gaps**: a short cut through a structure. Each gap is placed only where it cuts a target
  structure into exactly one more piece inside its evaluation window (checked by labelling, with
  the case's connectivity) and leaves no piece smaller than a few pixels, so that e0-Gt, computed
  with the same window and connectivity, equals ``gaps / n_windows``;
- **bridges**: thin false-positive segments joining two separate structures, or two distant parts
  of one (false connections);
- **blobs**: false-positive discs/balls away from the target;
- **noise**: isolated false-positive specks;
- **thinning**: removal of the outer boundary of thick parts, never changing how the target's
  remaining pieces connect.

All false positives lie outside the target, so ``pred & target`` is the target minus the gaps and
the thinning; that is what makes the expected e0-Gt exact. :func:`synthesize` writes a data set
(``gt/``, ``pred/`` and ``manifest.json``) to a folder.

The package: :mod:`~topobench.synth.drawing` draws the targets (2D vessel trees and road
networks, 3D tubes and membrane sheets), :mod:`~topobench.synth.inject` injects the errors
(gaps, thinning, bridges, blobs), :mod:`~topobench.synth.cases` makes a case from a kind or
degrades a real mask, and :mod:`~topobench.synth.folder` writes a data set.
"""

from topobench.synth.cases import InjectedErrors, SynthCase, degrade, make_case
from topobench.synth.drawing import (
    _GENERATORS,
    KINDS,
    SynthKind,
    _Drawing,
    _rasterise,
    _thicken,
)
from topobench.synth.folder import synthesize

__all__ = [
    "KINDS",
    "InjectedErrors",
    "SynthCase",
    "SynthKind",
    "degrade",
    "make_case",
    "synthesize",
]

# Drawing helpers shared with topobench.synth_images (targets of synthetic images).
_SHARED_WITH_SYNTH_IMAGES = (_GENERATORS, _Drawing, _rasterise, _thicken)

"""Synthetic images of thin structures whose evidence fades along short stretches.

:func:`make_image_case` draws a target with the generators of :mod:`topobench.synth` and renders
an image of it in which the structure is visible everywhere except along ``fades`` short
stretches of its centreline, where its contrast drops to ``fade_contrast`` of the rest. The label
keeps those stretches: a network trained with a pixel loss tends to leave a gap there, one that
the label does not have. That is the situation topology-aware losses are meant to repair, made
controllable: fade length and depth set how hard a gap is to close, ``distractors`` add faint
segments that join two separate structures in the image but not in the label (false bridges a
loss that only closes gaps would also "repair"), and blur and noise set the image quality.

The image model, per pixel ``x`` (before noise, with ``T`` the target, ``F`` the fade weight in
[0, 1] that is 1 on a faded stretch and ``D`` the distractor mask)::

    I = background + contrast * blur((T * (1 - (1 - fade_contrast) * F)) + distractor_contrast * D)
    image = I + N(0, noise ** 2)

Everything is seeded, so a case is a pure function of its parameters.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from scipy import ndimage

from topobench.errors import InvalidParameterError
from topobench.synth import _GENERATORS, _Drawing, _rasterise, _thicken

__all__ = ["ImageCase", "ImageModel", "make_image_case"]

ImageKind = Literal["vessels2d", "roads2d"]


@dataclass(frozen=True)
class ImageModel:
    """Parameters of the rendered image (see the module docstring for the formula).

    Attributes
    ----------
    fades : int
        Faded stretches per image (fewer are placed if the structure is too short).
    fade_length : float
        Length of a faded stretch along the centreline, in pixels.
    fade_contrast : float
        Contrast left on a faded stretch, as a share of the structure's contrast (0: invisible).
    contrast, background : float
        Intensity of the structure above the background, and the background level.
    noise : float
        Standard deviation of the additive Gaussian noise.
    blur : float
        Standard deviation (pixels) of the Gaussian blur of the rendered structure.
    distractors : int
        Faint segments drawn between two separate structures that are not in the label.
    distractor_contrast : float
        Their contrast, as a share of ``contrast``.
    """

    fades: int = 3
    fade_length: float = 10.0
    fade_contrast: float = 0.25
    contrast: float = 1.0
    background: float = 0.0
    noise: float = 0.25
    blur: float = 1.0
    distractors: int = 1
    distractor_contrast: float = 0.3

    def __post_init__(self) -> None:
        checks = {
            "fades": self.fades >= 0,
            "fade_length": self.fade_length > 0,
            "fade_contrast": 0.0 <= self.fade_contrast <= 1.0,
            "noise": self.noise >= 0,
            "blur": self.blur >= 0,
            "distractors": self.distractors >= 0,
            "distractor_contrast": 0.0 <= self.distractor_contrast <= 1.0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise InvalidParameterError(
                f"ImageModel: invalid {', '.join(bad)} "
                f"(got {', '.join(f'{b}={getattr(self, b)!r}' for b in bad)})"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ImageCase:
    """One rendered image and its label.

    Attributes
    ----------
    image : ndarray of float32, shape (H, W)
    target : ndarray of bool, shape (H, W)
        The label: every structure, faded stretches included, distractors excluded.
    fade_mask : ndarray of bool, shape (H, W)
        Label pixels on a faded stretch.
    distractor_mask : ndarray of bool, shape (H, W)
        Pixels of the distractor segments (outside the label).
    fades, distractors : int
        How many were placed.
    """

    image: np.ndarray
    target: np.ndarray
    fade_mask: np.ndarray
    distractor_mask: np.ndarray
    fades: int
    distractors: int


def _fade_stretches(
    rng: np.random.Generator, drawing: _Drawing, model: ImageModel
) -> tuple[np.ndarray, int]:
    """Weight map (H, W) in [0, 1] that is 1 on each faded stretch; number of stretches."""
    shape = drawing.mask.shape
    weight = np.zeros(shape, dtype=bool)
    usable = [s for s, pts in enumerate(drawing.points) if len(pts) * 0.5 > 3 * model.fade_length]
    placed = 0
    for _ in range(model.fades * 10):
        if placed == model.fades or not usable:
            break
        s = int(rng.choice(usable))
        pts = drawing.points[s]
        half = int(model.fade_length / 2 / 0.5)  # _walk spaces points 0.5 px apart
        i = int(rng.integers(2 * half, len(pts) - 2 * half))
        centre = np.clip(np.rint(pts[i]), 0, np.array(shape) - 1).astype(int)
        if np.any(centre < 4) or np.any(centre >= np.array(shape) - 4) or weight[tuple(centre)]:
            continue
        stretch = _rasterise(shape, pts[i - half : i + half + 1])
        region = _thicken(stretch, drawing.radius(s, i) + 1.5)
        if (region & weight).any():
            continue
        weight |= region
        placed += 1
    return weight, placed


def _distractor_segments(
    rng: np.random.Generator, drawing: _Drawing, model: ImageModel
) -> tuple[np.ndarray, int]:
    """Faint straight segments of radius 1 between two label pixels 8-20 px apart whose
    straight path runs at least 80% through background: in the label they are not joined
    there, so a prediction that follows the segment makes a false connection."""
    shape = drawing.mask.shape
    out = np.zeros(shape, dtype=bool)
    if model.distractors == 0 or not drawing.mask.any():
        return out, 0
    coords = np.argwhere(drawing.mask)
    placed = 0
    for _ in range(model.distractors * 40):
        if placed == model.distractors:
            break
        a = coords[rng.integers(len(coords))]
        d = np.linalg.norm(coords - a, axis=1)
        near = np.flatnonzero((d >= 8) & (d <= 20))
        if near.size == 0:
            continue
        b = coords[near[rng.integers(near.size)]]
        t = np.linspace(0.0, 1.0, int(np.ceil(np.linalg.norm(b - a))) * 2 + 1)[:, None]
        path = _rasterise(shape, a + t * (b - a))
        if (path & drawing.mask).sum() > 0.2 * path.sum() or (path & out).any():
            continue
        out |= _thicken(path, 1.0) & ~drawing.mask
        placed += 1
    return out, placed


def make_image_case(
    kind: ImageKind = "vessels2d",
    *,
    seed: int = 0,
    shape: tuple[int, int] = (96, 96),
    model: ImageModel | None = None,
) -> ImageCase:
    """Render one image with faded stretches and distractors, and its label.

    Parameters
    ----------
    kind : {"vessels2d", "roads2d"}
        Target generator of :mod:`topobench.synth`.
    seed : int
        Seeds the target, the fades, the distractors and the noise.
    shape : (int, int)
        Image size ``(H, W)``, at least 32 each.
    model : ImageModel, optional
        Image parameters (defaults: :class:`ImageModel`).

    Returns
    -------
    ImageCase

    Examples
    --------
    >>> case = make_image_case("vessels2d", seed=1, model=ImageModel(fades=2))
    >>> case.image.shape, case.fades, bool(case.target[case.fade_mask].all())
    ((96, 96), 2, True)
    """
    if kind not in ("vessels2d", "roads2d"):
        raise InvalidParameterError(f"kind must be vessels2d or roads2d, got {kind!r}")
    shape_t = tuple(int(s) for s in shape)
    if len(shape_t) != 2 or min(shape_t) < 32:
        raise InvalidParameterError(f"expected an (H, W) shape of at least 32, got {shape}")
    model = model or ImageModel()
    rng = np.random.default_rng(seed)
    drawing = _GENERATORS[kind](rng, shape_t)
    target = drawing.mask
    fade, n_fades = _fade_stretches(rng, drawing, model)
    distract, n_distract = _distractor_segments(rng, drawing, model)
    fade_weight = ndimage.gaussian_filter(fade.astype(np.float32), 1.0) if n_fades else fade * 0.0
    fade_weight = np.clip(np.maximum(fade_weight / max(fade_weight.max(), 1e-6), fade), 0.0, 1.0)
    signal = target * (1.0 - (1.0 - model.fade_contrast) * fade_weight)
    signal = signal + model.distractor_contrast * distract
    if model.blur > 0:
        signal = ndimage.gaussian_filter(signal.astype(np.float32), model.blur)
    image = model.background + model.contrast * signal
    image = image + rng.normal(0.0, model.noise, size=shape_t)
    return ImageCase(
        image=image.astype(np.float32),
        target=target.copy(),
        fade_mask=fade & target,
        distractor_mask=distract,
        fades=n_fades,
        distractors=n_distract,
    )

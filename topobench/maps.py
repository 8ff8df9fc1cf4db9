"""Topology error maps: where a prediction breaks or falsely joins the target's structures.

An error map is an RGB image of the target with the critical components of
:func:`topobench.critical.critical_components` painted over it: the parts of the target that the
prediction cuts off (missed connections) and the prediction's spurious bridges (false
connections), in two colours that stay distinct for colour-blind readers (Okabe-Ito vermillion
and sky blue), with a legend strip below. 3D cases are shown as maximum intensity projections
along z.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from topobench.masks import as_mask_pair

__all__ = [
    "COLOURS",
    "LEGEND_HEIGHT",
    "MIN_WIDTH",
    "error_map",
    "render_error_map",
    "write_error_map",
]

#: RGB colour of each layer, drawn in this order (later layers on top).
COLOURS: dict[str, tuple[int, int, int]] = {
    "prediction only": (80, 80, 80),
    "target": (190, 190, 190),
    "missed connection": (213, 94, 0),
    "false connection": (86, 180, 233),
}
#: Height in pixels of the legend strip below the image.
LEGEND_HEIGHT = 28
#: Narrower images are enlarged by an integer factor to at least this width.
MIN_WIDTH = 400


def error_map(pred: Any, target: Any) -> np.ndarray:
    """Paint the topology errors of ``pred`` over ``target`` (no legend).

    Parameters
    ----------
    pred, target : array_like, shape (H, W) or (Z, H, W)
        Binary masks (bool, {0, 1} or {0, 255}).

    Returns
    -------
    numpy.ndarray of uint8, shape (H, W, 3)
        Black background; target light grey; prediction outside the target dark grey; missed
        connections vermillion; false connections sky blue (see :data:`COLOURS`). 3D inputs are
        projected along z (a pixel shows a layer when any voxel of its column belongs to it).
    """
    from topobench.critical import critical_components

    p, t = as_mask_pair(pred, target)
    crit = critical_components(p, t)
    layers = {
        "prediction only": p & ~t,
        "target": t,
        "missed connection": crit.missed,
        "false connection": crit.false,
    }
    out = np.zeros((*t.shape[-2:], 3), dtype=np.uint8)
    for name, layer in layers.items():
        if layer.ndim == 3:
            layer = layer.any(axis=0)
        out[layer] = COLOURS[name]
    return out


@lru_cache(maxsize=8)
def _legend(width: int) -> np.ndarray:
    """A ``(LEGEND_HEIGHT, width, 3)`` uint8 strip: a swatch and a label per layer."""
    from PIL import Image, ImageDraw, ImageFont

    strip = Image.new("RGB", (width, LEGEND_HEIGHT), (255, 255, 255))
    draw = ImageDraw.Draw(strip)
    font = ImageFont.load_default()
    x = 6
    for name, colour in COLOURS.items():
        draw.rectangle([x, 9, x + 10, 19], fill=colour, outline=(0, 0, 0))
        draw.text((x + 14, 8), name, fill=(0, 0, 0), font=font)
        x += 20 + int(draw.textlength(name, font=font)) + 6
    return np.asarray(strip, dtype=np.uint8).copy()


def render_error_map(pred: Any, target: Any) -> np.ndarray:
    """The error map with its legend, as written by :func:`write_error_map`.

    Returns
    -------
    numpy.ndarray of uint8, shape (s * H + LEGEND_HEIGHT, s * W, 3)
        ``s = ceil(MIN_WIDTH / W)`` for images narrower than :data:`MIN_WIDTH`, else 1 (the image
        is enlarged by repeating pixels, so small cases stay readable).
    """
    image = error_map(pred, target)
    scale = -(-MIN_WIDTH // image.shape[1])
    if scale > 1:
        image = np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)
    legend = _legend(image.shape[1])
    return np.concatenate([image, legend], axis=0)


def write_error_map(path: str | Path, pred: Any, target: Any) -> Path:
    """Render the error map of one case and save it as PNG; returns the path written."""
    import imageio.v3 as iio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, render_error_map(pred, target))
    return path

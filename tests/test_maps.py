"""Error maps: colours, projection and size."""

from __future__ import annotations

import numpy as np
import pytest

from topobench.errors import InvalidMaskError
from topobench.maps import COLOURS, LEGEND_HEIGHT, MIN_WIDTH, error_map, render_error_map


def _colour_mask(image: np.ndarray, name: str) -> np.ndarray:
    return (image == COLOURS[name]).all(axis=-1)


def test_a_perfect_prediction_shows_only_the_target():
    target = np.zeros((20, 30), bool)
    target[10, 2:28] = True
    image = error_map(target, target)
    assert image.shape == (20, 30, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(_colour_mask(image, "target"), target)
    assert not _colour_mask(image, "missed connection").any()
    assert not _colour_mask(image, "false connection").any()
    assert not _colour_mask(image, "prediction only").any()
    assert not image[~target].any()  # black background


def test_gap_and_bridge_get_their_colours():
    target = np.zeros((30, 40), bool)
    target[8, 2:38] = True
    target[20, 2:38] = True
    pred = target.copy()
    pred[8, 18:21] = False  # a gap in the upper line
    pred[9:20, 30] = True  # a bridge between the lines
    image = error_map(pred, target)
    missed = _colour_mask(image, "missed connection")
    false = _colour_mask(image, "false connection")
    assert missed[8, 19] and not missed[20].any()
    assert false[14, 30] and not false[8, 19]


def test_volume_is_projected_along_z():
    target = np.zeros((5, 16, 16), bool)
    target[2, 8, 1:15] = True
    pred = target.copy()
    pred[2, 8, 7:9] = False
    image = error_map(pred, target)
    assert image.shape == (16, 16, 3)
    assert _colour_mask(image, "missed connection")[8, 7]


def test_rendered_map_has_legend_and_is_enlarged():
    target = np.zeros((10, 50), bool)
    target[5, 5:45] = True
    image = render_error_map(target, target)
    scale = -(-MIN_WIDTH // 50)
    assert image.shape == (10 * scale + LEGEND_HEIGHT, 50 * scale, 3)
    legend = image[-LEGEND_HEIGHT:]
    for colour in COLOURS.values():
        assert (legend == colour).all(axis=-1).any()


def test_shape_mismatch_is_an_error():
    with pytest.raises(InvalidMaskError, match="same shape"):
        error_map(np.zeros((4, 4), bool), np.zeros((4, 5), bool))

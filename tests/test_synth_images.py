"""Synthetic images with faded stretches (topobench.synth_images)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from topobench.errors import InvalidParameterError
from topobench.synth_images import ImageModel, make_image_case


@pytest.mark.parametrize("kind", ["vessels2d", "roads2d"])
def test_faded_stretches_are_label_pixels_with_low_contrast(kind: str) -> None:
    model = ImageModel(fades=3, fade_contrast=0.0, noise=0.0, blur=0.0, distractors=0)
    case = make_image_case(kind, seed=3, shape=(96, 96), model=model)
    assert case.fades == 3
    assert case.fade_mask.any() and case.target[case.fade_mask].all()
    # Without noise or blur the image is exactly the rendered signal: a fully faded stretch is
    # at the background level, the rest of the structure at the full contrast.
    assert np.allclose(case.image[case.fade_mask], 0.0)
    unfaded = case.target & ~ndimage.binary_dilation(case.fade_mask, iterations=5)  # blur: 4 px
    assert np.allclose(case.image[unfaded], 1.0, atol=1e-3)
    assert np.allclose(case.image[~case.target], 0.0)


def test_fade_contrast_scales_the_evidence() -> None:
    model = ImageModel(fades=2, fade_contrast=0.4, noise=0.0, blur=0.0, distractors=0)
    case = make_image_case("vessels2d", seed=1, model=model)
    values = case.image[case.fade_mask]
    assert values.min() == pytest.approx(0.4, abs=1e-6)
    assert values.max() <= 1.0


def test_distractors_lie_outside_the_label_and_are_faint() -> None:
    model = ImageModel(fades=0, noise=0.0, blur=0.0, distractors=3, distractor_contrast=0.3)
    case = make_image_case("vessels2d", seed=5, shape=(128, 128), model=model)
    assert case.distractors >= 1
    assert case.distractor_mask.any()
    assert not (case.distractor_mask & case.target).any()
    assert np.allclose(case.image[case.distractor_mask], 0.3)


def test_a_case_is_a_pure_function_of_its_parameters() -> None:
    a = make_image_case("roads2d", seed=7)
    b = make_image_case("roads2d", seed=7)
    c = make_image_case("roads2d", seed=8)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.target, b.target)
    assert not np.array_equal(a.image, c.image)


def test_noise_has_the_requested_spread() -> None:
    model = ImageModel(fades=0, noise=0.5, blur=0.0, distractors=0)
    case = make_image_case("vessels2d", seed=2, shape=(128, 128), model=model)
    background = case.image[~ndimage.binary_dilation(case.target, iterations=2)]
    assert background.std() == pytest.approx(0.5, rel=0.05)
    assert abs(background.mean()) < 0.02


@pytest.mark.parametrize(
    "bad", [{"fade_contrast": 1.5}, {"fades": -1}, {"noise": -0.1}, {"fade_length": 0}]
)
def test_bad_parameters_are_refused_by_name(bad: dict) -> None:
    with pytest.raises(InvalidParameterError, match=next(iter(bad))):
        ImageModel(**bad)


def test_bad_kind_or_shape_is_refused() -> None:
    with pytest.raises(InvalidParameterError, match="kind"):
        make_image_case("tubes3d")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="shape"):
        make_image_case("vessels2d", shape=(16, 16))

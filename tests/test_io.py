"""Reading every mask format the evaluate command accepts (topobench.io)."""

from __future__ import annotations

import imageio.v3 as iio
import nibabel
import numpy as np
import pytest
import tifffile

from topobench.errors import InvalidMaskError, InvalidMaskTypeError, ReadError
from topobench.io import file_stem, read_mask, write_mask


@pytest.fixture
def mask2d() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.random((24, 31)) > 0.6


@pytest.fixture
def mask3d() -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.random((5, 12, 17)) > 0.6


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".npy", ".npz", ".nii.gz", ".nii"])
def test_2d_round_trip(tmp_path, mask2d, suffix):
    path = write_mask(tmp_path / f"case{suffix}", mask2d)
    np.testing.assert_array_equal(read_mask(path), mask2d)


@pytest.mark.parametrize("suffix", [".tif", ".npy", ".npz", ".nii.gz"])
def test_3d_round_trip_is_z_h_w(tmp_path, mask3d, suffix):
    path = write_mask(tmp_path / f"vol{suffix}", mask3d)
    out = read_mask(path)
    assert out.shape == (5, 12, 17)
    np.testing.assert_array_equal(out, mask3d)


def test_nifti_is_transposed_from_x_y_z(tmp_path, mask3d):
    # NIfTI stores (X, Y, Z); topobench reads (Z, H, W) = the transpose.
    nibabel.save(
        nibabel.Nifti1Image(mask3d.astype(np.uint8), np.eye(4)), str(tmp_path / "v.nii.gz")
    )
    np.testing.assert_array_equal(read_mask(tmp_path / "v.nii.gz"), mask3d.T)


def test_multipage_tiff_stack(tmp_path, mask3d):
    with tifffile.TiffWriter(tmp_path / "stack.tif") as tif:
        for page in mask3d:
            tif.write(page.astype(np.uint8) * 255)
    np.testing.assert_array_equal(read_mask(tmp_path / "stack.tif"), mask3d)


def test_rgb_mask_with_equal_channels(tmp_path, mask2d):
    rgb = np.repeat((mask2d.astype(np.uint8) * 255)[..., None], 3, axis=2)
    iio.imwrite(tmp_path / "rgb.png", rgb)
    np.testing.assert_array_equal(read_mask(tmp_path / "rgb.png"), mask2d)


def test_rgb_mask_with_differing_channels_is_rejected(tmp_path, mask2d):
    rgb = np.repeat((mask2d.astype(np.uint8) * 255)[..., None], 3, axis=2)
    rgb[0, 0] = (255, 0, 0)
    iio.imwrite(tmp_path / "rgb.png", rgb)
    with pytest.raises(InvalidMaskError, match="channels differ"):
        read_mask(tmp_path / "rgb.png")


def test_jpeg_needs_a_threshold(tmp_path):
    # JPEG compression turns a {0, 255} mask into grey levels: not binary without a threshold.
    mask = np.zeros((32, 32), bool)
    mask[8:24, 10:14] = True
    iio.imwrite(tmp_path / "m.jpg", mask.astype(np.uint8) * 255, quality=70)
    with pytest.raises(InvalidMaskError):
        read_mask(tmp_path / "m.jpg")
    np.testing.assert_array_equal(read_mask(tmp_path / "m.jpg", threshold=0.5), mask)


def test_probability_map_threshold(tmp_path):
    prob = np.linspace(0, 1, 20, dtype=np.float32).reshape(4, 5)
    np.save(tmp_path / "p.npy", prob)
    with pytest.raises(InvalidMaskTypeError, match="threshold"):
        read_mask(tmp_path / "p.npy")
    np.testing.assert_array_equal(read_mask(tmp_path / "p.npy", threshold=0.5), prob > 0.5)


def test_labels_0_1_and_0_255(tmp_path, mask2d):
    np.save(tmp_path / "a.npy", mask2d.astype(np.uint8))
    np.save(tmp_path / "b.npy", mask2d.astype(np.uint8) * 255)
    np.testing.assert_array_equal(read_mask(tmp_path / "a.npy"), read_mask(tmp_path / "b.npy"))


def test_other_label_values_are_rejected(tmp_path):
    np.save(tmp_path / "labels.npy", np.array([[0, 1], [2, 0]], np.uint8))
    with pytest.raises(InvalidMaskError, match="values"):
        read_mask(tmp_path / "labels.npy")


def test_corrupt_and_missing_files(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not a png at all")
    with pytest.raises(ReadError, match="bad.png"):
        read_mask(tmp_path / "bad.png")
    with pytest.raises(ReadError, match="no such file"):
        read_mask(tmp_path / "absent.png")


@pytest.mark.parametrize(
    ("name", "stem"),
    [("case_001.nii.gz", "case_001"), ("case_001.png", "case_001"), ("a.b.tif", "a.b")],
)
def test_file_stem(name, stem):
    assert file_stem(name) == stem


@pytest.mark.parametrize("shape", [(3, 12, 17), (4, 12, 17), (5, 12, 3), (5, 3, 4)])
def test_tiff_stacks_with_3_or_4_slices_or_columns_are_not_colour(tmp_path, shape):
    # tifffile would otherwise guess RGB(A) from a last or first axis of size 3 or 4.
    mask = np.random.default_rng(2).random(shape) > 0.5
    path = write_mask(tmp_path / "vol.tif", mask)
    with tifffile.TiffFile(path) as tif:
        assert tif.pages[0].photometric == tifffile.PHOTOMETRIC.MINISBLACK
    np.testing.assert_array_equal(read_mask(path), mask)

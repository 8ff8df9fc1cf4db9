"""Reading every mask format the evaluate command accepts (topobench.io)."""

from __future__ import annotations

import imageio.v3 as iio
import nibabel
import numpy as np
import pytest
import tifffile

from topobench.errors import InvalidMaskError, InvalidMaskTypeError, ReadError
from topobench.io import file_stem, read_array, read_mask, write_mask


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


# --------------------------------------------------------------------------------------------
# Geometry, probability maps and inputs that would be read partly or as empty
# --------------------------------------------------------------------------------------------


def _flipped_copy(volume: np.ndarray, affine: np.ndarray, axis: int):
    """The same physical volume (X, Y, Z data) stored with voxel axis ``axis`` reversed."""
    flip = np.eye(4)
    flip[axis, axis] = -1
    flip[axis, 3] = volume.shape[axis] - 1
    return np.flip(volume, axis=axis), affine @ flip


def test_nifti_spacing_and_canonical_orientation(tmp_path):
    from topobench.io import read_mask_file

    rng = np.random.default_rng(4)
    xyz = (rng.random((7, 9, 5)) > 0.5).astype(np.uint8)
    affine = np.diag([0.5, 0.8, 2.0, 1.0])
    affine[:3, 3] = (10.0, -4.0, 3.0)
    nibabel.save(nibabel.Nifti1Image(xyz, affine), str(tmp_path / "ras.nii.gz"))
    flipped, flipped_affine = _flipped_copy(xyz, affine, axis=0)
    nibabel.save(nibabel.Nifti1Image(flipped, flipped_affine), str(tmp_path / "las.nii.gz"))
    ras = read_mask_file(tmp_path / "ras.nii.gz", canonical=True)
    las = read_mask_file(tmp_path / "las.nii.gz", canonical=True)
    # Spacing in the (Z, H, W) order of the array: the reversed NIfTI zooms.
    assert ras.spacing == pytest.approx((2.0, 0.8, 0.5))
    assert las.spacing == pytest.approx((2.0, 0.8, 0.5))
    np.testing.assert_array_equal(ras.mask, xyz.T.astype(bool))
    np.testing.assert_array_equal(las.mask, ras.mask)  # one physical volume, one array
    np.testing.assert_allclose(las.affine, ras.affine)
    assert las.canonical and not ras.canonical
    # Without canonical=True (read_mask), the file's voxel order, as before.
    np.testing.assert_array_equal(read_mask(tmp_path / "las.nii.gz"), flipped.T.astype(bool))
    # nibabel's own reorientation agrees.
    expected = np.asanyarray(
        nibabel.as_closest_canonical(nibabel.load(tmp_path / "las.nii.gz")).dataobj
    )
    np.testing.assert_array_equal(las.mask, expected.T.astype(bool))


def test_2d_nifti_with_a_flipped_axis_keeps_two_dimensions(tmp_path):
    from topobench.io import read_mask_file

    rng = np.random.default_rng(8)
    xy = (rng.random((6, 11)) > 0.5).astype(np.uint8)
    affine = np.diag([-1.5, 0.25, 1.0, 1.0])
    nibabel.save(nibabel.Nifti1Image(xy, affine), str(tmp_path / "flat.nii.gz"))
    read = read_mask_file(tmp_path / "flat.nii.gz", canonical=True)
    assert read.mask.shape == (11, 6) and read.spacing == pytest.approx((0.25, 1.5))
    np.testing.assert_array_equal(read.mask, xy[::-1].T.astype(bool))


@pytest.mark.parametrize(
    ("dtype", "scale"), [(np.uint8, 255), (np.uint16, 65535), (np.int32, 2**31 - 1)]
)
@pytest.mark.parametrize("suffix", [".png", ".tif", ".npy"])
def test_integer_probability_maps_are_scaled_by_their_dtype_maximum(tmp_path, dtype, scale, suffix):
    if suffix == ".png" and dtype == np.int32:
        pytest.skip("PNG holds 8- and 16-bit greys only")
    rng = np.random.default_rng(6)
    prob = rng.random((20, 30))
    stored = np.round(prob * scale).astype(dtype)
    path = tmp_path / f"map{suffix}"
    if suffix == ".npy":
        np.save(path, stored)
    elif suffix == ".tif":
        tifffile.imwrite(path, stored)
    else:
        iio.imwrite(path, stored)
    assert read_array(path)[0].dtype == dtype  # the file really holds that type
    for t in (0.25, 0.5, 0.9):
        expected = stored.astype(np.float64) / scale > t
        np.testing.assert_array_equal(read_mask(path, threshold=t), expected)


def test_16_bit_labels_and_8_bit_data_in_16_bit_files(tmp_path, mask2d):
    np.save(tmp_path / "label.npy", mask2d.astype(np.uint16) * 255)  # a {0, 255} label
    np.testing.assert_array_equal(read_mask(tmp_path / "label.npy", threshold=0.5), mask2d)
    grey = (np.arange(20 * 30).reshape(20, 30) % 200).astype(np.uint16)
    np.save(tmp_path / "grey.npy", grey)  # 8-bit values in a 16-bit file: refused, not emptied
    with pytest.raises(InvalidMaskError, match="8-bit data"):
        read_mask(tmp_path / "grey.npy", threshold=0.5)


def test_a_probability_map_without_threshold_names_the_parameter(tmp_path):
    from topobench.io import NotBinaryError

    grey = (np.arange(20 * 30).reshape(20, 30) % 200).astype(np.uint8)
    iio.imwrite(tmp_path / "prob.png", grey)
    with pytest.raises(NotBinaryError, match=r"threshold=\.\.\.") as info:
        read_mask(tmp_path / "prob.png")
    assert "--threshold" not in str(info.value)  # Python names in Python errors
    np.save(tmp_path / "prob.npy", grey / 255.0)
    with pytest.raises(InvalidMaskTypeError, match=r"threshold=\.\.\."):  # still a TypeError
        read_mask(tmp_path / "prob.npy")


def test_nnunet_probabilities_need_an_explicit_channel(tmp_path):
    rng = np.random.default_rng(9)
    probs = rng.random((3, 4, 10, 12)).astype(np.float32)
    probs /= probs.sum(axis=0, keepdims=True)
    np.savez_compressed(tmp_path / "case.npz", probabilities=probs)
    with pytest.raises(ReadError, match=r"3 classes.*channel=\.\.\."):
        read_mask(tmp_path / "case.npz", threshold=0.5)
    for channel in (1, 2):
        np.testing.assert_array_equal(
            read_mask(tmp_path / "case.npz", threshold=0.4, channel=channel), probs[channel] > 0.4
        )
    with pytest.raises(ReadError, match="out of range"):
        read_mask(tmp_path / "case.npz", threshold=0.5, channel=3)
    # 2D cases are stored as (C, 1, H, W).
    np.savez_compressed(tmp_path / "flat.npz", probabilities=probs[:, :1])
    assert read_mask(tmp_path / "flat.npz", threshold=0.5, channel=1).shape == (10, 12)
    # A channel for a file that holds no probabilities is an error, not ignored.
    np.save(tmp_path / "m.npy", probs[1] > 0.5)
    with pytest.raises(ReadError, match="channel"):
        read_mask(tmp_path / "m.npy", channel=1)


def test_tiff_pages_of_different_shapes_are_refused(tmp_path):
    with tifffile.TiffWriter(tmp_path / "mixed.tif") as tif:
        tif.write(np.full((16, 20), 255, np.uint8))
        tif.write(np.zeros((8, 8), np.uint8))
    with pytest.raises(ReadError, match="different shapes"):
        read_mask(tmp_path / "mixed.tif")


def test_rgba_mask_in_the_alpha_channel(tmp_path, mask2d):
    rgba = np.zeros((*mask2d.shape, 4), np.uint8)  # black everywhere, the mask in alpha
    rgba[..., 3] = mask2d * 255
    iio.imwrite(tmp_path / "alpha.png", rgba)
    np.testing.assert_array_equal(read_mask(tmp_path / "alpha.png"), mask2d)
    rgba[..., :3] = 255  # white on black with a matching alpha: the same mask
    rgba[~mask2d, :3] = 0
    iio.imwrite(tmp_path / "both.png", rgba)
    np.testing.assert_array_equal(read_mask(tmp_path / "both.png"), mask2d)
    rgba[..., 3] = 255 - rgba[..., 3]  # colour and alpha disagree: refused
    rgba[0, 0, 3] = 17
    iio.imwrite(tmp_path / "clash.png", rgba)
    with pytest.raises(InvalidMaskError, match="alpha"):
        read_mask(tmp_path / "clash.png")
    opaque = np.repeat((mask2d.astype(np.uint8) * 255)[..., None], 4, axis=2)
    opaque[..., 3] = 255
    iio.imwrite(tmp_path / "opaque.png", opaque)
    np.testing.assert_array_equal(read_mask(tmp_path / "opaque.png"), mask2d)

"""Reading and writing masks and images in the formats of the field.

Every reader returns 2D arrays as ``(H, W)`` and 3D arrays as ``(Z, H, W)`` (docs/metrics.md):
NIfTI, which stores ``(X, Y, Z)``, is transposed. Supported: PNG/JPG/BMP, TIFF (2D and
multi-page stacks), NPY/NPZ (also nnU-Net's ``--save_probabilities`` files with a channel),
NIfTI ``.nii``/``.nii.gz``.

:func:`read_mask_file` returns the mask together with what the file says about its geometry
(voxel spacing and, for NIfTI, the affine); :func:`read_mask` returns the mask alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from topobench.errors import InvalidMaskError, InvalidMaskTypeError, ReadError
from topobench.masks import as_mask

__all__ = [
    "MASK_SUFFIXES",
    "MaskFile",
    "NotBinaryError",
    "file_stem",
    "is_nifti",
    "is_supported",
    "peek_ndim",
    "read_array",
    "read_image",
    "read_mask",
    "read_mask_file",
    "write_mask",
]

_RASTER = (".png", ".jpg", ".jpeg", ".bmp")
_TIFF = (".tif", ".tiff")
_NUMPY = (".npy", ".npz")
_NIFTI = (".nii", ".nii.gz")
MASK_SUFFIXES: tuple[str, ...] = _RASTER + _TIFF + _NUMPY + _NIFTI
#: Key of the class probabilities in nnU-Net's ``--save_probabilities`` ``.npz`` files.
_PROBABILITIES_KEY = "probabilities"


class NotBinaryError(InvalidMaskError, InvalidMaskTypeError):
    """A mask file holds a probability map (float values, or integers other than {0, 1} and
    {0, 255}) and no threshold was given to binarise it (a ValueError and a TypeError)."""


@dataclass(frozen=True, eq=False)
class MaskFile:
    """A mask read from a file, with the geometry the file records.

    Attributes
    ----------
    mask : numpy.ndarray of bool, shape (H, W) or (Z, H, W)
    spacing : tuple of float or None
        Size of a pixel / voxel along each axis of ``mask`` (same order: ``(Z, H, W)``), in the
        file's unit (millimetres for NIfTI); None when the format records none.
    affine : numpy.ndarray, shape (4, 4), or None
        NIfTI only: voxel index ``(x, y, z)`` (of the array as returned, before the transpose to
        ``(Z, H, W)``) to world coordinates.
    canonical : bool
        The NIfTI data was reoriented to the closest canonical (RAS+) orientation.
    """

    mask: np.ndarray
    spacing: tuple[float, ...] | None = None
    affine: np.ndarray | None = None
    canonical: bool = False


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def file_stem(path: str | Path) -> str:
    """File name without its format suffix (``case_001.nii.gz`` -> ``case_001``)."""
    path = Path(path)
    suffix = _suffix(path)
    return path.name[: len(path.name) - len(suffix)] if suffix else path.name


def is_supported(path: str | Path) -> bool:
    """Whether ``path`` has a suffix that :func:`read_array` understands."""
    return _suffix(Path(path)) in MASK_SUFFIXES


def is_nifti(path: str | Path) -> bool:
    """Whether ``path`` names a NIfTI file (``.nii`` / ``.nii.gz``)."""
    return _suffix(Path(path)) in _NIFTI


def _read_tiff(path: Path) -> tuple[np.ndarray, bool]:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        series = list(tif.series)
        if not series:
            raise ReadError(f"{path}: the TIFF file holds no image")
        first = series[0]
        if len(series) > 1:
            kinds = [(tuple(s.shape), str(s.dtype)) for s in series]
            if len(set(kinds)) != 1 or len(first.shape) != 2:
                # Reading series[0] alone would silently evaluate a part of the file.
                listed = ", ".join(f"{'x'.join(map(str, s))} {d}" for s, d in kinds[:6])
                raise ReadError(
                    f"{path}: the TIFF file holds {len(series)} images of different shapes or "
                    f"types ({listed}{', ...' if len(kinds) > 6 else ''}); expected one 2D "
                    "image or a stack of equal pages"
                )
            # Pages written one by one form one series each: stack them along z.
            return np.stack([np.asarray(s.asarray()) for s in series]), False
        arr = np.asarray(first.asarray())
        return arr, first.axes.endswith("S") and arr.ndim >= 3


def _read_npz(path: Path, channel: int | None) -> np.ndarray:
    with np.load(path, allow_pickle=False) as npz:
        keys = list(npz.keys())
        if _PROBABILITIES_KEY in keys:
            probs = npz[_PROBABILITIES_KEY]
            if channel is None:
                raise ReadError(
                    f"{path}: holds nnU-Net class probabilities of shape {probs.shape} "
                    f"({probs.shape[0]} classes); choose the foreground class with channel=... "
                    "and binarise it with threshold=..."
                )
            if not -probs.shape[0] <= channel < probs.shape[0]:
                raise ReadError(
                    f"{path}: channel={channel} is out of range for {probs.shape[0]} classes"
                )
            arr = probs[channel]
            # nnU-Net stores 2D cases as (C, 1, H, W).
            return arr[0] if arr.ndim == 3 and arr.shape[0] == 1 else arr
        if channel is not None:
            raise ReadError(
                f"{path}: channel={channel} was given, but the file holds no "
                f"{_PROBABILITIES_KEY!r} array (keys {keys})"
            )
        if len(keys) == 1:
            return npz[keys[0]]
        for key in ("mask", "label", "pred", "arr_0"):
            if key in keys:
                return npz[key]
    raise ReadError(f"{path}: expected one array or a 'mask' array in the .npz, got keys {keys}")


def _read_nifti(
    path: Path, canonical: bool
) -> tuple[np.ndarray, tuple[float, ...], np.ndarray, bool]:
    """``(array (X, Y[, Z]), spacing per array axis, affine, reoriented)``."""
    import nibabel
    from nibabel import orientations

    img = nibabel.load(str(path))
    arr = np.asanyarray(img.dataobj)
    while arr.ndim > 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3):
        raise ReadError(f"{path}: expected a 2D or 3D NIfTI image, got shape {arr.shape}")
    flat = arr.ndim == 2
    data = arr[..., None] if flat else arr
    affine = np.asarray(img.affine, dtype=float)
    flat_axis, reoriented = 2, False
    if canonical:
        ornt = orientations.io_orientation(affine)
        if not np.array_equal(ornt, [[0, 1], [1, 1], [2, 1]]):
            affine = affine @ orientations.inv_ornt_aff(ornt, data.shape)
            data = orientations.apply_orientation(data, ornt)
            flat_axis, reoriented = int(ornt[2, 0]), True
    zooms = [float(z) for z in np.sqrt((affine[:3, :3] ** 2).sum(axis=0))]
    if flat:
        data = np.squeeze(data, axis=flat_axis)
        del zooms[flat_axis]
    return data, tuple(zooms), affine, reoriented


def _read(
    path: Path, *, channel: int | None = None, canonical: bool = False
) -> tuple[np.ndarray, bool, tuple[float, ...] | None, np.ndarray | None, bool]:
    """``(array, has_channels, spacing, affine, reoriented)`` in topobench's axis order."""
    suffix = _suffix(path)
    if not path.is_file():
        if path.is_symlink():
            raise ReadError(f"{path}: broken symbolic link (its target does not exist)")
        raise ReadError(f"{path}: no such file")
    if channel is not None and suffix != ".npz":
        raise ReadError(
            f"{path}: channel={channel} applies to nnU-Net probability files (.npz) only"
        )
    try:
        if suffix in _RASTER:
            import imageio.v3 as iio

            arr = np.asarray(iio.imread(path))
            return arr, arr.ndim == 3, None, None, False
        if suffix in _TIFF:
            arr, has_channels = _read_tiff(path)
            return arr, has_channels, None, None, False
        if suffix == ".npy":
            return np.load(path, allow_pickle=False), False, None, None, False
        if suffix == ".npz":
            return _read_npz(path, channel), False, None, None, False
        if suffix in _NIFTI:
            arr, spacing, affine, reoriented = _read_nifti(path, canonical)
            return np.ascontiguousarray(arr.T), False, spacing[::-1], affine, reoriented
    except ReadError:
        raise
    except Exception as exc:  # corrupt files raise many different types
        raise ReadError(f"{path}: cannot read file ({type(exc).__name__}: {exc})") from exc
    raise ReadError(
        f"{path}: unsupported format {suffix!r}; expected one of {', '.join(MASK_SUFFIXES)}"
    )


def read_array(path: str | Path) -> tuple[np.ndarray, bool]:
    """Read a file into a numpy array in topobench's axis order.

    Returns
    -------
    array : numpy.ndarray
        ``(H, W)``, ``(Z, H, W)``, or ``(H, W, C)`` / ``(Z, H, W, C)`` for colour data. NIfTI
        data in the file's voxel order (see :func:`read_mask_file` for the canonical one).
    has_channels : bool
        True when the last axis holds colour channels (RGB/RGBA), not a spatial axis.
    """
    arr, has_channels, *_ = _read(Path(path))
    return arr, has_channels


def _grey(path: Path, arr: np.ndarray) -> np.ndarray:
    """The mask plane of a colour image ``(..., C)``: its colour, or its alpha channel.

    The colour channels must agree. When they are uniform and the alpha channel is not, the
    mask is drawn in alpha (a transparent background), and alpha is read; when both vary they
    must mark the same pixels.
    """
    n = arr.shape[-1]
    colour = arr[..., :3] if n >= 3 else arr[..., :1]
    if not np.all(colour == colour[..., :1]):
        raise InvalidMaskError(
            f"{path.name}: expected a grey or binary mask, got a colour image whose channels differ"
        )
    grey = colour[..., 0]
    if n not in (2, 4):
        return grey
    alpha = arr[..., -1]
    if alpha.min() == alpha.max():  # opaque (or uniformly transparent): the colour is the mask
        return grey
    if grey.min() == grey.max():  # one colour everywhere: the mask is in alpha
        return alpha
    if np.array_equal(grey != 0, alpha != 0):
        return grey
    raise InvalidMaskError(
        f"{path.name}: the colour and the alpha channel of this image mark different pixels; "
        "expected a mask in one of them (or both alike)"
    )


def _is_label(arr: np.ndarray) -> bool:
    """Integer values {0, 1} or {0, 255} only (a binary label, whatever its dtype)."""
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi not in (0, 1, 255):
        return False
    return hi != 255 or not np.any((arr != 0) & (arr != 255))


def _scaled(path: Path, arr: np.ndarray) -> np.ndarray:
    """An integer probability map as float in [0, 1]: divided by its dtype's maximum."""
    info = np.iinfo(arr.dtype)
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0:
        raise InvalidMaskError(
            f"{path.name}: a {arr.dtype} probability map must not hold negative values, got "
            f"values in [{lo}, {hi}]"
        )
    if hi <= 1:  # a {0, 1} label
        return arr
    if info.max > 255 and hi <= 255 and not _is_label(arr):
        # 8-bit data saved in a wider type: scaling by the type's maximum would empty it.
        raise InvalidMaskError(
            f"{path.name}: a {arr.dtype} probability map with values only in [{lo}, {hi}] (8-bit "
            f"data in a {info.bits}-bit file?): {arr.dtype} maps are scaled by {info.max}; "
            "save it as 8-bit or as float in [0, 1]"
        )
    if _is_label(arr):  # a {0, 255} label: its foreground is the non-zero pixels
        return arr != 0
    return arr.astype(np.float32) / np.float32(info.max)


def _not_binary(path: Path, arr: np.ndarray) -> NotBinaryError | None:
    """The error for a probability map read without a threshold, or None for anything else."""
    if np.issubdtype(arr.dtype, np.floating):
        if np.isnan(arr).any():
            return None  # as_mask names the NaN values
        lo, hi = float(arr.min()), float(arr.max())
        return NotBinaryError(
            f"{path.name}: holds {arr.dtype} values in [{lo:g}, {hi:g}], not a bool or integer "
            "mask (a probability map?); binarise it with threshold=..."
        )
    if np.issubdtype(arr.dtype, np.integer) and arr.size and not _is_label(arr):
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0:
            return None
        return NotBinaryError(
            f"{path.name}: holds {arr.dtype} values in [{lo}, {hi}], not a binary mask with "
            "values {0, 1} or {0, 255} (a probability map?); binarise it with threshold=..."
        )
    return None


def read_mask_file(
    path: str | Path,
    *,
    threshold: float | None = None,
    channel: int | None = None,
    canonical: bool = False,
) -> MaskFile:
    """Read a binary mask file with its voxel spacing (and NIfTI affine).

    Parameters
    ----------
    path : path
    threshold : float, optional
        Binarise a probability map as ``value > threshold``. Integer maps (8-, 16-, 32-bit, ...)
        are first divided by the maximum of their dtype (255, 65535, ...), so ``threshold`` is
        always a probability in [0, 1]; integer files holding only {0, 1} or {0, 255} are labels
        and are read as such. Float maps are compared as they are.
    channel : int, optional
        The class to read from an nnU-Net ``--save_probabilities`` ``.npz`` (key
        ``probabilities``, shape ``(C, ...)``); required for such files, refused for others.
    canonical : bool
        Reorient NIfTI data to the closest canonical (RAS+) orientation, so that two files of one
        physical volume stored with different axis orders or flips give the same array.

    Returns
    -------
    MaskFile

    Raises
    ------
    ReadError
        Unreadable, partly readable (TIFF pages of different shapes) or missing file.
    NotBinaryError (an InvalidMaskError)
        A probability map without ``threshold``.
    InvalidMaskError, InvalidMaskTypeError
        Any other value or shape a mask cannot have.
    """
    path = Path(path)
    arr, has_channels, spacing, affine, reoriented = _read(
        path, channel=channel, canonical=canonical
    )
    if has_channels:
        arr = _grey(path, arr)
    if threshold is not None and np.issubdtype(arr.dtype, np.integer):
        arr = _scaled(path, arr)
    try:
        mask = as_mask(arr, name=path.name, threshold=threshold if arr.dtype != bool else None)
    except (InvalidMaskError, InvalidMaskTypeError) as exc:
        error = _not_binary(path, arr) if threshold is None and arr.ndim in (2, 3) else None
        if error is not None:
            raise error from exc
        raise
    if spacing is not None and len(spacing) != mask.ndim:
        spacing = None
    return MaskFile(mask, spacing, affine, reoriented)


def read_mask(
    path: str | Path, *, threshold: float | None = None, channel: int | None = None
) -> np.ndarray:
    """Read a binary mask file as a bool array ``(H, W)`` or ``(Z, H, W)``.

    Colour masks are accepted when their colour channels agree; a mask drawn in the alpha
    channel of a uniformly coloured image is read from alpha. Values must be {0, 1} or {0, 255}
    unless ``threshold`` is given, which binarises a probability map as ``value > threshold``
    (integer maps are first divided by their dtype's maximum: 255 for 8-bit, 65535 for 16-bit).
    NIfTI data is returned in the file's voxel order; :func:`read_mask_file` gives the spacing
    and the canonical orientation.
    """
    return read_mask_file(path, threshold=threshold, channel=channel).mask


def peek_ndim(path: str | Path) -> int:
    """Spatial dimension (2 or 3) of a mask file, from its header where the format allows."""
    path = Path(path)
    suffix = _suffix(path)
    if suffix in _RASTER:
        return 2
    if suffix in _NIFTI:
        import nibabel

        shape = list(nibabel.load(str(path)).shape)
        while len(shape) > 3 and shape[-1] == 1:
            shape.pop()
        return len(shape)
    if suffix == ".npy":
        return np.load(path, mmap_mode="r").ndim
    if suffix in _TIFF:
        import tifffile

        with tifffile.TiffFile(path) as tif:
            series = tif.series
            if len(series) > 1:
                return len(series[0].shape) + 1
            axes = series[0].axes
            return len(series[0].shape) - (1 if axes.endswith("S") else 0)
    return read_mask(path).ndim


def read_image(path: str | Path) -> np.ndarray:
    """Read an intensity image as float32: ``(H, W)``, ``(H, W, C)``, ``(Z, H, W)`` ..."""
    arr, has_channels = read_array(path)
    if has_channels and arr.shape[-1] == 4:
        arr = arr[..., :3]
    return arr.astype(np.float32, copy=False)


def write_mask(path: str | Path, mask: np.ndarray) -> Path:
    """Write a binary mask (bool or {0,1}) in the format given by the suffix.

    PNG/BMP/TIFF get {0, 255} uint8; NPY/NPZ and NIfTI get {0, 1} uint8. 3D masks need TIFF,
    NPY/NPZ or NIfTI. Returns the path written.
    """
    path = Path(path)
    suffix = _suffix(path)
    m = as_mask(mask, name=path.name).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix in (".png", ".bmp"):
        if m.ndim != 2:
            raise InvalidMaskError(f"{path.name}: {suffix} holds 2D masks only, got {m.ndim}D")
        import imageio.v3 as iio

        iio.imwrite(path, m * 255)
    elif suffix in _TIFF:
        import tifffile

        tifffile.imwrite(path, m * 255, compression="zlib", photometric="minisblack")
    elif suffix == ".npy":
        np.save(path, m)
    elif suffix == ".npz":
        np.savez_compressed(path, mask=m)
    elif suffix in _NIFTI:
        import nibabel

        nibabel.save(nibabel.Nifti1Image(np.ascontiguousarray(m.T), np.eye(4)), str(path))
    else:
        raise InvalidMaskError(
            f"{path.name}: cannot write masks as {suffix!r}; use png, bmp, tif, npy, npz or nii.gz"
        )
    return path

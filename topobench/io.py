"""Reading and writing masks and images in the formats of the field.

Every reader returns 2D arrays as ``(H, W)`` and 3D arrays as ``(Z, H, W)`` (docs/metrics.md):
NIfTI, which stores ``(X, Y, Z)``, is transposed. Supported: PNG/JPG/BMP, TIFF (2D and
multi-page stacks), NPY/NPZ, NIfTI ``.nii``/``.nii.gz``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from topobench.errors import InvalidMaskError, ReadError
from topobench.masks import as_mask

__all__ = [
    "MASK_SUFFIXES",
    "file_stem",
    "is_supported",
    "read_array",
    "read_mask",
    "read_image",
    "write_mask",
]

_RASTER = (".png", ".jpg", ".jpeg", ".bmp")
_TIFF = (".tif", ".tiff")
_NUMPY = (".npy", ".npz")
_NIFTI = (".nii", ".nii.gz")
MASK_SUFFIXES: tuple[str, ...] = _RASTER + _TIFF + _NUMPY + _NIFTI


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


def read_array(path: str | Path) -> tuple[np.ndarray, bool]:
    """Read a file into a numpy array in topobench's axis order.

    Returns
    -------
    array : numpy.ndarray
        ``(H, W)``, ``(Z, H, W)``, or ``(H, W, C)`` / ``(Z, H, W, C)`` for colour data.
    has_channels : bool
        True when the last axis holds colour channels (RGB/RGBA), not a spatial axis.
    """
    path = Path(path)
    suffix = _suffix(path)
    if not path.is_file():
        raise ReadError(f"{path}: no such file")
    try:
        if suffix in _RASTER:
            import imageio.v3 as iio

            arr = np.asarray(iio.imread(path))
            return arr, arr.ndim == 3
        if suffix in _TIFF:
            import tifffile

            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                axes = series.axes
                arr = np.asarray(series.asarray())
                shapes = {(s.shape, s.dtype) for s in tif.series}
                if len(tif.series) > 1 and len(shapes) == 1 and arr.ndim == 2:
                    # Pages written one by one form one series each: stack them along z.
                    arr = np.stack([np.asarray(s.asarray()) for s in tif.series])
            return arr, axes.endswith("S") and arr.ndim >= 3
        if suffix == ".npy":
            return np.load(path, allow_pickle=False), False
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as npz:
                keys = list(npz.keys())
                if len(keys) == 1:
                    return npz[keys[0]], False
                for key in ("mask", "label", "pred", "arr_0"):
                    if key in keys:
                        return npz[key], False
            raise ReadError(
                f"{path}: expected one array or a 'mask' array in the .npz, got keys {keys}"
            )
        if suffix in _NIFTI:
            import nibabel

            img = nibabel.load(str(path))
            arr = np.asanyarray(img.dataobj)
            while arr.ndim > 3 and arr.shape[-1] == 1:
                arr = arr[..., 0]
            if arr.ndim not in (2, 3):
                raise ReadError(f"{path}: expected a 2D or 3D NIfTI image, got shape {arr.shape}")
            return np.ascontiguousarray(arr.T), False
    except ReadError:
        raise
    except Exception as exc:  # corrupt files raise many different types
        raise ReadError(f"{path}: cannot read file ({type(exc).__name__}: {exc})") from exc
    raise ReadError(
        f"{path}: unsupported format {suffix!r}; expected one of {', '.join(MASK_SUFFIXES)}"
    )


def read_mask(path: str | Path, *, threshold: float | None = None) -> np.ndarray:
    """Read a binary mask file as a bool array ``(H, W)`` or ``(Z, H, W)``.

    Colour masks are accepted when their colour channels agree (alpha is ignored). Values must
    be {0, 1} or {0, 255} unless ``threshold`` is given, which binarises a probability map as
    ``value > threshold`` (for 8-bit images, values are first scaled to [0, 1]).
    """
    path = Path(path)
    arr, has_channels = read_array(path)
    if has_channels:
        colour = arr[..., :3] if arr.shape[-1] >= 3 else arr[..., :1]
        if not np.all(colour == colour[..., :1]):
            raise InvalidMaskError(
                f"{path.name}: expected a grey or binary mask, got a colour image whose "
                "channels differ"
            )
        arr = colour[..., 0]
    if threshold is not None and arr.dtype == np.uint8 and arr.max() > 1:
        arr = arr.astype(np.float32) / 255.0
    return as_mask(arr, name=path.name, threshold=threshold)


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

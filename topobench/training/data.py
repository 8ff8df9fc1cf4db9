"""Training data: nnU-Net-style dataset folders, cross-validation splits, patch sampling.

A dataset folder holds ``imagesTr/`` and ``labelsTr/`` (and optionally ``imagesTs/`` and
``labelsTs/``) plus an optional ``dataset.json``. Images are paired with labels by file stem;
nnU-Net's channel suffix (``case_0000.png``, ``case_0001.png``) names the image channels of
``case``. 2D cases are ``(H, W)`` grey or ``(H, W, C)`` colour images; 3D cases are ``(Z, H, W)``
volumes (NIfTI is transposed by :mod:`topobench.io`). Inside this module every image is
channel-first float32: ``(C, H, W)`` or ``(C, Z, H, W)``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from topobench.errors import TopobenchError
from topobench.io import file_stem, is_supported, read_image, read_mask

__all__ = [
    "DatasetError",
    "Case",
    "Dataset",
    "scan_dataset",
    "load_case",
    "normalize_intensity",
    "make_splits",
    "load_or_create_splits",
    "PatchSampler",
]

_CHANNEL_SUFFIX = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")
SPLIT_SEED = 12345


class DatasetError(TopobenchError, ValueError):
    """A dataset folder is incomplete: missing folders, unpaired or unreadable files."""


@dataclass(frozen=True)
class Case:
    """One case of a dataset: its name, its image file(s) (one per channel) and its label."""

    name: str
    images: tuple[Path, ...]
    label: Path | None


@dataclass(frozen=True)
class Dataset:
    """A scanned dataset folder.

    Attributes
    ----------
    root : Path
        The dataset folder.
    name : str
        ``dataset.json``'s ``name``, else the folder name.
    ndim : int
        Spatial dimension of the cases, 2 or 3.
    in_channels : int
        Image channels the network sees (nnU-Net channel files, or colour channels).
    training : tuple of Case
        ``imagesTr``/``labelsTr`` pairs, sorted by name.
    test : tuple of Case
        ``imagesTs`` cases (labels from ``labelsTs`` when present, else None).
    metadata : dict
        The content of ``dataset.json`` (empty when absent).
    """

    root: Path
    name: str
    ndim: int
    in_channels: int
    training: tuple[Case, ...]
    test: tuple[Case, ...] = ()
    metadata: dict = field(default_factory=dict)

    @property
    def case_names(self) -> list[str]:
        """Names of the training cases, sorted."""
        return [c.name for c in self.training]


def _group_images(folder: Path) -> tuple[dict[str, list[tuple[int, Path]]], list[str]]:
    groups: dict[str, list[tuple[int, Path]]] = {}
    problems: list[str] = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.is_dir() or path.name == "dataset.json":
            continue
        if not is_supported(path):
            problems.append(f"{folder.name}/{path.name}: unsupported file type")
            continue
        stem = file_stem(path)
        m = _CHANNEL_SUFFIX.match(stem)
        case, channel = (m["case"], int(m["channel"])) if m else (stem, 0)
        groups.setdefault(case, []).append((channel, path))
    return groups, problems


def _labels(folder: Path) -> tuple[dict[str, Path], list[str]]:
    labels: dict[str, Path] = {}
    problems: list[str] = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.is_dir():
            continue
        if not is_supported(path):
            problems.append(f"{folder.name}/{path.name}: unsupported file type")
            continue
        labels[file_stem(path)] = path
    return labels, problems


def _pair(
    images_dir: Path, labels_dir: Path | None, *, require_labels: bool
) -> tuple[list[Case], list[str]]:
    groups, problems = _group_images(images_dir)
    labels: dict[str, Path] = {}
    if labels_dir is not None and labels_dir.is_dir():
        labels, more = _labels(labels_dir)
        problems += more
    cases = []
    for name, files in sorted(groups.items()):
        channels = sorted(files)
        idx = [c for c, _ in channels]
        if idx != list(range(len(idx))):
            problems.append(
                f"{images_dir.name}/{name}: expected channel files _0000.._{len(idx) - 1:04d}, "
                f"got channels {idx}"
            )
            continue
        label = labels.get(name)
        if label is None and require_labels:
            problems.append(f"{images_dir.name}/{channels[0][1].name}: no label named {name}.*")
            continue
        cases.append(Case(name, tuple(p for _, p in channels), label))
    if labels_dir is not None and labels_dir.is_dir():
        for name, path in sorted(labels.items()):
            if name not in groups:
                problems.append(f"{labels_dir.name}/{path.name}: no image for case {name}")
    return cases, problems


def load_case(case: Case) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a case: the image as channel-first float32 and the label as bool.

    Returns
    -------
    image : numpy.ndarray of float32, shape (C, H, W) or (C, Z, H, W)
    label : numpy.ndarray of bool, shape (H, W) or (Z, H, W), or None without a label.
    """
    label = read_mask(case.label) if case.label is not None else None
    channels = []
    for path in case.images:
        arr = read_image(path)
        if label is not None and arr.ndim == label.ndim + 1 and arr.shape[:-1] == label.shape:
            channels.extend(np.moveaxis(arr, -1, 0))  # colour channels last -> first
        elif label is None and arr.ndim == 3 and arr.shape[-1] in (3, 4) and len(case.images) == 1:
            channels.extend(np.moveaxis(arr, -1, 0))
        else:
            channels.append(arr)
    shapes = {c.shape for c in channels}
    if len(shapes) != 1:
        raise DatasetError(f"case {case.name}: image channels differ in shape: {sorted(shapes)}")
    image = np.stack(channels).astype(np.float32, copy=False)
    if label is not None and image.shape[1:] != label.shape:
        raise DatasetError(
            f"case {case.name}: image shape {image.shape[1:]} does not match label shape "
            f"{label.shape}"
        )
    return image, label


def scan_dataset(root: str | Path, *, check: bool = True) -> Dataset:
    """Scan an nnU-Net-style dataset folder and report every problem at once.

    Parameters
    ----------
    root : path
        Folder with ``imagesTr/`` and ``labelsTr/`` (optionally ``imagesTs/``, ``labelsTs/``,
        ``dataset.json``).
    check : bool
        Read every training case to check that it is readable, binary, 2D/3D and matches its
        image (slower, but finds bad files before training starts).

    Raises
    ------
    DatasetError
        Listing every unpaired, unreadable or inconsistent file by name.
    """
    root = Path(root)
    if not (root / "imagesTr").is_dir() or not (root / "labelsTr").is_dir():
        raise DatasetError(f"{root}: expected folders imagesTr/ and labelsTr/ inside")
    metadata: dict = {}
    if (root / "dataset.json").is_file():
        try:
            metadata = json.loads((root / "dataset.json").read_text())
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{root / 'dataset.json'}: not valid JSON ({exc})") from None
    training, problems = _pair(root / "imagesTr", root / "labelsTr", require_labels=True)
    test: list[Case] = []
    if (root / "imagesTs").is_dir():
        labels_ts = root / "labelsTs"
        test, more = _pair(root / "imagesTs", labels_ts if labels_ts.is_dir() else None,
                           require_labels=False)
        problems += more
    ndims: dict[int, list[str]] = {}
    channels: dict[int, list[str]] = {}
    if check:
        for case in training:
            try:
                image, label = load_case(case)
            except TopobenchError as exc:
                problems.append(str(exc))
                continue
            ndims.setdefault(image.ndim - 1, []).append(case.name)
            channels.setdefault(image.shape[0], []).append(case.name)
    if len(ndims) > 1:
        problems.append(f"cases mix dimensions: {_groups(ndims, 'D')}")
    if len(channels) > 1:
        problems.append(f"cases have different channel counts: {_groups(channels, ' channel(s)')}")
    if not training and not problems:
        problems.append(f"{root / 'imagesTr'}: no training cases")
    if problems:
        listing = "\n  ".join(problems)
        raise DatasetError(f"{root}: {len(problems)} problem(s) in the dataset:\n  {listing}")
    if ndims:
        ndim, in_channels = next(iter(ndims)), next(iter(channels))
    else:
        image, _ = load_case(training[0])
        ndim, in_channels = image.ndim - 1, image.shape[0]
    name = str(metadata.get("name") or root.name)
    return Dataset(root, name, ndim, in_channels, tuple(training), tuple(test), metadata)


def _groups(groups: dict[int, list[str]], unit: str) -> str:
    parts = []
    for key, names in sorted(groups.items()):
        shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        parts.append(f"{key}{unit}: {len(names)} ({shown})")
    return "; ".join(parts)


def normalize_intensity(image: np.ndarray) -> np.ndarray:
    """Z-score each channel of one case: ``(x - mean) / std`` (std 0 -> 1), float32.

    ``image`` is channel-first, ``(C, H, W)`` or ``(C, Z, H, W)``.
    """
    image = image.astype(np.float32, copy=True)
    for c in range(image.shape[0]):
        mean, std = float(image[c].mean()), float(image[c].std())
        image[c] -= mean
        image[c] /= std if std > 0 else 1.0
    return image


def make_splits(
    case_names: Sequence[str], *, n_folds: int = 5, seed: int = SPLIT_SEED
) -> list[dict]:
    """Split case names into ``n_folds`` folds: nnU-Net's own ``splits_final.json``.

    The folds are those nnU-Net's trainer creates when the dataset has no split file
    (``nnunetv2.utilities.crossval_split.generate_crossval_split`` on the sorted case names,
    i.e. scikit-learn's ``KFold(n_splits, shuffle=True, random_state=seed)``), so that fold ``k``
    of ``topobench train`` holds out the same cases as fold ``k`` of ``topobench nnunet train``.
    The KFold procedure is reproduced with numpy (no scikit-learn needed): the indices
    ``0..n-1`` are shuffled by ``numpy.random.RandomState(seed)``, the first ``n % n_folds`` folds
    take ``n // n_folds + 1`` consecutive shuffled indices and the others ``n // n_folds``.

    Returns
    -------
    list of dict
        One ``{"train": [...], "val": [...]}`` per fold, both lists in sorted order; the
        validation sets are disjoint and cover every case. Deterministic for a given ``seed``
        and set of names (their order does not matter).

    Raises
    ------
    DatasetError
        Fewer cases than folds.
    """
    names = sorted(case_names)
    if len(names) < n_folds:
        raise DatasetError(f"{n_folds}-fold cross-validation needs at least {n_folds} cases, "
                           f"got {len(names)}")
    order = np.arange(len(names))
    np.random.RandomState(seed).shuffle(order)
    sizes = np.full(n_folds, len(names) // n_folds)
    sizes[: len(names) % n_folds] += 1
    splits = []
    start = 0
    for size in sizes:
        held_out = set(order[start:start + size].tolist())
        start += size
        splits.append({
            "train": [n for i, n in enumerate(names) if i not in held_out],
            "val": [n for i, n in enumerate(names) if i in held_out],
        })
    return splits


def load_or_create_splits(
    dataset: Dataset, runs_dir: str | Path, *, n_folds: int = 5
) -> tuple[list[dict], Path]:
    """The dataset's cross-validation folds, shared by every run.

    ``splits_final.json`` in the dataset folder (nnU-Net's file) wins when present; otherwise
    ``<runs_dir>/splits_<dataset name>.json`` is read, or created on first use. Returns the
    splits and the file they come from.

    Raises
    ------
    DatasetError
        When a stored split does not cover exactly the dataset's training cases.
    """
    candidates = [dataset.root / "splits_final.json"]
    path = Path(runs_dir) / f"splits_{_safe(dataset.name)}.json"
    candidates.append(path)
    for p in candidates:
        if p.is_file():
            splits = json.loads(p.read_text())
            covered = sorted(n for s in splits for n in s["val"])
            if covered != sorted(dataset.case_names):
                raise DatasetError(
                    f"{p}: its validation folds cover {len(covered)} cases that differ from the "
                    f"dataset's {len(dataset.case_names)} training cases; delete it or fix it"
                )
            unknown = sorted({n for s in splits for n in s["train"]} - set(dataset.case_names))
            if unknown:
                raise DatasetError(
                    f"{p}: its training folds name cases that are not in the dataset: "
                    f"{', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}"
                )
            return splits, p
    splits = make_splits(dataset.case_names, n_folds=n_folds)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(splits, indent=1) + "\n")
    return splits, path


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


class PatchSampler:
    """Random training patches with foreground oversampling and simple augmentation.

    Parameters
    ----------
    images : list of numpy.ndarray, each (C, *spatial), float32
        Normalised images.
    labels : list of numpy.ndarray, each spatial, bool
    patch_size : tuple of int
        Spatial patch size, ``(H, W)`` or ``(Z, H, W)``; images smaller than it are padded.
    foreground_fraction : float
        Share of the patches of a batch centred on a random foreground pixel of the label.
    augment : bool
        Random flips along every spatial axis, 90-degree rotations in the (H, W) plane (when the
        patch is square there) and intensity jitter (scale and shift of 10%).
    """

    def __init__(
        self,
        images: Sequence[np.ndarray],
        labels: Sequence[np.ndarray],
        patch_size: Sequence[int],
        *,
        foreground_fraction: float = 0.33,
        augment: bool = True,
    ) -> None:
        self.patch_size = tuple(int(p) for p in patch_size)
        ndim = len(self.patch_size)
        self.images: list[np.ndarray] = []
        self.labels: list[np.ndarray] = []
        self.foreground: list[np.ndarray] = []
        for image, label in zip(images, labels, strict=True):
            if label.ndim != ndim:
                raise DatasetError(f"patch size {self.patch_size} is {ndim}D, labels are "
                                   f"{label.ndim}D")
            pad = [(0, max(0, p - s)) for p, s in zip(self.patch_size, label.shape, strict=True)]
            if any(b for _, b in pad):
                image = np.pad(image, [(0, 0)] + pad, mode="constant")
                label = np.pad(label, pad, mode="constant")
            self.images.append(image)
            self.labels.append(label)
            fg = np.argwhere(label)
            if len(fg) > 20000:  # a fixed subsample keeps memory small and sampling fast
                fg = fg[np.linspace(0, len(fg) - 1, 20000).astype(np.int64)]
            self.foreground.append(fg)
        self.foreground_fraction = float(foreground_fraction)
        self.augment = augment

    def batch(self, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Draw a batch.

        Returns
        -------
        x : numpy.ndarray of float32, shape (B, C, *patch_size)
        y : numpy.ndarray of int64, shape (B, 1, *patch_size), values {0, 1}
        """
        n_fg = int(round(batch_size * self.foreground_fraction))
        xs, ys = [], []
        for b in range(batch_size):
            i = int(rng.integers(len(self.images)))
            image, label, fg = self.images[i], self.labels[i], self.foreground[i]
            shape = label.shape
            if b >= batch_size - n_fg and len(fg):
                centre = fg[int(rng.integers(len(fg)))]
                start = [
                    int(np.clip(c - p // 2, 0, s - p))
                    for c, p, s in zip(centre, self.patch_size, shape, strict=True)
                ]
            else:
                start = [int(rng.integers(s - p + 1)) for p, s in zip(self.patch_size, shape,
                                                                       strict=True)]
            sl = tuple(slice(s, s + p) for s, p in zip(start, self.patch_size, strict=True))
            x = image[(slice(None),) + sl]
            y = label[sl]
            if self.augment:
                x, y = self._augment(x, y, rng)
            xs.append(np.ascontiguousarray(x))
            ys.append(np.ascontiguousarray(y))
        return np.stack(xs).astype(np.float32), np.stack(ys)[:, None].astype(np.int64)

    def _augment(
        self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        for axis in range(y.ndim):
            if rng.random() < 0.5:
                x, y = np.flip(x, axis + 1), np.flip(y, axis)
        if y.shape[-1] == y.shape[-2]:
            k = int(rng.integers(4))
            x, y = np.rot90(x, k, axes=(-2, -1)), np.rot90(y, k, axes=(-2, -1))
        scale = 1.0 + rng.uniform(-0.1, 0.1)
        shift = rng.uniform(-0.1, 0.1)
        return x * np.float32(scale) + np.float32(shift), y

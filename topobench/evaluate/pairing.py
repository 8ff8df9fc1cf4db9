"""Pairing: prediction and target files matched by case name (:func:`pair_files`)."""

from __future__ import annotations

import errno
import os
import stat
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from topobench.errors import InvalidParameterError
from topobench.io import file_stem, is_supported

__all__ = ["CasePair", "Pairing", "pair_files"]


@dataclass(frozen=True)
class CasePair:
    """A prediction file and its target file, matched by case name."""

    case: str
    pred: Path
    target: Path


@dataclass(frozen=True)
class Pairing:
    """The outcome of :func:`pair_files`.

    Attributes
    ----------
    pairs : tuple of CasePair
        Sorted by case name.
    unmatched_pred, unmatched_target : tuple of Path
        Files with no partner in the other folder.
    ambiguous : tuple of (str, tuple of Path)
        Case names that several files of one folder map to (e.g. ``a.png`` and ``a.npy``).
    ignored : tuple of Path
        Files whose format topobench does not read (listed, not evaluated).
    unreadable : tuple of (str, str)
        ``(case, reason)`` for entries that cannot be read at all: broken symbolic links (their
        target missing, or a loop), entries that are not regular files, and case names holding
        a line break or another control character (which no CSV line could carry).
    """

    pairs: tuple[CasePair, ...]
    unmatched_pred: tuple[Path, ...] = ()
    unmatched_target: tuple[Path, ...] = ()
    ambiguous: tuple[tuple[str, tuple[Path, ...]], ...] = ()
    ignored: tuple[Path, ...] = ()
    unreadable: tuple[tuple[str, str], ...] = ()

    def problems(self) -> list[tuple[str, str]]:
        """``(case, reason)`` for every file that could not be paired."""
        out = [
            (file_stem(p), f"no target file for prediction {p.name}") for p in self.unmatched_pred
        ]
        out += [
            (file_stem(p), f"no prediction file for target {p.name}") for p in self.unmatched_target
        ]
        out += [
            (case, "ambiguous: several files map to this case: " + ", ".join(p.name for p in paths))
            for case, paths in self.ambiguous
        ]
        return out + list(self.unreadable)


def _case_key(path: Path, suffix: str) -> str:
    stem = file_stem(path)
    if suffix and stem.endswith(suffix) and len(stem) > len(suffix):
        return stem[: -len(suffix)]
    return stem


def _bad_name(case: str) -> str | None:
    """Why a case name cannot be a CSV field that every reader splits the same way, or None.

    Line breaks of any kind (``\\n``, ``\\r``, form feed, U+2028, ...) and other control
    characters are refused; a tab is allowed.
    """
    for char in case:
        if char != "\t" and (
            unicodedata.category(char) in ("Cc", "Zl", "Zp") or len(f"a{char}a".splitlines()) > 1
        ):
            return (
                f"case name {case!r} contains the control or line-break character "
                f"U+{ord(char):04X}, which cases.csv cannot hold on one line; rename the file"
            )
    return None


def _broken(path: Path, exc: OSError) -> str:
    if path.is_symlink():
        try:
            dest = os.readlink(path)
        except OSError:
            dest = "?"
        if exc.errno == errno.ELOOP:
            return f"{path}: symbolic link loop (-> {dest})"
        return f"{path}: broken symbolic link (-> {dest}: {exc.strerror or exc})"
    return f"{path}: cannot be read ({exc.strerror or exc})"


def _index(
    folder: Path, suffix: str
) -> tuple[dict[str, list[Path]], list[Path], dict[str, list[str]]]:
    """``(case -> files, ignored files, case -> reasons its entries cannot be read)``."""
    if not folder.is_dir():
        raise InvalidParameterError(f"{folder}: expected a folder of masks, got no such folder")
    keyed: dict[str, list[Path]] = {}
    ignored: list[Path] = []
    broken: dict[str, list[str]] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        try:
            mode = path.stat().st_mode  # follows symbolic links
        except OSError as exc:  # a dangling link, a loop: never silently left out
            broken.setdefault(_case_key(path, suffix), []).append(_broken(path, exc))
            continue
        if stat.S_ISDIR(mode):
            continue
        if not is_supported(path):
            ignored.append(path)
            continue
        if not stat.S_ISREG(mode):
            broken.setdefault(_case_key(path, suffix), []).append(f"{path}: not a regular file")
            continue
        keyed.setdefault(_case_key(path, suffix), []).append(path)
    return keyed, ignored, broken


def pair_files(
    pred_dir: str | Path,
    target_dir: str | Path,
    *,
    pred_suffix: str = "",
    target_suffix: str = "",
) -> Pairing:
    """Match prediction and target files by name stem.

    The case name of a file is its name without the format suffix (``.png``, ``.nii.gz``, ...)
    and, when it ends with it, without ``pred_suffix`` / ``target_suffix`` (``case_1_pred.png``
    -> ``case_1`` with ``pred_suffix="_pred"``). Hidden files and sub-folders are skipped.

    Parameters
    ----------
    pred_dir, target_dir : path
        Flat folders of mask files.
    pred_suffix, target_suffix : str
        Name endings to remove before matching.

    Broken symbolic links (and loops) and case names with line breaks or control characters are
    listed in :attr:`Pairing.unreadable`, by name, never left out silently.

    Returns
    -------
    Pairing

    Raises
    ------
    InvalidParameterError
        A folder does not exist.
    """
    preds, ignored_p, broken_p = _index(Path(pred_dir), pred_suffix)
    targets, ignored_t, broken_t = _index(Path(target_dir), target_suffix)
    pairs, un_p, un_t, ambiguous, unreadable = [], [], [], [], []
    for case in sorted(set(preds) | set(targets) | set(broken_p) | set(broken_t)):
        p, t = preds.get(case, []), targets.get(case, [])
        broken = broken_p.get(case, []) + broken_t.get(case, [])
        bad = _bad_name(case)
        if broken or bad:
            unreadable.append((case, "; ".join(([bad] if bad else []) + broken)))
        elif len(p) > 1 or len(t) > 1:
            ambiguous.append((case, tuple(p + t)))
        elif p and t:
            pairs.append(CasePair(case, p[0], t[0]))
        elif p:
            un_p.append(p[0])
        else:
            un_t.append(t[0])
    return Pairing(
        pairs=tuple(pairs),
        unmatched_pred=tuple(un_p),
        unmatched_target=tuple(un_t),
        ambiguous=tuple(ambiguous),
        ignored=tuple(ignored_p + ignored_t),
        unreadable=tuple(unreadable),
    )


"""Leaderboards shipped with topobench: published results as tidy CSV files (package data).

``topobench table contextloss2025 --table 1`` reads the packaged file by name, from an installed
wheel as from a clone; the conventions of each file are in ``leaderboards/README.md`` of the
repository.

>>> "contextloss2025" in leaderboard_names()
True
>>> leaderboard_path("contextloss2025").name
'contextloss2025.csv'
"""

from __future__ import annotations

from pathlib import Path

from topobench.errors import InvalidParameterError

__all__ = ["leaderboard_names", "leaderboard_path", "resolve_source"]


def _folder() -> Path:
    # The CSV files are package data next to this module (pyproject.toml, package-data).
    return Path(__file__).resolve().parent


def leaderboard_names() -> tuple[str, ...]:
    """Names of the packaged leaderboards (file names without ``.csv``), sorted."""
    return tuple(sorted(p.stem for p in _folder().glob("*.csv")))


def leaderboard_path(name: str) -> Path:
    """Path of a packaged leaderboard CSV by name (``"contextloss2025"`` or with ``.csv``).

    Raises
    ------
    InvalidParameterError
        No packaged leaderboard has that name.
    """
    stem = name[:-4] if name.lower().endswith(".csv") else name
    path = _folder() / f"{stem}.csv"
    if not path.is_file():
        raise InvalidParameterError(
            f"no packaged leaderboard {name!r}: expected one of {', '.join(leaderboard_names())}"
        )
    return path


def resolve_source(source: str | Path) -> Path:
    """A results source as a path: an existing path as is, else a packaged leaderboard's name.

    A path that exists always wins over a packaged name.
    """
    path = Path(source)
    if path.exists():
        return path
    stem = path.name[:-4] if path.name.lower().endswith(".csv") else path.name
    if str(path.parent) == "." and stem in leaderboard_names():
        return leaderboard_path(stem)
    return path

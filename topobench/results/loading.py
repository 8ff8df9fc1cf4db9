"""Finding and loading results: run directories, evaluation outputs and tidy CSVs, checked.

:func:`load_results` is the one entry point: it finds what each source holds, reads it
(:mod:`topobench.results.records`, :mod:`topobench.results.tidy`), names runs and methods
apart, and checks every figure (:mod:`topobench.results.checks`).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from topobench.errors import ReadError
from topobench.results.checks import check_rows, merge_runs, merge_shared_pretraining
from topobench.results.records import evaluation_rows, run_rows
from topobench.results.tidy import empty_tidy, normalise_tidy, read_tidy_csv


@dataclass
class _Found:
    """One file or run directory to read: what it is, its run id, how it was named."""

    kind: Literal["run", "cases", "tidy"]
    path: Path
    run_id: str
    given: str
    auto_method: bool = False


def load_results(
    sources: Iterable[str | Path], *, include_running: bool = False
) -> pd.DataFrame:
    """Load run directories, per-case CSVs and tidy CSVs into one tidy table, checked.

    Each source may be a run directory (holding ``run.json``), a directory searched recursively
    for run directories and ``cases.csv`` files, a tidy CSV (a leaderboard: it has ``metric``
    and ``value`` columns) or a per-case CSV (it has a ``case`` column).

    A run is identified by its path relative to the source it was found in (``exp1/modelA``;
    the full given path where two sources would give the same one); its ``run`` column holds
    that identifier. An evaluation output's method defaults to its folder's name, or to its run
    identifier when two runs of one dataset share that name. A file or directory reached twice
    is read once.

    Every figure is checked before it is returned; a refused figure raises :class:`ReadError`
    naming the file or run, the case and the metric:

    - values outside the metric's range (:data:`topobench.catalog.METRICS`: Dice 1.7, e0 = -5,
      fractions written in percent), infinities and NaN (an empty field means "not measured"
      and is simply absent);
    - one case listed twice in one run with different values;
    - two runs holding the same configuration, fold, seed and metric (e.g. two copies of one
      experiment in different folders) unless they hold the same cases with the same values,
      as every fine-tuning run of one pretrained model does for its nnU-Net rows: those count
      once. Rows of different runs of one seed are never averaged; runs that differ only in
      their seed are distinct runs of one configuration, which the tables aggregate over
      seeds (:func:`topobench.results.aggregate_cells`).

    Parameters
    ----------
    sources : iterable of paths
    include_running : bool
        Also read runs, and ``topobench evaluate`` outputs (``summary.json`` beside
        ``cases.csv``), whose ``status`` is not ``"complete"``; otherwise they are skipped with
        a :class:`UserWarning` naming them.

    Returns
    -------
    pandas.DataFrame
        The tidy table (:data:`TIDY_COLUMNS`).

    Raises
    ------
    ReadError
        If a source does not exist, holds nothing readable, a file is malformed or a figure is
        refused (see above). Sources holding only unfinished runs give an empty table (with
        the warnings).
    """
    found: list[_Found] = []
    for source in sources:
        path = Path(source)
        if not path.exists():
            raise ReadError(f"no such file or directory: {path}")
        if path.is_file():
            found.append(_classify_file(path))
            continue
        entries = _find_in_directory(path)
        if not entries:
            raise ReadError(f"{path}: expected run directories (run.json) or cases.csv, "
                            "found none")
        found.extend(entries)
    found = _unique_runs(found)
    parts: list[tuple[pd.DataFrame, _Found]] = []
    for entry in found:
        rows = _read_found(entry, include_running=include_running)
        if not rows.empty:
            parts.append((rows, entry))
    if not parts:
        return empty_tidy()
    _name_methods_apart(parts)
    checked = []
    for rows, entry in parts:
        rows = normalise_tidy(rows)
        checked.append(check_rows(rows, origin=entry.given))
    merged = merge_runs(normalise_tidy(pd.concat(checked, ignore_index=True)))
    return merge_shared_pretraining(merged)


def _classify_file(path: Path) -> _Found:
    given = path.as_posix()
    if path.name == "run.json":
        return _Found("run", path.parent, path.parent.resolve().name, path.parent.as_posix())
    try:
        header = pd.read_csv(path, nrows=0).columns
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError,
            UnicodeDecodeError) as exc:
        raise ReadError(f"cannot read {path}: {exc}") from exc
    if {"metric", "value"} <= set(header):
        return _Found("tidy", path, "", given)
    if "case" in header:
        if path.stem == "cases":
            return _Found("cases", path, path.parent.resolve().name, path.parent.as_posix(),
                          auto_method=True)
        return _Found("cases", path, path.stem, given, auto_method=True)
    raise ReadError(f"{path}: expected a tidy CSV (metric, value) or a per-case CSV (case), "
                    f"got columns {list(header)}")


def _relative_id(path: Path, root: Path) -> str:
    relative = path.relative_to(root).as_posix()
    return root.resolve().name if relative == "." else relative


def _find_in_directory(path: Path) -> list[_Found]:
    if (path / "run.json").is_file():
        run_dirs = [path]
    else:
        run_dirs = sorted(p.parent for p in path.rglob("run.json"))
    found = [_Found("run", d, _relative_id(d, path), d.as_posix()) for d in run_dirs]
    for cases in sorted(path.rglob("cases.csv")):
        if not any(run_dir == cases.parent or run_dir in cases.parents for run_dir in run_dirs):
            found.append(_Found("cases", cases, _relative_id(cases.parent, path),
                                cases.parent.as_posix(), auto_method=True))
    return found


def _unique_runs(found: list[_Found]) -> list[_Found]:
    """Drop entries reached twice; give runs whose identifiers collide their full paths."""
    unique: dict[Path, _Found] = {}
    for entry in found:
        unique.setdefault(entry.path.resolve(), entry)
    entries = list(unique.values())
    by_id: dict[str, set[Path]] = {}
    for entry in entries:
        if entry.kind != "tidy":
            by_id.setdefault(entry.run_id, set()).add(entry.path.resolve())
    for entry in entries:
        if entry.kind != "tidy" and len(by_id[entry.run_id]) > 1:
            entry.run_id = entry.given
    return entries


def _read_found(entry: _Found, *, include_running: bool) -> pd.DataFrame:
    if entry.kind == "tidy":
        return read_tidy_csv(entry.path)
    if entry.kind == "run":
        rows = run_rows(entry.path, include_running=include_running, run_id=entry.run_id)
        if rows.empty:
            warnings.warn(f"skipped {entry.path}: run is not complete", UserWarning,
                          stacklevel=4)
        return rows
    return evaluation_rows(entry.path, include_running=include_running, stacklevel=5,
                            run_id=entry.run_id)


def _name_methods_apart(parts: list[tuple[pd.DataFrame, _Found]]) -> None:
    """Evaluation outputs of one dataset whose folders share a name: method = run id."""
    owners: dict[tuple[str, str], set[str]] = {}
    for rows, entry in parts:
        if entry.auto_method and not rows.empty:
            for dataset, method in set(zip(rows["dataset"], rows["method"])):
                owners.setdefault((dataset, method), set()).add(entry.run_id)
    for i, (rows, entry) in enumerate(parts):
        if not entry.auto_method or rows.empty:
            continue
        clash = [len(owners[(d, m)]) > 1 for d, m in zip(rows["dataset"], rows["method"])]
        if any(clash):
            parts[i] = (rows.assign(method=entry.run_id), entry)

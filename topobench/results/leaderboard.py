"""Leaderboard files: published results and users' own runs in one tidy CSV.

A leaderboard is a tidy CSV (:data:`~topobench.results.tidy.TIDY_COLUMNS`) whose ``source``
column names each entry, e.g. ``"Schacht et al. 2025"`` for the paper's figures. Tables
rendered from it show a Source column as soon as more than one entry is present.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from topobench.errors import InvalidParameterError
from topobench.results.checks import check_rows
from topobench.results.loading import load_results
from topobench.results.tidy import normalise_tidy, read_tidy_csv, write_tidy_csv


def add_to_leaderboard(
    runs: Iterable[str | Path],
    leaderboard: str | Path,
    *,
    name: str,
    reference: str = "",
    replace: bool = False,
) -> int:
    """Append the results of ``runs`` to ``leaderboard`` under the entry ``name``.

    Every per-case figure is appended with its full configuration (dataset, method, weight,
    epochs, post-processing, fold, metric protocol, topobench version) and its run, so that
    the tables aggregate it like any run. The runs pass the checks of :func:`load_results`
    first (and the leaderboard those of :func:`~topobench.results.checks.check_rows`):
    nothing is appended when a figure is refused. A missing leaderboard file is created.

    Parameters
    ----------
    runs : iterable of paths
        Run directories, folders of runs, per-case or tidy CSVs (as :func:`load_results`).
    leaderboard : path
        The leaderboard CSV.
    name : str
        Entry name, stored in the ``source`` column.
    reference : str
        Optional citation or note stored with every row.
    replace : bool
        Replace an existing entry of that name instead of refusing.

    Returns
    -------
    int
        Number of rows appended.

    Raises
    ------
    InvalidParameterError
        If ``name`` is empty, already present (without ``replace``) or the runs hold nothing.
    ReadError
        If a run or the leaderboard holds a refused figure (see :func:`load_results`).
    """
    name = name.strip()
    if not name:
        raise InvalidParameterError("expected a non-empty entry name, got ''")
    leaderboard = Path(leaderboard)
    new = load_results(runs)
    if new.empty:
        raise InvalidParameterError("expected results to add, the runs hold none (runs that "
                                    "are not complete are skipped)")
    new = new.assign(source=name)
    if reference:
        new = new.assign(reference=reference)
    if leaderboard.exists():
        existing = check_rows(read_tidy_csv(leaderboard), origin=str(leaderboard))
        if (existing["source"] == name).any():
            if not replace:
                raise InvalidParameterError(
                    f"{leaderboard} already has an entry {name!r}; choose another name or "
                    "replace it"
                )
            existing = existing[existing["source"] != name]
        combined = pd.concat([existing, new], ignore_index=True)
    else:
        combined = new
    leaderboard.parent.mkdir(parents=True, exist_ok=True)
    write_tidy_csv(normalise_tidy(combined), leaderboard)
    return len(new)

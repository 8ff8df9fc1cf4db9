"""The durable store of an evaluation: the files of its output folder.

- ``cases.csv`` and ``inputs.csv`` are append-only line logs (:class:`LineLog`): one whole line
  per finished case, flushed and fsync'ed, so that a killed run loses at most the cases in
  flight; :func:`read_rows` reads them back (cutting a torn last line off first when asked);
- every whole-file write (``summary.json``, a sorted ``cases.csv``, the final ``inputs.csv``,
  the label runner's files, the nnU-Net driver's ``summary.json``) goes through
  :func:`atomic_write_text`: a temporary file, fsync, then an atomic rename;
- :class:`CaseStore` is the three logs of one run opened together, with what resume keeps.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from topobench.atomic import atomic_write_text
from topobench.errors import InvalidParameterError
from topobench.evaluate.case import CaseResult, source_names
from topobench.evaluate.errors import DiskFullError, OutputError, ResumeError
from topobench.evaluate.pairing import CasePair
from topobench.run_record import CaseRow

__all__ = [
    "CASES_FILE",
    "FAILURES_FILE",
    "INPUTS_FILE",
    "LOCK_FILE",
    "SUMMARY_FILE",
    "CaseStore",
    "LineLog",
    "read_rows",
    "rewrite_csv",
    "write_json_atomic",
]

CASES_FILE = "cases.csv"
FAILURES_FILE = "failures.csv"
SUMMARY_FILE = "summary.json"
INPUTS_FILE = "inputs.csv"
LOCK_FILE = ".topobench-evaluate.lock"
FAILURE_COLUMNS = ("case", "pred", "target", "reason")
INPUT_COLUMNS = ("case", "pred", "target", "pred_fingerprint", "target_fingerprint", "spacing")


# --------------------------------------------------------------------------------------------
# Whole files, atomically
# --------------------------------------------------------------------------------------------


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON (NaN refused) with :func:`atomic_write_text`."""
    atomic_write_text(path, json.dumps(obj, indent=2, allow_nan=False) + "\n")


def csv_line(values: Sequence[Any]) -> str:
    """One CSV line (``\\n``-terminated) that every CSV reader splits back into ``values``."""
    buf = io.StringIO()
    # QUOTE_MINIMAL quotes a field with "\n" but not one with a lone "\r" (a failure's case).
    quote_all = any(isinstance(v, str) and "\r" in v for v in values)
    csv.writer(
        buf, lineterminator="\n", quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL
    ).writerow(values)
    return buf.getvalue()


def rewrite_csv(path: str | Path, columns: Sequence[str], rows: Sequence[Any]) -> None:
    """Replace a CSV file by a header and ``rows`` (dicts keyed by column, or sequences)."""
    lines = [csv_line(columns)]
    for row in rows:
        lines.append(csv_line([row[c] for c in columns] if isinstance(row, dict) else row))
    atomic_write_text(path, "".join(lines))


# --------------------------------------------------------------------------------------------
# Line logs
# --------------------------------------------------------------------------------------------


class LineLog:
    """An append-only CSV file written one whole, fsync'ed line at a time."""

    def __init__(self, path: Path, columns: Sequence[str], *, keep: bool):
        self.path = path
        if not keep or not path.exists() or path.stat().st_size == 0:
            with open(path, "w", newline="", encoding="utf-8") as f:
                f.write(csv_line(columns))
                f.flush()
                os.fsync(f.fileno())
        self._file = open(path, "a", newline="", encoding="utf-8")

    def append(self, values: Sequence[Any], *, sync: bool = True) -> None:
        """Write one line and flush it; ``sync``: also fsync (durable across a power loss)."""
        self._file.write(csv_line(values))
        self._file.flush()
        if sync:
            os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def _truncate(path: Path, size: int) -> None:
    with open(path, "r+b") as f:
        f.truncate(size)
        os.fsync(f.fileno())


def read_rows(path: Path, columns: Sequence[str], *, repair: bool) -> list[dict[str, str]]:
    """Rows of a line log; with ``repair``, cut a torn last line off the file first.

    Raises
    ------
    ResumeError
        The header is not ``columns``, or a line (other than a torn last one) has another
        number of fields.
    """
    data = path.read_bytes()
    if repair and data and not data.endswith(b"\n"):
        data = data[: data.rfind(b"\n") + 1]
        _truncate(path, len(data))
    # Split at "\n" only: str.splitlines would also split at form feeds, U+2028 and the like.
    lines = [line + "\n" for line in data.decode("utf-8").split("\n")]
    if lines and lines[-1] == "\n":  # after the last line break
        lines.pop()
    if not lines:
        return []
    header = next(csv.reader([lines[0]]))
    if header != list(columns):
        raise ResumeError(
            f"{path}: expected columns {','.join(columns)}, got {','.join(header)}; this file was "
            "written with another metric selection or is not a topobench cases file"
        )
    rows = []
    for i, line in enumerate(lines[1:], start=2):
        values = next(csv.reader([line]), [])
        if len(values) != len(columns):
            if repair and i == len(lines):  # a torn last line that happens to end in "\n"
                _truncate(path, len(data) - len(line.encode("utf-8")))
                break
            raise ResumeError(f"{path}: line {i} has {len(values)} fields, expected {len(columns)}")
        rows.append(dict(zip(columns, values)))
    return rows


def read_inputs(path: Path) -> dict[str, dict[str, str]]:
    """Last ``inputs.csv`` record of each case ({} when the file is absent or unreadable)."""
    if not path.exists():
        return {}
    try:
        rows = read_rows(path, INPUT_COLUMNS, repair=True)
    except (ResumeError, csv.Error, UnicodeDecodeError):  # lost to a crash: evaluate again
        return {}
    return {row["case"]: row for row in rows}


def count_rows(path: Path) -> int:
    """Result rows in ``cases.csv`` (a header alone, or a torn first row, holds none)."""
    return max(path.read_bytes().count(b"\n") - 1, 0) if path.exists() else 0


def spacing_text(spacing: tuple[float, ...] | None) -> str:
    """``inputs.csv``'s spacing field: ``ZxHxW`` (6 significant digits), empty for none."""
    return "" if spacing is None else "x".join(f"{v:.6g}" for v in spacing)


# --------------------------------------------------------------------------------------------
# The logs of one run
# --------------------------------------------------------------------------------------------


class CaseStore:
    """``cases.csv``, ``inputs.csv`` and ``failures.csv`` of one run, open for appending.

    Parameters
    ----------
    out : Path
    columns : sequence of str
        ``case, shape, <metrics>, seconds``.
    keep : bool
        Append to the existing ``cases.csv`` / ``inputs.csv`` (resume); ``failures.csv`` always
        starts afresh (failed cases are retried).
    """

    def __init__(self, out: Path, columns: Sequence[str], *, keep: bool):
        self.out = out
        self.columns = list(columns)
        self.metrics = self.columns[2:-1]
        self._cases = LineLog(out / CASES_FILE, columns, keep=keep)
        self._inputs = LineLog(out / INPUTS_FILE, INPUT_COLUMNS, keep=keep)
        self._failures = LineLog(out / FAILURES_FILE, FAILURE_COLUMNS, keep=False)

    def add_problem(self, case: str, reason: str) -> None:
        """A case that could not be paired (no partner file, ambiguous, unreadable)."""
        self._failures.append([case, "", "", reason])

    def add(self, result: CaseResult, source: Any) -> None:
        """Record a finished case: a row (:class:`topobench.run_record.CaseRow`, the schema
        the results reader parses) and its inputs, or a failure."""
        if not result.ok:
            pred, target = (
                (source.pred, source.target) if isinstance(source, CasePair) else ("", "")
            )
            self._failures.append([result.case, pred, target, result.error])
            return
        row = CaseRow(result.case, result.shape, result.metrics, result.seconds)
        # The fingerprint first: a row without one is evaluated again on resume, so it needs no
        # fsync of its own (the row's fsync follows; a kill loses neither).
        self._inputs.append(
            [result.case, *source_names(source), *result.fingerprints,
             spacing_text(result.spacing)],
            sync=False,
        )
        self._cases.append(row.to_row(self.metrics))

    def close(self) -> None:
        self._cases.close()
        self._inputs.close()
        self._failures.close()

    def rows(self) -> list[dict[str, str]]:
        return read_rows(self.out / CASES_FILE, self.columns, repair=False)

    def inputs(self) -> dict[str, dict[str, str]]:
        return read_inputs(self.out / INPUTS_FILE)

    def finish(self) -> None:
        """Sort ``cases.csv`` by case name (workers finish out of order) and rewrite
        ``inputs.csv`` to one record per row, in the same order."""
        rows = self.rows()
        ordered = sorted(rows, key=lambda row: row["case"])
        if ordered != rows:
            rewrite_csv(self.out / CASES_FILE, self.columns, ordered)
        inputs = self.inputs()
        rewrite_csv(
            self.out / INPUTS_FILE,
            INPUT_COLUMNS,
            [inputs[c] for c in sorted({row["case"] for row in rows}) if c in inputs],
        )


# --------------------------------------------------------------------------------------------
# The output folder
# --------------------------------------------------------------------------------------------


def output_error(exc: OSError, out: Path, action: str) -> OutputError:
    """A clean error for a failed write in the output folder (full disk: resume later)."""
    where = exc.filename or out
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError(
            f"no space left on the device while {action} ({where}): the run stopped. The "
            f"finished cases are saved in {out}; free some space, then continue the run with "
            "resume=True"
        )
    return OutputError(f"cannot write {where} while {action}: {exc.strerror or exc}")


def prepare_out(out: Path) -> None:
    """Create the output folder; refuse a file, a path through a file, a read-only folder."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: the output folder is a file; choose a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise OutputError(
            f"{out}: cannot create the output folder, a part of its path is a file"
        ) from None
    except OSError as exc:
        raise OutputError(
            f"{out}: cannot create the output folder ({exc.strerror or exc})"
        ) from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise OutputError(f"{out}: the output folder is not writable (permission denied)")


def existing_results(out: Path, n_rows: int) -> InvalidParameterError:
    """The error for an output folder holding results, without resume or overwrite."""
    try:
        summary = json.loads((out / SUMMARY_FILE).read_text(encoding="utf-8"))
        status = summary.get("status", "unknown")
    except (OSError, ValueError, AttributeError):
        status = "unknown"
    if status == "running":
        state = "an interrupted run (summary.json: status running)"
    elif status == "complete":
        state = "a finished run (summary.json: status complete)"
    else:
        state = "an earlier run"
    return InvalidParameterError(
        f"{out} already holds results: {n_rows} cases in {CASES_FILE}, from {state}. If that "
        "run was interrupted and this is the same evaluation (same folders and options), finish "
        "it with resume=True: finished cases are kept, the others evaluated. To discard those "
        "results and evaluate everything again (other predictions, other options), use "
        "overwrite=True. Or write to another output folder"
    )

"""The run record (``run.json``) and the per-case row (a line of ``cases.csv``), one schema.

:class:`RunRecord` is what topobench's trainers and the nnU-Net driver write as ``run.json``
and what :mod:`topobench.results` reads; :class:`CaseRow` is one line of a per-case metric
file. Both are frozen: :func:`dataclasses.replace` gives an updated copy (status, timings).
This module imports the standard library and :mod:`topobench.catalog` only.

A run directory of format ``topobench-run/2`` (:data:`topobench.catalog.RUN_FORMAT`)::

    run.json                           the run record
    evaluation/<variant>/cases.csv     per-case metrics of each prediction variant
                                       (pretrained, raw, postprocessed), with the evaluation
                                       store's summary.json, inputs.csv, failures.csv

Format ``topobench-run/1`` (still read) has ``metrics_<variant>.csv`` beside ``run.json``
instead.

>>> record = RunRecord(dataset="Roads", loss="closs", method="CLoss", gamma=0.2, fold=0, seed=1)
>>> RunRecord.from_dict(record.to_dict()) == record
True
>>> row = CaseRow("a", (64, 64), {"dice": 0.5}, 0.25)
>>> row.to_row(["dice", "e0"])
['a', '64x64', '0.5', '', '0.250']
>>> CaseRow.from_row(dict(zip(case_columns(["dice", "e0"]), row.to_row(["dice", "e0"]))))
CaseRow(case='a', shape=(64, 64), metrics={'dice': 0.5}, seconds=0.25)
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from topobench.atomic import atomic_write_text
from topobench.catalog import RUN_FORMAT, RUN_FORMATS_READ
from topobench.errors import InvalidParameterError, ReadError

__all__ = [
    "PREDICTION_VARIANTS",
    "CaseRow",
    "RunRecord",
    "case_columns",
    "read_run_record",
    "variant_cases_path",
    "write_run_record",
]

#: The prediction variants of a run: the pretraining model's, the fine-tuned model's as it is
#: and after post-processing.
PREDICTION_VARIANTS: tuple[str, ...] = ("pretrained", "raw", "postprocessed")

_TIMING_STAGES = {
    "seconds_per_epoch": ("pretrain", "finetune"),
    "seconds_total": ("pretrain", "finetune", "inference", "evaluation"),
}


def _timings(stage: str) -> Callable[[], dict[str, float | None]]:
    return lambda: dict.fromkeys(_TIMING_STAGES[stage])


@dataclass(frozen=True, kw_only=True)
class RunRecord:
    """One run's record, the content of ``run.json``.

    Every key ``run.json`` holds is a field (in the order they are written); fields a writer
    does not know are None. Keys of other tools are kept in ``extra`` and written back.

    Attributes
    ----------
    format : str
        ``"topobench-run/1"`` or ``"topobench-run/2"`` (:data:`topobench.catalog.RUN_FORMAT`
        for new records; a record read keeps the format it was written with).
    dataset, loss, method : str
        Dataset name, ``make_loss`` name and display name of the fine-tuning loss (required).
    gamma, alpha : float or None
        Loss weight and pixel-loss share.
    critical_mask : str or None
        ``"none"``, ``"skeleton"``, ``"thin"`` or ``"context"``; None: derived from the loss.
    loss_options : dict or None
        Keyword options the loss was built with.
    epochs, finetune_epochs : int or None
        Pretraining epochs (N) and fine-tuning epochs.
    fold, seed : int or None
        Cross-validation fold and random seed; runs differing only in seed are distinct runs
        of one configuration.
    protocol : dict, str or None
        The metric configuration (``resolve_protocol(...).to_dict()``).
    postprocessing : str or None
        Name of the post-processing of the ``postprocessed`` variant (``"keep_supported"``).
    device : str
    amp : bool or None
    versions : dict
        Package versions.
    seconds_per_epoch : dict
        ``{"pretrain", "finetune"}``: mean seconds per epoch (None when not run).
    seconds_total : dict
        ``{"pretrain", "finetune", "inference", "evaluation"}``: seconds.
    peak_memory_mb : float or None
    pretrained_from : str or None
    status : str
        ``"running"`` until the run is done, then ``"complete"`` (default when absent).
    eval_set : str or None
    eval_cases : list of str or None
    splits_file : str or None
    patch_size : list of int or None
    batch_size : int or None
    model : dict, str or None
        U-Net configuration, or the class name of another model.
    config : dict or None
        Every option of the trainer.
    started, finished : str or None
        ISO times.
    summary : dict or None
        Mean metrics per variant.
    wall_seconds_last_session : float or None
    trainer : str or None
        nnU-Net trainer class (nnU-Net runs).
    threshold : float or None
        Probability threshold that binarised the predictions, if any.
    topobench_version : str
    extra : dict
        Keys of other writers, kept as they are.
    """

    format: str = RUN_FORMAT
    topobench_version: str = ""
    dataset: str
    loss: str
    method: str
    gamma: float | None = None
    alpha: float | None = None
    critical_mask: str | None = None
    loss_options: dict[str, Any] | None = None
    epochs: int | None = None
    finetune_epochs: int | None = None
    fold: int | None = None
    seed: int | None = None
    protocol: dict[str, Any] | str | None = None
    postprocessing: str | None = None
    device: str = ""
    amp: bool | None = None
    versions: dict[str, Any] = field(default_factory=dict)
    seconds_per_epoch: dict[str, float | None] = field(
        default_factory=_timings("seconds_per_epoch"))
    seconds_total: dict[str, float | None] = field(default_factory=_timings("seconds_total"))
    peak_memory_mb: float | None = None
    pretrained_from: str | None = None
    status: str = "complete"
    eval_set: str | None = None
    eval_cases: list[str] | None = None
    splits_file: str | None = None
    patch_size: list[int] | None = None
    batch_size: int | None = None
    model: dict[str, Any] | str | None = None
    config: dict[str, Any] | None = None
    started: str | None = None
    summary: dict[str, dict[str, float]] | None = None
    finished: str | None = None
    wall_seconds_last_session: float | None = None
    trainer: str | None = None
    threshold: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problem = _record_problem({f.name: getattr(self, f.name) for f in _FIELDS})
        if problem is not None:
            raise InvalidParameterError(f"run record: {problem}")
        clash = set(self.extra) & set(_KEYS)
        if clash:
            raise InvalidParameterError(f"run record: extra keys {sorted(clash)} are fields")

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready record: every field under its key (None as null), then ``extra``."""
        out = {name: _copy(getattr(self, name)) for name in _KEYS}
        out.update(_copy(self.extra))
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, origin: str = "") -> RunRecord:
        """Validate a parsed ``run.json`` and return its record.

        Parameters
        ----------
        data : mapping
            The JSON object.
        origin : str
            File the record comes from, named in the messages.

        Raises
        ------
        ReadError
            If ``data`` is not an object, its ``format`` is not one of
            :data:`topobench.catalog.RUN_FORMATS_READ`, a required key (dataset, loss, method)
            is missing or a key holds a value of the wrong type; the message names the file
            and the key.
        """
        prefix = f"{origin}: " if origin else ""
        if not isinstance(data, Mapping):
            raise ReadError(f"{prefix}expected a JSON object, got {type(data).__name__}")
        fmt = data.get("format")
        if fmt not in RUN_FORMATS_READ:
            expected = " or ".join(repr(f) for f in RUN_FORMATS_READ)
            raise ReadError(f"{prefix}expected format {expected}, got {fmt!r}")
        values = {k: _copy(v) for k, v in data.items() if k in _KEYS}
        for key in ("versions", "seconds_per_epoch", "seconds_total", "device",
                    "topobench_version"):
            if values.get(key) is None:
                values.pop(key, None)  # null where a default exists: the default
        for key in _REQUIRED:
            if key not in values:
                raise ReadError(f"{prefix}key {key!r} is missing (expected a string)")
        problem = _record_problem(values)
        if problem is not None:
            raise ReadError(f"{prefix}{problem}")
        extra = {k: _copy(v) for k, v in data.items() if k not in _KEYS}
        return cls(**values, extra=extra)


_FIELDS = tuple(f for f in fields(RunRecord) if f.name != "extra")
_KEYS: tuple[str, ...] = tuple(f.name for f in _FIELDS)
_REQUIRED = ("dataset", "loss", "method")


def _copy(value: Any) -> Any:
    """A deep copy of JSON-like data (dicts, lists, tuples as lists)."""
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_copy(v) for v in value]
    return value


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def _is_str(v: Any) -> bool:
    return isinstance(v, str)


def _is_dict(v: Any) -> bool:
    return isinstance(v, Mapping)


def _list_of(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, list) and all(check(x) for x in v)


def _timing_dict(v: Any) -> bool:
    return isinstance(v, Mapping) and all(
        isinstance(k, str) and (x is None or _is_number(x)) for k, x in v.items())


def _summary(v: Any) -> bool:
    return isinstance(v, Mapping) and all(
        isinstance(m, Mapping) and all(x is None or isinstance(x, (int, float)) for x in m.values())
        for m in v.values())


#: key -> (check, what is expected, whether null is allowed)
_CHECKS: dict[str, tuple[Callable[[Any], bool], str, bool]] = {
    "format": (_is_str, "a string", False),
    "topobench_version": (_is_str, "a string", False),
    "dataset": (_is_str, "a string", False),
    "loss": (_is_str, "a string", False),
    "method": (_is_str, "a string", False),
    "gamma": (_is_number, "a finite number", True),
    "alpha": (_is_number, "a finite number", True),
    "critical_mask": (_is_str, "a string", True),
    "loss_options": (_is_dict, "an object", True),
    "epochs": (_is_int, "an integer", True),
    "finetune_epochs": (_is_int, "an integer", True),
    "fold": (_is_int, "an integer", True),
    "seed": (_is_int, "an integer", True),
    "protocol": (lambda v: _is_dict(v) or _is_str(v), "an object or a string", True),
    "postprocessing": (_is_str, "a string", True),
    "device": (_is_str, "a string", False),
    "amp": (lambda v: isinstance(v, bool), "true or false", True),
    "versions": (_is_dict, "an object", False),
    "seconds_per_epoch": (_timing_dict, "an object of finite numbers or nulls", False),
    "seconds_total": (_timing_dict, "an object of finite numbers or nulls", False),
    "peak_memory_mb": (_is_number, "a finite number", True),
    "pretrained_from": (_is_str, "a string", True),
    "status": (_is_str, "a string", False),
    "eval_set": (_is_str, "a string", True),
    "eval_cases": (_list_of(_is_str), "a list of strings", True),
    "splits_file": (_is_str, "a string", True),
    "patch_size": (_list_of(_is_int), "a list of integers", True),
    "batch_size": (_is_int, "an integer", True),
    "model": (lambda v: _is_dict(v) or _is_str(v), "an object or a string", True),
    "config": (_is_dict, "an object", True),
    "started": (_is_str, "a string", True),
    "summary": (_summary, "an object of objects of numbers", True),
    "finished": (_is_str, "a string", True),
    "wall_seconds_last_session": (_is_number, "a finite number", True),
    "trainer": (_is_str, "a string", True),
    "threshold": (_is_number, "a finite number", True),
}


def _record_problem(values: Mapping[str, Any]) -> str | None:
    """The first key of ``values`` holding a value of the wrong type, described; else None."""
    for key, value in values.items():
        check, what, nullable = _CHECKS[key]
        if value is None and nullable:
            continue
        if value is None or not check(value):
            return f"key {key!r} expected {what}{' or null' if nullable else ''}, got {value!r}"
    return None


def write_run_record(path: str | Path, record: RunRecord) -> None:
    """Write ``record`` as JSON to ``path`` atomically (:func:`topobench.atomic.atomic_write_text`:
    temporary file, fsync, rename); a reader sees the old file or the new one, never a part."""
    atomic_write_text(path, json.dumps(record.to_dict(), indent=2, allow_nan=False) + "\n")


def read_run_record(path: str | Path) -> RunRecord:
    """Read and validate ``run.json`` (see :meth:`RunRecord.from_dict`).

    Raises
    ------
    ReadError
        If the file is missing, not JSON, or not a valid record (the message names the file
        and the key).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReadError(f"missing {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReadError(f"cannot read {path}: {exc}") from exc
    return RunRecord.from_dict(data, origin=str(path))


def variant_cases_path(run_dir: str | Path, variant: str) -> Path:
    """The per-case file of ``variant`` in a run directory, in either layout.

    ``evaluation/<variant>/cases.csv`` (format 2) when it exists, else ``metrics_<variant>.csv``
    (format 1, which may not exist either).
    """
    run_dir = Path(run_dir)
    store = run_dir / "evaluation" / variant / "cases.csv"
    return store if store.is_file() else run_dir / f"metrics_{variant}.csv"


# --------------------------------------------------------------------------------------------
# per-case rows

_CASE_FIELDS = frozenset({"case", "shape", "seconds"})


def case_columns(metrics: Sequence[str]) -> list[str]:
    """Header of a per-case file: ``case, shape, <metrics>, seconds``."""
    return ["case", "shape", *metrics, "seconds"]


@dataclass(frozen=True)
class CaseRow:
    """One case's figures: a line of ``cases.csv``.

    Attributes
    ----------
    case : str
        Case name.
    shape : tuple of int
        Mask shape, ``()`` when unknown.
    metrics : dict
        Metric name -> value in the library's units (fractions in [0, 1] for Dice, clDice,
        AGS); a metric not measured is absent (an empty field in the file).
    seconds : float or None
        Evaluation time of the case.
    """

    case: str
    shape: tuple[int, ...] = ()
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float | None = None

    def to_row(self, metrics: Sequence[str]) -> list[str]:
        """The fields of the line under :func:`case_columns` ``(metrics)``.

        Values are written exactly (``repr``), a metric not measured as an empty field and the
        time with 3 decimals.
        """
        values = [repr(float(self.metrics[m])) if m in self.metrics else "" for m in metrics]
        seconds = "" if self.seconds is None else f"{self.seconds:.3f}"
        return [self.case, "x".join(map(str, self.shape)), *values, seconds]

    @classmethod
    def from_row(cls, row: Mapping[str, str | None], *, origin: str = "",
                 line: int | None = None, allow_nan: bool = False) -> CaseRow:
        """Parse one line (a mapping column -> text, as :class:`csv.DictReader` gives).

        Every column but ``case``, ``shape`` and ``seconds`` is a metric; an empty field is a
        metric not measured.

        Raises
        ------
        ReadError
            If there is no ``case``, a field is not a number, or (without ``allow_nan``) a
            metric holds NaN: a figure that could not be computed is refused, not averaged.
        """
        prefix = f"{origin}: " if origin else ""
        where = f" in line {line}" if line is not None else ""
        case = row.get("case")
        if case is None:
            raise ReadError(f"{prefix}expected a 'case' column, got {list(row)}")
        metrics: dict[str, float] = {}
        for column, text in row.items():
            if column in _CASE_FIELDS or column is None:
                continue
            value = _number(text, column, prefix)
            if value is None:
                continue
            if math.isnan(value) and not allow_nan:
                raise ReadError(
                    f"{prefix}column {column!r} holds NaN{where}; a figure that could not be "
                    "computed is refused, not averaged (leave the field empty if the metric "
                    "was not measured)")
            metrics[column] = value
        shape_text = (row.get("shape") or "").strip()
        try:
            shape = tuple(int(s) for s in shape_text.split("x")) if shape_text else ()
        except ValueError:
            raise ReadError(f"{prefix}column 'shape' expected a shape such as 64x64, "
                            f"got {shape_text!r}") from None
        return cls(case, shape, metrics, _number(row.get("seconds"), "seconds", prefix))


def _number(text: str | None, column: str, prefix: str) -> float | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise ReadError(f"{prefix}column {column!r} expected numbers, got {text!r}") from None

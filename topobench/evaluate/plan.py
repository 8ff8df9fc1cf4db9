"""The plan of a run: its validated options (:class:`Options`), its cases and where they came
from (:class:`Sources`), and what it does (:func:`make_plan`: refuse results present by accident,
check a resumed run's settings, keep the rows whose inputs are unchanged).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from topobench.errors import InvalidParameterError
from topobench.evaluate import backends
from topobench.evaluate.case import ArrayCase, unchanged
from topobench.evaluate.errors import ResumeError
from topobench.evaluate.pairing import CasePair, Pairing, _bad_name
from topobench.evaluate.store import (
    CASES_FILE,
    INPUTS_FILE,
    SUMMARY_FILE,
    count_rows,
    existing_results,
    read_inputs,
    read_rows,
    rewrite_csv,
)
from topobench.evaluate.summary import config_differences, has_e2, metric_columns, run_config
from topobench.metrics import Protocol, resolve_protocol

__all__ = ["Options", "Plan", "Sources", "checked_cases", "make_plan", "resolve_options"]

Case = CasePair | ArrayCase


@dataclass(frozen=True)
class Options:
    """The validated options of a run."""

    protocol: Protocol
    threshold: float | None = None
    channel: int | None = None
    spacing: float | tuple[float, ...] | None = None
    maps_dir: Path | None = None
    workers: int = 1
    dask: str | None = None
    dask_timeout: float = 30.0
    resume: bool = False
    overwrite: bool = False
    dataset: str | None = None


@dataclass(frozen=True)
class Sources:
    """What the cases are and where they came from (recorded in ``summary.json``)."""

    cases: tuple[Case, ...]
    folders: dict[str, str] = field(default_factory=dict)  # pred_dir, target_dir, suffixes
    provenance: dict[str, Any] | None = None
    pairing: Pairing | None = None


@dataclass
class Plan:
    """What a run does: its columns, the rows resume keeps and the cases left to evaluate."""

    config: dict[str, Any]
    columns: list[str]
    keep: bool  # append to the existing files (resume with results)
    todo: list[Case]
    kept: int = 0
    reevaluated: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    failures: list[tuple[str, str]] = field(default_factory=list)
    not_binary: list[str] = field(default_factory=list)

    @property
    def metrics(self) -> list[str]:
        return self.columns[2:-1]


def _checked_spacing(spacing: Any) -> float | tuple[float, ...] | None:
    if spacing is None:
        return None
    from topobench.metrics.distance import resolve_spacing

    values = (spacing,) if np.isscalar(spacing) else tuple(spacing)
    checked = resolve_spacing(values, len(values))
    return checked[0] if np.isscalar(spacing) else checked


def resolve_options(
    protocol: str | Protocol,
    overrides: Mapping[str, Any],
    *,
    threshold: float | None,
    channel: int | None,
    spacing: Any,
    maps_dir: str | Path | None,
    workers: int | None,
    resume: bool,
    overwrite: bool,
    **rest: Any,
) -> Options:
    """Resolve the protocol and check every option, before anything is written."""
    proto = resolve_protocol(protocol, **overrides)
    if threshold is not None and not math.isfinite(threshold):
        raise InvalidParameterError(f"threshold must be a finite number, got {threshold}")
    if channel is not None and (isinstance(channel, bool) or not isinstance(channel, int)):
        raise InvalidParameterError(f"channel must be an integer, got {channel!r}")
    n_workers = workers if workers is not None else backends.available_cores()
    if n_workers < 1:
        raise InvalidParameterError(f"workers must be >= 1, got {workers}")
    if resume and overwrite:
        raise InvalidParameterError("resume and overwrite exclude each other")
    return Options(
        proto, threshold, channel, _checked_spacing(spacing),
        Path(maps_dir) if maps_dir is not None else None, n_workers,
        resume=resume, overwrite=overwrite, **rest,
    )


def checked_cases(cases: Sequence[Case]) -> tuple[Case, ...]:
    out = tuple(cases)
    seen: set[str] = set()
    for case in out:
        if not isinstance(case, (CasePair, ArrayCase)):
            raise InvalidParameterError(
                f"cases: expected CasePair or ArrayCase items, got {type(case).__name__}"
            )
        bad = _bad_name(case.case)
        if bad:
            raise InvalidParameterError(bad)
        if case.case in seen:
            raise InvalidParameterError(f"cases: the case name {case.case!r} is given twice")
        seen.add(case.case)
    return out


def _recorded(out: Path, options: Options, sources: Sources, config: dict) -> dict[str, Any]:
    """The previous ``summary.json`` of a resumed run, checked against this run's settings."""
    try:
        previous = json.loads((out / SUMMARY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ResumeError(
            f"{out}: cannot resume without a readable {SUMMARY_FILE} recording the metric "
            "configuration"
        ) from None
    now = {"config": config, **sources.folders}
    if sources.provenance is not None:
        now["provenance"] = sources.provenance
    diffs = config_differences(previous, now)
    if diffs:
        raise ResumeError(
            f"{out}: cannot resume: the recorded configuration differs from this run's "
            f"({'; '.join(diffs)}). Rows computed with the recorded settings would mix with "
            "this run's. Resume with the recorded settings, or start again with "
            "overwrite=True (or another output folder)"
        )
    return previous


def _keep_unchanged(out: Path, plan: Plan, cases: tuple[Case, ...]) -> None:
    """Resume: keep only the rows whose inputs are still the ones they were computed from."""
    cases_path = out / CASES_FILE
    rows = read_rows(cases_path, plan.columns, repair=True)
    recorded = read_inputs(out / INPUTS_FILE)
    by_case = {c.case: c for c in cases}
    kept: list[dict[str, str]] = []
    seen: set[str] = set()
    for row in rows:
        name = row["case"]
        if name in seen:  # written twice (by a run before the folder was locked): once
            continue
        seen.add(name)
        case, rec = by_case.get(name), recorded.get(name)
        if case is None:
            plan.dropped.append(name)
        elif rec is None or not unchanged(case, rec):
            plan.reevaluated.append(name)
        else:
            kept.append(row)
    if len(kept) != len(rows):
        rewrite_csv(cases_path, plan.columns, kept)
    done = {row["case"] for row in kept}
    plan.todo = [c for c in cases if c.case not in done]
    plan.kept = len(kept)


def make_plan(out: Path, options: Options, sources: Sources) -> Plan:
    """Refuse to overwrite results by accident; on resume, check the settings, keep rows."""
    config = run_config(options.protocol, options.threshold, options.channel, options.spacing)
    n_rows = count_rows(out / CASES_FILE)
    has_results = n_rows > 0
    if has_results and not (options.resume or options.overwrite):
        raise existing_results(out, n_rows)
    resuming = options.resume and has_results
    if resuming:
        previous = _recorded(out, options, sources, config)
        with_e2 = "e2" in (previous.get("columns") or [])
    else:
        with_e2 = has_e2(options.protocol, sources.cases)
    columns = ["case", "shape", *metric_columns(options.protocol, 3 if with_e2 else 2), "seconds"]
    plan = Plan(config, columns, keep=resuming, todo=list(sources.cases))
    if resuming:
        _keep_unchanged(out, plan, sources.cases)
    return plan



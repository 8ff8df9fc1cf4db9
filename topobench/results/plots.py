"""Figures: the weight (gamma) sweep and a per-case scatter of two methods.

Drawn with matplotlib's object API (a :class:`~matplotlib.figure.Figure` rendered by the Agg
canvas; no pyplot state, no display needed) and saved as PNG or PDF from the file suffix.
Figures are in printed units (percent for Dice, clDice and AGS), post-processed results at the
shortest fine-tuning length, as in Table 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from topobench.errors import InvalidParameterError
from topobench.results.aggregate import aggregate_cells, case_means
from topobench.results.selection import standard_configurations
from topobench.results.stats import wilcoxon_p
from topobench.results.table_model import DATASET_ORDER, RESULT_COLUMNS
from topobench.results.tidy import CONFIG_COLUMNS, FRACTION_METRICS

_LABELS = {c.metric: c.label for c in RESULT_COLUMNS}
_SUFFIXES = (".png", ".pdf", ".svg")


def _scale(metric: str) -> float:
    return 100.0 if metric in FRACTION_METRICS else 1.0


def _check_path(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in _SUFFIXES:
        raise InvalidParameterError(
            f"expected an output file ending in {', '.join(_SUFFIXES)}, got {path.name!r}"
        )
    return path


def _datasets(frame: pd.DataFrame, datasets: Sequence[str] | None) -> list[str]:
    present = list(dict.fromkeys(frame["dataset"]))
    if datasets:
        missing = [d for d in datasets if d not in present]
        if missing:
            raise InvalidParameterError(f"expected datasets among {present}, got {missing}")
        return list(datasets)
    order = {name: i for i, name in enumerate(DATASET_ORDER)}
    return sorted(present, key=lambda d: order.get(d, len(order) + present.index(d)))


def plot_gamma_sweep(
    tidy: pd.DataFrame,
    path: str | Path,
    *,
    metrics: Sequence[str] = ("dice", "e0_gt", "ags"),
    datasets: Sequence[str] | None = None,
) -> Path:
    """Plot each metric against the weight gamma, one row of panels per dataset.

    Every method with a weight is a line (error bars: std of the fold means, where there are
    two or more folds); methods without one (nnU-Net, Dice & CE) are dashed horizontal lines.

    Parameters
    ----------
    tidy : pandas.DataFrame
        Tidy results (:func:`topobench.results.load_results`).
    path : path
        Output file, ``.png``, ``.pdf`` or ``.svg``.
    metrics : sequence of str
        Metrics, one panel column each.
    datasets : sequence of str, optional
        Datasets to draw (default: all).

    Returns
    -------
    Path
        The written file.
    """
    path = _check_path(path)
    cells = aggregate_cells(tidy[tidy["metric"].isin(list(metrics))])
    if cells.empty:
        raise InvalidParameterError(f"expected results for {list(metrics)}, found none")
    configs = standard_configurations(cells[list(CONFIG_COLUMNS)].drop_duplicates())
    cells = cells.merge(configs, on=list(CONFIG_COLUMNS))
    names = _datasets(cells, datasets)
    fig = Figure(figsize=(4.0 * len(metrics), 3.0 * len(names)), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(names), len(metrics), squeeze=False))
    colours: dict[str, str] = {}
    several_sources = cells["source"].nunique() > 1
    for i, dataset in enumerate(names):
        for j, metric in enumerate(metrics):
            ax = axes[i, j]
            part = cells[(cells["dataset"] == dataset) & (cells["metric"] == metric)]
            scale = _scale(metric)
            for (source, method), group in part.groupby(["source", "method"], sort=False):
                label = f"{method} [{source or 'runs'}]" if several_sources else method
                colour = colours.setdefault(label, f"C{len(colours) % 10}")
                swept = group[group["gamma"].notna()].sort_values("gamma")
                if not swept.empty:
                    err = swept["fold_std"].to_numpy() * scale
                    ax.errorbar(swept["gamma"], swept["mean"] * scale,
                                yerr=None if np.all(np.isnan(err)) else err,
                                marker="o", capsize=3, label=label, color=colour)
                fixed = group[group["gamma"].isna()]
                for value in fixed["mean"]:
                    ax.axhline(value * scale, linestyle="--", linewidth=1, label=label,
                               color=colour)
            ax.set_title(f"{dataset}: {_LABELS.get(metric, metric)}")
            ax.set_xlabel("weight γ")
            ax.set_ylabel(_LABELS.get(metric, metric) + (" (%)" if scale == 100 else ""))
            ax.grid(alpha=0.3)
    handles, labels = [], []
    for ax in axes.ravel():
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4))
    fig.savefig(path, dpi=120)
    return path


def _parse_method(spec: str) -> tuple[str, float | None]:
    """``"CLoss@0.2"`` -> ("CLoss", 0.2); ``"Dice & CE"`` -> ("Dice & CE", None)."""
    method, _, gamma = spec.rpartition("@")
    if not method:
        return spec, None
    try:
        return method, float(gamma)
    except ValueError:
        raise InvalidParameterError(
            f"expected METHOD or METHOD@GAMMA, got {spec!r}"
        ) from None


def _method_cases(per_case: pd.DataFrame, spec: str, metric: str) -> pd.DataFrame:
    method, gamma = _parse_method(spec)
    rows = per_case[(per_case["method"] == method) & (per_case["metric"] == metric)]
    if gamma is not None:
        rows = rows[np.isclose(rows["gamma"].fillna(np.nan), gamma)]
    if rows.empty:
        raise InvalidParameterError(f"expected per-case {metric} results of {spec!r}, found none")
    weights = sorted(rows["gamma"].dropna().unique())
    if gamma is None and len(weights) > 1:
        options = ", ".join(f"{method}@{g:g}" for g in weights)
        raise InvalidParameterError(f"{method!r} has several weights; choose one of {options}")
    return rows.groupby(["dataset", "case"], sort=False)["value"].mean().reset_index()


def plot_case_scatter(
    tidy: pd.DataFrame,
    path: str | Path,
    *,
    x: str,
    y: str,
    metric: str = "e0_gt",
    datasets: Sequence[str] | None = None,
) -> Path:
    """Scatter the per-case figures of method ``y`` against method ``x``.

    Points above the diagonal are cases where ``y`` scores higher. The title gives the number
    of paired cases and the Wilcoxon signed-rank p-value.

    Parameters
    ----------
    tidy : pandas.DataFrame
        Tidy results with per-case rows.
    path : path
        Output file, ``.png``, ``.pdf`` or ``.svg``.
    x, y : str
        Methods as ``"Dice & CE"`` or ``"CLoss@0.2"`` (display name, optional ``@`` weight).
    metric : str
        Metric to compare.
    datasets : sequence of str, optional
        Datasets to include (default: all; each gets its own colour).

    Returns
    -------
    Path
        The written file.
    """
    path = _check_path(path)
    if datasets:
        tidy = tidy[tidy["dataset"].isin(list(datasets))]
    cells = case_means(tidy[tidy["metric"] == metric])
    configs = standard_configurations(cells[list(CONFIG_COLUMNS)].drop_duplicates())
    cells = cells.merge(configs, on=list(CONFIG_COLUMNS))
    paired = _method_cases(cells, x, metric).merge(
        _method_cases(cells, y, metric), on=["dataset", "case"], suffixes=("_x", "_y")
    )
    if paired.empty:
        raise InvalidParameterError(f"expected cases shared by {x!r} and {y!r}, found none")
    scale = _scale(metric)
    vx, vy = paired["value_x"].to_numpy() * scale, paired["value_y"].to_numpy() * scale
    fig = Figure(figsize=(4.5, 4.5), layout="constrained")
    ax = fig.subplots()
    for k, (dataset, group) in enumerate(paired.groupby("dataset", sort=False)):
        ax.scatter(group["value_x"] * scale, group["value_y"] * scale, s=18, alpha=0.8,
                   color=f"C{k % 10}", label=dataset or "cases")
    low, high = float(min(vx.min(), vy.min())), float(max(vx.max(), vy.max()))
    pad = 0.05 * (high - low or 1.0)
    ax.plot([low - pad, high + pad], [low - pad, high + pad], color="0.5", linewidth=1)
    ax.set_xlim(low - pad, high + pad)
    ax.set_ylim(low - pad, high + pad)
    ax.set_aspect("equal")
    name = _LABELS.get(metric, metric) + (" (%)" if scale == 100 else "")
    ax.set_xlabel(f"{x}: {name}")
    ax.set_ylabel(f"{y}: {name}")
    p = wilcoxon_p(vy - vx)
    ax.set_title(f"{_LABELS.get(metric, metric)} per case (n = {len(paired)}, "
                 f"Wilcoxon p = {p:.3g})", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=120)
    return path

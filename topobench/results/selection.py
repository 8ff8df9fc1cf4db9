"""Which configurations each of the paper's tables shows, in which order, on which cases.

Each ``select_<n>`` takes the table's candidate configurations (one row per configuration,
:data:`topobench.results.tidy.CONFIG_COLUMNS` plus ``loss_`` and ``cldice_mean``) and returns
those the table shows with a ``group`` column (the rules are listed in
:mod:`topobench.results.tables`); :func:`case_selection` chooses the cases each row's figures
are computed on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from topobench.errors import InvalidParameterError
from topobench.results.table_model import (
    LOSS_OF_METHOD,
    MASK_LABELS,
    METHOD_ORDER,
    POSTPROCESSING_LABELS,
    CaseSelection,
    Column,
)
from topobench.results.tidy import CONFIG_COLUMNS, PRETRAINED_METHOD


def none_if_nan(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def key_of(values: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(none_if_nan(v) for v in values)


def effective_loss(frame: pd.DataFrame) -> pd.Series:
    by_method = frame["method"].map(LOSS_OF_METHOD).fillna("")
    loss = frame["loss"].where(frame["loss"] != "", by_method)
    return loss.where(frame["method"] != PRETRAINED_METHOD, "pretrained")


def _prefer_postprocessed(cfg: pd.DataFrame) -> pd.DataFrame:
    """Keep the post-processed configurations where a configuration has them."""
    others = [c for c in CONFIG_COLUMNS if c != "postprocessing"]
    has_with = cfg.groupby(others, dropna=False)["postprocessing"].transform(
        lambda s: (s == "with").any()
    )
    return cfg[~has_with.astype(bool) | (cfg["postprocessing"] == "with")]


def _shortest_finetune(cfg: pd.DataFrame) -> pd.DataFrame:
    """Keep, per configuration, its shortest fine-tuning length (the standard 5 % schedule)."""
    others = [c for c in CONFIG_COLUMNS if c != "finetune_epochs"]
    shortest = cfg.groupby(others, dropna=False)["finetune_epochs"].transform("min")
    return cfg[cfg["finetune_epochs"].isna() | (cfg["finetune_epochs"] == shortest)]


def standard_configurations(cfg: pd.DataFrame) -> pd.DataFrame:
    """Keep post-processed results where present, each at its shortest fine-tuning length."""
    return _shortest_finetune(_prefer_postprocessed(cfg))


def rank(order: Sequence[str], seen: Iterable[str]) -> dict[str, int]:
    ranks = {name: i for i, name in enumerate(order)}
    for name in seen:
        ranks.setdefault(name, len(ranks))
    return ranks


# --------------------------------------------------------------------------------------------
# row selection per table: each returns the selected configurations with a "group" column


def select_1(cfg: pd.DataFrame) -> pd.DataFrame:
    cfg = standard_configurations(cfg[cfg["loss_"] != "thin_closs"])
    swept = cfg["loss_"].isin(["cldice", "compound_cldice"]) & cfg["cldice_mean"].notna()
    identity = ["source", "dataset", "method", "protocol"]
    best = (cfg[swept].sort_values(["cldice_mean", "gamma"], ascending=[False, True])
            .drop_duplicates(identity).set_index(identity)["gamma"])
    chosen = best.reindex(pd.MultiIndex.from_frame(cfg[identity])).to_numpy()
    gamma = cfg["gamma"].to_numpy()
    same = (gamma == chosen) | (np.isnan(gamma) & pd.isna(chosen))
    return cfg[~swept.to_numpy() | same].assign(group="")


def select_2(cfg: pd.DataFrame) -> pd.DataFrame:
    cfg = _shortest_finetune(cfg[cfg["postprocessing"].isin(["with", "without"])])
    others = [c for c in CONFIG_COLUMNS if c != "postprocessing"]
    both = cfg.groupby(others, dropna=False)["postprocessing"].transform("nunique") == 2
    cfg = cfg[both]
    return cfg.assign(group=cfg["postprocessing"].map(POSTPROCESSING_LABELS))


def select_3(cfg: pd.DataFrame) -> pd.DataFrame:
    cfg = _prefer_postprocessed(cfg[cfg["finetune_epochs"].notna()])
    others = [c for c in CONFIG_COLUMNS if c != "finetune_epochs"]
    lengths = cfg.groupby(others, dropna=False)["finetune_epochs"].transform("nunique")
    cfg = cfg[lengths >= 2]
    return cfg.assign(group=cfg["finetune_epochs"].map(lambda v: f"{v:g}"))


def select_4(cfg: pd.DataFrame) -> pd.DataFrame:
    cfg = standard_configurations(cfg)
    thin = set(cfg.loc[cfg["loss_"] == "thin_closs", "dataset"])
    cfg = cfg[cfg["dataset"].isin(thin)]
    cfg = cfg[cfg["loss_"].isin(["dice_ce", "compound_cldice", "thin_closs", "closs"])]
    mask = cfg["critical_mask"].where(cfg["critical_mask"] != "", "none")
    return cfg.assign(group=mask.map(lambda m: MASK_LABELS.get(m, m)))


def select_5(cfg: pd.DataFrame) -> pd.DataFrame:
    cfg = standard_configurations(cfg[cfg["loss_"].isin(["cldice", "compound_cldice"])])
    losses = cfg.groupby(["source", "dataset", "gamma", "protocol"],
                         dropna=False)["loss_"].transform(
        "nunique"
    )
    return cfg[losses == 2].assign(group="")


def select_6(cfg: pd.DataFrame) -> pd.DataFrame:
    cfg = standard_configurations(cfg)
    compound = cfg[cfg["loss_"] == "compound_cldice"]
    swept = compound.groupby(["source", "dataset"])["gamma"].nunique()
    swept = {dataset for (_, dataset), n in swept.items() if n >= 3}
    cfg = cfg[cfg["dataset"].isin(swept)]
    return cfg[cfg["loss_"].isin(["pretrained", "dice_ce", "compound_cldice", "closs"])].assign(
        group=""
    )


SELECTORS: dict[int, Callable[[pd.DataFrame], pd.DataFrame]] = {
    1: select_1,
    2: select_2,
    3: select_3,
    4: select_4,
    5: select_5,
    6: select_6,
}


def sort_configurations(cfg: pd.DataFrame, dataset_rank: dict[str, int],
          source_rank: dict[str, int]) -> pd.DataFrame:
    method_rank = rank(METHOD_ORDER, sorted(set(cfg["method"]) - set(METHOD_ORDER)))
    keys = pd.DataFrame({
        "d": cfg["dataset"].map(dataset_rank),
        "pr": cfg["protocol"].map({p: i for i, p in enumerate(dict.fromkeys(cfg["protocol"]))}),
        "s": cfg["source"].map(source_rank),
        "m": cfg["method"].map(method_rank),
        "g": cfg["gamma"].fillna(-1.0),
        "a": cfg["alpha"].fillna(-1.0),
        "c": cfg["critical_mask"],
        "p": cfg["pretrain_epochs"].fillna(-1.0),
        "f": cfg["finetune_epochs"].fillna(-1.0),
        "pp": cfg["postprocessing"].map({"without": 1, "with": 2}).fillna(0),
    }, index=cfg.index)
    order = keys.sort_values(list(keys.columns), kind="stable").index
    return cfg.loc[order]


def baseline_config(selected: pd.DataFrame, config: pd.Series,
                     baseline: str) -> tuple[Any, ...] | None:
    """The configuration of ``baseline`` that ``config`` is compared with, if any."""
    same = selected[(selected["dataset"] == config["dataset"])
                    & (selected["source"] == config["source"])
                    & (selected["protocol"] == config["protocol"])
                    & (selected["method"] == baseline)]
    if same.empty:
        return None
    match = same[same["postprocessing"] == config["postprocessing"]]
    chosen = match.iloc[0] if not match.empty else same.iloc[0]
    return key_of(chosen[list(CONFIG_COLUMNS)])


def case_selection(
    fold_cases: Mapping[tuple[Any, ...], pd.DataFrame], selected: pd.DataFrame,
    columns: Sequence[Column], cases: CaseSelection,
) -> tuple[dict[tuple[Any, ...], pd.DataFrame], dict[str, list[str]], set[tuple[Any, ...]]]:
    """Per-case figures of the selected rows, on the cases chosen by ``cases``.

    ``fold_cases`` maps a cell key (configuration and metric) to its per-(fold, seed, case)
    figures (:class:`topobench.results.cells.Prepared`).

    Rows are compared within (dataset, metric configuration). Returns the per-case frames by
    cell key, the notes per dataset and the (dataset, protocol, metric) groups whose rows
    cover different cases (``cases="all"``: no best mark there).
    """
    frames: dict[tuple[Any, ...], pd.DataFrame] = {}
    notes: dict[str, list[str]] = {}
    incomparable: set[tuple[Any, ...]] = set()
    keyed = [(key_of(c[list(CONFIG_COLUMNS)]), c) for _, c in selected.iterrows()]
    groups: dict[tuple[str, str], list[tuple[tuple[Any, ...], pd.Series]]] = {}
    for config_key, config in keyed:
        groups.setdefault((config["dataset"], config["protocol"]), []).append(
            (config_key, config))
    for (dataset, protocol), members in groups.items():
        texts: dict[str, list[str]] = {}
        for column in columns:
            have = {k: fold_cases[(*k, column.metric)] for k, _ in members
                    if (*k, column.metric) in fold_cases}
            for k, frame in have.items():
                frames[(*k, column.metric)] = frame
            names = {k: set(frame["case"]) for k, frame in have.items()}
            if len(names) < 2 or all(n == next(iter(names.values())) for n in names.values()):
                continue
            configs = dict(members)
            shared = set.intersection(*names.values())
            union = set.union(*names.values())
            if cases == "all":
                incomparable.add((dataset, protocol, column.metric))
                sizes = sorted({len(n) for n in names.values()})
                texts.setdefault(f"on {sizes[0]} to {sizes[-1]} cases of their own, not the "
                                 "same ones (no best mark)", []).append(column.label)
                continue
            if not shared:
                methods = ", ".join(sorted({row_name(configs[k]) for k in names}))
                raise InvalidParameterError(
                    f"{dataset}: the rows {methods} share no case for {column.label}; compare "
                    "each on its own cases with cases='all' (topobench table --cases all)")
            for k, frame in have.items():
                frames[(*k, column.metric)] = frame[frame["case"].isin(shared)].reset_index(
                    drop=True)
            left_out = sorted(union - shared)
            shown = ", ".join(left_out[:5]) + (", ..." if len(left_out) > 5 else "")
            texts.setdefault(f"on the {len(shared)} cases every row has ({len(left_out)} "
                             f"left out: {shown})", []).append(column.label)
        for text, labels in texts.items():
            notes.setdefault(dataset, []).append(
                f"{dataset}: {', '.join(labels)} {'are' if len(labels) > 1 else 'is'} "
                f"compared {text}.")
    return frames, notes, incomparable


def row_name(config: pd.Series) -> str:
    gamma = none_if_nan(config["gamma"])
    name = str(config["method"]) if gamma is None else f"{config['method']}@{gamma:g}"
    return f"{name} ({config['source']})" if config["source"] else name

"""Pool the runs of examples/real_data_protocol.sh and compare every loss with Dice & CE.

    python examples/real_data_summary.py WORKDIR/runs [--out WORKDIR/summary]

Runs are grouped by data set family (``topomortar_small``; ``chase`` = ``chase_a`` + ``chase_b``,
the two halves of the two-fold split by child). Per case, a loss's post-processed figures are
averaged over its seeds; every loss is then paired with Dice & CE on the same cases (mean
difference, bootstrap 95% interval and Wilcoxon p, ``topobench.results.stats``). Writes
``<out>/<family>.csv`` (one row per loss) and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from topobench.catalog import LOSSES, METRICS
from topobench.results.stats import paired_comparison
from topobench.run_record import variant_cases_path

FAMILIES = {"topomortar_small": "topomortar_small", "chase_a": "chase", "chase_b": "chase"}
SHOWN = ("dice", "cldice", "e", "e0", "e1", "e0_gt", "ags")


def load(runs: Path) -> pd.DataFrame:
    """Per-case rows of every finished fine-tuning run (and the pretrained model's, once)."""
    frames = []
    for run in sorted(p for p in runs.iterdir() if (p / "run.json").is_file()):
        record = json.loads((run / "run.json").read_text())
        if record.get("status") != "complete" or "__pre__" in run.name:
            continue
        family = FAMILIES[record["dataset"]]
        for stage, method in (("postprocessed", record["loss"]), ("raw", record["loss"] + " raw"),
                              ("pretrained", "pretrained")):
            frame = pd.read_csv(variant_cases_path(run, stage), keep_default_na=False)
            frames.append(frame.assign(family=family, method=method, seed=record["seed"],
                                       run=run.name))
    data = pd.concat(frames, ignore_index=True)
    # the pretrained model is evaluated by every run fine-tuned from it: keep one copy
    pre = data["method"] == "pretrained"
    once = data[pre].drop_duplicates(["family", "seed", "case"])
    return pd.concat([data[~pre], once], ignore_index=True)


def compare(data: pd.DataFrame, family: str) -> pd.DataFrame:
    sub = data[data["family"] == family]
    per_case = sub.groupby(["method", "case"])[list(SHOWN)].mean()
    base = per_case.loc["dice_ce"]
    rows = []
    order = ["pretrained", *LOSSES, *(f"{k} raw" for k in LOSSES)]
    for method in [m for m in order if m in per_case.index.get_level_values(0)]:
        values = per_case.loc[method]
        row = {"method": method, "n_cases": len(values),
               "seeds": int(sub[sub["method"] == method]["seed"].nunique())}
        for m in SHOWN:
            row[m] = float(values[m].mean())
            if method != "dice_ce":
                shared = values.index.intersection(base.index)
                c = paired_comparison(values.loc[shared, m].to_numpy(),
                                      base.loc[shared, m].to_numpy())
                row.update({f"{m}_diff": c.mean_difference, f"{m}_lo": c.ci_low,
                            f"{m}_hi": c.ci_high, f"{m}_p": c.p_value})
        rows.append(row)
    return pd.DataFrame(rows)


def markdown(table: pd.DataFrame, family: str) -> str:
    head = "| method | cases x seeds | " + " | ".join(METRICS[m].label for m in SHOWN) + " |"
    lines = [f"### {family}", "", head, "|---|---|" + "---|" * len(SHOWN)]
    for _, r in table.iterrows():
        name = r["method"].replace(" raw", "")
        label = "Pretrained (Dice & CE)" if name == "pretrained" else LOSSES[name].display
        if r["method"].endswith(" raw"):
            label += " (raw)"
        cells = []
        for m in SHOWN:
            info = METRICS[m]
            value = f"{r[m] * info.scale:.{info.decimals}f}"
            if pd.notna(r.get(f"{m}_diff")):
                value += f" ({r[f'{m}_diff'] * info.scale:+.{info.decimals}f}, p={r[f'{m}_p']:.3f})"
            cells.append(value)
        lines.append(f"| {label} | {r['n_cases']} x {r['seeds']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", type=Path)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    data = load(args.runs)
    out = args.out or args.runs.parent / "summary"
    out.mkdir(parents=True, exist_ok=True)
    for family in sorted(data["family"].unique()):
        table = compare(data, family)
        table.to_csv(out / f"{family}.csv", index=False)
        print(markdown(table, family), end="\n\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

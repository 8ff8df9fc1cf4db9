#!/usr/bin/env bash
# Demo of `topobench train` on the ISBI 2012 membrane slices (30 images of 512x512).
#
# Builds an nnU-Net-style dataset folder from ../shared/data/isbi2012-membranes in WORKDIR (not
# in the repository), pretrains a U-Net with Dice & CE once, fine-tunes it with Dice & CE,
# compound clDice and CLoss for the same number of epochs, and evaluates the six held-out slices
# of fold FOLD. Prints a Markdown table of the results and the timings.
#
# usage: examples/train_demo.sh [WORKDIR]        (default: /tmp/topobench-isbi-demo)
# environment: SHARED_DATA (default: ../shared/data beside the repository),
#              EPOCHS (60), ITERATIONS (20), FOLD (0), DEVICE (auto), THREADS (1)
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
SHARED_DATA=${SHARED_DATA:-$REPO/../shared/data}
SRC=$SHARED_DATA/isbi2012-membranes
WORK=${1:-${TMPDIR:-/tmp}/topobench-isbi-demo}
DATA=$WORK/isbi2012
RUNS=$WORK/runs
EPOCHS=${EPOCHS:-60}
ITERATIONS=${ITERATIONS:-20}
FOLD=${FOLD:-0}
DEVICE=${DEVICE:-auto}
THREADS=${THREADS:-1}

if [ ! -d "$SRC/images" ]; then
    echo "error: $SRC not found (set SHARED_DATA)" >&2
    exit 2
fi

# 1. nnU-Net layout: imagesTr/<case>_0000.png, labelsTr/<case>.png
mkdir -p "$DATA/imagesTr" "$DATA/labelsTr"
for image in "$SRC"/images/*.png; do
    n=$(basename "$image" .png)
    cp "$image" "$DATA/imagesTr/isbi_${n}_0000.png"
    cp "$SRC/labels/$n.png" "$DATA/labelsTr/isbi_${n}.png"
done
cat > "$DATA/dataset.json" <<JSON
{"name": "isbi2012", "channel_names": {"0": "EM"}, "labels": {"background": 0, "membrane": 1},
 "numTraining": 30, "file_ending": ".png"}
JSON

COMMON=(--epochs "$EPOCHS" --iterations "$ITERATIONS" --patch-size 128x128 --batch-size 4
        --fold "$FOLD" --seed 0 --device "$DEVICE" --threads "$THREADS" --out "$RUNS")
PRE=$RUNS/isbi2012__dice_ce__fold${FOLD}__seed0

# 2. pretraining (Dice & CE) + fine-tuning with Dice & CE: the baseline at equal epochs
topobench train "$DATA" --loss dice_ce "${COMMON[@]}"
# 3. fine-tuning the same pretrained model with the topology-aware losses
topobench train "$DATA" --loss compound_cldice --gamma 0.2 --pretrained "$PRE" "${COMMON[@]}"
topobench train "$DATA" --loss closs --gamma 0.1 --pretrained "$PRE" "${COMMON[@]}"

# 4. one table from the run records
python - "$RUNS" "$FOLD" <<'PY'
import csv, json, sys
from pathlib import Path
from topobench.run_record import variant_cases_path

runs = sorted(p for p in Path(sys.argv[1]).glob(f"*__fold{sys.argv[2]}__*")
              if (p / "run.json").is_file())
cols = ["dice", "cldice", "e", "e0", "e1", "e0_gt", "ags"]
pct = {"dice", "cldice", "ags"}

def mean(path):
    rows = list(csv.DictReader(open(path)))
    return {c: sum(float(r[c]) for r in rows) / len(rows) for c in cols}, len(rows)

print("| model | post-proc. | " + " | ".join(cols) + " |")
print("|---|---|" + "---|" * len(cols))
first = True
for run in runs:
    rec = json.loads((run / "run.json").read_text())
    stages = [("raw", "without"), ("postprocessed", "with")]
    if first:
        stages.insert(0, ("pretrained", "pretrained only"))
        first = False
    for variant, label in stages:
        m, n = mean(variant_cases_path(run, variant))  # evaluation/<variant>/cases.csv
        model = "Pretrained (Dice & CE)" if label == "pretrained only" else (
            f"{rec['method']}" + (f" (g={rec['gamma']})" if rec["gamma"] is not None else ""))
        cells = [f"{m[c] * 100:.2f}" if c in pct else f"{m[c]:.3f}" for c in cols]
        print(f"| {model} | {label if label != 'pretrained only' else '-'} | "
              + " | ".join(cells) + " |")
print()
print(f"held-out cases: {n} (fold {rec['fold']})")
print("| run | s/epoch pretrain | s/epoch fine-tune | pretrain s | fine-tune s | inference s "
      "| evaluation s |")
print("|---|---|---|---|---|---|---|")
for run in runs:
    rec = json.loads((run / "run.json").read_text())
    spe, tot = rec["seconds_per_epoch"], rec["seconds_total"]
    f = lambda v: "-" if v is None else f"{v:.1f}"
    print(f"| {rec['method']} | {f(spe['pretrain'])} | {f(spe['finetune'])} | "
          f"{f(tot['pretrain'])} | {f(tot['finetune'])} | {f(tot['inference'])} | "
          f"{f(tot['evaluation'])} |")
PY

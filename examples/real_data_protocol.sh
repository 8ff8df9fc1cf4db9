#!/usr/bin/env bash
# The paper's protocol on real data, all six losses, with topobench's defaults:
# TopoMortar (small setting: 10 training images, the 50 in-distribution test images) and
# CHASE_DB1 (14 retina images, two-fold by child: train on children 1-4, test on 5-7, and the
# reverse), from ../shared/data.
#
#   examples/real_data_protocol.sh WORKDIR pretrain    # the Dice & CE pretrainings only
#   examples/real_data_protocol.sh WORKDIR finetune    # every loss from those pretrainings
#   examples/real_data_protocol.sh WORKDIR tables      # pooled tables with paired statistics
#   examples/real_data_protocol.sh WORKDIR             # all three
#
# Every fine-tuning option (gamma, fine-tuning length and learning rate) is topobench's default
# (topobench/catalog.py, docs/losses.md "Defaults"): nothing here is chosen per dataset.
# environment: SHARED_DATA (../shared/data), EPOCHS (30), ITERATIONS (20), SEEDS ("0 1"), FINETUNE_FRACTION (0.2),
#              JOBS (2 parallel runs, one torch thread each)
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
SHARED_DATA=${SHARED_DATA:-$REPO/../shared/data}
WORK=${1:?usage: real_data_protocol.sh WORKDIR [pretrain|finetune|tables]}
PHASE=${2:-all}
EPOCHS=${EPOCHS:-30}
ITERATIONS=${ITERATIONS:-20}
SEEDS=${SEEDS:-"0 1"}
JOBS=${JOBS:-2}
# Fine-tuning length: 20% of the pretraining, the gap-closing benchmark's setting (at a few hundred
# pretraining steps the paper's 5% is too short there: docs/losses.md, "Defaults").
FINETUNE_FRACTION=${FINETUNE_FRACTION:-0.2}
RUNS=$WORK/runs
LOSSES="dice_ce cldice compound_cldice closs closs_dice thin_closs"
mkdir -p "$WORK" "$RUNS"

# ---------------------------------------------------------------------------------------------
# 1. nnU-Net-style folders (symlinks into ../shared/data; nothing is copied into the repository)
# ---------------------------------------------------------------------------------------------
prepare() {
    python - "$SHARED_DATA" "$WORK" <<'PY'
import json, os, re, sys
from pathlib import Path

shared, work = Path(sys.argv[1]), Path(sys.argv[2])


def write(dst, name, train, test, protocol, channels):
    """An nnU-Net-style folder of symlinks: imagesTr/labelsTr (train), imagesTs/labelsTs (test).

    Fold 0 trains on every training case and the run is evaluated on the test cases
    (--eval-set test); folds 1-4 exist only because a splits file must hold five folds whose
    validation parts cover the training cases."""
    if (dst / "dataset.json").exists():
        return
    for sub in ("imagesTr", "labelsTr", "imagesTs", "labelsTs"):
        (dst / sub).mkdir(parents=True, exist_ok=True)
    for part, items in (("Tr", train), ("Ts", test)):
        for case, image, label in items:
            os.symlink(image, dst / f"images{part}" / f"{case}_0000.png")
            os.symlink(label, dst / f"labels{part}" / f"{case}.png")
    names = sorted(c for c, _, _ in train)
    chunks = [names[i::5] for i in range(5)]
    splits = [{"train": names if k == 0 else [n for n in names if n not in v], "val": v}
              for k, v in enumerate(chunks)]
    (dst / "splits_final.json").write_text(json.dumps(splits))
    (dst / "dataset.json").write_text(json.dumps({
        "name": name, "channel_names": {str(i): c for i, c in enumerate(channels)},
        "labels": {"background": 0, "foreground": 1}, "numTraining": len(names),
        "file_ending": ".png", "protocol": protocol}))
    print(f"{name}: {len(train)} training cases, {len(test)} test cases")


# TopoMortar, small setting: the 10 training images of splits_small.yaml; the 50
# in-distribution test images (the copy in ../shared holds those of the 350 the file lists).
tm = shared / "topomortar"
small = re.findall(r"dataset/train/images/(\d+)\.png", (tm / "splits_small.yaml").read_text())
def case(folder, n):
    return (f"tm_{n}", tm / folder / "images" / f"{n}.png", tm / folder / "labels" / f"{n}.png")
write(work / "topomortar", "topomortar_small", [case("train", n) for n in small],
      [case("test", p.stem) for p in sorted((tm / "test" / "images").glob("*.png"))],
      "default", "RGB")

# CHASE_DB1, two-fold by child (both eyes of a child on one side): children 1-4 / 5-7.
ch = shared / "chase_db1-mini"
names = sorted(p.stem for p in (ch / "images").glob("*.png"))
def cc(n):
    return (n, ch / "images" / f"{n}.png", ch / "labels" / f"{n}.png")
first = [cc(n) for n in names if int(n.split("_")[1][:2]) <= 4]
second = [cc(n) for n in names if int(n.split("_")[1][:2]) > 4]
write(work / "chase_a", "chase_a", first, second, "hrf", "RGB")
write(work / "chase_b", "chase_b", second, first, "hrf", "RGB")
PY
}

COMMON=(--epochs "$EPOCHS" --iterations "$ITERATIONS" --patch-size 128x128 --batch-size 4
        --finetune-fraction "$FINETUNE_FRACTION"
        --threads 1 --device cpu --out "$RUNS")

# One line per run: "DATA FOLD SEED EVALSET"
jobs_list() {
    for s in $SEEDS; do echo "$WORK/topomortar 0 $s test"; done
    echo "$WORK/chase_a 0 0 test"
    echo "$WORK/chase_b 0 0 test"
}

pretrain_one() {  # DATA FOLD SEED EVALSET
    local name; name=$(basename "$1")__pre__fold$2__seed$3
    topobench train "$1" --loss dice_ce --finetune-epochs 1 --fold "$2" --seed "$3" \
        --eval-set "$4" --run-name "$name" --resume "${COMMON[@]}" >"$RUNS/$name.log" 2>&1 \
        && echo "done $name" || { echo "FAILED $name (log: $RUNS/$name.log)"; return 1; }
}

finetune_one() {  # DATA FOLD SEED EVALSET LOSS
    local pre; pre=$RUNS/$(basename "$1")__pre__fold$2__seed$3
    local name; name=$(basename "$1")__$5__fold$2__seed$3
    topobench train "$1" --loss "$5" --pretrained "$pre" --fold "$2" --seed "$3" \
        --eval-set "$4" --run-name "$name" --resume "${COMMON[@]}" >"$RUNS/$name.log" 2>&1 \
        && echo "done $name" || { echo "FAILED $name (log: $RUNS/$name.log)"; return 1; }
}
export -f pretrain_one finetune_one
export RUNS
export COMMON_STR="${COMMON[*]}"

prepare
if [ "$PHASE" = all ] || [ "$PHASE" = pretrain ]; then
    jobs_list | xargs -P "$JOBS" -L 1 bash -c 'COMMON=($COMMON_STR); pretrain_one "$@"' _
fi
if [ "$PHASE" = all ] || [ "$PHASE" = finetune ]; then
    for loss in $LOSSES; do jobs_list | sed "s/\$/ $loss/"; done \
        | xargs -P "$JOBS" -L 1 bash -c 'COMMON=($COMMON_STR); finetune_one "$@"' _
fi
if [ "$PHASE" = all ] || [ "$PHASE" = tables ]; then
    # pooled per data set, every loss paired with Dice & CE on the same cases
    python "$REPO/examples/real_data_summary.py" "$RUNS" --out "$WORK/summary"
fi

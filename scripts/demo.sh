#!/usr/bin/env bash
# Set up topobench and run its main job on data it generates itself:
# synthetic vessel masks with injected gaps and bridges, evaluated with error maps.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh core
. .venv/bin/activate
rm -rf demo
topobench synth demo/data --kind vessels2d --n 6 --seed 0
topobench evaluate demo/data/pred demo/data/gt --out demo/results --maps demo/maps
echo "Results in demo/results (cases.csv, summary.json), error maps in demo/maps"

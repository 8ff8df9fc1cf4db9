#!/usr/bin/env bash
# Create .venv and install topobench into it.
#   bash scripts/setup.sh          core install (metrics, evaluation, CLI)
#   bash scripts/setup.sh full     + torch (CPU build 2.13.0), dask and the test tools
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
if [ "${1:-core}" = "full" ]; then
  # torch first, pinned: any looser spec would pull a multi-GB CUDA build.
  python -m pip install --quiet "torch==2.13.0"
  python -m pip install --quiet -e ".[torch,dask,test]" pytest-xdist
else
  python -m pip install --quiet -e .
fi

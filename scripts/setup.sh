#!/usr/bin/env bash
# Create .venv and install topobench into it (editable).
#   bash scripts/setup.sh          core install (metrics, evaluation, CLI)
#   bash scripts/setup.sh full     + torch (CPU build 2.13.0), dask, nnU-Net v2 and the test tools
# The pip log goes to .venv/install.log and is shown only when the install fails.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
log=.venv/install.log
pip_install() {
  if ! python -m pip install "$@" >>"$log" 2>&1; then
    cat "$log" >&2
    echo "setup: 'pip install $*' failed (log above, also in $log)" >&2
    exit 1
  fi
}
: >"$log"
echo "setup: installing topobench into .venv (${1:-core}) ..."
pip_install --upgrade pip
if [ "${1:-core}" = "full" ]; then
  # torch first, pinned, and pinned again beside the extras: any looser spec (or nnU-Net's
  # timm -> torchvision chain) would pull a newer, multi-GB CUDA build.
  pip_install "torch==2.13.0"
  pip_install -e ".[torch,dask,nnunet,test]" "torch==2.13.0"
  # Betti-Matching-3D, the reference of the Betti matching tests, ships compiled inside the
  # topolosses wheel; its own dependencies (another torch, OpenCV) are not needed for it.
  pip_install --no-deps topolosses
else
  pip_install -e .
fi
echo "setup: done ($(python -c 'import topobench; print("topobench", topobench.__version__)'))"

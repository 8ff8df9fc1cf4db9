#!/usr/bin/env bash
# Set up topobench with every extra the tests need, then run the default test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh full
. .venv/bin/activate
python -m pytest -q -n 2 "$@"

#!/usr/bin/env bash
# Set up (first run only) and run the test suite on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/xfix ] || bash scripts/setup.sh
. .venv/bin/activate
python -m pytest -q "$@"

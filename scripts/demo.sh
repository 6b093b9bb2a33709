#!/usr/bin/env bash
# Set up (first run only) and correct the bundled example images into ./xfix-out.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/xfix ] || bash scripts/setup.sh
. .venv/bin/activate
xfix correct examples/ -o xfix-out "$@"

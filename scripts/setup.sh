#!/usr/bin/env bash
# Create .venv and install xfix with its test dependencies. PyTorch is pinned to the CPU build first: a bare
# `torch` requirement would otherwise resolve to a multi-GB CUDA download.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[test]"

#!/usr/bin/env bash
# Creates .venv/ (if missing), installs everything the operator, tests and tools need,
# and the package itself (editable) with its `dns` command in .venv/bin/.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .

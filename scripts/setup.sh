#!/usr/bin/env bash
# Creates .venv/ (if missing) and installs everything the operator, tests and tools need.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt

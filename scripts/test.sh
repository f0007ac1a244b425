#!/usr/bin/env bash
# Sets up .venv/ if needed and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The 20 slowest tests and fixture set-ups, and the total, close every run: a test that
# grows shows there first.
exec .venv/bin/python -m pytest -q --durations=20 tests "$@"

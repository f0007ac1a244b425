#!/usr/bin/env bash
# Creates .venv/ (if missing), installs everything the operator, tests and tools need,
# and the package itself (editable) with its `dns` command in .venv/bin/.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
# The review page's browser test drives Debian's Chromium. Installed only when missing,
# and only where apt-get runs as root; elsewhere that test is skipped and says why.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null \
      || echo "setup: could not install chromium; the browser test will be skipped" >&2
  else
    echo "setup: chromium/chromium-driver missing and apt-get needs root; the browser test will be skipped" >&2
  fi
fi

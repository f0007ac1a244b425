#!/usr/bin/env bash
# Installs the benchmarks' baselines (requirements-bench.txt: Meta's vPDQ) into .venv/,
# after scripts/setup.sh. vpdq builds from source against FFmpeg's development libraries,
# installed here with apt-get where it runs as root. Not needed by the tests: benchmarks
# skip a baseline that is not installed and say so.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || { echo "setup-benchmarks: run scripts/setup.sh first" >&2; exit 1; }
PACKAGES=(libavcodec-dev libavformat-dev libswscale-dev libavutil-dev libavfilter-dev libavdevice-dev
          pkg-config cmake build-essential)
if ! dpkg -s "${PACKAGES[@]}" >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "setup-benchmarks: install ${PACKAGES[*]} (apt-get needs root)" >&2
    exit 1
  fi
  # Another apt run (an unattended upgrade, a parallel setup) holds the lock: wait for it.
  while command -v fuser >/dev/null && fuser /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock >/dev/null 2>&1; do sleep 5; done
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${PACKAGES[@]}" >/dev/null
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-bench.txt

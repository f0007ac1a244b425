#!/usr/bin/env bash
# The main job: sets up .venv/ if needed, then runs the Towhee pipeline on a video.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
bash "$here/scripts/setup.sh"
exec "$here/.venv/bin/python" "$here/tools/embed_video.py" "$@"

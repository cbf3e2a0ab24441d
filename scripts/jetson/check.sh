#!/usr/bin/env bash
# The on-device check: runs `ssd devices --check` and prints its pass/fail table (provider really in
# use, FP16 in effect, engine cache hit on a second start, the model's fps, GStreamer elements).
# Run it on the device, from a checkout or from a deployed release (e.g. /opt/ssd/current):
#
#   SSD_CACHE_DIR=/opt/ssd/cache bash scripts/jetson/check.sh --model model/model.onnx [--device NAME] [--min-fps X] [--json]
#
# Exit status 1 when a row fails. See docs/devices.md ("Checking a device").
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
command -v node >/dev/null || { echo "check: node is not on PATH (Node 20; on JetPack 4 see docs/devices.md)" >&2; exit 1; }
exec node "$ROOT/bin/ssd.js" devices --check "$@"

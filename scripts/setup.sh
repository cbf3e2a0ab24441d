#!/usr/bin/env bash
# Sets up a fresh machine: the Debian packages in scripts/apt-packages.txt (when missing), then the npm
# packages. Offline-safe: needs only Debian's archive and the npm registry.
#
#   npm run setup                    the above
#   npm run setup -- --tensorflow    then also the native TensorFlow training backend (@tensorflow/tfjs-node
#                                    on libtensorflow from the tensorflow-cpu pip wheel, built here; needs
#                                    PyPI once, cached after: scripts/setup-tensorflow.sh). .ci/run uses it.
#   npm run setup -- --python-onnxruntime
#                                    then also python onnxruntime in a venv (node_modules/.cache/ssd-python,
#                                    ~200 MB, from pip's index) for test/export/python-quantize.test.ts,
#                                    which is skipped without it
#
# onnxruntime-node's install script downloads CUDA binaries on x64 Linux; here we skip it (the CPU build
# ships inside the npm package). On an x64 CUDA workstation run with ONNXRUNTIME_NODE_INSTALL=1 to get
# the CUDA/TensorRT-capable binaries (see README).
set -euo pipefail
cd "$(dirname "$0")/.."

tensorflow=0
pyort=0
for arg in "$@"; do
  case "$arg" in
    --tensorflow) tensorflow=1 ;;
    --python-onnxruntime) pyort=1 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup: unknown option $arg (known: --tensorflow, --python-onnxruntime)" >&2; exit 2 ;;
  esac
done

want=$(grep -v '^\s*#' scripts/apt-packages.txt | grep -v '^\s*$' | tr '\n' ' ')
missing=""
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "setup: installing Debian packages:$missing"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

if [ "${ONNXRUNTIME_NODE_INSTALL:-}" = "1" ]; then unset ONNXRUNTIME_NODE_INSTALL; else export ONNXRUNTIME_NODE_INSTALL=skip; fi
if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; else npm install --no-audit --no-fund --loglevel=error; fi
if [ "$tensorflow" = 1 ]; then bash scripts/setup-tensorflow.sh; fi
if [ "$pyort" = 1 ]; then
  # The independent quantizer the export is checked against (python onnxruntime's quantize_static).
  venv=node_modules/.cache/ssd-python
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check onnxruntime onnx numpy
fi
echo "setup: done"

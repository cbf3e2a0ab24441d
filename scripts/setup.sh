#!/usr/bin/env bash
# Sets up a fresh machine: the Debian packages in scripts/apt-packages.txt (when missing), then the npm
# packages. Offline-safe: needs only Debian's archive and the npm registry.
#
# onnxruntime-node's install script downloads CUDA binaries on x64 Linux; here we skip it (the CPU build
# ships inside the npm package). On an x64 CUDA workstation run with ONNXRUNTIME_NODE_INSTALL=1 to get
# the CUDA/TensorRT-capable binaries (see README).
set -euo pipefail
cd "$(dirname "$0")/.."

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
echo "setup: done"

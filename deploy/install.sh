#!/usr/bin/env bash
# Installs one release of the ssd runtime on the device. `ssd deploy` copies the bundle into
# <base>/releases/<id>/ and runs this script from there. Nothing becomes active before the release is
# complete: dependencies are installed and the bundle is started once (a smoke check) inside the new
# directory, then the `current` symlink is switched in one rename, then the service is restarted.
# On any failure before the switch the new directory is removed and `current` is untouched; a service
# that does not come up after the switch is rolled back to the previous release.
#
# Usage: install.sh --base DIR --release ID [--service NAME] [--keep N] [--warm] [--link-node-modules DIR]
#   --warm                   open the model once on the device's providers before the switch, so that
#                            a TensorRT engine (minutes on a Jetson) is built now, not at the service's start
#   --link-node-modules DIR  use DIR as node_modules instead of running npm (a testing aid: the
#                            end-to-end test deploys to this machine and links the checkout's modules)
# Testing aids (environment): SSD_SYSTEMD_DIR (default /etc/systemd/system), SSD_SERVICE_SETTLE_S
# (seconds the service must stay up after a restart, default 3).
set -euo pipefail
SYSTEMD_DIR="${SSD_SYSTEMD_DIR:-/etc/systemd/system}"
SETTLE="${SSD_SERVICE_SETTLE_S:-3}"

BASE="" ID="" SERVICE="" KEEP=3 LINK_NM="" WARM=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --base) BASE="$2"; shift 2 ;;
    --release) ID="$2"; shift 2 ;;
    --service) SERVICE="$2"; shift 2 ;;
    --keep) KEEP="$2"; shift 2 ;;
    --link-node-modules) LINK_NM="$2"; shift 2 ;;
    --warm) WARM=1; shift ;;
    *) echo "install: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ -n "$BASE" && -n "$ID" ]] || { echo "install: --base and --release are required" >&2; exit 2; }
[[ "$KEEP" =~ ^[1-9][0-9]*$ ]] || { echo "install: --keep must be a positive whole number" >&2; exit 2; }
REL="$BASE/releases/$ID"
[[ -d "$REL" ]] || { echo "install: $REL does not exist" >&2; exit 1; }

log() { echo "install: $*" >&2; }
SWITCHED=0
PREV="$(readlink -f "$BASE/current" 2>/dev/null || true)"
[[ -n "$PREV" && ! -d "$PREV" ]] && PREV=""
[[ "$PREV" == "$(readlink -f "$REL")" ]] && PREV=""

fail() {
  echo "install: $*" >&2
  if (( SWITCHED == 0 )); then
    rm -rf "$REL"
    local was=none
    [[ -n "$PREV" ]] && was="$(basename "$PREV")"
    echo "install: removed the new release; current is unchanged ($was)" >&2
  fi
  exit 1
}
trap 'fail "unexpected error on line $LINENO"' ERR

command -v node >/dev/null || fail "node is not on PATH"
cd "$REL"

device="$(sed -n 's/^SSD_DEVICE=//p' ssd.env)"
# ssd.env may hold RTSP passwords and the HTTP token: owner only (this user runs the service).
chmod 600 ssd.env
[[ -f "$BASE/ssd.local.env" ]] && chmod 600 "$BASE/ssd.local.env"

# --- Dependencies ------------------------------------------------------------------------------
# onnxruntime-node's postinstall fetches its CUDA/TensorRT provider libraries from NuGet on linux-x64;
# a CPU-only device needs none of them (and may have no route to NuGet).
[[ "$device" == cpu ]] && export ONNXRUNTIME_NODE_INSTALL=skip
if [[ -n "$LINK_NM" ]]; then
  ln -s "$LINK_NM" node_modules
  log "node_modules linked to $LINK_NM"
elif [[ -n "$PREV" && -d "$PREV/node_modules" ]] && cmp -s "$PREV/package.json" package.json; then
  # Same dependencies as the running release: hard links, no download, no native rebuild.
  cp -al "$PREV/node_modules" node_modules
  log "dependencies unchanged: node_modules hard-linked from $(basename "$PREV")"
else
  command -v npm >/dev/null || fail "npm is not on PATH"
  # gstreamer-superficial compiles against the GStreamer headers (a native module built on the device).
  GST_DEV="libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev"
  if ! pkg-config --exists gstreamer-1.0 gstreamer-app-1.0 2>/dev/null; then
    log "warning: GStreamer development files not found (pkg-config gstreamer-1.0 gstreamer-app-1.0): gstreamer-superficial needs them to build: sudo apt-get install $GST_DEV"
  fi
  # The JPEG addon (imageio/turbojpeg) builds against TurboJPEG; without it sharp decodes, slower.
  if [[ ! -f /usr/include/turbojpeg.h ]]; then
    log "warning: /usr/include/turbojpeg.h not found: JPEGs will decode through sharp (same pixels, ~5x the CPU); sudo apt-get install libturbojpeg0-dev, then deploy again"
  fi
  log "npm install --omit=dev (first deploy or changed dependencies; native modules may build for minutes)"
  if ! npm install --omit=dev --no-audit --no-fund --no-package-lock >"$REL/npm-install.log" 2>&1; then
    tail -n 15 "$REL/npm-install.log" >&2 || true
    trap - ERR
    if grep -qi 'gstreamer' "$REL/npm-install.log" && ! pkg-config --exists gstreamer-1.0 gstreamer-app-1.0 2>/dev/null; then
      fail "npm install failed building gstreamer-superficial: sudo apt-get install $GST_DEV, then deploy again"
    fi
    fail "npm install failed (log above)"
  fi
fi

# --- GPU onnxruntime built on this device (scripts/jetson/build-onnxruntime.sh --out $BASE/onnxruntime-gpu)
GPU="$BASE/onnxruntime-gpu"
if [[ -z "$LINK_NM" && -f "$GPU/onnxruntime_binding.node" ]]; then
  want="$(node -p "require('./node_modules/onnxruntime-node/package.json').version")"
  have="$(cat "$GPU/VERSION" 2>/dev/null || echo unknown)"
  if [[ "$want" == "$have" ]]; then
    dest="node_modules/onnxruntime-node/bin/napi-v6/linux/$(node -p process.arch)"
    mkdir -p "$dest"
    # --remove-destination: node_modules may be hard links into the previous release; never write through them.
    cp --remove-destination "$GPU"/*.node "$GPU"/*.so* "$dest"/
    log "onnxruntime $have with CUDA/TensorRT installed from $GPU"
  else
    log "$GPU holds onnxruntime $have but this release uses $want: keeping the CPU build (rebuild with scripts/jetson/build-onnxruntime.sh)"
  fi
fi

# --- TensorRT caches live outside the releases (SSD_CACHE_DIR in ssd.env); make their directory now.
[[ -n "$device" ]] && mkdir -p "$BASE/cache/trt/$device"

# --- Smoke check: the bundle starts on this device's node, and onnxruntime's native binding loads.
node bin/ssd.js devices --json >/dev/null 2>"$REL/smoke.log" || { cat "$REL/smoke.log" >&2; trap - ERR; fail "the bundle does not start here (node bin/ssd.js devices)"; }
node --input-type=module -e "await import('onnxruntime-node')" 2>"$REL/smoke.log" || { tail -n 5 "$REL/smoke.log" >&2; trap - ERR; fail "onnxruntime-node does not load on this device"; }
rm -f "$REL/smoke.log"

# --- --warm: build the TensorRT engine now, with the service's cache directory and settings. ------
# (ssd.env is read with sed, not sourced: its values may hold '&' or '?' from RTSP URLs.)
if (( WARM )); then
  log "--warm: opening the model on $device's providers (a TensorRT engine build takes minutes on a Jetson)"
  if ! SSD_CACHE_DIR="$(sed -n 's/^SSD_CACHE_DIR=//p' ssd.env)" SSD_REQUIRE_GPU="$(sed -n 's/^SSD_REQUIRE_GPU=//p' ssd.env)" \
      node bin/ssd.js bench model/model.onnx --device "$device" --frames 2 --rounds 1 --raw >"$REL/warm.log" 2>&1; then
    tail -n 5 "$REL/warm.log" >&2 || true
    trap - ERR
    fail "--warm: the model does not run on this device (ssd bench)"
  fi
  grep -m1 'onnxruntime.*: provider' "$REL/warm.log" | sed 's/^/install: warm: /' >&2 || true
fi

# --- Switch: one rename makes the release current. ----------------------------------------------
ln -sfn "releases/$ID" "$BASE/current.new"
mv -Tf "$BASE/current.new" "$BASE/current"
SWITCHED=1
trap - ERR
log "current -> releases/$ID"

# --- Service ------------------------------------------------------------------------------------
if [[ -n "$SERVICE" ]]; then
  SUDO=()
  [[ "$(id -u)" -ne 0 ]] && SUDO=(sudo -n)
  command -v systemctl >/dev/null || { echo "install: systemctl not found: --service needs systemd" >&2; exit 1; }
  unit="$SYSTEMD_DIR/$SERVICE.service"
  if ! "${SUDO[@]}" install -m 644 "$REL/$SERVICE.service" "$unit"; then
    echo "install: cannot write $unit (the ssh user needs passwordless sudo, or deploy as root)" >&2
    exit 1
  fi
  # A --service-user other than this (ssh) user must own the secrets file and be able to write engines.
  svc_user="$(sed -n 's/^User=//p' "$REL/$SERVICE.service")"
  if [[ -n "$svc_user" && "$svc_user" != "$(id -un)" ]]; then
    "${SUDO[@]}" chown "$svc_user" "$REL/ssd.env" && "${SUDO[@]}" chown -R "$svc_user" "$BASE/cache" \
      || log "warning: could not hand ssd.env and $BASE/cache to $svc_user (does the user exist?)"
  fi
  "${SUDO[@]}" systemctl daemon-reload
  "${SUDO[@]}" systemctl enable "$SERVICE" >/dev/null 2>&1 || true
  "${SUDO[@]}" systemctl restart "$SERVICE" || true
  sleep "$SETTLE"
  if ! "${SUDO[@]}" systemctl is-active --quiet "$SERVICE"; then
    if [[ -n "$PREV" ]]; then
      ln -sfn "releases/$(basename "$PREV")" "$BASE/current.new"
      mv -Tf "$BASE/current.new" "$BASE/current"
      "${SUDO[@]}" install -m 644 "$PREV/$SERVICE.service" "$unit" || true
      "${SUDO[@]}" systemctl daemon-reload
      "${SUDO[@]}" systemctl restart "$SERVICE" || true
      echo "install: $SERVICE did not stay up with release $ID; rolled back to $(basename "$PREV") (journalctl -u $SERVICE -n 50)" >&2
    else
      echo "install: $SERVICE did not stay up (journalctl -u $SERVICE -n 50)" >&2
    fi
    exit 1
  fi
  log "$SERVICE.service restarted and active"
fi

# --- Keep the newest releases (the current one always). -----------------------------------------
CUR="$(readlink -f "$BASE/current")"
mapfile -t OLD < <(ls -1 "$BASE/releases" | sort | head -n "-$KEEP")
for r in "${OLD[@]}"; do
  [[ "$(readlink -f "$BASE/releases/$r")" == "$CUR" ]] || rm -rf "${BASE:?}/releases/$r"
done
echo "install: ok release=$ID previous=$( [[ -n "$PREV" ]] && basename "$PREV" || echo none)"

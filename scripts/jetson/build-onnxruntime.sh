#!/usr/bin/env bash
# Builds onnxruntime from source with the Node.js binding and the CUDA + TensorRT execution providers
# for the Jetson (or x86 CUDA machine) it runs on, patches the binding so that the device profile's
# TensorRT/CUDA options reach the providers, and installs the binding into the app.
#
# Why: the onnxruntime-node package on npm has no GPU build for linux-arm64, and its binding hands only
# `deviceId` to TensorRT (no FP16, no engine or timing cache). See docs/devices.md.
#
# The onnxruntime version is the one package.json pins for onnxruntime-node (a different one only with
# --ort-version, and then the app's onnxruntime-node must be that version too).
#
# Usage: scripts/jetson/build-onnxruntime.sh [options]
#   --profile NAME         device profile (default: detected, as `ssd devices` does)
#   --root DIR             read device files (nv_tegra_release, device tree, meminfo, CUDA/TensorRT
#                          version files) under DIR instead of / (fixtures; implies nothing is built)
#   --ort-version X.Y.Z    build this onnxruntime instead of the pinned one (JetPack 4/5, see docs)
#   --src DIR              onnxruntime checkout (default: $HOME/src/onnxruntime-v<version>; cloned if absent)
#   --out DIR              where the built binding and libraries are kept
#                          (default: $HOME/.cache/ssd/onnxruntime-gpu-<version>)
#   --app DIR              install the binding into DIR/node_modules/onnxruntime-node (default: this checkout)
#   --no-install           build only
#   --jobs N               parallel compile jobs (default: from memory + swap, ~3 GiB per job, and never
#                          more than memory alone allows: swap-bound jobs slow an 8 GB board to a crawl)
#   --cuda-home DIR        default /usr/local/cuda
#   --cudnn-home DIR       default /usr/lib/<arch>-linux-gnu
#   --tensorrt-home DIR    default /usr/lib/<arch>-linux-gnu (headers in /usr/include/<arch>-linux-gnu)
#   --no-tensorrt          build the CUDA provider only
#   --make-swap SIZE       create and enable a swap file of SIZE (e.g. 8G) with sudo if memory + swap is short
#   --force                install even if the app's onnxruntime-node version differs from the built one
#   --dry-run              print what would run (the exact build command) and exit
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PATCH_DIR="$HERE/patches"

PROFILE="" ROOT="" ORT_VERSION="" SRC="" OUT="" APP="$REPO" INSTALL=1 JOBS="" DRY_RUN=0 FORCE=0
CUDA_HOME_ARG="" CUDNN_HOME_ARG="" TRT_HOME_ARG="" USE_TRT=1 MAKE_SWAP=""

die() { echo "build-onnxruntime: $*" >&2; exit 1; }
note() { echo "build-onnxruntime: $*" >&2; }
need_value() { [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value"; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --profile) need_value "$@"; PROFILE="$2"; shift 2 ;;
    --root) need_value "$@"; ROOT="$2"; shift 2 ;;
    --ort-version) need_value "$@"; ORT_VERSION="$2"; shift 2 ;;
    --src) need_value "$@"; SRC="$2"; shift 2 ;;
    --out) need_value "$@"; OUT="$2"; shift 2 ;;
    --app) need_value "$@"; APP="$2"; shift 2 ;;
    --no-install) INSTALL=0; shift ;;
    --jobs) need_value "$@"; JOBS="$2"; shift 2 ;;
    --cuda-home) need_value "$@"; CUDA_HOME_ARG="$2"; shift 2 ;;
    --cudnn-home) need_value "$@"; CUDNN_HOME_ARG="$2"; shift 2 ;;
    --tensorrt-home) need_value "$@"; TRT_HOME_ARG="$2"; shift 2 ;;
    --no-tensorrt) USE_TRT=0; shift ;;
    --make-swap) need_value "$@"; MAKE_SWAP="$2"; shift 2 ;;
    --force) FORCE=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
[[ -n "$ROOT" && ! -d "$ROOT" ]] && die "--root $ROOT is not a directory"
[[ -n "$JOBS" && ! "$JOBS" =~ ^[1-9][0-9]*$ ]] && die "--jobs must be a positive whole number, got \"$JOBS\""
if ! command -v node >/dev/null; then
  # JetPack 4 (L4T R32, the last release for Nano and TX2) has glibc 2.27; Node 20 needs 2.28.
  if grep -qs '^# R32 ' "${ROOT:-}/etc/nv_tegra_release"; then
    die "node is not on PATH, and Node 20 does not run on JetPack 4 (glibc 2.27): run this script and the runtime in a container with a newer arm64 userland (docs/devices.md, JetPack 4)"
  fi
  die "node is not on PATH (Node 20 is needed for the app and for this script)"
fi
FS_ROOT="${ROOT:-/}"
FS_ROOT="${FS_ROOT%/}"

# --- Pinned version: read from package.json, never written here a second time. -----------------
PINNED="$(node -e '
  const p = require(process.argv[1]);
  const v = (p.dependencies && p.dependencies["onnxruntime-node"]) || "";
  process.stdout.write(v.replace(/^[\^~=v]+/, ""));' "$REPO/package.json")"
[[ "$PINNED" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "package.json pins onnxruntime-node as \"$PINNED\", not an exact X.Y.Z version"
VERSION="${ORT_VERSION:-$PINNED}"
[[ "$VERSION" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "--ort-version must be X.Y.Z, got \"$VERSION\""
[[ "$VERSION" != "$PINNED" ]] && note "building onnxruntime $VERSION, not the pinned $PINNED: the app needs onnxruntime-node@$VERSION too (npm install onnxruntime-node@$VERSION)"
ORT_MINOR="$(echo "$VERSION" | cut -d. -f2)"
ORT_MAJOR="$(echo "$VERSION" | cut -d. -f1)"
ORT_NUM=$((ORT_MAJOR * 1000 + ORT_MINOR))

# --- Device profile: the same detection as `ssd devices`. ----------------------------------------
DEVICES_JSON="$(node "$REPO/bin/ssd.js" devices --json ${ROOT:+--root "$ROOT"})" || die "ssd devices failed"
eval "$(node -e '
  const [json, wanted] = process.argv.slice(1);
  const d = JSON.parse(json);
  const name = wanted || d.detected;
  const p = d.profiles.find((q) => q.name === name);
  if (!p) { console.log(`die ${JSON.stringify(`unknown device profile "${name}" (known: ${d.profiles.map((q) => q.name).join(", ")})`)}`); process.exit(0); }
  const q = (s) => `'"'"'${String(s ?? "").replace(/'"'"'/g, "")}'"'"'`;
  console.log([
    `P_NAME=${q(p.name)}`, `P_DETECTED=${q(d.detected)}`, `P_ARCH=${q(p.cudaArch)}`,
    `P_MEM=${q(p.hardware?.memoryGiB)}`, `P_CORES=${q(p.hardware?.cpuCores)}`,
    `P_CUDA=${q(p.software?.cuda)}`, `P_TRT=${q(p.software?.tensorrt)}`, `P_JETPACK=${q(p.software?.jetpack)}`,
    `P_GLIBC=${q(p.software?.glibc)}`, `P_PLATFORM=${q(p.platform)}`,
  ].join("\n"));' "$DEVICES_JSON" "$PROFILE")"
if [[ "$P_PLATFORM" == x86-cuda ]]; then
  # The linux-x64 npm package is not CPU-only: its install script fetches the CUDA 12 and TensorRT
  # provider libraries from NuGet (onnxruntime-node's script/install.js).
  die "profile x86-cuda: nothing to build: on linux-x64, npm install of onnxruntime-node downloads its CUDA 12 and TensorRT providers from NuGet (unless ONNXRUNTIME_NODE_INSTALL=skip); if they are missing, rerun it with network access: ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node"
fi
[[ -n "$P_ARCH" ]] || die "profile $P_NAME has no GPU: there is nothing to build for it (the npm onnxruntime-node runs on the CPU)"
[[ -z "$PROFILE" ]] && note "profile $P_NAME (detected)"
[[ -n "$PROFILE" && "$PROFILE" != "$P_DETECTED" ]] && note "profile $P_NAME was asked for; this machine looks like $P_DETECTED"

# --- Toolchain versions: from the device's files, else what the profile's JetPack ships. ---------
MACHINE="$(uname -m)"
[[ -n "$ROOT" && -n "$P_JETPACK" ]] && MACHINE=aarch64
LIBDIR="/usr/lib/${MACHINE}-linux-gnu"
INCDIR="/usr/include/${MACHINE}-linux-gnu"
CUDA_HOME="${CUDA_HOME_ARG:-/usr/local/cuda}"
CUDNN_HOME="${CUDNN_HOME_ARG:-$LIBDIR}"
TRT_HOME="${TRT_HOME_ARG:-$LIBDIR}"

CUDA_VERSION=""
if [[ -f "$FS_ROOT$CUDA_HOME/version.json" ]]; then
  CUDA_VERSION="$(node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).cuda.version)' "$FS_ROOT$CUDA_HOME/version.json")"
elif [[ -f "$FS_ROOT$CUDA_HOME/version.txt" ]]; then
  CUDA_VERSION="$(sed -n 's/^CUDA Version \([0-9.]*\).*/\1/p' "$FS_ROOT$CUDA_HOME/version.txt")"
elif [[ -z "$ROOT" && -x "$CUDA_HOME/bin/nvcc" ]]; then
  CUDA_VERSION="$("$CUDA_HOME/bin/nvcc" --version | sed -n 's/.*release \([0-9.]*\),.*/\1/p')"
fi
if [[ -z "$CUDA_VERSION" ]]; then
  [[ -n "$P_CUDA" ]] || die "no CUDA toolkit found under $CUDA_HOME (install it, or pass --cuda-home)"
  CUDA_VERSION="$P_CUDA"
  note "CUDA version not found under $FS_ROOT$CUDA_HOME; assuming $CUDA_VERSION (JetPack $P_JETPACK)"
fi
CUDA_MAJOR="${CUDA_VERSION%%.*}"

TRT_VERSION=""
for header in "$FS_ROOT$INCDIR/NvInferVersion.h" "$FS_ROOT$TRT_HOME/include/NvInferVersion.h" "$FS_ROOT/usr/include/NvInferVersion.h"; do
  if [[ -f "$header" ]]; then
    major="$(sed -n -E 's/^#define (NV_TENSORRT_MAJOR|TRT_MAJOR_ENTERPRISE) ([0-9]+).*/\2/p' "$header" | head -1)"
    minor="$(sed -n -E 's/^#define (NV_TENSORRT_MINOR|TRT_MINOR_ENTERPRISE) ([0-9]+).*/\2/p' "$header" | head -1)"
    [[ -n "$major" ]] && TRT_VERSION="$major.${minor:-0}" && break
  fi
done
if [[ -z "$TRT_VERSION" && $USE_TRT -eq 1 ]]; then
  if [[ -n "$P_TRT" ]]; then
    TRT_VERSION="$P_TRT"
    note "TensorRT headers not found; assuming TensorRT $TRT_VERSION (JetPack $P_JETPACK)"
  else
    note "TensorRT headers not found (NvInferVersion.h): building the CUDA provider only"
    USE_TRT=0
  fi
fi
TRT_MAJOR="${TRT_VERSION%%.*}"

# onnxruntime's own requirements (TensorRT execution provider docs): 1.22 and later build against
# CUDA 12 only; 1.18 and later need TensorRT 10.
# What to do about an old CUDA depends on the board: JetPack 6 supports Orin only; JetPack 5 is the
# last for Xavier, JetPack 4 the last for Nano and TX2.
case "$P_NAME" in
  orin-*) OLD_CUDA_ADVICE="upgrade this Orin to JetPack 6.1 or later (CUDA 12.6, TensorRT 10.3), or build an older onnxruntime with --ort-version 1.15.1 (JetPack 5)" ;;
  xavier-*) OLD_CUDA_ADVICE="JetPack 5 is the last JetPack for Xavier (JetPack 6 supports Orin only): build an older onnxruntime with --ort-version 1.15.1 and npm install onnxruntime-node@1.15.1" ;;
  jetson-nano|jetson-tx2) OLD_CUDA_ADVICE="JetPack 4 is the last JetPack for $P_NAME (JetPack 5 and 6 do not support it): build --ort-version 1.11.0 inside a container with a newer arm64 userland, since Node 20 needs glibc 2.28 and JetPack 4 has 2.27 (docs/devices.md, JetPack 4)" ;;
  *) OLD_CUDA_ADVICE="build an older onnxruntime with --ort-version (see docs/devices.md)" ;;
esac
if (( ORT_NUM >= 1022 && CUDA_MAJOR < 12 )); then
  die "onnxruntime $VERSION needs CUDA 12, this device has CUDA $CUDA_VERSION (JetPack ${P_JETPACK:-?}): $OLD_CUDA_ADVICE"
fi
# The host's glibc (the profile's with --root): Node 20's official builds need 2.28.
if [[ -n "$ROOT" ]]; then GLIBC="${P_GLIBC:-}"; else GLIBC="$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')"; fi
if [[ -n "$GLIBC" ]] && (( $(echo "$GLIBC" | cut -d. -f1) * 100 + $(echo "$GLIBC" | cut -d. -f2) < 228 )); then
  note "glibc $GLIBC: Node 20 does not run on this host; build and run inside a container with a newer arm64 userland that mounts the host's CUDA/TensorRT (nvidia-container-runtime): see docs/devices.md, JetPack 4"
fi
if (( USE_TRT == 1 && ORT_NUM >= 1018 && TRT_MAJOR < 10 )); then
  note "onnxruntime $VERSION needs TensorRT 10 for its TensorRT provider; this device has TensorRT $TRT_VERSION: building the CUDA provider only"
  USE_TRT=0
fi

# --- Memory, swap and parallelism: nvcc takes 2-3 GiB per job on the CUDA kernels. --------------
MEM_KB="" SWAP_KB=""
if [[ -f "$FS_ROOT/proc/meminfo" ]]; then
  MEM_KB="$(awk '/^MemTotal:/ {print $2}' "$FS_ROOT/proc/meminfo")"
  SWAP_KB="$(awk '/^SwapTotal:/ {print $2}' "$FS_ROOT/proc/meminfo")"
fi
if [[ -z "$MEM_KB" ]]; then
  MEM_KB=$(( ${P_MEM:-8} * 1024 * 1024 ))
  SWAP_KB=0
  note "no /proc/meminfo under $FS_ROOT; assuming ${P_MEM:-8} GiB and no swap"
fi
# MemTotal is a little under the nominal size (the kernel keeps some), so round to the nearest GiB.
gib() { echo $(( ($1 + 524288) / 1048576 )); }
TOTAL_GIB=$(gib $(( MEM_KB + SWAP_KB )))
if [[ -n "$ROOT" ]]; then CORES="${P_CORES:-4}"; else CORES="$(nproc)"; fi
MEM_GIB=$(gib "$MEM_KB")
if [[ -z "$JOBS" ]]; then
  # ~3 GiB per nvcc/cc1plus job. Swap keeps a peak from killing the build, but jobs that live in swap
  # thrash an 8 GB board for hours: RAM alone bounds the count, swap only adds one job's headroom.
  JOBS=$(( TOTAL_GIB / 3 ))
  RAM_JOBS=$(( (MEM_GIB - 1) / 3 ))
  (( RAM_JOBS < 1 )) && RAM_JOBS=1
  (( JOBS > RAM_JOBS )) && JOBS=$RAM_JOBS
  (( JOBS < 1 )) && JOBS=1
  (( JOBS > CORES )) && JOBS=$CORES
fi
NVCC_THREADS=1
(( $(gib "$MEM_KB") >= 16 )) && NVCC_THREADS=2
NEED_GIB=10
SWAP_PLAN=()
if (( TOTAL_GIB < NEED_GIB )); then
  ADD=$(( NEED_GIB - TOTAL_GIB ))
  SWAP_SIZE="${MAKE_SWAP:-${ADD}G}"
  SWAP_PLAN=("sudo fallocate -l $SWAP_SIZE /var/swapfile-ort" "sudo chmod 600 /var/swapfile-ort" "sudo mkswap /var/swapfile-ort" "sudo swapon /var/swapfile-ort")
  note "memory + swap is ${TOTAL_GIB} GiB; the build needs about ${NEED_GIB} GiB: add ${ADD} GiB of swap (--make-swap ${ADD}G does it), or the compiler will be killed"
fi

# --- CMake: onnxruntime >= 1.20 needs 3.28 (Ubuntu 22.04, JetPack 6, ships 3.22; 20.04 ships 3.16). --
if (( ORT_NUM >= 1020 )); then CMAKE_MIN=3.28; elif (( ORT_NUM >= 1016 )); then CMAKE_MIN=3.26; else CMAKE_MIN=3.18; fi
CMAKE_ADVICE="pip3 install --user --upgrade 'cmake>=$CMAKE_MIN' (then put ~/.local/bin first on PATH), or Kitware's APT repository"
CMAKE_PROBLEM=""
if ! command -v cmake >/dev/null; then
  CMAKE_PROBLEM="cmake is not installed; onnxruntime $VERSION needs CMake >= $CMAKE_MIN: $CMAKE_ADVICE"
else
  CMAKE_VERSION="$(cmake --version | sed -n 's/^cmake version \([0-9][0-9.]*\).*/\1/p' | head -1)"
  cv_major="$(echo "${CMAKE_VERSION:-0}" | cut -d. -f1)" cv_minor="$(echo "${CMAKE_VERSION:-0.0}" | cut -d. -f2)"
  want_major="${CMAKE_MIN%%.*}" want_minor="${CMAKE_MIN#*.}"
  if (( ${cv_major:-0} * 1000 + ${cv_minor:-0} < want_major * 1000 + want_minor )); then
    CMAKE_PROBLEM="CMake ${CMAKE_VERSION:-unknown} is older than the $CMAKE_MIN onnxruntime $VERSION needs: $CMAKE_ADVICE"
  fi
fi

# --- The build. ---------------------------------------------------------------------------------
SRC="${SRC:-$HOME/src/onnxruntime-v$VERSION}"
OUT="${OUT:-$HOME/.cache/ssd/onnxruntime-gpu-$VERSION}"
NODE_ARCH="$(node -p 'process.arch')"
[[ -n "$ROOT" && -n "$P_JETPACK" ]] && NODE_ARCH=arm64

BUILD_CMD=(./build.sh --config Release --update --build --parallel "$JOBS" --nvcc_threads "$NVCC_THREADS"
  --skip_tests --build_shared_lib --build_nodejs
  --use_cuda --cuda_home "$CUDA_HOME" --cudnn_home "$CUDNN_HOME")
(( USE_TRT == 1 )) && BUILD_CMD+=(--use_tensorrt --tensorrt_home "$TRT_HOME")
BUILD_CMD+=(--cmake_extra_defines "CMAKE_CUDA_ARCHITECTURES=$P_ARCH" onnxruntime_BUILD_UNIT_TESTS=OFF)

CLONE_CMD=(git clone --depth 1 --branch "v$VERSION" --recursive --shallow-submodules https://github.com/microsoft/onnxruntime.git "$SRC")
BINDING_DIR="js/node/bin/napi-v6/linux/$NODE_ARCH"

if (( DRY_RUN == 1 )); then
  echo "# profile:    $P_NAME (sm_$P_ARCH${P_JETPACK:+, JetPack $P_JETPACK})"
  echo "# toolchain:  CUDA $CUDA_VERSION, TensorRT ${TRT_VERSION:-none}$( (( USE_TRT == 1 )) || echo ' (TensorRT provider not built)')"
  echo "# memory:     $(gib "$MEM_KB") GiB + $(gib "$SWAP_KB") GiB swap, $CORES cores -> --parallel $JOBS, --nvcc_threads $NVCC_THREADS"
  [[ -n "$CMAKE_PROBLEM" ]] && note "$CMAKE_PROBLEM"
  echo "# onnxruntime v$VERSION (package.json pins $PINNED) in $SRC"
  for line in "${SWAP_PLAN[@]}"; do echo "$line"; done
  printf '%q ' "${CLONE_CMD[@]}"; echo
  for p in "$PATCH_DIR"/*.patch; do echo "git -C $(printf '%q' "$SRC") apply $(printf '%q' "$p")"; done
  echo "cd $(printf '%q' "$SRC")"
  printf '%q ' "${BUILD_CMD[@]}"; echo
  echo "cp $BINDING_DIR/* build/Linux/Release/libonnxruntime_providers_*.so $(printf '%q' "$OUT")/"
  (( INSTALL == 1 )) && echo "cp --remove-destination $(printf '%q' "$OUT")/* $(printf '%q' "$APP")/node_modules/onnxruntime-node/bin/napi-v6/linux/$NODE_ARCH/"
  exit 0
fi
[[ -n "$ROOT" ]] && die "--root reads another device's files: use it with --dry-run only"

if (( ${#SWAP_PLAN[@]} > 0 )); then
  if [[ -n "$MAKE_SWAP" ]]; then
    for line in "${SWAP_PLAN[@]}"; do note "$line"; eval "$line"; done
  else
    note "continuing without more swap; if a compiler process is killed, rerun with --make-swap ${ADD}G or --jobs 1"
  fi
fi
[[ -z "$CMAKE_PROBLEM" ]] || die "$CMAKE_PROBLEM"
command -v git >/dev/null || die "git is not installed"
command -v npm >/dev/null || die "npm is not on PATH (the Node binding is built with cmake-js from js/node)"
[[ -d "$CUDA_HOME" ]] || die "CUDA not found at $CUDA_HOME (pass --cuda-home)"
export PATH="$CUDA_HOME/bin:$PATH"

if [[ ! -d "$SRC/.git" ]]; then
  mkdir -p "$(dirname "$SRC")"
  "${CLONE_CMD[@]}"
fi
for p in "$PATCH_DIR"/*.patch; do
  if git -C "$SRC" apply --reverse --check "$p" 2>/dev/null; then
    note "$(basename "$p") already applied"
  else
    if git -C "$SRC" apply --check "$p"; then
      git -C "$SRC" apply "$p"
      note "applied $(basename "$p")"
    elif [[ "$VERSION" == "$PINNED" ]]; then
      die "$(basename "$p") does not apply to onnxruntime v$VERSION in $SRC (see docs/devices.md)"
    else
      # The patch is written against the pinned version; an older binding still works, with defaults.
      note "$(basename "$p") does not apply to v$VERSION: its binding will pass only the device id (no FP16, no engine cache)"
    fi
  fi
done

note "building onnxruntime v$VERSION for $P_NAME (sm_$P_ARCH) with $JOBS jobs: this takes 1-4 hours on a Jetson"
(cd "$SRC" && "${BUILD_CMD[@]}")

mkdir -p "$OUT"
cp "$SRC/$BINDING_DIR"/* "$OUT"/
for lib in "$SRC"/build/Linux/Release/libonnxruntime_providers_*.so; do [[ -f "$lib" ]] && cp "$lib" "$OUT"/; done
echo "$VERSION" > "$OUT/VERSION"
note "built files are in $OUT"

if (( INSTALL == 1 )); then
  PKG="$APP/node_modules/onnxruntime-node"
  [[ -f "$PKG/package.json" ]] || die "$PKG is missing: run npm install in $APP first"
  APP_ORT="$(node -p 'require(process.argv[1]).version' "$PKG/package.json")"
  if [[ "$APP_ORT" != "$VERSION" && $FORCE -eq 0 ]]; then
    die "$APP has onnxruntime-node $APP_ORT but the binding is $VERSION: npm install onnxruntime-node@$VERSION there (or --force)"
  fi
  mkdir -p "$PKG/bin/napi-v6/linux/$NODE_ARCH"
  # --remove-destination: install.sh may have hard-linked this node_modules from the previous release;
  # a plain cp would write through the links into that release's files too.
  cp --remove-destination "$OUT"/*.node "$OUT"/*.so* "$PKG/bin/napi-v6/linux/$NODE_ARCH/"
  note "installed into $PKG/bin/napi-v6/linux/$NODE_ARCH; check with: node $APP/bin/ssd.js devices"
fi

#!/usr/bin/env bash
# Installs the native TensorFlow backend for training (`npm run setup -- --tensorflow` runs it after the
# npm packages): @tensorflow/tfjs-node 4.22.0 on libtensorflow 2.21 (CPU, Linux x86_64).
#
# tfjs-node's own install script downloads libtensorflow from Google's storage, which machines behind a
# firewall (and CI here) cannot reach. The same C library ships in the `tensorflow-cpu` pip wheel, which
# pip fetches from PyPI (or the local mirror pip is configured with), so:
#   1. `pip download tensorflow-cpu==2.21.0` once; keep only libtensorflow_cc.so.2 (the C API),
#      libtensorflow_framework.so.2 and the C headers the binding includes, in a per-user cache
#      ($SSD_CACHE_DIR, default ~/.cache/ssd-jetson), and drop the wheel (~270 MB);
#   2. install the npm package without its install script (`--no-save`: package.json does not list it,
#      so `npm ci` works offline without it);
#   3. link its deps/ to the cached library and headers, and build its addon from source (node-gyp,
#      against the headers of the running node, so nothing else is downloaded); the built addon is
#      cached too, so a later run after `npm ci` only copies it back.
# Every step is skipped when its result is already there; the last step proves the backend loads.
set -euo pipefail
cd "$(dirname "$0")/.."

TFJS_NODE_VERSION=4.22.0
TF_VERSION=2.21.0
CACHE="${SSD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ssd-jetson}"
LIBTF="$CACHE/libtensorflow-$TF_VERSION"
ADDON_CACHE="$CACHE/tfjs-node-$TFJS_NODE_VERSION-tf$TF_VERSION"
PKG=node_modules/@tensorflow/tfjs-node

say() { echo "setup-tensorflow: $*"; }
die() { echo "setup-tensorflow: $*" >&2; exit 1; }

[ "$(uname -s)" = Linux ] && [ "$(uname -m)" = x86_64 ] ||
  die "the tensorflow-cpu wheel route is for Linux x86_64 only (this is $(uname -s) $(uname -m)); see docs/train-model.md"
[ -d node_modules/@tensorflow/tfjs ] || die "node_modules/@tensorflow/tfjs is missing: run npm run setup first"

# 1. libtensorflow from the wheel.
if [ ! -f "$LIBTF/lib/libtensorflow_cc.so.2" ] || [ ! -f "$LIBTF/lib/libtensorflow_framework.so.2" ] || [ ! -f "$LIBTF/include/tensorflow/c/c_api.h" ]; then
  command -v python3 >/dev/null || die "python3 is needed to fetch the tensorflow-cpu wheel (apt-get install python3 python3-pip)"
  python3 -m pip --version >/dev/null 2>&1 || die "pip is needed to fetch the tensorflow-cpu wheel (apt-get install python3-pip)"
  mkdir -p "$CACHE/wheel"
  say "downloading tensorflow-cpu==$TF_VERSION (about 270 MB) into $CACHE/wheel"
  python3 -m pip download --no-deps --only-binary=:all: --disable-pip-version-check -q -d "$CACHE/wheel" "tensorflow-cpu==$TF_VERSION" ||
    die "pip could not fetch tensorflow-cpu==$TF_VERSION (PyPI or a mirror must be reachable once)"
  wheel=$(ls "$CACHE"/wheel/tensorflow_cpu-"$TF_VERSION"-*.whl 2>/dev/null | head -n 1)
  [ -n "$wheel" ] || die "no tensorflow_cpu-$TF_VERSION wheel in $CACHE/wheel after pip download"
  rm -rf "$LIBTF.partial"
  # The two libraries, and the headers tfjs-node's binding includes with everything they include.
  python3 - "$wheel" "$LIBTF.partial" <<'EOF'
import os, re, sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
roots = ['tensorflow/c/c_api.h', 'tensorflow/c/eager/c_api.h', 'tensorflow/c/tf_datatype.h',
         'tensorflow/c/tf_status.h', 'tensorflow/c/tf_tensor.h', 'tensorflow/core/platform/ctstring_internal.h']
include = re.compile(rb'^\s*#\s*include\s+"([^"]+)"', re.M)

def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(data)

with zipfile.ZipFile(wheel) as z:
    names = set(z.namelist())
    for lib in ('libtensorflow_cc.so.2', 'libtensorflow_framework.so.2'):
        write(os.path.join(dest, 'lib', lib), z.read('tensorflow/' + lib))
    seen, todo = set(), list(roots)
    while todo:
        h = todo.pop()
        if h in seen:
            continue
        seen.add(h)
        member = 'tensorflow/include/' + h
        if member not in names:
            sys.exit(f'{wheel}: header {h} is missing')
        data = z.read(member)
        write(os.path.join(dest, 'include', h), data)
        todo += [m.decode() for m in include.findall(data)]
EOF
  rm -rf "$LIBTF" && mv "$LIBTF.partial" "$LIBTF"
  rm -f "$wheel"
  say "libtensorflow $TF_VERSION in $LIBTF"
fi

# 2. The npm package, without its install script.
installed=$(node -p "try { require('./$PKG/package.json').version } catch { '' }")
if [ "$installed" != "$TFJS_NODE_VERSION" ]; then
  say "installing @tensorflow/tfjs-node@$TFJS_NODE_VERSION (--ignore-scripts --no-save)"
  npm install --no-save --ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error "@tensorflow/tfjs-node@$TFJS_NODE_VERSION"
fi

# 3. deps/ -> the cached library; the addon, built once.
mkdir -p "$PKG/deps/lib"
ln -sfn "$LIBTF/include" "$PKG/deps/include"
for pair in libtensorflow.so:libtensorflow_cc.so.2 libtensorflow_cc.so.2:libtensorflow_cc.so.2 \
            libtensorflow_framework.so:libtensorflow_framework.so.2 libtensorflow_framework.so.2:libtensorflow_framework.so.2; do
  ln -sfn "$LIBTF/lib/${pair#*:}" "$PKG/deps/lib/${pair%%:*}"
done
# Where node-pre-gyp puts the addon (lib/napi-v<N>/tfjs_binding.node), as tfjs-node itself finds it.
addon_rel=$(cd "$PKG" && node -p "require('path').relative('.', require('@mapbox/node-pre-gyp').find(require('path').resolve('package.json')))")
if [ ! -f "$PKG/$addon_rel" ]; then
  if [ -f "$ADDON_CACHE/$addon_rel" ]; then
    mkdir -p "$(dirname "$PKG/$addon_rel")" && cp "$ADDON_CACHE/$addon_rel" "$PKG/$addon_rel"
    say "addon from $ADDON_CACHE"
  else
    command -v g++ >/dev/null && command -v make >/dev/null || die "g++ and make are needed to build the addon (apt-get install build-essential)"
    # node-gyp downloads node's headers unless --nodedir names an install that has them.
    nodedir=$(dirname "$(dirname "$(command -v node)")")
    nodedir_arg=""; [ -f "$nodedir/include/node/node_api.h" ] && nodedir_arg="--nodedir=$nodedir"
    say "building the addon from source"
    log="$CACHE/tfjs-node-build.log"
    (cd "$PKG" && ../../.bin/node-pre-gyp install --build-from-source $nodedir_arg) >"$log" 2>&1 || { tail -n 30 "$log" >&2; die "building the addon failed (log: $log)"; }
  fi
fi
if [ ! -f "$ADDON_CACHE/$addon_rel" ]; then
  mkdir -p "$(dirname "$ADDON_CACHE/$addon_rel")" && cp "$PKG/$addon_rel" "$ADDON_CACHE/$addon_rel.partial" && mv "$ADDON_CACHE/$addon_rel.partial" "$ADDON_CACHE/$addon_rel"
fi

# Proof: the backend registers and runs a conv gradient (the op that needed TF_ENABLE_ONEDNN_OPTS=0).
TF_CPP_MIN_LOG_LEVEL=1 node --input-type=module -e "
  import * as tf from '@tensorflow/tfjs-node';
  await tf.setBackend('tensorflow');
  const x = tf.ones([1, 5, 5, 2]), w = tf.ones([3, 3, 2, 2]);
  const g = tf.grad((v) => tf.conv2d(v, w, 1, 'same').sum())(x);
  if (tf.getBackend() !== 'tensorflow' || g.shape.join() !== '1,5,5,2') process.exit(1);
  console.log('setup-tensorflow: backend tensorflow loads (tfjs-node ' + tf.version['tfjs-node'] + ', libtensorflow ' + tf.backend().binding.TF_Version + ')');
" || die "@tensorflow/tfjs-node does not load; rerun with a clean $LIBTF (rm -rf it) or see docs/train-model.md"

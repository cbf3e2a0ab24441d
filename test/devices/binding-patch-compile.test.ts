/**
 * The C++ that the binding patch adds (CollectProviderOptionStrings), compiled for real as a small
 * N-API addon and called with each profile's provider objects: what it produces must equal what
 * devices/provider-options.ts says reaches onnxruntime. Only the added helper is compiled here (the
 * rest of the binding needs the onnxruntime tree and a GPU toolchain: verified on a device).
 *
 * Needs g++, Node's headers (/usr/include/node, Debian's libnode-dev/nodejs) and node-addon-api's
 * headers: set NODE_ADDON_API_DIR to a directory holding napi.h (e.g. an unpacked
 * `npm pack node-addon-api`). Skipped otherwise; the project does not depend on node-addon-api.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { PROFILES } from '../../devices/profiles.js';
import { ortProviderConfig, providerOptionStrings, type OrtProviderConfig } from '../../devices/provider-options.js';
import { tempDir } from '../helpers/temp-dir.js';

const REPO = join(import.meta.dirname, '..', '..');
const PATCH = join(REPO, 'scripts', 'jetson', 'patches', '0001-node-binding-forward-cuda-tensorrt-provider-options.patch');
const NAPI_DIR = process.env.NODE_ADDON_API_DIR;
const NODE_INCLUDE = ['/usr/include/node', join(process.execPath, '..', '..', 'include', 'node')].find((d) => existsSync(join(d, 'node_api.h')));
const canRun = NAPI_DIR !== undefined && existsSync(join(NAPI_DIR, 'napi.h')) && NODE_INCLUDE !== undefined && spawnSync('g++', ['--version']).status === 0;

/** The lines the patch adds from `struct ProviderOptionStrings` to the end of the helper. */
function helperFromPatch(): string {
  const added = readFileSync(PATCH, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('+') && !l.startsWith('+++'))
    .map((l) => l.slice(1));
  const start = added.findIndex((l) => l.startsWith('struct ProviderOptionStrings'));
  const fnStart = added.findIndex((l) => l.startsWith('static ProviderOptionStrings CollectProviderOptionStrings'));
  const end = added.findIndex((l, i) => i > fnStart && l === '}');
  if (start < 0 || fnStart < 0 || end < 0) throw new Error('the patch no longer has the helper this test compiles');
  return added.slice(start, end + 1).join('\n');
}

// The same contract as onnxruntime's js/node/src/common.h (throw a JS TypeError built from the
// arguments), written here so the helper compiles outside the onnxruntime tree.
const HARNESS = `#include <napi.h>
#include <cmath>
#include <locale>
#include <sstream>
#include <string>
#include <vector>
template <typename... A> std::string Cat(const A&... a) { std::ostringstream s; (s << ... << a); return s.str(); }
#define ORT_NAPI_THROW_TYPEERROR(ENV, ...) throw Napi::TypeError::New((ENV), Cat(__VA_ARGS__))
#define ORT_NAPI_THROW_TYPEERROR_IF(COND, ENV, ...) if (COND) { ORT_NAPI_THROW_TYPEERROR(ENV, __VA_ARGS__); }
#include "helper.inc"
static Napi::Value Collect(const Napi::CallbackInfo& info) {
  ProviderOptionStrings s = CollectProviderOptionStrings(info[0], info[1].As<Napi::Number>().Int32Value());
  Napi::Object out = Napi::Object::New(info.Env());
  for (size_t i = 0; i < s.keys.size(); i++) {
    // What onnxruntime's Update...ProviderOptions receives: the pointer arrays.
    out.Set(std::string(s.keyPtrs[i]), std::string(s.valuePtrs[i]));
  }
  return out;
}
static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("collect", Napi::Function::New(env, Collect));
  return exports;
}
NODE_API_MODULE(ssd_patch_harness, Init)
`;

let dir = '';
let collect: (config: unknown, deviceId: number) => Record<string, string>;

beforeAll(() => {
  if (!canRun) return;
  dir = tempDir('ssd-patch-harness-');
  writeFileSync(join(dir, 'helper.inc'), helperFromPatch());
  writeFileSync(join(dir, 'harness.cc'), HARNESS);
  execFileSync('g++', ['-std=c++17', '-shared', '-fPIC', '-O0', '-DNAPI_VERSION=8', '-DNAPI_CPP_EXCEPTIONS', `-I${NODE_INCLUDE}`, `-I${NAPI_DIR}`, '-o', join(dir, 'harness.node'), join(dir, 'harness.cc')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  collect = (createRequire(import.meta.url)(join(dir, 'harness.node')) as { collect: typeof collect }).collect;
}, 600_000); // a g++ build: seconds idle, minutes at load 13; the bound ends a hang only

describe.skipIf(!canRun)('the binding patch, compiled', () => {
  it('gives onnxruntime the same option strings as devices/provider-options.ts, for every profile', () => {
    let checked = 0;
    for (const p of PROFILES) {
      for (const spec of p.providers) {
        const config: OrtProviderConfig = ortProviderConfig(spec);
        if (config === 'cpu') continue;
        expect(collect(config, config.deviceId), `${p.name} ${spec.name}`).toEqual(providerOptionStrings(config));
        checked++;
      }
    }
    expect(checked).toBe(16);
  });

  it('adds device_id from deviceId, and refuses fractions and objects as the TypeScript mirror does', () => {
    expect(collect({ name: 'cuda', deviceId: 2 }, 2)).toEqual({ device_id: '2' });
    expect(() => collect({ name: 'tensorrt', deviceId: 0, trt_max_workspace_size: 0.5 }, 0)).toThrow(/whole number/);
    expect(() => providerOptionStrings({ name: 'tensorrt', deviceId: 0, trt_max_workspace_size: 0.5 })).toThrow(/whole number/);
    expect(() => collect({ name: 'tensorrt', deviceId: 0, trt_engine_cache_path: { x: 1 } }, 0)).toThrow(TypeError);
  });
});

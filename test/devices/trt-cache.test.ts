// TensorRT engine caches keyed by the model's bytes (issue 14, item 3): onnxruntime's own engine id
// ignores the weights, and `ssd deploy` always installs the model as model/model.onnx.
import { describe, expect, it } from 'vitest';
import { copyFileSync, existsSync, mkdirSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildProfiles } from '../../devices/profiles.js';
import {
  detectTensorRtVersion, engineCacheBase, modelDigest, prepareEngineCache, pruneEngineCaches, trtCacheKey,
} from '../../devices/trt-cache.js';
import { writeTinyModel } from '../runtime/helpers.js';
import { tempDir } from '../helpers/temp-dir.js';

/** A release directory as deploy lays it out: the model is always model/model.onnx. */
function release(root: string, name: string, seed: number): string {
  const dir = join(root, name, 'model');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'model.onnx');
  copyFileSync(writeTinyModel(tempDir('ssd-model-'), { seed }), path);
  return path;
}

describe('TensorRT engine cache key', () => {
  it('two models with the same graph and different weights get different engine directories', () => {
    const root = tempDir('ssd-releases-');
    const cache = tempDir('ssd-cache-');
    const providers = buildProfiles(cache).find((p) => p.name === 'orin-nano')!.providers;
    const a = prepareEngineCache(providers, release(root, 'r1', 7), { tensorrtVersion: '10.3.0', gpuArch: 87 });
    const b = prepareEngineCache(providers, release(root, 'r2', 8), { tensorrtVersion: '10.3.0', gpuArch: 87 });
    const same = prepareEngineCache(providers, release(root, 'r3', 7), { tensorrtVersion: '10.3.0', gpuArch: 87 });
    expect(a.engineDir).not.toBe(b.engineDir);
    expect(same.engineDir).toBe(a.engineDir);
    for (const dir of [a.engineDir!, b.engineDir!]) expect(existsSync(dir)).toBe(true);
    // Engines go to the keyed directory; the timing cache (independent of weights) stays shared.
    const trt = b.providers.find((p) => p.name === 'tensorrt')!.options!;
    expect(trt.trt_engine_cache_path).toBe(b.engineDir);
    expect(trt.trt_timing_cache_path).toBe(join(cache, 'trt', 'orin-nano'));
    expect(b.providers.find((p) => p.name === 'cuda')).toEqual(providers.find((p) => p.name === 'cuda'));
  });

  it('the key also changes with the TensorRT version and the GPU architecture', () => {
    const sha = modelDigest(writeTinyModel(tempDir()));
    expect(sha).toMatch(/^[0-9a-f]{64}$/);
    const k = trtCacheKey({ modelSha256: sha, tensorrtVersion: '10.3.0', gpuArch: 87 });
    expect(k).toBe(`m${sha.slice(0, 16)}-trt10.3.0-sm87`);
    expect(trtCacheKey({ modelSha256: sha, tensorrtVersion: '8.5.2', gpuArch: 87 })).not.toBe(k);
    expect(trtCacheKey({ modelSha256: sha, tensorrtVersion: '10.3.0', gpuArch: '7.2' })).toBe(`m${sha.slice(0, 16)}-trt10.3.0-sm72`);
    expect(trtCacheKey({ modelSha256: sha })).toBe(`m${sha.slice(0, 16)}-trtunknown-smunknown`);
  });

  it('old model directories are pruned, the most recently used kept; other files are left alone', () => {
    const base = tempDir('ssd-trt-');
    const keys = ['0', '1', '2', '3'].map((d) => trtCacheKey({ modelSha256: d.repeat(64), tensorrtVersion: '10.3', gpuArch: 87 }));
    // Last used: keys[0] long ago ... keys[3] most recently (explicit times, not the clock).
    keys.forEach((k, i) => {
      mkdirSync(join(base, k));
      writeFileSync(join(base, k, 'a.engine'), 'x');
      const t = new Date(Date.UTC(2026, 0, 1 + i));
      utimesSync(join(base, k), t, t);
    });
    writeFileSync(join(base, 'TensorrtExecutionProvider_cache_sm87.timing'), 't');
    mkdirSync(join(base, 'not-a-model-dir'));
    const current = trtCacheKey({ modelSha256: 'f'.repeat(64), tensorrtVersion: '10.3', gpuArch: 87 });
    mkdirSync(join(base, current));
    const removed = pruneEngineCaches(base, current, 3, new Date(Date.UTC(2026, 1, 1)));
    expect(removed.sort()).toEqual([keys[0], keys[1]].sort());
    expect(readdirSync(base).sort()).toEqual(
      [current, keys[2], keys[3], 'TensorrtExecutionProvider_cache_sm87.timing', 'not-a-model-dir'].sort(),
    );
  });

  it('only a TensorRT provider with its engine cache on is keyed', () => {
    const cache = tempDir('ssd-cache-');
    const profiles = buildProfiles(cache);
    expect(engineCacheBase(profiles.find((p) => p.name === 'cpu')!.providers)).toBeUndefined();
    expect(engineCacheBase([{ name: 'tensorrt', options: { trt_engine_cache_enable: false, trt_engine_cache_path: '/x' } }])).toBeUndefined();
    const model = writeTinyModel(tempDir());
    const r = prepareEngineCache([{ name: 'cuda' }], model);
    expect(r.engineDir).toBeUndefined();
    expect(readdirSync(cache)).toEqual([]);
  });

  it('reads the TensorRT version from libnvinfer\'s file name', () => {
    const lib = tempDir('ssd-lib-');
    expect(detectTensorRtVersion([lib])).toBeUndefined();
    for (const n of ['libnvinfer.so', 'libnvinfer.so.10', 'libnvinfer.so.10.3.0', 'libnvinfer_plugin.so.10.3.0']) writeFileSync(join(lib, n), '');
    expect(detectTensorRtVersion([join(lib, 'missing'), lib])).toBe('10.3.0');
  });
});

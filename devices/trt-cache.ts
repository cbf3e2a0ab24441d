/**
 * TensorRT engine caches that are never stale.
 *
 * onnxruntime names a cached engine after a hash of the model's file name, its tensor and node names
 * and the library versions, never the weights. `ssd deploy` always installs the model as
 * `model/model.onnx` and keeps the cache across releases, so a retrained model of the same
 * architecture would silently run the previous weights' engine. The engine cache therefore gets one
 * directory per (model bytes, TensorRT version, GPU architecture) under the profile's cache path;
 * the timing cache (per-layer kernel timings, independent of the weights) stays shared at the top.
 * Directories of models no longer in use are pruned, keeping the few most recently used for rollback.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readSync, rmSync, statSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import type { ProviderSpec } from './types.js';

/** Hex SHA-256 of a file's bytes, read in chunks (an SSD300 model is ~100 MB). */
export function modelDigest(path: string): string {
  const hash = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/** Where JetPack and the TensorRT packages put libnvinfer. */
export const TENSORRT_LIB_DIRS = ['/usr/lib/aarch64-linux-gnu', '/usr/lib/x86_64-linux-gnu', '/usr/local/cuda/lib64', '/usr/lib64', '/usr/local/lib'];

/**
 * The installed TensorRT version from libnvinfer's versioned file name (libnvinfer.so.10.3.0), in
 * the directories of LD_LIBRARY_PATH first; undefined when there is none (no TensorRT here).
 */
export function detectTensorRtVersion(dirs: readonly string[] = [...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean), ...TENSORRT_LIB_DIRS]): string | undefined {
  for (const dir of dirs) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    const versions = names
      .map((n) => /^libnvinfer\.so\.(\d+(?:\.\d+)*)$/.exec(n)?.[1])
      .filter((v): v is string => v !== undefined)
      .sort((a, b) => b.split('.').length - a.split('.').length);
    if (versions[0]) return versions[0];
  }
  return undefined;
}

export interface TrtCacheKeyParts {
  /** modelDigest of the model file. */
  modelSha256: string;
  /** e.g. "10.3.0"; undefined = not known here. */
  tensorrtVersion?: string;
  /** CUDA compute capability, e.g. 87 or "8.7"; undefined = not known here. */
  gpuArch?: number | string;
}

const KEY_RE = /^m[0-9a-f]{16}-trt[^/]*-sm[^/]*$/;

/** The per-model engine directory name: m<16 hex of the model hash>-trt<version>-sm<arch>. */
export function trtCacheKey(p: TrtCacheKeyParts): string {
  if (!/^[0-9a-f]{16,}$/.test(p.modelSha256)) throw new TypeError('modelSha256 must be a hex digest');
  const clean = (s: string) => s.replace(/[^0-9A-Za-z.]/g, '');
  const arch = p.gpuArch === undefined ? 'unknown' : clean(String(p.gpuArch).replace('.', ''));
  return `m${p.modelSha256.slice(0, 16)}-trt${p.tensorrtVersion ? clean(p.tensorrtVersion) : 'unknown'}-sm${arch || 'unknown'}`;
}

/** Whether a provider list caches TensorRT engines on disk. */
export function engineCacheBase(specs: readonly ProviderSpec[]): string | undefined {
  const trt = specs.find((s) => s.name === 'tensorrt');
  const o = trt?.options;
  if (!o || !(o.trt_engine_cache_enable === true || o.trt_engine_cache_enable === 1 || o.trt_engine_cache_enable === '1' || o.trt_engine_cache_enable === 'true')) return undefined;
  const dir = o.trt_engine_cache_path;
  return typeof dir === 'string' && dir !== '' ? dir : undefined;
}

/** The provider list with TensorRT's engine cache moved into `<trt_engine_cache_path>/<key>`. */
export function keyEngineCache(specs: readonly ProviderSpec[], key: string): ProviderSpec[] {
  return specs.map((s) => {
    if (s.name !== 'tensorrt' || engineCacheBase([s]) === undefined) return s;
    return { ...s, options: { ...s.options, trt_engine_cache_path: join(s.options!.trt_engine_cache_path as string, key) } };
  });
}

/** How many model engine directories a cache keeps (the one in use and the last ones, for a rollback). */
export const KEPT_ENGINE_CACHES = 3;

/**
 * Marks `key` as just used and removes the least recently used other model directories under `base`
 * beyond `keep` in all. Only directories named like trtCacheKey are touched. Returns the removed names.
 */
export function pruneEngineCaches(base: string, key: string, keep = KEPT_ENGINE_CACHES, now = new Date()): string[] {
  if (!existsSync(base)) return [];
  const current = join(base, key);
  if (existsSync(current)) utimesSync(current, now, now);
  const others = readdirSync(base, { withFileTypes: true })
    .filter((d) => d.isDirectory() && d.name !== key && KEY_RE.test(d.name))
    .map((d) => ({ name: d.name, mtime: statSync(join(base, d.name)).mtimeMs }))
    .sort((a, b) => b.mtime - a.mtime);
  const removed = others.slice(Math.max(0, keep - 1)).map((d) => d.name);
  for (const name of removed) rmSync(join(base, name), { recursive: true, force: true });
  return removed;
}

/**
 * What openSession does before creating a TensorRT session: key the engine cache by the model bytes,
 * TensorRT version and GPU arch, create the directories (onnxruntime creates only one level) and prune
 * old model directories. Returns the rewritten providers and the directory engines go to.
 */
export function prepareEngineCache(
  specs: readonly ProviderSpec[],
  modelPath: string,
  o: { tensorrtVersion?: string; gpuArch?: number | string; keep?: number } = {},
): { providers: ProviderSpec[]; engineDir?: string; removed: string[] } {
  const base = engineCacheBase(specs);
  if (base === undefined) return { providers: [...specs], removed: [] };
  const key = trtCacheKey({ modelSha256: modelDigest(modelPath), tensorrtVersion: o.tensorrtVersion, gpuArch: o.gpuArch });
  const providers = keyEngineCache(specs, key);
  const engineDir = join(base, key);
  mkdirSync(engineDir, { recursive: true });
  const removed = pruneEngineCaches(base, key, o.keep);
  return { providers, engineDir, removed };
}

/** Engine files in a cache directory (onnxruntime writes `*.engine`; a second start finds them there). */
export function cachedEngines(engineDir: string): string[] {
  try {
    return readdirSync(engineDir).filter((n) => n.endsWith('.engine'));
  } catch {
    return [];
  }
}

/**
 * What a profile's provider options become on their way into onnxruntime.
 *
 * onnxruntime-node takes one object per execution provider, `{ name, deviceId, ... }`. The stock binding
 * reads only `deviceId`; the binding built by scripts/jetson/build-onnxruntime.sh (patch
 * scripts/jetson/patches/0001-*.patch) also passes every other property to onnxruntime's
 * Update{TensorRT,CUDA}ProviderOptions as a string. `providerOptionStrings` is that conversion written
 * in TypeScript, so that what reaches the provider can be tested and logged on a machine without a GPU.
 */
import { mkdirSync } from 'node:fs';
import type { ProviderSpec } from './types.js';

/** The entry of onnxruntime-node's `executionProviders` for one profile provider. */
export type OrtProviderConfig = 'cpu' | ({ name: 'tensorrt' | 'cuda'; deviceId: number } & Record<string, string | number | boolean>);

export function ortProviderConfig(spec: ProviderSpec): OrtProviderConfig {
  if (spec.name === 'cpu') return 'cpu';
  const options = spec.options ?? {};
  const deviceId = typeof options.device_id === 'number' ? options.device_id : Number(options.device_id ?? 0);
  return { ...options, name: spec.name, deviceId };
}

/**
 * The key/value strings the patched binding hands to onnxruntime: booleans as "1"/"0" (what
 * onnxruntime's option parser reads as bool), whole numbers in decimal (fractions are refused),
 * strings as they are; `name`
 * and `deviceId` are not options, and device_id is always present because Update...ProviderOptions
 * resets every option it is not given.
 */
export function providerOptionStrings(config: OrtProviderConfig): Record<string, string> {
  if (config === 'cpu') return {};
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(config)) {
    if (key === 'name' || key === 'deviceId' || value === undefined) continue;
    if (typeof value === 'boolean') out[key] = value ? '1' : '0';
    else if (typeof value === 'number') {
      // As the patched binding: every numeric TensorRT/CUDA option is a whole number.
      if (!Number.isInteger(value) || Math.abs(value) > 9e15) throw new TypeError(`provider option '${key}' must be a whole number`);
      out[key] = value.toFixed(0);
    } else out[key] = value;
  }
  if (!('device_id' in out)) out.device_id = String(config.deviceId);
  return out;
}

/**
 * Creates the TensorRT engine and timing cache directories a profile names. Call it before creating a
 * session: the cache path is nested (`<cache>/trt/<profile>`), and a provider that finds no directory
 * either fails to load or silently builds every engine again. Returns the directories it made sure of.
 */
export function ensureProviderCacheDirs(specs: readonly ProviderSpec[]): string[] {
  const dirs = new Set<string>();
  for (const spec of specs) {
    for (const key of ['trt_engine_cache_path', 'trt_timing_cache_path']) {
      const dir = spec.options?.[key];
      if (typeof dir === 'string' && dir !== '') dirs.add(dir);
    }
  }
  for (const dir of dirs) mkdirSync(dir, { recursive: true });
  return [...dirs];
}

/**
 * INT8 and DLA in the device profiles (issue 13): boards with fast INT8 (Xavier, Orin; sm_72+) give
 * INT8 QDQ models TensorRT with trt_int8_enable, the others keep FP16 lists; DLA is offered, opt-in,
 * where the board has DLA cores, with GPU fallback and separate engine caches.
 */
import { describe, expect, it } from 'vitest';
import { SsdError } from '../../core/errors.js';
import { getProfile, PROFILES, providersFor } from '../../devices/profiles.js';
import { ortProviderConfig, providerOptionStrings } from '../../devices/provider-options.js';
import type { DeviceProfile, ProviderSpec } from '../../devices/types.js';

/** NVIDIA's Jetson module data sheets: DLA cores per board (Orin NX 8 GB has one, 16 GB two). */
const DLA_CORES: Record<string, number> = { 'xavier-agx': 2, 'xavier-nx': 2, 'orin-agx': 2, 'orin-nx': 1 };
/** TensorRT INT8 needs compute capability >= 7.2 on Jetson (Nano 5.3 and TX2 6.2 have none). */
const hasFastInt8 = (p: DeviceProfile) => p.cudaArch !== undefined && p.cudaArch >= 72;
const trt = (list: readonly ProviderSpec[]) => list.find((s) => s.name === 'tensorrt')?.options ?? {};

describe('INT8 providers', () => {
  it('Xavier and Orin: TensorRT INT8 (+FP16 for float layers) for INT8 models, their own engine cache; FP16 lists unchanged', () => {
    for (const p of PROFILES) {
      if (!hasFastInt8(p)) {
        expect(p.int8Providers, p.name).toBeUndefined();
        expect(providersFor(p, { precision: 'int8' }), p.name).toBe(p.providers);
        continue;
      }
      const list = providersFor(p, { precision: 'int8' });
      expect(list.map((s) => s.name), p.name).toEqual(p.providers.map((s) => s.name));
      expect(trt(list).trt_int8_enable, p.name).toBe(true);
      expect(trt(list).trt_fp16_enable, p.name).toBe(true);
      expect(trt(list).trt_engine_cache_path, p.name).not.toBe(trt(p.providers).trt_engine_cache_path);
      expect(trt(p.providers).trt_int8_enable, p.name).toBe(false);
      expect(providersFor(p, { precision: 'fp16' })).toBe(p.providers);
    }
  });
});

describe('DLA', () => {
  it('the boards with DLA cores say how many; the others none', () => {
    for (const p of PROFILES) expect(p.dlaCores ?? 0, p.name).toBe(DLA_CORES[p.name] ?? 0);
  });

  it('a DLA core turns on trt_dla_enable/trt_dla_core with its own caches, and onnxruntime can take the options', () => {
    const p = getProfile('xavier-nx');
    for (const precision of ['fp16', 'int8'] as const) {
      const list = providersFor(p, { precision, dlaCore: 1 });
      const o = trt(list);
      expect(o.trt_dla_enable).toBe(true);
      expect(o.trt_dla_core).toBe(1);
      expect(o.trt_int8_enable).toBe(precision === 'int8');
      expect(String(o.trt_engine_cache_path)).toMatch(/-dla1$/);
      expect(String(o.trt_timing_cache_path)).toMatch(/-dla1$/);
      // The GPU providers stay behind it: what DLA cannot run falls back.
      expect(list.map((s) => s.name)).toEqual(['tensorrt', 'cuda', 'cpu']);
      const strings = providerOptionStrings(ortProviderConfig(list[0]!));
      expect(strings.trt_dla_enable).toBe('1');
      expect(strings.trt_dla_core).toBe('1');
    }
  });

  it('a board without DLA, or a core it does not have, is one line naming both', () => {
    expect(() => providersFor(getProfile('orin-nano'), { dlaCore: 0 })).toThrow(SsdError);
    expect(() => providersFor(getProfile('orin-nano'), { dlaCore: 0 })).toThrow(/DLA core 0: device orin-nano has no DLA/);
    expect(() => providersFor(getProfile('orin-nx'), { dlaCore: 1 })).toThrow(/device orin-nx has DLA cores 0\.\.0/);
    expect(() => providersFor(getProfile('jetson-nano'), { precision: 'int8', dlaCore: 0 })).toThrow(/no DLA/);
  });
});

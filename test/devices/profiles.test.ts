import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SsdError } from '../../core/errors.js';
import { deviceCacheDir, getProfile, listProfiles, PROFILES } from '../../devices/profiles.js';

const REPO = join(import.meta.dirname, '..', '..');

describe('built-in profiles', () => {
  it('has every profile the issue names, once each', () => {
    const names = PROFILES.map((p) => p.name).sort();
    expect(names).toEqual(['cpu', 'jetson-nano', 'jetson-tx2', 'orin-agx', 'orin-nano', 'orin-nx', 'x86-cuda', 'xavier-agx', 'xavier-nx']);
    expect(listProfiles()).not.toBe(PROFILES);
  });

  it('CUDA architectures: Nano 53, TX2 62, Xavier 72, Orin 87', () => {
    expect(getProfile('jetson-nano').cudaArch).toBe(53);
    expect(getProfile('jetson-tx2').cudaArch).toBe(62);
    expect(getProfile('xavier-nx').cudaArch).toBe(72);
    expect(getProfile('xavier-agx').cudaArch).toBe(72);
    for (const n of ['orin-nano', 'orin-nx', 'orin-agx']) expect(getProfile(n).cudaArch).toBe(87);
    expect(getProfile('cpu').cudaArch).toBeUndefined();
  });

  it('JetPack families by board', () => {
    expect(['jetson-nano', 'jetson-tx2'].map((n) => getProfile(n).platform)).toEqual(['jetpack4', 'jetpack4']);
    expect(['xavier-nx', 'xavier-agx'].map((n) => getProfile(n).platform)).toEqual(['jetpack5', 'jetpack5']);
    expect(['orin-nano', 'orin-nx', 'orin-agx'].map((n) => getProfile(n).platform)).toEqual(['jetpack6', 'jetpack6', 'jetpack6']);
  });

  it('GPU profiles try tensorrt, then cuda, then cpu; cpu only tries cpu', () => {
    for (const p of PROFILES) {
      const order = p.providers.map((s) => s.name);
      if (p.name === 'cpu') expect(order).toEqual(['cpu']);
      else expect(order).toEqual(['tensorrt', 'cuda', 'cpu']);
    }
  });

  it('TensorRT options use onnxruntime names: fp16, engine and timing cache per profile, workspace per board', () => {
    const cache = deviceCacheDir();
    for (const p of PROFILES.filter((q) => q.name !== 'cpu')) {
      const trt = p.providers[0]!.options!;
      expect(trt.trt_fp16_enable).toBe(true);
      expect(trt.trt_int8_enable).toBe(false);
      expect(trt.trt_engine_cache_enable).toBe(true);
      expect(trt.trt_timing_cache_enable).toBe(true);
      expect(trt.trt_engine_cache_path).toBe(join(cache, 'trt', p.name));
      expect(trt.trt_timing_cache_path).toBe(join(cache, 'trt', p.name));
      expect(typeof trt.trt_max_workspace_size).toBe('number');
      expect(trt.device_id).toBe(0);
    }
    // The 4 GB Nano gets the smallest workspace, the AGX Orin the largest of the Jetsons.
    const ws = (n: string) => getProfile(n).providers[0]!.options!.trt_max_workspace_size as number;
    expect(ws('jetson-nano')).toBe(512 * 1024 * 1024);
    expect(ws('orin-agx')).toBe(4 * 1024 * 1024 * 1024);
    for (const n of ['jetson-tx2', 'xavier-nx', 'xavier-agx', 'orin-nano', 'orin-nx']) {
      expect(ws(n)).toBeGreaterThan(ws('jetson-nano'));
      expect(ws(n)).toBeLessThan(ws('orin-agx'));
    }
  });

  it('SSD_CACHE_DIR moves the engine cache (a deployed service keeps it across releases)', () => {
    expect(deviceCacheDir({ SSD_CACHE_DIR: '/opt/ssd/cache' })).toBe('/opt/ssd/cache');
    expect(deviceCacheDir({})).toMatch(/\.cache[/\\]ssd$/);
  });

  it('Jetsons decode in hardware into NVMM, desktops in software', () => {
    for (const p of PROFILES) {
      if (p.software) {
        expect(p.gst).toMatchObject({ h264Decoder: 'nvv4l2decoder', convert: 'nvvidconv', csiSource: 'nvarguscamerasrc', nvmm: true });
      } else {
        expect(p.gst.nvmm).toBe(false);
        expect(p.gst.csiSource).toBeUndefined();
        expect(p.gst.h264Decoder).toBe('avdec_h264');
      }
    }
  });

  it('states the JetPack 4 glibc limit and the missing fast INT8 on Nano/TX2', () => {
    for (const n of ['jetson-nano', 'jetson-tx2']) {
      const p = getProfile(n);
      expect(p.software?.glibc).toBe('2.27');
      expect(p.limits.some((l) => l.includes('glibc 2.27') && l.includes('2.28'))).toBe(true);
      expect(p.limits.some((l) => /INT8/.test(l) && /FP16/.test(l))).toBe(true);
      expect(p.suggestedPrecision).toBe('fp16');
    }
  });

  it('every profile is complete', () => {
    for (const p of PROFILES) {
      expect(p.description.length).toBeGreaterThan(0);
      expect([300, 512]).toContain(p.suggestedInputSize);
      expect(p.limits.length).toBeGreaterThan(0);
      expect(p.gst.h264Decoder.length).toBeGreaterThan(0);
    }
  });

  it('an unknown name is an SsdError listing the known profiles', () => {
    expect(() => getProfile('jetson-nano-2')).toThrow(SsdError);
    expect(() => getProfile('jetson-nano-2')).toThrow(/known: orin-agx, .*jetson-nano, x86-cuda, cpu/);
  });
});

describe('ssd devices', () => {
  const run = (args: string[]) =>
    execFileSync(process.execPath, [join(REPO, 'bin', 'ssd.js'), 'devices', ...args], { cwd: REPO, encoding: 'utf8' });

  it('--json lists the profiles and the match for a fake root', () => {
    const out = JSON.parse(run(['--json', '--root', join(REPO, 'test', 'fixtures', 'devices', 'xavier-nx')])) as {
      detected: string;
      evidence: string[];
      profiles: { name: string }[];
    };
    expect(out.detected).toBe('xavier-nx');
    expect(out.profiles.map((p) => p.name)).toContain('orin-nano');
    expect(out.evidence.join(' ')).toContain('Xavier NX');
  });

  it('the table marks the matching profile', () => {
    const out = run(['--root', join(REPO, 'test', 'fixtures', 'devices', 'jetson-tx2')]);
    expect(out).toMatch(/^\* jetson-tx2 /m);
    expect(out).toContain('This machine: jetson-tx2');
  });
});

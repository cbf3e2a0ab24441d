/**
 * The device profiles, checked by their properties and against facts from outside
 * devices/profiles.ts: NVIDIA's compute capabilities and JetPack release tables, onnxruntime's own
 * provider option names, and the device files of real boards under test/fixtures/devices. The table
 * itself is not copied here: a profile added or changed must keep these true, not edit a second copy.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { isAbsolute, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SsdError } from '../../core/errors.js';
import { specByName } from '../../core/specs.js';
import { detectDevice } from '../../devices/detect.js';
import { buildProfiles, deviceCacheDir, getProfile, isJetson, listProfiles, PROFILES, providersFor } from '../../devices/profiles.js';
import { ortProviderConfig, providerOptionStrings } from '../../devices/provider-options.js';
import type { DeviceProfile, ExecutionProviderName } from '../../devices/types.js';

const REPO = join(import.meta.dirname, '..', '..');
const FIXTURES = join(REPO, 'test', 'fixtures', 'devices');
const GiB = 1024 ** 3;

// --- Facts from outside the project -------------------------------------------------------------

/** onnxruntime's TensorRT execution provider options (onnxruntime docs, "TensorRT Execution Provider"). */
const ORT_TENSORRT_OPTIONS = new Set([
  'device_id', 'user_compute_stream', 'trt_max_workspace_size', 'trt_max_partition_iterations', 'trt_min_subgraph_size',
  'trt_fp16_enable', 'trt_int8_enable', 'trt_int8_calibration_table_name', 'trt_int8_use_native_calibration_table',
  'trt_dla_enable', 'trt_dla_core', 'trt_engine_cache_enable', 'trt_engine_cache_path', 'trt_engine_cache_prefix',
  'trt_dump_subgraphs', 'trt_force_sequential_engine_build', 'trt_context_memory_sharing_enable', 'trt_layer_norm_fp32_fallback',
  'trt_timing_cache_enable', 'trt_timing_cache_path', 'trt_force_timing_cache', 'trt_detailed_build_log',
  'trt_build_heuristics_enable', 'trt_sparsity_enable', 'trt_builder_optimization_level', 'trt_auxiliary_streams',
  'trt_tactic_sources', 'trt_extra_plugin_lib_paths', 'trt_profile_min_shapes', 'trt_profile_max_shapes', 'trt_profile_opt_shapes',
  'trt_cuda_graph_enable', 'trt_engine_hw_compatible', 'trt_weight_stripped_engine_enable', 'trt_onnx_model_folder_path',
]);
/** onnxruntime's CUDA execution provider options (onnxruntime docs, "CUDA Execution Provider"), with their enumerations. */
const ORT_CUDA_OPTIONS = new Set([
  'device_id', 'gpu_mem_limit', 'arena_extend_strategy', 'cudnn_conv_algo_search', 'do_copy_in_default_stream',
  'cudnn_conv_use_max_workspace', 'cudnn_conv1d_pad_to_nc1d', 'enable_cuda_graph', 'enable_skip_layer_norm_strict_mode',
  'use_tf32', 'prefer_nhwc', 'user_compute_stream', 'tunable_op_enable', 'tunable_op_tuning_enable', 'tunable_op_max_tuning_duration_ms',
]);
const ORT_CUDA_ENUMS: Record<string, string[]> = {
  arena_extend_strategy: ['kNextPowerOfTwo', 'kSameAsRequested'],
  cudnn_conv_algo_search: ['EXHAUSTIVE', 'HEURISTIC', 'DEFAULT'],
};
/** Compute capability of each Tegra SoC (NVIDIA, "CUDA GPUs"): X1 (Nano), X2 (TX2), Xavier, Orin. */
const SOC_COMPUTE: Record<string, number> = { tegra210: 53, tegra186: 62, tegra194: 72, tegra234: 87 };
/** JetPack major -> the L4T release and Ubuntu it ships (NVIDIA JetPack archive). */
const JETPACK: Record<string, { l4t: string; ubuntu: string }> = {
  '4': { l4t: 'R32', ubuntu: '18.04' },
  '5': { l4t: 'R35', ubuntu: '20.04' },
  '6': { l4t: 'R36', ubuntu: '22.04' },
};
/** Ubuntu release -> its glibc. */
const UBUNTU_GLIBC: Record<string, string> = { '18.04': '2.27', '20.04': '2.31', '22.04': '2.35' };
/** The oldest glibc the official Node.js >= 18 Linux builds run on. */
const NODE_MIN_GLIBC = '2.28';
/** Execution providers from fastest to slowest: a profile tries them in this order. */
const SPEED_ORDER: ExecutionProviderName[] = ['tensorrt', 'cuda', 'cpu'];

const versionLess = (a: string, b: string) => {
  const [x, y] = [a.split('.').map(Number), b.split('.').map(Number)];
  for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) < (y[i] ?? 0);
  return false;
};
const provider = (p: DeviceProfile, name: ExecutionProviderName) => p.providers.find((s) => s.name === name);
const workspace = (p: DeviceProfile) => provider(p, 'tensorrt')?.options?.trt_max_workspace_size as number;

describe('built-in profiles: naming and lookup', () => {
  it('names are unique lower-case words; getProfile finds each; there is a cpu profile for any machine', () => {
    const names = PROFILES.map((p) => p.name);
    expect(new Set(names).size).toBe(names.length);
    for (const p of PROFILES) {
      expect(p.name).toMatch(/^[a-z0-9]+(-[a-z0-9]+)*$/);
      expect(getProfile(p.name)).toBe(p);
      expect(p.description.length).toBeGreaterThan(0);
      expect(p.limits.length).toBeGreaterThan(0);
    }
    expect(names).toContain('cpu');
    expect(listProfiles()).toEqual(PROFILES);
    expect(listProfiles()).not.toBe(PROFILES);
  });

  it('an unknown name is an SsdError that lists every known profile', () => {
    expect(() => getProfile('jetson-nano-2')).toThrow(SsdError);
    expect(() => getProfile('jetson-nano-2')).toThrow(new RegExp(`known: ${PROFILES.map((p) => p.name).join(', ')}\\)`));
  });
});

describe('built-in profiles: execution providers', () => {
  it('every profile falls back to the CPU last, and tries providers fastest first, each once', () => {
    for (const p of PROFILES) {
      const order = p.providers.map((s) => s.name);
      expect(order.at(-1), p.name).toBe('cpu');
      expect(new Set(order).size, p.name).toBe(order.length);
      const ranks = order.map((n) => SPEED_ORDER.indexOf(n));
      expect(ranks.every((r, i) => r >= 0 && (i === 0 || r > ranks[i - 1]!)), `${p.name}: ${order.join(' > ')}`).toBe(true);
    }
  });

  it('a profile with a GPU (a CUDA architecture, or the x86 CUDA desktop) lists TensorRT and CUDA; one without lists only the CPU', () => {
    for (const p of PROFILES) {
      const gpu = p.cudaArch !== undefined || p.platform === 'x86-cuda';
      expect(p.providers.map((s) => s.name), p.name).toEqual(gpu ? SPEED_ORDER : ['cpu']);
    }
  });

  it('options are onnxruntime\'s own names, on the provider they belong to; the CPU provider takes none', () => {
    for (const p of PROFILES) {
      for (const spec of p.providers) {
        const keys = Object.keys(spec.options ?? {});
        if (spec.name === 'cpu') expect(keys, p.name).toEqual([]);
        for (const k of keys) {
          const known = spec.name === 'tensorrt' ? ORT_TENSORRT_OPTIONS : ORT_CUDA_OPTIONS;
          expect(known.has(k), `${p.name}: ${spec.name} option ${k}`).toBe(true);
          // TensorRT options only where TensorRT is listed.
          if (k.startsWith('trt_')) expect(spec.name, `${p.name}: ${k}`).toBe('tensorrt');
          const allowed = spec.name === 'cuda' ? ORT_CUDA_ENUMS[k] : undefined;
          if (allowed) expect(allowed, `${p.name}: ${k}`).toContain(spec.options![k]);
        }
        // What the patched binding would hand to onnxruntime: representable, and always a device.
        const strings = providerOptionStrings(ortProviderConfig(spec));
        if (spec.name !== 'cpu') expect(strings.device_id, p.name).toMatch(/^\d+$/);
      }
    }
  });

  it('TensorRT precision: FP16 exactly where the profile suggests FP16; INT8 nowhere (the exporter writes no calibration table)', () => {
    for (const p of PROFILES) {
      expect(p.suggestedPrecision, p.name).not.toBe('int8');
      const trt = provider(p, 'tensorrt')?.options;
      if (!trt) continue;
      expect(trt.trt_fp16_enable, p.name).toBe(p.suggestedPrecision === 'fp16');
      expect(trt.trt_int8_enable ?? false, p.name).toBe(false);
    }
  });
});

describe('built-in profiles: TensorRT caches', () => {
  it('engine and timing caches live under the cache directory, one directory per profile, and are enabled', () => {
    const root = join('/srv', 'ssd-cache-test');
    const profiles = buildProfiles(root);
    expect(profiles.map((p) => p.name)).toEqual(PROFILES.map((p) => p.name));
    const dirs = new Set<string>();
    let withTrt = 0;
    for (const p of profiles) {
      const trt = provider(p, 'tensorrt')?.options;
      if (!trt) continue;
      withTrt++;
      const engine = trt.trt_engine_cache_path as string;
      for (const key of Object.keys(trt).filter((k) => k.endsWith('_path'))) {
        const rel = relative(root, trt[key] as string);
        expect(rel.startsWith('..') || isAbsolute(rel), `${p.name}: ${key} ${String(trt[key])}`).toBe(false);
      }
      // A path with the cache switched off would build every engine again (minutes on a Nano).
      expect(trt.trt_engine_cache_enable, p.name).toBe(true);
      expect(trt.trt_timing_cache_enable, p.name).toBe(true);
      expect(trt.trt_timing_cache_path, p.name).toBe(engine);
      // An engine built for one GPU must never be offered to another: the directory names the profile.
      expect(engine.split(/[/\\]/), p.name).toContain(p.name);
      dirs.add(engine);
    }
    expect(withTrt).toBeGreaterThan(0);
    expect(dirs.size).toBe(withTrt);
  });

  it('the default profiles use deviceCacheDir(); SSD_CACHE_DIR moves it (a deployed service keeps it across releases)', () => {
    for (const p of PROFILES) {
      const engine = provider(p, 'tensorrt')?.options?.trt_engine_cache_path;
      if (engine !== undefined) expect(relative(deviceCacheDir(), engine as string).startsWith('..')).toBe(false);
    }
    expect(deviceCacheDir({ SSD_CACHE_DIR: '/opt/ssd/cache' })).toBe('/opt/ssd/cache');
    expect(deviceCacheDir({ SSD_CACHE_DIR: '  ' })).toBe(deviceCacheDir({}));
    expect(deviceCacheDir({})).toMatch(/\.cache[/\\]ssd$/);
  });
});

describe('built-in profiles: boards', () => {
  const jetsons = PROFILES.filter(isJetson);

  it('memory: the TensorRT workspace and the CUDA arena fit the board; more memory never means a smaller workspace', () => {
    expect(jetsons.length).toBeGreaterThan(0);
    for (const p of jetsons) {
      const mem = p.hardware!.memoryGiB * GiB;
      expect(Number.isInteger(workspace(p)), p.name).toBe(true);
      expect(workspace(p), p.name).toBeGreaterThan(0);
      // The GPU shares the board's memory with the CPU, the OS and the camera buffers.
      expect(workspace(p), p.name).toBeLessThanOrEqual(mem / 4);
      const arena = provider(p, 'cuda')?.options?.gpu_mem_limit;
      if (arena !== undefined) expect(arena as number, p.name).toBeLessThan(mem);
      if (p.threads !== undefined) expect(p.threads, p.name).toBeLessThanOrEqual(p.hardware!.cpuCores);
    }
    for (const a of jetsons) {
      for (const b of jetsons) {
        if (a.hardware!.memoryGiB < b.hardware!.memoryGiB) expect(workspace(a), `${a.name} vs ${b.name}`).toBeLessThanOrEqual(workspace(b));
      }
    }
  });

  it('software: the JetPack, L4T, Ubuntu and glibc of each Jetson agree with NVIDIA\'s release tables', () => {
    for (const p of jetsons) {
      const sw = p.software!;
      const major = sw.jetpack.split('.')[0]!;
      expect(JETPACK[major], `${p.name}: JetPack ${sw.jetpack}`).toBeDefined();
      expect(p.platform).toBe(`jetpack${major}`);
      expect(sw.l4t, p.name).toBe(JETPACK[major]!.l4t);
      expect(sw.ubuntu, p.name).toBe(JETPACK[major]!.ubuntu);
      expect(sw.glibc, p.name).toBe(UBUNTU_GLIBC[sw.ubuntu]);
      // A glibc too old for Node 20 is the first thing such a user hits: the profile must say so.
      if (versionLess(sw.glibc, NODE_MIN_GLIBC)) {
        expect(p.limits.some((l) => l.includes(`glibc ${sw.glibc}`) && l.includes(NODE_MIN_GLIBC)), p.name).toBe(true);
      }
    }
    for (const p of PROFILES.filter((q) => !isJetson(q))) {
      expect(p.hardware, p.name).toBeUndefined();
      expect(p.cudaArch, p.name).toBeUndefined();
    }
  });

  it('GStreamer: Jetsons decode in hardware into NVMM and have a CSI camera source; other machines decode in software', () => {
    for (const p of PROFILES) {
      expect(p.gst.nvmm, p.name).toBe(isJetson(p));
      if (p.gst.nvmm) {
        expect(p.gst.convert, p.name).toBe('nvvidconv');
        expect(p.gst.csiSource, p.name).toBeDefined();
      } else {
        expect(p.gst.csiSource, p.name).toBeUndefined();
        for (const d of [p.gst.h264Decoder, p.gst.h265Decoder]) expect(d, p.name).toMatch(/^avdec_/);
      }
    }
  });

  it('the suggested input size is that of an SSD the project ships', () => {
    const sizes = ['ssd300', 'ssd512'].map((n) => specByName(n).inputSize);
    for (const p of PROFILES) expect(sizes, p.name).toContain(p.suggestedInputSize);
  });
});

describe('built-in profiles against the device files of real boards (test/fixtures/devices)', () => {
  const boards = readdirSync(FIXTURES).filter((d) => existsSync(join(FIXTURES, d, 'proc', 'device-tree', 'compatible')));
  const read = (board: string, ...path: string[]) => {
    const f = join(FIXTURES, board, ...path);
    return existsSync(f) ? readFileSync(f, 'utf8') : undefined;
  };
  const profileOf = (board: string) => detectDevice({ root: join(FIXTURES, board), runNvidiaSmi: () => undefined }).profile;

  it('every Jetson profile is the detected profile of some real board', () => {
    expect(new Set(boards.map((b) => profileOf(b).name))).toEqual(new Set(PROFILES.filter(isJetson).map((p) => p.name)));
  });

  it.each(boards)('%s: compute capability of its SoC, L4T release, CUDA, TensorRT and memory match its profile', (board) => {
    const p = profileOf(board);
    const soc = /nvidia,(tegra\d+)/.exec(read(board, 'proc', 'device-tree', 'compatible')!)?.[1];
    expect(soc && SOC_COMPUTE[soc], `${board}: SoC ${soc}`).toBe(p.cudaArch);
    const l4t = /^# (R\d+) \(release\)/m.exec(read(board, 'etc', 'nv_tegra_release') ?? '')?.[1];
    if (l4t) expect(l4t).toBe(p.software!.l4t);
    const cuda = /CUDA Version (\d+\.\d+)/.exec(read(board, 'usr', 'local', 'cuda', 'version.txt') ?? '')?.[1]
      ?? /"version"\s*:\s*"(\d+\.\d+)/.exec(read(board, 'usr', 'local', 'cuda', 'version.json') ?? '')?.[1];
    if (cuda) expect(cuda).toBe(p.software!.cuda);
    const header = read(board, 'usr', 'include', 'aarch64-linux-gnu', 'NvInferVersion.h');
    if (header) {
      // Resolve one level of #define indirection (TensorRT 10 defines NV_TENSORRT_MAJOR via TRT_MAJOR_ENTERPRISE).
      const defines = new Map([...header.matchAll(/^#define (\w+) (\w+)/gm)].map((m) => [m[1]!, m[2]!]));
      const value = (k: string) => { const v = defines.get(k)!; return defines.get(v) ?? v; };
      expect(`${value('NV_TENSORRT_MAJOR')}.${value('NV_TENSORRT_MINOR')}`).toBe(p.software!.tensorrt);
    }
    const memKiB = Number(/^MemTotal:\s+(\d+) kB/m.exec(read(board, 'proc', 'meminfo') ?? '')?.[1]);
    if (memKiB > 0) {
      // MemTotal is the module's memory less what the firmware and the GPU carve-outs keep.
      const module = p.hardware!.memoryGiB * GiB;
      expect(module).toBeGreaterThanOrEqual(memKiB * 1024);
      expect(module).toBeLessThanOrEqual(1.25 * memKiB * 1024);
    }
  });
});

describe('ssd devices', () => {
  const run = (args: string[]) =>
    execFileSync(process.execPath, [join(REPO, 'bin', 'ssd.js'), 'devices', ...args], { cwd: REPO, encoding: 'utf8' });

  it('--json lists the profiles and the match for a fake root', () => {
    const out = JSON.parse(run(['--json', '--root', join(FIXTURES, 'xavier-nx')])) as {
      detected: string;
      evidence: string[];
      profiles: { name: string }[];
    };
    expect(out.detected).toBe('xavier-nx');
    expect(out.profiles.map((p) => p.name)).toEqual(PROFILES.map((p) => p.name));
    expect(out.evidence.join(' ')).toContain('Xavier NX');
  });

  it('the table marks the matching profile', () => {
    const out = run(['--root', join(FIXTURES, 'jetson-tx2')]);
    expect(out).toMatch(/^\* jetson-tx2 /m);
    expect(out).toContain('This machine: jetson-tx2');
  });
});

describe('NMS and TensorRT (issue 14, item 4)', () => {
  it('every GPU profile suggests --postprocess decode and says why', () => {
    for (const p of PROFILES) {
      expect(p.suggestedPostprocess, p.name).toBe('decode');
      if (isJetson(p)) expect(p.limits.some((l) => /--postprocess decode/.test(l) && /NonMaxSuppression/.test(l)), p.name).toBe(true);
    }
  });

  it('an nms model keeps NonMaxSuppression out of TensorRT; decode models and other providers are untouched', () => {
    for (const p of PROFILES.filter((q) => q.providers.some((s) => s.name === 'tensorrt'))) {
      const nms = providersFor(p, { postprocess: 'nms' });
      const trt = nms.find((s) => s.name === 'tensorrt')!.options!;
      expect(String(trt.trt_op_types_to_exclude).split(','), p.name).toContain('NonMaxSuppression');
      expect(providerOptionStrings(ortProviderConfig(nms[0]!)).trt_op_types_to_exclude).toContain('NonMaxSuppression');
      expect(nms.find((s) => s.name === 'cuda')).toEqual(p.providers.find((s) => s.name === 'cuda'));
      expect(providersFor(p, { postprocess: 'decode' })).toEqual(p.providers);
    }
    const orin = getProfile('orin-agx');
    // With INT8 and a DLA core too.
    const both = providersFor(orin, { postprocess: 'nms', precision: 'int8', dlaCore: 0 })[0]!.options!;
    expect(both.trt_int8_enable).toBe(true);
    expect(both.trt_dla_enable).toBe(true);
    expect(both.trt_op_types_to_exclude).toBe('NonMaxSuppression,NonZero,RoiAlign');
  });
});

import { execFile, execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { buildProfiles, getProfile, PROFILES } from '../../devices/profiles.js';
import { ensureProviderCacheDirs, ortProviderConfig, providerOptionStrings } from '../../devices/provider-options.js';
import { tempDir } from '../helpers/temp-dir.js';

const REPO = join(import.meta.dirname, '..', '..');
const SCRIPT = join(REPO, 'scripts', 'jetson', 'build-onnxruntime.sh');
const PATCH = join(REPO, 'scripts', 'jetson', 'patches', '0001-node-binding-forward-cuda-tensorrt-provider-options.patch');
const FIXTURES = join(REPO, 'test', 'fixtures', 'devices');
const PINNED = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies[
  'onnxruntime-node'
]!.replace(/^[\^~]/, '');
const run = promisify(execFile);

async function dryRun(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('bash', [SCRIPT, '--dry-run', ...args], { cwd: REPO, env: { ...process.env, HOME: '/home/tester' } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function meminfoGiB(fixture: string): number {
  const text = readFileSync(join(FIXTURES, fixture, 'proc', 'meminfo'), 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(text)![1]);
  return Math.round((kb('MemTotal') + kb('SwapTotal')) / 1048576);
}

describe('the options that reach onnxruntime per profile', () => {
  it('orin-nano: TensorRT FP16 with engine and timing caches, 1 GiB workspace, as onnxruntime strings', () => {
    const trt = providerOptionStrings(ortProviderConfig(getProfile('orin-nano').providers[0]!));
    expect(trt.trt_fp16_enable).toBe('1');
    expect(trt.trt_int8_enable).toBe('0');
    expect(trt.trt_engine_cache_enable).toBe('1');
    expect(trt.trt_timing_cache_enable).toBe('1');
    expect(trt.trt_engine_cache_path).toMatch(/trt[/\\]orin-nano$/);
    expect(trt.trt_max_workspace_size).toBe(String(1024 ** 3));
    expect(trt.device_id).toBe('0');
    expect(Object.keys(trt)).not.toContain('name');
    expect(Object.keys(trt)).not.toContain('deviceId');
  });

  it('jetson-nano: the CUDA arena is capped and cuDNN searches heuristically', () => {
    const cuda = providerOptionStrings(ortProviderConfig(getProfile('jetson-nano').providers[1]!));
    expect(cuda).toEqual({
      device_id: '0',
      cudnn_conv_algo_search: 'HEURISTIC',
      arena_extend_strategy: 'kSameAsRequested',
      gpu_mem_limit: String(1536 * 1024 * 1024),
    });
  });

  it('every profile option is a string, a whole number or a boolean (what the patched binding accepts)', () => {
    for (const p of PROFILES) {
      for (const spec of p.providers) {
        const config = ortProviderConfig(spec);
        if (spec.name === 'cpu') {
          expect(config).toBe('cpu');
          continue;
        }
        for (const v of Object.values(spec.options ?? {})) {
          expect(['string', 'boolean', 'number']).toContain(typeof v);
          if (typeof v === 'number') expect(Number.isInteger(v)).toBe(true);
        }
        expect(Object.keys(providerOptionStrings(config))).toContain('device_id');
      }
    }
  });

  it('device_id is added when a provider names only deviceId', () => {
    expect(providerOptionStrings({ name: 'cuda', deviceId: 1 })).toEqual({ device_id: '1' });
  });
});

describe('build-onnxruntime.sh --dry-run', () => {
  it(`orin-nano fixture: onnxruntime v${PINNED} from package.json, sm_87, CUDA + TensorRT, jobs from memory`, async () => {
    const r = await dryRun(['--root', join(FIXTURES, 'orin-nano')]);
    expect(r.code).toBe(0);
    const build = r.stdout.split('\n').find((l) => l.startsWith('./build.sh'))!;
    expect(build).toContain('--build_nodejs');
    expect(build).toContain('--use_cuda --cuda_home /usr/local/cuda --cudnn_home /usr/lib/aarch64-linux-gnu');
    expect(build).toContain('--use_tensorrt --tensorrt_home /usr/lib/aarch64-linux-gnu');
    expect(build).toContain('CMAKE_CUDA_ARCHITECTURES=87');
    // 7.4 GiB RAM + 3.7 GiB swap -> 11 GiB, ~3 GiB per job, capped by the 6 cores.
    const jobs = Math.min(6, Math.max(1, Math.floor(meminfoGiB('orin-nano') / 3)));
    expect(build).toContain(`--parallel ${jobs} `);
    expect(build).toContain('--nvcc_threads 1');
    expect(r.stdout).toContain(`--branch v${PINNED} `);
    expect(r.stdout).toContain(`apply ${PATCH}`);
    expect(r.stdout).toContain('CUDA 12.6.68, TensorRT 10.3');
    expect(r.stdout).not.toContain('swapon');
  });

  it('takes the CUDA architecture from each Jetson profile', async () => {
    const jetsons = PROFILES.filter((p) => p.software);
    const results = await Promise.all(jetsons.map((p) => dryRun(['--root', join(FIXTURES, 'orin-nano'), '--profile', p.name])));
    results.forEach((r, i) => {
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`CMAKE_CUDA_ARCHITECTURES=${jetsons[i]!.cudaArch} `);
    });
  }, 600_000); // child processes: seconds idle, 25-45 s at load 10-19; the bound ends a hang only

  it('refuses the pinned version on JetPack 4 (CUDA 10.2) with a one-line reason', async () => {
    const r = await dryRun(['--root', join(FIXTURES, 'jetson-nano')]);
    expect(r.code).not.toBe(0);
    const lines = r.stderr.trim().split('\n');
    expect(lines.at(-1)).toMatch(/needs CUDA 12.*CUDA 10\.2.*--ort-version/);
  });

  it('Nano with an older onnxruntime: sm_53, swap advice for a 4 GB board, one job at a time per 3 GiB', async () => {
    const r = await dryRun(['--root', join(FIXTURES, 'jetson-nano'), '--ort-version', '1.11.0']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('CMAKE_CUDA_ARCHITECTURES=53');
    expect(r.stdout).toContain('--branch v1.11.0 ');
    expect(r.stdout).toMatch(/sudo fallocate -l 4G .*\n.*chmod 600.*\n.*mkswap.*\n.*swapon/);
    expect(r.stderr).toContain('onnxruntime-node@1.11.0');
    expect(r.stdout).toContain(`--parallel ${Math.floor(meminfoGiB('jetson-nano') / 3)} `);
  });

  it('JetPack 6.0 (TensorRT 8.6) builds the CUDA provider only', async () => {
    const root = tempDir('ssd-jp60-');
    cpSync(join(FIXTURES, 'orin-nano'), root, { recursive: true });
    writeFileSync(join(root, 'usr/include/aarch64-linux-gnu/NvInferVersion.h'), '#define NV_TENSORRT_MAJOR 8\n#define NV_TENSORRT_MINOR 6\n');
    const r = await dryRun(['--root', root]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('--use_cuda');
    expect(r.stdout).not.toContain('--use_tensorrt');
    expect(r.stderr).toContain('needs TensorRT 10');
  });

  it('--no-tensorrt, and profiles without a GPU are refused', async () => {
    const [noTrt, cpu] = await Promise.all([
      dryRun(['--root', join(FIXTURES, 'orin-nano'), '--no-tensorrt']),
      dryRun(['--root', join(FIXTURES, 'cpu-only')]),
    ]);
    expect(noTrt.stdout).not.toContain('--use_tensorrt');
    expect(cpu.code).not.toBe(0);
    expect(cpu.stderr).toContain('no CUDA architecture');
  }, 600_000); // child processes: seconds idle, 25-45 s at load 10-19; the bound ends a hang only
});

/**
 * The onnxruntime source is not in this repository (and CI is offline): point ORT_SOURCE_DIR at a
 * checkout of the pinned tag, or let build-onnxruntime.sh clone it to its default place.
 */
function findOrtSource(): string | undefined {
  const candidates = [process.env.ORT_SOURCE_DIR, join(homedir(), 'src', `onnxruntime-v${PINNED}`)];
  return candidates.find((d): d is string => d !== undefined && existsSync(join(d, 'js/node/src/session_options_helper.cc')));
}
const ortSource = findOrtSource();

describe('the binding patch', () => {
  it('touches only the Node binding source and calls the V2 update APIs', () => {
    const text = readFileSync(PATCH, 'utf8');
    const files = [...text.matchAll(/^\+\+\+ b\/(\S+)/gm)].map((m) => m[1]);
    expect(files).toEqual(['js/node/src/session_options_helper.cc']);
    expect(text).toContain('+        OrtStatus* status = Ort::GetApi().UpdateTensorRTProviderOptions(');
    expect(text).toContain('+        OrtStatus* status = Ort::GetApi().UpdateCUDAProviderOptions(');
  });

  it.skipIf(ortSource === undefined)(`applies cleanly to the pinned onnxruntime source (ORT_SOURCE_DIR or ~/src/onnxruntime-v${PINNED})`, () => {
    const work = tempDir('ssd-ort-patch-');
    mkdirSync(join(work, 'js/node/src'), { recursive: true });
    cpSync(join(ortSource!, 'js/node/src/session_options_helper.cc'), join(work, 'js/node/src/session_options_helper.cc'));
    const git = (...args: string[]) => execFileSync('git', args, { cwd: work, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    git('apply', '--check', PATCH);
    git('apply', PATCH);
    const patched = readFileSync(join(work, 'js/node/src/session_options_helper.cc'), 'utf8');
    expect(patched.match(/CollectProviderOptionStrings\(epValue, deviceId\)/g)).toHaveLength(2);
    // The build script recognises an already patched tree this way and does not patch twice.
    git('apply', '--reverse', '--check', PATCH);
    expect(() => git('apply', '--check', PATCH)).toThrow();
  });
});

describe('ensureProviderCacheDirs', () => {
  it('creates the nested engine and timing cache directories of a profile', () => {
    const root = tempDir('ssd-cache-');
    const profile = buildProfiles(root).find((p) => p.name === 'xavier-agx')!;
    const made = ensureProviderCacheDirs(profile.providers);
    expect(made).toEqual([join(root, 'trt', 'xavier-agx')]);
    expect(statSync(made[0]!).isDirectory()).toBe(true);
    expect(ensureProviderCacheDirs(getProfile('cpu').providers)).toEqual([]);
  });
});

import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
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

/** A directory with a fake `cmake` printing `version`, for PATH: the check must not depend on this machine's CMake. */
function fakeCmake(version: string): string {
  const dir = tempDir('ssd-cmake-');
  writeFileSync(join(dir, 'cmake'), `#!/bin/sh\necho "cmake version ${version}"\necho\necho "CMake suite maintained and supported by Kitware (kitware.com/cmake)."\n`);
  chmodSync(join(dir, 'cmake'), 0o755);
  return dir;
}
const CMAKE_OK = fakeCmake('3.28.3');

async function dryRun(args: string[], cmakeDir = CMAKE_OK): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const env = { ...process.env, HOME: '/home/tester', PATH: `${cmakeDir}:${process.env.PATH}` };
    const { stdout, stderr } = await run('bash', [SCRIPT, '--dry-run', ...args], { cwd: REPO, env });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function meminfoGiB(fixture: string, which: 'total' | 'ram' = 'total'): number {
  const text = readFileSync(join(FIXTURES, fixture, 'proc', 'meminfo'), 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(text)![1]);
  return Math.round((kb('MemTotal') + (which === 'total' ? kb('SwapTotal') : 0)) / 1048576);
}

/** The script's rule: ~3 GiB per job from memory + swap, never more than RAM alone holds, at most one per core. */
function expectedJobs(fixture: string, cores: number): number {
  const byTotal = Math.floor(meminfoGiB(fixture) / 3);
  const byRam = Math.max(1, Math.floor((meminfoGiB(fixture, 'ram') - 1) / 3));
  return Math.min(cores, Math.max(1, Math.min(byTotal, byRam)));
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
    // 7.4 GiB RAM + 3.7 GiB swap: 11 GiB would allow 3 jobs, but RAM alone holds 2 (swap-bound jobs thrash).
    expect(expectedJobs('orin-nano', 6)).toBe(2);
    expect(build).toContain(`--parallel 2 `);
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
    expect(lines.at(-1)).toMatch(/needs CUDA 12.*CUDA 10\.2.*JetPack 4 is the last JetPack for jetson-nano.*--ort-version 1\.11\.0 inside a container.*glibc 2\.28/);
    expect(lines.at(-1)).not.toMatch(/JetPack 6/);
  });

  it('JetPack advice per board: Xavier is told JetPack 5 is its last, an Orin on JetPack 5 to upgrade to 6', async () => {
    // An Orin Nano still on JetPack 5 (CUDA 11.4).
    const jp5orin = tempDir('ssd-orin-jp5-');
    cpSync(join(FIXTURES, 'orin-nano'), jp5orin, { recursive: true });
    writeFileSync(join(jp5orin, 'usr/local/cuda/version.json'), JSON.stringify({ cuda: { name: 'CUDA SDK', version: '11.4.315' } }));
    const [xavier, orin, tx2] = await Promise.all([
      dryRun(['--root', join(FIXTURES, 'xavier-nx')]),
      dryRun(['--root', jp5orin]),
      dryRun(['--root', join(FIXTURES, 'jetson-tx2')]),
    ]);
    expect(xavier.code).not.toBe(0);
    expect(xavier.stderr.trim().split('\n').at(-1)).toMatch(/CUDA 11\.4.*JetPack 5 is the last JetPack for Xavier \(JetPack 6 supports Orin only\).*--ort-version 1\.15\.1/);
    expect(orin.stderr.trim().split('\n').at(-1)).toMatch(/upgrade this Orin to JetPack 6\.1/);
    expect(tx2.stderr.trim().split('\n').at(-1)).toMatch(/JetPack 4 is the last JetPack for jetson-tx2/);
  }, 600_000); // child processes: seconds idle; the bound ends a hang only

  it('CMake older than onnxruntime needs is named with the fix, before hours of building', async () => {
    const [old, ok] = await Promise.all([dryRun(['--root', join(FIXTURES, 'orin-nano')], fakeCmake('3.22.1')), dryRun(['--root', join(FIXTURES, 'orin-nano')])]);
    expect(old.code).toBe(0);
    expect(old.stderr).toMatch(/CMake 3\.22\.1 is older than the 3\.28 onnxruntime .* needs: pip3 install --user --upgrade 'cmake>=3\.28'/);
    expect(ok.stderr).not.toMatch(/CMake/);
    // A real (non --dry-run) build stops on it: same check, die instead of note.
    const script = readFileSync(SCRIPT, 'utf8');
    expect(script).toMatch(/\[\[ -z "\$CMAKE_PROBLEM" \]\] \|\| die "\$CMAKE_PROBLEM"/);
  }, 600_000); // child processes: seconds idle; the bound ends a hang only

  it('installs with cp --remove-destination: never writes through node_modules hard-linked from the previous release', async () => {
    const r = await dryRun(['--root', join(FIXTURES, 'orin-nano')]);
    expect(r.stdout).toMatch(/^cp --remove-destination .*node_modules\/onnxruntime-node\/bin\/napi-v6\/linux\/arm64\/$/m);
    // And the real install line does the same (a dry run prints it; this checks the command that runs).
    const script = readFileSync(SCRIPT, 'utf8');
    const installs = script.split('\n').filter((l) => /^\s*cp .*\$PKG\/bin/.test(l));
    expect(installs).toHaveLength(1);
    expect(installs[0]).toContain('cp --remove-destination');
  });

  it('the installing cp really replaces hard links instead of writing through them', () => {
    // What --remove-destination buys, on this machine's cp: the previous release keeps its bytes.
    const dir = tempDir('ssd-cp-');
    mkdirSync(join(dir, 'prev'));
    mkdirSync(join(dir, 'out'));
    writeFileSync(join(dir, 'prev', 'b.node'), 'old');
    execFileSync('cp', ['-al', join(dir, 'prev'), join(dir, 'next')]);
    writeFileSync(join(dir, 'out', 'b.node'), 'new');
    execFileSync('cp', ['--remove-destination', join(dir, 'out', 'b.node'), join(dir, 'next', 'b.node')]);
    expect(readFileSync(join(dir, 'next', 'b.node'), 'utf8')).toBe('new');
    expect(readFileSync(join(dir, 'prev', 'b.node'), 'utf8')).toBe('old');
  });

  it('Nano with an older onnxruntime: sm_53, swap advice for a 4 GB board, one job at a time per 3 GiB', async () => {
    const r = await dryRun(['--root', join(FIXTURES, 'jetson-nano'), '--ort-version', '1.11.0']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('CMAKE_CUDA_ARCHITECTURES=53');
    expect(r.stdout).toContain('--branch v1.11.0 ');
    expect(r.stdout).toMatch(/sudo fallocate -l 4G .*\n.*chmod 600.*\n.*mkswap.*\n.*swapon/);
    expect(r.stderr).toContain('onnxruntime-node@1.11.0');
    expect(r.stdout).toContain(`--parallel ${expectedJobs('jetson-nano', 4)} `);
    // JetPack 4's glibc cannot run Node 20: the container route is named.
    expect(r.stderr).toMatch(/glibc 2\.27: Node 20 does not run on this host; build and run inside a container/);
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

  it('--no-tensorrt, and profiles without a GPU are refused; x86-cuda with the true reason', async () => {
    const [noTrt, cpu, x86] = await Promise.all([
      dryRun(['--root', join(FIXTURES, 'orin-nano'), '--no-tensorrt']),
      dryRun(['--root', join(FIXTURES, 'cpu-only')]),
      dryRun(['--root', join(FIXTURES, 'x86-desktop'), '--profile', 'x86-cuda']),
    ]);
    expect(noTrt.stdout).not.toContain('--use_tensorrt');
    expect(cpu.code).not.toBe(0);
    expect(cpu.stderr).toContain('has no GPU');
    expect(x86.code).not.toBe(0);
    expect(x86.stderr.trim().split('\n')).toHaveLength(1);
    expect(x86.stderr).toMatch(/x86-cuda: nothing to build: .*downloads its CUDA 12 and TensorRT providers from NuGet/);
    expect(x86.stderr).not.toMatch(/CPU/);
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

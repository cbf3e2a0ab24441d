// Provider fallback: a profile's GPU providers are tried in order and skipped when their libraries are
// missing (this machine has none), with one log line; the session then runs on CPU.
import { describe, expect, it, vi } from 'vitest';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { SsdError } from '../../core/errors.js';
import { buildProfiles, getProfile } from '../../devices/profiles.js';
import type { ExecutionProviderName } from '../../devices/types.js';
import { bindingBackends, normaliseProviders, openSession, resolveThreads } from '../../runtime/session.js';
import { writeTinyModel } from './helpers.js';
import { tempDir } from '../helpers/temp-dir.js';

const tmp = tempDir('ssd-runtime-');
const model = writeTinyModel(tmp);

describe('normaliseProviders', () => {
  it('appends CPU, drops duplicates and anything after CPU', () => {
    expect(normaliseProviders(undefined).map((p) => p.name)).toEqual(['cpu']);
    expect(normaliseProviders([{ name: 'tensorrt' }, { name: 'cuda' }]).map((p) => p.name)).toEqual(['tensorrt', 'cuda', 'cpu']);
    expect(normaliseProviders([{ name: 'cuda' }, { name: 'cpu' }, { name: 'tensorrt' }, { name: 'cuda' }]).map((p) => p.name)).toEqual(['cuda', 'cpu']);
  });
});

describe('openSession', () => {
  it.each(['worker', 'main'] as const)('%s thread: TensorRT and CUDA without their libraries fall back to CPU, logging one line', async (thread) => {
    const lines: string[] = [];
    // The orin-nano profile's own provider list, options included (TensorRT caches, fp16, CUDA arena).
    // (Caches under a temp dir: TensorRT is in this x64 binding, so its cache directories get made.)
    const providers = buildProfiles(tempDir('ssd-cache-')).find((p) => p.name === 'orin-nano')!.providers;
    expect(providers.map((p) => p.name)).toEqual(['tensorrt', 'cuda', 'cpu']);
    const opened = await openSession(model, { providers, threads: 1, graphOptimization: 'basic', log: (l) => lines.push(l), thread });
    try {
      expect(opened.provider).toBe('cpu');
      expect(opened.skipped.map((s) => s.name)).toEqual(['tensorrt', 'cuda']);
      expect(opened.skipped.every((s) => s.reason === 'its library is not installed')).toBe(true);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toBe(opened.logLine);
      expect(lines[0]).toMatch(/provider cpu .*1 threads, graph optimization basic.*skipped tensorrt \(its library is not installed\), cuda \(its library is not installed\)/);
      expect(opened.session.thread).toBe(thread);
      expect(opened.session.inputNames).toEqual(['images']);
    } finally {
      await opened.session.release();
    }
  });

  it('CPU only: no skipped providers, and the line does not claim a GPU', async () => {
    const lines: string[] = [];
    const opened = await openSession(model, { log: (l) => lines.push(l) });
    await opened.session.release();
    expect(opened.provider).toBe('cpu');
    expect(opened.skipped).toEqual([]);
    expect(lines[0]).not.toMatch(/tensorrt|cuda/i);
  });

  it('without a thread count: one intra-op thread per core, said in the log line', async () => {
    // onnxruntime's own default is 1 on some VMs, which halves SSD300's speed (issue 13).
    expect(resolveThreads(undefined)).toBe(availableParallelism());
    expect(resolveThreads(0)).toBe(availableParallelism());
    expect(resolveThreads(3)).toBe(3);
    const lines: string[] = [];
    const opened = await openSession(model, { log: (l) => lines.push(l) });
    await opened.session.release();
    expect(lines[0]).toContain(`(${availableParallelism()} threads = cores,`);
  });

  it('a file onnxruntime rejects is a one-line SsdError naming it, on either thread', async () => {
    const bad = join(tmp, 'garbage.onnx');
    writeFileSync(bad, Buffer.from('\x08\x08definitely not a graph'));
    for (const thread of ['worker', 'main'] as const) {
      const err = await openSession(bad, { providers: [{ name: 'cuda' }], thread, log: () => {} }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SsdError);
      expect((err as Error).message).toMatch(/garbage\.onnx: onnxruntime cannot load it/);
      expect((err as Error).message).not.toContain('\n');
    }
  });

  it('a provider the binding lacks is reported as skipped, not as the one in use (the dml lie)', async () => {
    // Before: onnxruntime-common dropped 'dml' with a console.warn and the line said "provider dml".
    expect(bindingBackends().map((b) => b.name)).not.toContain('dml');
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const lines: string[] = [];
    try {
      const opened = await openSession(model, { providers: [{ name: 'dml' as ExecutionProviderName }], thread: 'main', log: (l) => lines.push(l) });
      await opened.session.release();
      expect(opened.provider).toBe('cpu');
      expect(opened.skipped).toEqual([{ name: 'dml', reason: expect.stringMatching(/^not in this onnxruntime-node build \(it has cpu/) }]);
      expect(lines).toEqual([opened.logLine]);
      expect(lines[0]).toMatch(/: provider cpu .*skipped dml \(not in this onnxruntime-node build/);
      expect(warn).not.toHaveBeenCalled();
    } finally {
      warn.mockRestore();
    }
  });

  it('a linux-arm64 npm binding (CPU only): TensorRT and CUDA are skipped as absent from the build', async () => {
    const cache = tempDir('ssd-cache-');
    const providers = buildProfiles(cache).find((p) => p.name === 'orin-nx')!.providers;
    const lines: string[] = [];
    const opened = await openSession(model, { providers, backends: [{ name: 'cpu', bundled: true }], thread: 'main', log: (l) => lines.push(l) });
    await opened.session.release();
    expect(opened.provider).toBe('cpu');
    expect(opened.skipped.map((s) => [s.name, s.reason])).toEqual([
      ['tensorrt', 'not in this onnxruntime-node build (it has cpu)'],
      ['cuda', 'not in this onnxruntime-node build (it has cpu)'],
    ]);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/provider cpu .*skipped tensorrt \(not in this onnxruntime-node build/);
    // TensorRT is never tried, so nothing is made for it.
    expect(readdirSync(cache)).toEqual([]);
  });

  it('requireGpu: one line instead of a CPU fallback, whether the binding lacks the GPU or its libraries are missing', async () => {
    const providers = buildProfiles(tempDir('ssd-cache-')).find((p) => p.name === 'orin-nano')!.providers;
    const arm = await openSession(model, { providers, backends: [{ name: 'cpu', bundled: true }], requireGpu: true, log: () => {} }).catch((e: unknown) => e);
    expect(arm).toBeInstanceOf(SsdError);
    expect((arm as Error).message).toMatch(/^--require-gpu: model .* would run on the CPU \(tensorrt: not in this onnxruntime-node build .*; cuda: not in/);
    expect((arm as Error).message).not.toContain('\n');
    // This x64 binding lists cuda and tensorrt, whose libraries this machine lacks.
    const lines: string[] = [];
    const x64 = await openSession(model, { providers, requireGpu: true, thread: 'main', log: (l) => lines.push(l) }).catch((e: unknown) => e);
    expect(x64).toBeInstanceOf(SsdError);
    expect((x64 as Error).message).toMatch(/would run on the CPU \(tensorrt: its library is not installed; cuda: its library is not installed\)/);
    expect(lines.some((l) => /: provider /.test(l))).toBe(false);
    const cpuOnly = await openSession(model, { requireGpu: true, log: () => {} }).catch((e: unknown) => e);
    expect((cpuOnly as Error).message).toMatch(/would run on the CPU \(no GPU provider asked for\)/);
  });

  it('creates the nested TensorRT cache directories before the session, engines under a per-model key', async () => {
    const cache = tempDir('ssd-cache-');
    const orin = buildProfiles(cache).find((p) => p.name === 'orin-nano')!;
    const phases: string[] = [];
    const opened = await openSession(model, {
      providers: orin.providers, backends: [{ name: 'cpu', bundled: true }, { name: 'tensorrt', bundled: false }],
      gpuArch: orin.cudaArch, tensorrtVersion: '10.3.0', thread: 'main', log: () => {}, onPhase: (p) => phases.push(p),
    });
    // No engine in the new directory: TensorRT's attempt is an engine build (what /healthz reports).
    expect(phases).toEqual(['building-engine', 'ready']);
    await opened.session.release();
    // TensorRT failed to load here (no library), but its directories were there for it.
    expect(opened.skipped[0]).toEqual({ name: 'tensorrt', reason: 'its library is not installed' });
    const base = join(cache, 'trt', 'orin-nano');
    expect(existsSync(base)).toBe(true);
    expect(readdirSync(base)).toEqual([expect.stringMatching(/^m[0-9a-f]{16}-trt10\.3\.0-sm87$/)]);
  });
});


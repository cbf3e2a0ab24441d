// Provider fallback: a profile's GPU providers are tried in order and skipped when their libraries are
// missing (this machine has none), with one log line; the session then runs on CPU.
import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { SsdError } from '../../core/errors.js';
import { getProfile } from '../../devices/profiles.js';
import { normaliseProviders, openSession, resolveThreads } from '../../runtime/session.js';
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
    const providers = getProfile('orin-nano').providers;
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
});

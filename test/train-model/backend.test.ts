/** Backend selection: order, one log line with reasons, explicit demands that cannot be met. */
import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { SsdError } from '../../core/errors.js';
import { selectBackend, type BackendName } from '../../train/backend.js';

const installed = (pkg: string): boolean => {
  try { createRequire(import.meta.url).resolve(pkg); return true; } catch { return false; }
};
const nativeInstalled = installed('@tensorflow/tfjs-node-gpu') || installed('@tensorflow/tfjs-node');

describe('selectBackend', () => {
  it.skipIf(nativeInstalled)('without tfjs-node(-gpu) picks wasm and says why not tensorflow, in one line', async () => {
    const lines: string[] = [];
    const r = await selectBackend(undefined, { log: (l) => lines.push(l) });
    expect(r.name).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^backend: wasm \(@tensorflow\/tfjs-backend-wasm; not tensorflow: @tensorflow\/tfjs-node-gpu is not installed, @tensorflow\/tfjs-node is not installed\)$/);
    expect(r.reason).toContain('tfjs-node-gpu is not installed');
  });

  it('honours an explicit cpu or wasm', async () => {
    for (const name of ['cpu', 'wasm'] as const) {
      const lines: string[] = [];
      const r = await selectBackend(name, { log: (l) => lines.push(l) });
      expect(r.name).toBe(name);
      expect(tf.getBackend()).toBe(name);
      expect(lines).toEqual([`backend: ${name} (${name === 'wasm' ? '@tensorflow/tfjs-backend-wasm' : 'pure JavaScript'}, as requested)`]);
    }
  });

  it.skipIf(nativeInstalled)('an explicit tensorflow that is not installed is an SsdError, not a silent fallback', async () => {
    await expect(selectBackend('tensorflow', { log: () => {} })).rejects.toThrow(SsdError);
    await expect(selectBackend('tensorflow', { log: () => {} })).rejects.toThrow(/--backend tensorflow: not available \(tensorflow: @tensorflow\/tfjs-node-gpu is not installed/);
  });

  it('an unknown backend name is an SsdError naming the known ones', async () => {
    await expect(selectBackend('webgpu' as BackendName, { log: () => {} })).rejects.toThrow(/unknown backend \(known: tensorflow, wasm, cpu\)/);
  });
});

/** Backend selection: order, one log line saying what computes and why, explicit demands that cannot be met. */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { SsdError } from '../../core/errors.js';
import { BACKEND_ORDER, describeNativeBackend, selectBackend, type BackendName } from '../../train/backend.js';
import { TENSORFLOW_INSTALLED, onBackend } from './backends.js';

describe('selectBackend', () => {
  it('the default order is the measured fastest first: tensorflow, wasm, cpu', () => {
    expect(BACKEND_ORDER).toEqual(['tensorflow', 'wasm', 'cpu']);
  });

  it.skipIf(TENSORFLOW_INSTALLED)('without tfjs-node(-gpu) picks wasm and says why not tensorflow, in one line', async () => {
    const lines: string[] = [];
    const r = await selectBackend(undefined, { log: (l) => lines.push(l) });
    expect(r.name).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^backend: wasm via @tensorflow\/tfjs-backend-wasm, one thread; not tensorflow: @tensorflow\/tfjs-node-gpu is not installed, @tensorflow\/tfjs-node is not installed$/);
    expect(r.reason).toContain('tfjs-node-gpu is not installed');
  });

  it.skipIf(!TENSORFLOW_INSTALLED)(onBackend('tensorflow', 'with tfjs-node installed, no preference runs tensorflow and names the device: "tensorflow (CPU)" here'), async () => {
    const lines: string[] = [];
    const r = await selectBackend(undefined, { log: (l) => lines.push(l) });
    expect(r.name).toBe('tensorflow');
    expect(tf.getBackend()).toBe('tensorflow');
    // This machine has no GPU: the label must not claim one.
    expect(r.label).toBe('tensorflow (CPU)');
    expect(lines).toEqual([expect.stringMatching(/^backend: tensorflow \(CPU\) via @tensorflow\/tfjs-node(-gpu)? on libtensorflow \d+\.\d+\.\d+/)]);
  });

  it('"tensorflow (GPU: <device>)" only when libtensorflow reports a GPU in use', () => {
    const name = () => 'NVIDIA RTX A4000';
    expect(describeNativeBackend('@tensorflow/tfjs-node-gpu', { isUsingGpuDevice: true, binding: { TF_Version: '2.9.1' } }, name))
      .toEqual({ label: 'tensorflow (GPU: NVIDIA RTX A4000)', source: '@tensorflow/tfjs-node-gpu on libtensorflow 2.9.1' });
    // tfjs-node-gpu without CUDA 11.2 / cuDNN 8.1 falls back to the CPU silently: say so.
    const fellBack = describeNativeBackend('@tensorflow/tfjs-node-gpu', { isUsingGpuDevice: false, binding: { TF_Version: '2.9.1' } }, name);
    expect(fellBack.label).toBe('tensorflow (CPU)');
    expect(fellBack.source).toMatch(/found no usable GPU: it needs CUDA 11\.2 and cuDNN 8\.1/);
    expect(describeNativeBackend('@tensorflow/tfjs-node', { isUsingGpuDevice: false }, name)).toEqual({ label: 'tensorflow (CPU)', source: '@tensorflow/tfjs-node' });
  });

  it('honours an explicit cpu or wasm', async () => {
    for (const name of ['cpu', 'wasm'] as const) {
      const lines: string[] = [];
      const r = await selectBackend(name, { log: (l) => lines.push(l) });
      expect(r.name).toBe(name);
      expect(tf.getBackend()).toBe(name);
      expect(lines).toEqual([`backend: ${name} via ${name === 'wasm' ? '@tensorflow/tfjs-backend-wasm, one thread' : 'pure JavaScript'}, as requested`]);
    }
  });

  it.skipIf(TENSORFLOW_INSTALLED)('an explicit tensorflow that is not installed is an SsdError, not a silent fallback', async () => {
    await expect(selectBackend('tensorflow', { log: () => {} })).rejects.toThrow(SsdError);
    await expect(selectBackend('tensorflow', { log: () => {} })).rejects.toThrow(/--backend tensorflow: not available \(tensorflow: @tensorflow\/tfjs-node-gpu is not installed/);
  });

  it('an unknown backend name is an SsdError naming the known ones', async () => {
    await expect(selectBackend('webgpu' as BackendName, { log: () => {} })).rejects.toThrow(/unknown backend \(known: tensorflow, wasm, cpu\)/);
  });
});

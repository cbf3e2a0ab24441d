// The inference worker (runtime/inference-worker.js): a real module that runs from the sources and,
// compiled, from the deploy bundle; and the stack it gets for the command line it runs under.
import { symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { buildBundle } from '../../deploy/bundle.js';
import { buildProfiles } from '../../devices/profiles.js';
import { commandLineBytes, INFERENCE_WORKER_URL, inferenceStackMb } from '../../runtime/inference-thread.js';
import { runNodeArgs } from '../cli/helpers.js';
import { tempDir } from '../helpers/temp-dir.js';
import { WAIT_MS } from '../helpers/wait.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

const run = (args: string[], cwd: string) => runNodeArgs(args, { cwd, hangMs: WAIT_MS });

describe('the inference worker', () => {
  it('is the module beside inference-thread', () => {
    expect(fileURLToPath(INFERENCE_WORKER_URL)).toBe(join(ROOT, 'runtime', 'inference-worker.js'));
  });

  it('ships in the runtime bundle and runs there: ssd detect from the compiled dist/, on the worker thread', async () => {
    const dir = tempDir('ssd-worker-bundle-');
    const out = join(dir, 'bundle');
    const service = { serviceName: 'ssd', baseDir: '/opt/ssd', profileName: 'cpu', nodePath: process.execPath, user: 'ssd', sources: [], streamArgs: [] };
    const profile = buildProfiles('/opt/ssd/cache').find((p) => p.name === 'cpu')!;
    const bundle = await buildBundle({ repoRoot: ROOT, outDir: out, profile, modelPath: join(ROOT, 'models', 'digits-ssd.onnx'), service });
    expect(bundle.files).toContain('dist/runtime/inference-worker.js');
    expect(bundle.files).toContain('dist/runtime/inference-thread.js');
    // The device installs the dependencies; here the checkout's stand in for them.
    symlinkSync(join(ROOT, 'node_modules'), join(out, 'node_modules'));
    const image = join(dir, 'scene.png');
    writeFileSync(image, await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 20, g: 20, b: 20 } } }).png().toBuffer());
    const r = await run([join(out, 'bin', 'ssd.js'), 'detect', join(out, 'model', 'model.onnx'), image], out);
    expect({ code: r.code, signal: r.signal, stderr: r.stderr }).toEqual({ code: 0, signal: null, stderr: '' });
    expect(r.stdout).toMatch(/provider cpu .*worker thread/);
    expect(r.stdout).toContain(`${image}: `);
  }, WAIT_MS + 60_000);

  it('gets a stack sized from the command line: a 16 MB floor, then 512 bytes per byte of it', () => {
    // onnxruntime's environment creation needed ~300 bytes of stack per byte of command line
    // (measured: 90 KB of arguments needed 24-28 MB; 1.2 MB ran in 600 MB).
    expect(commandLineBytes()).toBeGreaterThan(0);
    expect(inferenceStackMb(1000)).toBe(16);
    expect(inferenceStackMb(16 * 1024)).toBe(16);
    expect(inferenceStackMb(90 * 1024)).toBe(53);
    expect(inferenceStackMb(1200 * 1024)).toBe(608);
  });
});

// --require-gpu and its profile/env settings (issue 14, item 1): fail with one line instead of
// falling back to the CPU. This machine has no GPU, so every path here must fail, naming why.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { SsdError } from '../../core/errors.js';
import { buildProfiles, getProfile } from '../../devices/profiles.js';
import { Detector } from '../../runtime/detector.js';
import { encode, patternRgb, writeTinyModel } from '../runtime/helpers.js';
import { tempDir } from '../helpers/temp-dir.js';

const REPO = join(import.meta.dirname, '..', '..');
const run = promisify(execFile);
const dir = tempDir('ssd-reqgpu-');
const model = writeTinyModel(dir);

async function ssd(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [join(REPO, 'bin/ssd.js'), ...args], { cwd: REPO, env: { ...process.env, SSD_CACHE_DIR: tempDir('ssd-reqgpu-cache-'), ...env } });
    return { code: 0, ...r };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('require a GPU', () => {
  it('a profile with requireGpu, and SSD_REQUIRE_GPU=1, refuse the CPU in Detector.load', async () => {
    const orin = { ...buildProfiles(tempDir('ssd-reqgpu-cache-')).find((p) => p.name === 'orin-nano')!, requireGpu: true };
    const err = await Detector.load(model, { device: orin, log: () => {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SsdError);
    expect((err as Error).message).toMatch(/^--require-gpu: model .* would run on the CPU \(tensorrt: .*; cuda: .*\)$/);
    // Without the setting the same profile falls back and says so.
    const d = await Detector.load(model, { device: { ...orin, requireGpu: false }, log: () => {}, warmup: false });
    expect(d.provider).toBe('cpu');
    await d.dispose();
    const old = process.env.SSD_REQUIRE_GPU;
    process.env.SSD_REQUIRE_GPU = '1';
    try {
      const envErr = await Detector.load(model, { device: getProfile('cpu'), log: () => {} }).catch((e: unknown) => e);
      expect((envErr as Error).message).toMatch(/would run on the CPU \(no GPU provider asked for\)/);
    } finally {
      if (old === undefined) delete process.env.SSD_REQUIRE_GPU;
      else process.env.SSD_REQUIRE_GPU = old;
    }
  });

  it('ssd detect --require-gpu and ssd stream --require-gpu: one line, non-zero exit', async () => {
    const img = join(dir, 'a.png');
    writeFileSync(img, await encode(patternRgb(64, 48), 64, 48));
    const [detect, stream, plain] = await Promise.all([
      ssd(['detect', model, img, '--device', 'orin-nano', '--require-gpu']),
      ssd(['stream', 'test://', '--model', model, '--device', 'cpu', '--require-gpu', '--max-frames', '1']),
      ssd(['detect', model, img, '--device', 'orin-nano']),
    ]);
    expect(detect.code).not.toBe(0);
    expect(detect.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^ssd detect: --require-gpu: model .* would run on the CPU \(tensorrt: .*; cuda: .*\)$/)]);
    expect(stream.code).not.toBe(0);
    expect(stream.stderr.trim().split('\n').at(-1)).toMatch(/^ssd stream: --require-gpu: model .* would run on the CPU \(no GPU provider asked for\)$/);
    // Without the flag: the fallback, said in the provider line (not "provider tensorrt").
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).toMatch(/: provider cpu .*skipped tensorrt \(/);
  }, 600_000); // three CLI processes: seconds idle; the bound ends a hang only
});

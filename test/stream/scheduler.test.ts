// Several sources, one detector session: fair turns for a batch-1 model, one run per batch for a
// model with a dynamic batch (the frames of a batch share their detection time).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { gstAvailable } from '../../runtime/stream/gst.js';
import { ROOT, SSD_BIN, tempDir, tinyModel } from './helpers.js';

function stream(args: string[]) {
  const r = spawnSync(process.execPath, [SSD_BIN, 'stream', ...args], { encoding: 'utf8', timeout: 60_000 });
  const recs = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { source: string; frame: number; wall: number; width: number });
  return { code: r.status, stderr: r.stderr, recs };
}

describe.skipIf(!gstAvailable())('two cameras, one session', () => {
  const dir = tempDir();
  const sources = ['test://ball?width=160&height=120&fps=30', 'test://smpte?width=200&height=100&fps=30'];

  it('batch-1 model: both sources get their turn; boxes in each source\'s own size', () => {
    const r = stream([...sources, '--model', tinyModel(dir), '--max-frames', '40', '--threshold', '0.9']);
    expect(r.code).toBe(0);
    expect(r.recs).toHaveLength(40);
    const a = r.recs.filter((x) => x.source === 'src0');
    const b = r.recs.filter((x) => x.source === 'src1');
    expect(Math.min(a.length, b.length)).toBeGreaterThanOrEqual(12);
    expect(a.every((x) => x.width === 160) && b.every((x) => x.width === 200)).toBe(true);
    // Per-source frame numbers count up without repeats.
    for (const s of [a, b]) expect(s.every((x, i) => i === 0 || x.frame > s[i - 1]!.frame)).toBe(true);
  });

  it('dynamic-batch model: frames of both sources go through one session.run together', () => {
    // Runs held to at least 60 ms (longer than the 33 ms frame interval): both appsinks hold a fresh
    // frame whenever the detector comes back, so every round is a batch of one frame per camera.
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'test/stream/fixtures/batch-run.ts'), tinyModel(dir, { batch: 'dynamic' }), '12'],
      { encoding: 'utf8', timeout: 60_000, cwd: ROOT, env: { ...process.env, UV_THREADPOOL_SIZE: '16' } });
    expect(r.status).toBe(0);
    const { batches, served } = JSON.parse(r.stdout) as { batches: number[]; served: string[][] };
    expect(batches.reduce((a, b) => a + b, 0)).toBe(24);
    // Mostly pairs (a batch-1 model would give none). On a saturated CPU a pull can take longer than
    // the 3 ms a round waits for the other camera, so a single now and then is fine.
    expect(batches.filter((b) => b === 2).length).toBeGreaterThanOrEqual(Math.ceil(batches.length / 2));
    for (const s of served.filter((x) => x.length === 2)) expect([...s].sort()).toEqual(['src0', 'src1']);
  });
});

// Several sources, one detector session: fair turns for a batch-1 model, one run per batch for a
// model with a dynamic batch (the frames of a batch share their detection time).
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { gstAvailable } from '../../runtime/stream/gst.js';
import { SSD_BIN, tempDir, tinyModel } from './helpers.js';

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
    expect(Math.min(a.length, b.length)).toBeGreaterThanOrEqual(15);
    expect(a.every((x) => x.width === 160) && b.every((x) => x.width === 200)).toBe(true);
    // Per-source frame numbers count up without repeats.
    for (const s of [a, b]) expect(s.every((x, i) => i === 0 || x.frame > s[i - 1]!.frame)).toBe(true);
  });

  it('dynamic-batch model: frames of both sources go through one session.run together', () => {
    // Inference (a 320x320 tiny SSD) longer than the 60 fps frame interval: both appsinks hold a
    // new frame whenever the detector comes back, so the runs are pairs.
    const fast = sources.map((s) => s.replace('fps=30', 'fps=60'));
    const r = stream([...fast, '--model', tinyModel(dir, { batch: 'dynamic', inputSize: 320 }), '--max-frames', '40', '--threshold', '0.9']);
    expect(r.code).toBe(0);
    const byWall = new Map<number, string[]>();
    for (const x of r.recs) byWall.set(x.wall, [...(byWall.get(x.wall) ?? []), x.source]);
    const pairs = [...byWall.values()].filter((v) => v.length === 2);
    expect(pairs.length).toBeGreaterThanOrEqual(12);
    for (const p of pairs) expect(p.sort()).toEqual(['src0', 'src1']);
  });
});

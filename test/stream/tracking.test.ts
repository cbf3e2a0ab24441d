// `ssd stream --track`: the per-source tracking glue in-process, then the CLI on the demo with the
// shipped digits model (real detections of digits panning past the window).
import { spawnSync } from 'node:child_process';
import { request } from 'node:http';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { DetectionPixelsXYXY } from '../../core/model-contract.js';
import { DEMO_MODEL_PATH } from '../../runtime/stream/demo.js';
import { toRecord } from '../../runtime/stream/jsonl.js';
import type { FrameResult } from '../../runtime/stream/scheduler.js';
import { StreamTracking } from '../../runtime/stream/tracking.js';
import { freePort, runSsdStream, SSD_BIN, stop } from './helpers.js';
import { WAIT_MS } from '../helpers/wait.js';

const det = (x: number, score: number, classId = 1): DetectionPixelsXYXY => ({ label: String(classId), classId, score, box: [x, 10, x + 40, 90] });

describe('StreamTracking', () => {
  it('one tracker per source; ids appear once confirmed; weak detections only when they continue a track', () => {
    const t = new StreamTracking(0.5, { minHits: 2 });
    expect(t.detectThreshold).toBe(0.1);
    // Frame 1: tentative, reported without an id; the 0.3 box is neither reported nor tracked.
    let r = t.apply('src0', [det(0, 0.9), det(300, 0.3)]);
    expect(r.detections.map((d) => d.score)).toEqual([0.9]);
    expect([...r.trackIds]).toEqual([0]);
    r = t.apply('src0', [det(3, 0.9)]);
    expect([...r.trackIds]).toEqual([1]);
    // A weak detection of the same object is reported with its id.
    r = t.apply('src0', [det(6, 0.3)]);
    expect(r.detections.map((d) => d.score)).toEqual([0.3]);
    expect([...r.trackIds]).toEqual([1]);
    // Another source has its own tracker (and its own ids from 1).
    t.apply('src1', [det(0, 0.9)]);
    expect([...t.apply('src1', [det(2, 0.9)]).trackIds]).toEqual([1]);
  });

  it('track_id on every detection of the record, null until confirmed; no field without tracking', () => {
    const frame = { sourceId: 'src0', seq: 1, pts: 0, captureMs: 0, captureMono: 0, sourceWidth: 100, sourceHeight: 100 } as unknown as FrameResult['frame'];
    const r: FrameResult = { frame, detections: [det(0, 0.9), det(50, 0.8)], inferMs: 1, prepareMs: 0, batch: 1, doneMs: 0, latencyMs: 0 };
    expect(toRecord(r, 'x', Int32Array.of(0, 7)).detections.map((d) => d.track_id)).toEqual([null, 7]);
    expect(toRecord(r, 'x').detections.every((d) => !('track_id' in d))).toBe(true);
  });

  it('--track-low above --threshold is refused', () => {
    expect(() => new StreamTracking(0.4, { lowThreshold: 0.5 })).toThrow(/--track-low 0.5 must not exceed --threshold 0.4/);
  });
});

function ssd(args: string[]) {
  const r = spawnSync(process.execPath, [SSD_BIN, 'stream', ...args], { encoding: 'utf8', timeout: WAIT_MS });
  return { code: r.status, stderr: r.stderr, lines: r.stdout.split('\n').filter(Boolean) };
}

describe('ssd stream --track', { timeout: 2 * WAIT_MS }, () => {
  it('flags: one-line errors', () => {
    for (const [args, re] of [
      [['--track-min-hits', '3'], /--track-min-hits needs --track/],
      [['--track', '--track-low', '0.9'], /--track-low must be a number in \[0, 0\.5\]/],
      [['--track', '--track-max-misses=-1'], /--track-max-misses must be a whole number/],
    ] as const) {
      const r = ssd([...args, '--max-frames', '1']);
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n').filter((l) => l.startsWith('ssd stream: '))).toEqual([expect.stringMatching(re)]);
    }
  });

  it.skipIf(!existsSync(DEMO_MODEL_PATH))('the demo: every detection has a track_id, and digits keep their ids from frame to frame', () => {
    const r = ssd(['--track', '--max-frames', '40', '--http', '127.0.0.1:0']);
    expect(r.code, r.stderr).toBe(0);
    const recs = r.lines.map((l) => JSON.parse(l) as { detections: Array<{ label: string; track_id?: number | null }> });
    expect(recs).toHaveLength(40);
    const dets = recs.flatMap((x) => x.detections);
    expect(dets.length).toBeGreaterThan(0);
    for (const d of dets) expect(d.track_id === null || (Number.isInteger(d.track_id) && d.track_id! > 0)).toBe(true);
    // The window pans over still digits: most ids are seen in many frames, each with one label.
    const frames = new Map<number, number>();
    const labels = new Map<number, Set<string>>();
    for (const d of dets) {
      if (typeof d.track_id !== 'number') continue;
      frames.set(d.track_id, (frames.get(d.track_id) ?? 0) + 1);
      if (!labels.has(d.track_id)) labels.set(d.track_id, new Set());
      labels.get(d.track_id)!.add(d.label);
    }
    const tracked = dets.filter((d) => typeof d.track_id === 'number').length;
    expect(tracked / dets.length).toBeGreaterThan(0.7);
    expect(Math.max(...frames.values())).toBeGreaterThanOrEqual(10);
    for (const s of labels.values()) expect(s.size).toBe(1);
  });

  it.skipIf(!existsSync(DEMO_MODEL_PATH))('the SSE feed carries the same track_id field', async () => {
    const port = await freePort();
    const run = runSsdStream(['--track', '--http', `127.0.0.1:${port}`, '--no-json']);
    try {
      await run.until(() => run.stderr().includes('live page:'), 'the live page');
      // Reads the feed until a message with a tracked detection arrives.
      const msg = await new Promise<string>((resolve, reject) => {
        const req = request(`http://127.0.0.1:${port}/events`, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => {
            body += d.toString();
            const line = body.split('\n').find((l) => l.startsWith('data: ') && /"track_id":\d/.test(l));
            if (line) {
              req.destroy();
              resolve(line.slice(6));
            }
          });
        });
        req.on('error', (e) => (String(e).includes('socket hang up') ? undefined : reject(e)));
        req.end();
      });
      const rec = JSON.parse(msg) as { detections: Array<{ track_id?: number | null }> };
      expect(rec.detections.every((d) => 'track_id' in d)).toBe(true);
    } finally {
      await stop(run.proc);
    }
  });
});

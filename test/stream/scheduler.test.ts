// Several sources, one detector session: fair turns for a batch-1 model, one run per batch for a
// model with a dynamic batch. The policy is checked in-process on cameras that always have a frame
// ready (so the outcome does not depend on how fast this machine is); `ssd stream` with two real
// GStreamer cameras checks the wiring end to end.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { Detector } from '../../runtime/detector.js';
import type { Frame, FrameSource, SourceStats } from '../../runtime/stream/frame.js';
import { gstAvailable } from '../../runtime/stream/gst.js';
import { runScheduler } from '../../runtime/stream/scheduler.js';
import { SSD_BIN, tinyModel } from './helpers.js';
import { tempDir } from '../helpers/temp-dir.js';
import { WAIT_MS } from '../helpers/wait.js';

function stream(args: string[]) {
  // The spawn timeout ends a hang only.
  const r = spawnSync(process.execPath, [SSD_BIN, 'stream', ...args], { encoding: 'utf8', timeout: WAIT_MS });
  const recs = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { source: string; frame: number; wall: number; width: number });
  return { code: r.status, stderr: r.stderr, recs };
}

/** A camera whose appsink always holds a fresh frame: next() resolves at once. */
class ReadyCamera implements FrameSource {
  readonly live = true;
  readonly display: string;
  readonly stats: SourceStats = { state: 'playing', frames: 0, dropped: 0, reconnects: 0 };

  constructor(readonly id: string, private readonly width: number, private readonly height: number) {
    this.display = `ready://${id}`;
  }

  async start(): Promise<void> {}

  async next(): Promise<Frame | null> {
    if (this.stats.state === 'closed') return null;
    const { width, height } = this;
    this.stats.frames++;
    return {
      sourceId: this.id, seq: this.stats.frames, pts: null, captureMs: Date.now(), captureMono: performance.now(),
      data: new Uint8Array(width * height * 3).fill(this.stats.frames % 256), width, height, format: 'rgb', sourceWidth: width, sourceHeight: height,
    };
  }

  prefetch(): void {}

  close(): void {
    this.stats.state = 'closed';
  }
}

/** Runs the scheduler over two ready cameras for `frames` frames; per session.run, the sources of its frames. */
async function schedule(model: string, frames: number): Promise<string[][]> {
  const detector = await Detector.load(model, { log: () => {} });
  try {
    const sources = [new ReadyCamera('src0', 160, 120), new ReadyCamera('src1', 200, 100)];
    const served: string[][] = [];
    await runScheduler({
      sources, detector, maxFrames: frames,
      onRun: () => { served.push([]); },
      onResult: (r) => { served.at(-1)!.push(r.frame.sourceId); },
    });
    for (const s of sources) s.close();
    return served;
  } finally {
    await detector.dispose();
  }
}

// Bounds for hangs only: each test takes a few seconds idle.
describe('the scheduler with two cameras that always have a frame ready', { timeout: 2 * WAIT_MS }, () => {
  const dir = tempDir('ssd-stream-');

  it('batch-1 model: the cameras take strict turns, one frame per session.run', async () => {
    const served = await schedule(tinyModel(dir), 12);
    expect(served).toHaveLength(12);
    expect(served.map((s) => s.join(','))).toEqual(Array.from({ length: 12 }, (_, i) => `src${i % 2}`));
  });

  it('dynamic-batch model: every session.run takes one frame of each camera', async () => {
    const served = await schedule(tinyModel(dir, { batch: 'dynamic' }), 24);
    expect(served).toHaveLength(12);
    for (const s of served) expect([...s].sort()).toEqual(['src0', 'src1']);
  });
});

describe.skipIf(!gstAvailable())('ssd stream with two GStreamer cameras, one session', { timeout: 2 * WAIT_MS }, () => {
  const dir = tempDir('ssd-stream-');
  const sources = ['test://ball?width=160&height=120&fps=30', 'test://smpte?width=200&height=100&fps=30'];

  it('both sources are served; boxes in each source\'s own size; frame numbers count up', () => {
    const r = stream([...sources, '--model', tinyModel(dir), '--max-frames', '40', '--threshold', '0.9', '--connect-timeout', '120']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.recs).toHaveLength(40);
    const a = r.recs.filter((x) => x.source === 'src0');
    const b = r.recs.filter((x) => x.source === 'src1');
    // How the 40 split depends on when each camera's frame is ready (machine load); the turn order
    // itself is checked above on cameras that are always ready.
    expect(a.length).toBeGreaterThan(0);
    expect(b.length).toBeGreaterThan(0);
    expect(a.every((x) => x.width === 160) && b.every((x) => x.width === 200)).toBe(true);
    for (const s of [a, b]) expect(s.every((x, i) => i === 0 || x.frame > s[i - 1]!.frame)).toBe(true);
  });

  it('dynamic-batch model: runs and exits cleanly with both cameras', () => {
    const r = stream([...sources, '--model', tinyModel(dir, { batch: 'dynamic' }), '--max-frames', '24', '--threshold', '0.9', '--connect-timeout', '120']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.recs).toHaveLength(24);
    expect(new Set(r.recs.map((x) => x.source))).toEqual(new Set(['src0', 'src1']));
  });
});

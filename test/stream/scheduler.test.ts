// Several sources, one detector session: fair turns for a batch-1 model, one run per batch for a
// model with a dynamic batch. The policy is checked in-process on cameras that always have a frame
// ready (so the outcome does not depend on how fast this machine is); `ssd stream` with two real
// GStreamer cameras checks the wiring end to end.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { Detector, type Prepared, type RawOutputs } from '../../runtime/detector.js';
import type { Frame, FrameSource, SourceStats } from '../../runtime/stream/frame.js';
import { gstAvailable } from '../../runtime/stream/gst.js';
import { runScheduler, type StreamDetector } from '../../runtime/stream/scheduler.js';
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

/** Virtual time: it moves only when the fake detector runs, so the outcome is the policy's alone. */
class VirtualClock {
  now = 0;
  private waiters: Array<() => void> = [];
  advance(ms: number): void {
    this.now += ms;
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
  changed(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}

/**
 * A camera that keeps its newest frame in hand (as GstFrameSource does): frame k exists from
 * `firstMs + k * periodMs` of virtual time on; poll() takes the newest one, skipping any older ones.
 */
class FakeCamera implements FrameSource {
  readonly live = true;
  readonly display: string;
  readonly stats: SourceStats = { state: 'playing', frames: 0, dropped: 0, reconnects: 0 };
  /** Index of the last frame taken (-1: none). */
  private taken = -1;
  /** Virtual age of every frame when it was taken. */
  readonly ages: number[] = [];

  constructor(readonly id: string, private readonly clock: VirtualClock, readonly periodMs: number, private readonly firstMs: number) {
    this.display = `fake://${id}`;
  }

  private newest(): number {
    return Math.floor((this.clock.now - this.firstMs) / this.periodMs);
  }

  async start(): Promise<void> {}

  async ready(): Promise<void> {
    while (this.stats.state !== 'closed' && this.newest() <= this.taken) await this.clock.changed();
  }

  poll(): Frame | null | undefined {
    if (this.stats.state === 'closed') return null;
    const k = this.newest();
    if (k <= this.taken) return undefined;
    this.stats.dropped += k - this.taken - 1;
    this.taken = k;
    this.stats.frames++;
    const t = this.firstMs + k * this.periodMs;
    this.ages.push(this.clock.now - t);
    return {
      sourceId: this.id, seq: this.stats.frames, pts: t / 1000, captureMs: t, captureMono: t,
      data: new Uint8Array(3), width: 1, height: 1, format: 'rgb', sourceWidth: 1, sourceHeight: 1,
    };
  }

  async next(): Promise<Frame | null> {
    for (;;) {
      const f = this.poll();
      if (f !== undefined) return f;
      await this.ready();
    }
  }

  prefetch(): void {}

  close(): void {
    this.stats.state = 'closed';
  }
}

/** A detector whose session.run costs `fixedMs + perFrameMs * frames` of virtual time. */
function fakeDetector(clock: VirtualClock, runBatch: number, fixedMs: number, perFrameMs: number): StreamDetector {
  return {
    runBatch, inputSize: 1, labels: ['background', 'thing'],
    async prepare(inputs) {
      const count = Array.isArray(inputs) ? inputs.length : 1;
      const p: Prepared = { tensor: { type: 'float32', data: new Float32Array(count * 3), dims: [count, 3, 1, 1] }, count, geometries: [], prepareMs: 0 };
      return p;
    },
    async run(prepared) {
      const ms = fixedMs + perFrameMs * prepared.count;
      clock.advance(ms);
      const r: RawOutputs = { values: {}, inferMs: ms, latencyMs: ms };
      return r;
    },
    finish: (_raw, prepared) => Array.from({ length: prepared.count }, () => []),
  };
}

/** Runs the scheduler over `cameras` on the fake detector for `frames` frames; frames served per camera. */
async function serveFakes(clock: VirtualClock, cameras: FakeCamera[], detector: StreamDetector, frames: number): Promise<Map<string, number>> {
  const served = new Map(cameras.map((c) => [c.id, 0]));
  await runScheduler({
    sources: cameras, detector, maxFrames: frames,
    onResult: (r) => { served.set(r.frame.sourceId, served.get(r.frame.sourceId)! + 1); },
  });
  for (const c of cameras) c.close();
  return served;
}

const spread = (m: Map<string, number>, ids?: string[]) => {
  const v = [...m].filter(([id]) => ids === undefined || ids.includes(id)).map(([, n]) => n);
  return Math.max(...v) - Math.min(...v);
};

// Fairness on virtual time: the cameras' frames arrive as the fake detector's runs advance the clock,
// in phases that differ per camera, more frames than the detector can take (so choices matter).
describe('fairness: cameras of equal rate get equal service', { timeout: WAIT_MS }, () => {
  // 16 cameras at 15 fps (66.7 ms), first frames spread over one interval (the camera whose first
  // frame comes last has one at time 0 too, so the first round has work).
  const cameras = (clock: VirtualClock, n: number, periodMs: number) =>
    Array.from({ length: n }, (_, i) => new FakeCamera(`src${i}`, clock, periodMs, -((i * 7.3) % periodMs)));

  it('batch-1 model, 16 cameras at 15 fps, 10 ms runs: within one frame of each other, every frame fresh', async () => {
    const clock = new VirtualClock();
    const cams = cameras(clock, 16, 1000 / 15);
    const served = await serveFakes(clock, cams, fakeDetector(clock, 1, 2, 8), 16 * 25 + 7);
    expect(spread(served), JSON.stringify([...served])).toBeLessThanOrEqual(1);
    // Taken when its turn came, not held: no frame is older than one interval when its run starts.
    for (const c of cams) for (const age of c.ages) expect(age).toBeLessThan(c.periodMs);
    // Frames it could not serve were skipped (newest frame wins), and counted.
    expect(cams.every((c) => c.stats.dropped > 0)).toBe(true);
  });

  it('batch-4 model: every run takes four cameras, the least recently served; within one frame', async () => {
    const clock = new VirtualClock();
    const cams = cameras(clock, 16, 1000 / 15);
    const served = await serveFakes(clock, cams, fakeDetector(clock, 4, 6, 5), 16 * 20 + 6);
    expect(spread(served), JSON.stringify([...served])).toBeLessThanOrEqual(1);
  });

  it('a slow camera gets each of its frames; the fast ones share the rest evenly', async () => {
    const clock = new VirtualClock();
    const fast = cameras(clock, 8, 1000 / 15);
    const slow = new FakeCamera('slow', clock, 500, -1);
    // 10 ms a frame: 100 fps for 8 x 15 + 2 fps of frames.
    const served = await serveFakes(clock, [...fast, slow], fakeDetector(clock, 1, 2, 8), 800);
    expect(spread(served, fast.map((c) => c.id)), JSON.stringify([...served])).toBeLessThanOrEqual(1);
    expect(slow.stats.dropped).toBe(0);
    // 800 frames of 10 ms: 8 s, about 16 frames of the slow camera.
    expect(served.get('slow')).toBeGreaterThanOrEqual(15);
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

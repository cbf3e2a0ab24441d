// Real GStreamer pipelines through the gstreamer-superficial addon: files, test sources, failures.
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SsdError } from '../../core/errors.js';
import type { Frame } from '../../runtime/stream/frame.js';
import { gstAvailable, maxGstSources } from '../../runtime/stream/gst.js';
import { CPU_GST } from '../../runtime/stream/pipelines.js';
import { backoffDelay, GstFrameSource, type GstSourceOptions } from '../../runtime/stream/source.js';
import { parsePipelineSource, parseSourceUri } from '../../runtime/stream/uri.js';
import { freePort, ROOT, testVideo } from './helpers.js';
import { tempDir } from '../helpers/temp-dir.js';
import { WAIT_MS } from '../helpers/wait.js';

const sources: GstFrameSource[] = [];
// A pipeline's first frame may take long on a loaded machine: the connect timeout is a hang bound
// here (WAIT_MS) unless a test sets its own; stall timeouts likewise, except where a stall is the point.
function open(uri: string, opts: Partial<GstSourceOptions> = {}, logs: string[] = []): GstFrameSource {
  const parsed = uri.startsWith('pipeline:') ? parsePipelineSource(uri.slice(9)) : parseSourceUri(uri);
  const s = new GstFrameSource(`s${sources.length}`, parsed, {
    gst: CPU_GST, format: 'bgr', width: 96, height: 96, connectTimeoutMs: WAIT_MS, stallTimeoutMs: WAIT_MS, log: (l) => logs.push(l), ...opts,
  });
  sources.push(s);
  return s;
}
afterAll(() => { for (const s of sources) s.close(); });

describe('backoff', () => {
  it('doubles from 0.5 s and is capped at 10 s', () => {
    expect([1, 2, 3, 4, 5, 6, 7].map((a) => backoffDelay(a))).toEqual([500, 1000, 2000, 4000, 8000, 10000, 10000]);
    expect(backoffDelay(3, { initialMs: 100, maxMs: 250 })).toBe(250);
  });

  it('the thread budget: each source holds a pull and a bus poll; 4 threads stay free', () => {
    expect(maxGstSources(16)).toBe(6);
    expect(maxGstSources(4)).toBe(0);
    expect(maxGstSources(64)).toBe(30);
  });
});

// Per-test bound: pipelines start in a second idle, far slower at load 13; nothing below is timed.
describe.skipIf(!gstAvailable())('GStreamer sources', { timeout: 2 * WAIT_MS }, () => {
  let dir: string;
  let clip: string;
  beforeAll(() => {
    dir = tempDir('ssd-stream-');
    clip = testVideo(dir, 45);
  });

  it('a file gives every frame once, scaled to the model input, with the source size for boxes, then ends', async () => {
    const logs: string[] = [];
    const s = open(clip, {}, logs);
    await s.start();
    const frames: Frame[] = [];
    for (let f = await s.next(); f; f = await s.next()) frames.push(f);
    expect(frames.length).toBe(45);
    expect(frames.map((f) => f.seq)).toEqual(Array.from({ length: 45 }, (_, i) => i + 1));
    const f = frames[10]!;
    expect([f.width, f.height, f.format, f.sourceWidth, f.sourceHeight]).toEqual([96, 96, 'bgr', 320, 240]);
    expect(f.data.length).toBe(f.stride! * 96);
    expect(frames[44]!.pts!).toBeGreaterThan(frames[0]!.pts!);
    expect(s.stats).toMatchObject({ state: 'ended', frames: 45, dropped: 0 });
    expect(logs.some((l) => l.includes('end of file'))).toBe(true);
  });

  it('--loop starts a file over at its end', async () => {
    const logs: string[] = [];
    const s = open(clip, { loop: true }, logs);
    await s.start();
    for (let i = 0; i < 100; i++) expect(await s.next()).not.toBeNull();
    expect(logs.filter((l) => l.includes('looping')).length).toBeGreaterThanOrEqual(2);
    s.close();
    expect(await s.next()).toBeNull();
  });

  it('16 playing pipelines opened and closed leave no thread behind: the process exits by itself', () => {
    // A plain stop() mid-stream could leave the addon's bus poll blocked for good (see retire() in
    // source.ts); seen as `ssd stream` not exiting after SIGTERM about one time in seven.
    // The timeout tells a hang (the bug) from an exit; it is a bound, seconds are enough when idle.
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'test', 'stream', 'fixtures', 'open-close.ts'), '16'], { encoding: 'utf8', timeout: WAIT_MS, cwd: ROOT });
    expect(r.stdout).toBe('closed\n');
    expect(r.status).toBe(0);
  });

  it('a camera gives the newest frame: after a slow step the next frame is fresh, and the skipped ones count as dropped', async () => {
    const s = open('test://ball?width=160&height=120&fps=30', { width: undefined, height: undefined, format: 'rgb' });
    await s.start();
    const first = (await s.next())!;
    expect([first.width, first.height, first.sourceWidth, first.format]).toEqual([160, 120, 160, 'rgb']);
    const gaps: number[] = [];
    let prev = first;
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 250)); // a slow "inference"
      const f = (await s.next())!;
      gaps.push(f.pts! - prev.pts!);
      prev = f;
    }
    // Not a queue: consecutive frames are a step apart, not 1/30 s.
    for (const g of gaps) expect(g).toBeGreaterThan(0.2);
    expect(s.stats.dropped).toBeGreaterThanOrEqual(4 * 5);
    s.close();
  });

  it('rtp:// receives an RTP/H.264 stream sent to a local UDP port, boxes in the sender\'s size', async () => {
    const port = await freePort();
    const sender = spawn('timeout', ['600', 'gst-launch-1.0', '-q', 'videotestsrc', 'is-live=true', 'pattern=ball', '!', 'video/x-raw,width=320,height=240,framerate=30/1', '!', 'videoconvert', '!',
      'x264enc', 'tune=zerolatency', 'speed-preset=ultrafast', 'key-int-max=15', '!', 'rtph264pay', 'config-interval=1', 'pt=96', '!', 'udpsink', 'host=127.0.0.1', `port=${port}`], { stdio: 'ignore' });
    try {
      const s = open(`rtp://127.0.0.1:${port}`);
      await s.start();
      const f = (await s.next())!;
      expect([f.width, f.height, f.sourceWidth, f.sourceHeight]).toEqual([96, 96, 320, 240]);
      s.close();
    } finally {
      sender.kill('SIGTERM'); // TERM: timeout(1) relays it to gst-launch; KILL would orphan gst-launch
    }
  });

  it('an RTSP camera that is not there: a one-line SsdError on the refused connection, no retry loop', async () => {
    const port = await freePort();
    // The connect timeout is WAIT_MS (open()): the error must come from the refusal, not the timer.
    const s = open(`rtsp://user:pw@127.0.0.1:${port}/none`);
    const err = await s.start().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(SsdError);
    expect((err as Error).message).toMatch(new RegExp(`^source rtsp://user:\\*\\*\\*@127\\.0\\.0\\.1:${port}/none: cannot open: `));
    expect((err as Error).message).not.toMatch(/no frame within/);
    expect((err as Error).message).not.toContain('pw@');
    expect(s.stats.reconnects).toBe(0);
  });

  it('a --pipeline with an unknown element is an SsdError naming it', async () => {
    const s = open('pipeline:videotestsrc ! nosuchelement ! appsink');
    await expect(s.start()).rejects.toThrow(/no element "nosuchelement"/);
  });

  it('a --pipeline that delivers a non-RGB format is refused with the reason', async () => {
    const s = open('pipeline:videotestsrc is-live=true ! video/x-raw,format=I420,width=64,height=48 ! appsink');
    await s.start();
    await expect(s.next()).rejects.toThrow(/frames are I420; the pipeline must deliver video\/x-raw,format=RGB or BGR/);
  });

  it('a camera stream that ends (EOS) is reconnected with backoff, logged', async () => {
    const logs: string[] = [];
    // The EOS ends each connection: no stall watchdog in the way (open() sets it to WAIT_MS).
    const s = open('pipeline:videotestsrc is-live=true num-buffers=20 ! video/x-raw,width=64,height=48,framerate=30/1 ! videoconvert ! video/x-raw,format=RGB ! appsink', {
      backoff: { initialMs: 100, maxMs: 200 },
    }, logs);
    await s.start();
    // Frames seen in each connection (index = reconnects so far), until the third reconnection.
    const perConnection: number[] = [];
    while (s.stats.reconnects < 3) {
      if (await s.next()) perConnection[s.stats.reconnects] = (perConnection[s.stats.reconnects] ?? 0) + 1;
    }
    for (const k of [0, 1, 2]) expect(perConnection[k] ?? 0).toBeGreaterThan(0);
    expect(logs.some((l) => /end of stream; reconnecting in 0\.1 s \(attempt 1\)/.test(l))).toBe(true);
    expect(logs.filter((l) => l.endsWith(': reconnected')).length).toBe(s.stats.reconnects);
  });

  it('a camera that goes silent without an error is declared down by the stall watchdog', async () => {
    const logs: string[] = [];
    // identity holds every frame 0.6 s: longer than the 0.3 s the watchdog allows.
    const s = open('pipeline:videotestsrc is-live=true ! video/x-raw,width=64,height=48,framerate=30/1 ! identity sleep-time=600000 ! videoconvert ! video/x-raw,format=RGB ! appsink', {
      stallTimeoutMs: 300, backoff: { initialMs: 100, maxMs: 200 },
    }, logs);
    await s.start();
    expect(await s.next()).not.toBeNull();
    while (!logs.some((l) => l.includes('no frame for 0.3 s'))) await s.next();
    expect(logs.find((l) => l.includes('no frame for 0.3 s'))).toMatch(/no frame for 0\.3 s; reconnecting in 0\.1 s \(attempt 1\)/);
  });
});

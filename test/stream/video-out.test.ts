// Annotated video out (issue 15): the display branch in the pipeline strings, the DisplayTap's
// picture matching, MJPEG with the boxes burned in (in process and from `ssd stream`), and HLS read
// back by GStreamer's own client (gst-discoverer-1.0 over HTTP and from disk); the token on each.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { request, type ClientRequest } from 'node:http';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { getProfile } from '../../devices/profiles.js';
import { classColourRgb } from '../../runtime/draw.js';
import { createPipeline, gstAvailable, type GstAppSink, type GstCaps, type GstElement, type GstPipeline } from '../../runtime/stream/gst.js';
import { StreamHttpServer } from '../../runtime/stream/http-server.js';
import type { FrameRecord } from '../../runtime/stream/jsonl.js';
import { StreamMetrics } from '../../runtime/stream/metrics.js';
import { CPU_GST, DISPLAY_NAME, DISPLAY_VALVE, buildPipeline, displayBranch } from '../../runtime/stream/pipelines.js';
import { parseSourceUri, type SourceDesc } from '../../runtime/stream/uri.js';
import { DisplayTap, MJPEG_BOUNDARY, RING_SIZE, VideoOut } from '../../runtime/stream/video-out.js';
import { tempDir } from '../helpers/temp-dir.js';
import { WAIT_MS, waitFor } from '../helpers/wait.js';
import { freePort, runSsdStream, stop, tinyModel, type StreamRun } from './helpers.js';

const running: StreamRun[] = [];
afterAll(async () => { for (const r of running) await stop(r.proc); });

/** Pixels of `jpeg` within 40 per channel of any of the classes' colours, and its size. */
async function classPixels(jpeg: Buffer, classes: number[]): Promise<{ n: number; width: number; height: number }> {
  const { data, info } = await sharp(jpeg).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const rgb = classes.map(classColourRgb);
  let n = 0;
  for (let i = 0; i < data.length; i += 3) {
    if (rgb.some(([r, g, b]) => Math.abs(data[i]! - r) < 40 && Math.abs(data[i + 1]! - g) < 40 && Math.abs(data[i + 2]! - b) < 40)) n++;
  }
  return { n, width: info.width, height: info.height };
}

/**
 * Reads `count` JPEG parts of a multipart/x-mixed-replace response, then hangs up. `onPart` runs as
 * each arrives (the in-process test publishes the next frame from there).
 */
function readMjpeg(url: string, count: number, onPart?: (i: number) => void): { status: Promise<{ status: number; type: string }>; parts: Promise<Buffer[]>; req: ClientRequest } {
  let statusOf!: (s: { status: number; type: string }) => void;
  const status = new Promise<{ status: number; type: string }>((resolve) => (statusOf = resolve));
  let req!: ClientRequest;
  const parts = new Promise<Buffer[]>((resolve, reject) => {
    req = request(url, (res) => {
      statusOf({ status: res.statusCode ?? 0, type: String(res.headers['content-type']) });
      if (res.statusCode !== 200) { res.resume(); resolve([]); return; }
      let buf = Buffer.alloc(0);
      const out: Buffer[] = [];
      res.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        for (;;) {
          const headEnd = buf.indexOf('\r\n\r\n');
          if (headEnd < 0) return;
          const head = buf.subarray(0, headEnd).toString();
          const m = /Content-Length: (\d+)/i.exec(head);
          if (!head.startsWith(`--${MJPEG_BOUNDARY}`) || !m) { reject(new Error(`not a part header: ${JSON.stringify(head)}`)); req.destroy(); return; }
          const len = Number(m[1]);
          if (buf.length < headEnd + 4 + len + 2) return;
          out.push(Buffer.from(buf.subarray(headEnd + 4, headEnd + 4 + len)));
          buf = buf.subarray(headEnd + 4 + len + 2);
          onPart?.(out.length);
          if (out.length >= count) { req.destroy(); resolve(out); return; }
        }
      });
      res.on('end', () => resolve(out));
    });
    req.on('error', (e) => (String(e).includes('socket hang up') ? undefined : reject(e)));
    req.end();
  });
  return { status, parts, req };
}

function discover(uri: string): { ok: boolean; text: string } {
  const r = spawnSync('gst-discoverer-1.0', ['-t', String(WAIT_MS / 1000), uri], { encoding: 'utf8', timeout: WAIT_MS + 10_000 });
  return { ok: r.status === 0, text: `${r.stdout}${r.stderr}` };
}

describe('display branch in the pipeline strings', () => {
  it('tees the decoded video before scaling into a closed valve, videorate and jpegenc, into its own appsink', () => {
    const display = { maxFps: 12 };
    const test = buildPipeline(parseSourceUri('test://ball?width=320&height=240').desc, { gst: CPU_GST, format: 'bgr', width: 96, height: 96, display });
    expect(test.display).toEqual({ sink: DISPLAY_NAME, valve: DISPLAY_VALVE });
    expect(test.launch).toContain('video/x-raw,width=320,height=240,framerate=30/1 ! tee name=dt ! queue max-size-buffers=1 leaky=downstream ! videoconvert ! videoscale ! video/x-raw,format=BGR,width=96,height=96');
    expect(test.launch).toContain(' dt. ! valve name=displayvalve drop=true ! queue max-size-buffers=1 leaky=downstream ! videorate drop-only=true max-rate=12 ! videoconvert ! jpegenc quality=80 ! appsink name=display drop=true max-buffers=1 sync=false async=false');
    const file = buildPipeline({ kind: 'file', path: '/tmp/clip.mp4' }, { gst: CPU_GST, format: 'rgb', width: 96, height: 96, everyFrame: true, display });
    // Before the probe's tee and the scaler: the display branch sees the decoded camera resolution.
    expect(file.launch.indexOf('tee name=dt')).toBeLessThan(file.launch.indexOf('tee name=t '));
    expect(file.probe).toBe('probe');
    // Without display, nothing changes.
    expect(buildPipeline(parseSourceUri('test://').desc, { gst: CPU_GST, format: 'bgr', width: 96, height: 96 }).launch).not.toContain('valve');
  });

  it('on a Jetson copies out of NVMM right after the valve (the leaky queue never holds a decoder buffer)', () => {
    const gst = getProfile('orin-nx').gst;
    expect(displayBranch(gst, { maxFps: 15 })).toBe('valve name=displayvalve drop=true ! nvvidconv ! video/x-raw,format=I420 ! queue max-size-buffers=1 leaky=downstream ! videorate drop-only=true max-rate=15 ! jpegenc quality=80 ! appsink name=display drop=true max-buffers=1 sync=false async=false');
    const rtsp = buildPipeline(parseSourceUri('rtsp://cam/s').desc, { gst, format: 'bgr', width: 300, height: 300, display: { maxFps: 15 } });
    // After the hardware decoder (the probe's tee stays before it).
    expect(rtsp.launch).toMatch(/tee name=t ! nvv4l2decoder ! tee name=dt ! /);
  });

  it.skipIf(!gstAvailable())('every desktop string with the display branch parses in the installed GStreamer', () => {
    for (const uri of ['test://ball?width=320&height=240', 'file:///tmp/clip.mp4', 'rtsp://cam/s', 'rtp://@:5000']) {
      const desc: SourceDesc = uri.startsWith('file://') ? { kind: 'file', path: '/tmp/clip.mp4' } : parseSourceUri(uri).desc;
      const built = buildPipeline(desc, { gst: CPU_GST, format: 'bgr', width: 96, height: 96, display: { maxFps: 15 } });
      const p = createPipeline(built.launch, uri);
      expect(p.findChild(DISPLAY_NAME), uri).toBeDefined();
      expect(p.findChild(DISPLAY_VALVE)?.drop, uri).toBe(true);
      p.stop();
    }
  });
});

describe('DisplayTap', () => {
  /** A stand-in pipeline: the test answers each pull. */
  function fakePipeline(): { pipeline: GstPipeline; valve: GstElement; pulls: Array<(buf: Buffer | null, caps: GstCaps) => void> } {
    const pulls: Array<(buf: Buffer | null, caps: GstCaps) => void> = [];
    const valve: GstElement = { drop: true };
    const sink: GstAppSink = { pull: (cb) => { pulls.push(cb); } };
    const pipeline = { findChild: (name: string) => (name === DISPLAY_NAME ? sink : name === DISPLAY_VALVE ? valve : undefined) } as unknown as GstPipeline;
    return { pipeline, valve, pulls };
  }
  const caps = { name: 'image/jpeg', width: 320, height: 240 };

  it('opens the valve only while wanted, keeps the last RING_SIZE pictures and matches them by timestamp', () => {
    const tap = new DisplayTap(false);
    const f = fakePipeline();
    tap.attach(f.pipeline, { sink: DISPLAY_NAME, valve: DISPLAY_VALVE });
    expect(f.valve.drop).toBe(true);
    expect(f.pulls).toHaveLength(0);
    tap.setWanted(true);
    expect(f.valve.drop).toBe(false);
    expect(f.pulls).toHaveLength(1);
    expect(tap.closest(0)).toBeUndefined();
    // Without gdppay there is no timestamp: the newest picture is the match.
    for (let i = 0; i < RING_SIZE + 3; i++) f.pulls[i]!(Buffer.from([i]), caps);
    expect(f.pulls).toHaveLength(RING_SIZE + 4);
    expect(tap.closest(null)?.jpeg[0]).toBe(RING_SIZE + 2);
    tap.setWanted(false);
    expect(f.valve.drop).toBe(true);
    expect(tap.closest(null)).toBeUndefined();
    // A pull from before a reconnect is ignored; the new pipeline gets its own.
    const g = fakePipeline();
    tap.setWanted(true);
    tap.attach(g.pipeline, { sink: DISPLAY_NAME, valve: DISPLAY_VALVE });
    f.pulls.at(-1)!(Buffer.from([99]), caps);
    expect(tap.closest(null)).toBeUndefined();
    expect(g.pulls).toHaveLength(1);
    g.pulls[0]!(null, {});
    expect(g.pulls).toHaveLength(1);
  });

  it('with gdppay, takes the buffer timestamp and gives the picture nearest a frame\'s pts', () => {
    const tap = new DisplayTap(true);
    const f = fakePipeline();
    tap.attach(f.pipeline, { sink: DISPLAY_NAME, valve: DISPLAY_VALVE });
    tap.setWanted(true);
    const capsPacket = gdp(2, 0, Buffer.from('image/jpeg, width=(int)320, height=(int)240\0'));
    const gdpCaps = { name: 'application/x-gdp', streamheader: [capsPacket] };
    f.pulls[0]!(capsPacket, gdpCaps);
    for (const [i, pts] of [0.1, 0.2, 0.3].entries()) f.pulls[i + 1]!(gdp(1, pts, Buffer.from([i])), gdpCaps);
    expect(tap.closest(0.19)).toMatchObject({ width: 320, height: 240, pts: 0.2 });
    expect(tap.closest(0.19)?.jpeg[0]).toBe(1);
    expect(tap.closest(5)?.pts).toBe(0.3);
  });
});

/** A GDP 1.0 packet (runtime/stream/gdp.ts): 62-byte header, then the payload. */
function gdp(type: number, pts: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(62);
  h[0] = 1;
  h.writeUInt16BE(type, 4);
  h.writeUInt32BE(payload.length, 6);
  h.writeBigUInt64BE(BigInt(Math.round(pts * 1e9)), 10);
  return Buffer.concat([h, payload]);
}

describe('MJPEG in process (a source without a display branch: the processed frame itself)', () => {
  it('sends each frame as a JPEG part with its boxes in the class colour, one encode for all clients, behind the token', { timeout: WAIT_MS }, async () => {
    const video = new VideoOut({ displayFps: 15, log: () => {} });
    video.addSource('src0', undefined);
    const stats = { state: 'playing' as const, frames: 0, dropped: 0, reconnects: 0 };
    const server = new StreamHttpServer({ address: { host: '127.0.0.1', port: 0 }, token: 'tok', metrics: new StreamMetrics(), log: () => {}, sources: () => [{ id: 'src0', uri: 'test://', stats }], video });
    const { port } = await server.listen();
    const W = 160;
    const H = 120;
    let seq = 0;
    // Boxes in source pixels of a 320x240 camera: scaled to the 160x120 frame.
    const publish = () => {
      seq++;
      const record: FrameRecord = { source: 'src0', uri: 'test://', frame: seq, pts: seq / 10, ts: seq, wall: seq, latency_ms: 1, infer_ms: 1, width: 320, height: 240,
        detections: [{ label: '3', class_id: 4, score: 0.9, box: [40, 40, 280, 200] }] };
      const frame = { sourceId: 'src0', seq, pts: seq / 10, captureMs: seq, captureMono: seq, data: Buffer.alloc(W * H * 3, 128), width: W, height: H, format: 'rgb' as const, sourceWidth: 320, sourceHeight: 240 };
      video.publish(record, frame);
    };
    try {
      expect((await readMjpeg(`http://127.0.0.1:${port}/mjpeg/src0`, 1).status).status).toBe(401);
      const a = readMjpeg(`http://127.0.0.1:${port}/mjpeg/src0?token=tok`, 3, () => publish());
      const b = readMjpeg(`http://127.0.0.1:${port}/mjpeg/src0?token=tok`, 1);
      expect(await a.status).toEqual({ status: 200, type: `multipart/x-mixed-replace; boundary=${MJPEG_BOUNDARY}` });
      await b.status;
      publish();
      const [partsA, partsB] = await Promise.all([a.parts, b.parts]);
      expect(partsA).toHaveLength(3);
      // The first part went to both clients: one encode, the same bytes.
      expect(partsB[0]!.equals(partsA[0]!)).toBe(true);
      for (const jpeg of partsA) {
        const px = await classPixels(jpeg, [4]);
        expect([px.width, px.height]).toEqual([W, H]);
        expect(px.n).toBeGreaterThan(200);
      }
    } finally {
      await video.close();
      await server.close();
    }
  });
});

describe('flags', () => {
  it('a bad --hls directory or --display-fps is one line and exit 1, before the model loads', { timeout: 2 * WAIT_MS }, async () => {
    const dir = tempDir('ssd-video-out-');
    const cases: Array<[string[], RegExp]> = [
      [['--hls', '/dev/null/hls'], /^ssd stream: --hls \/dev\/null\/hls: cannot create the directory \(.*\)$/],
      [['--display-fps', '0'], /^ssd stream: --display-fps must be a number in \[1, 120\], got "0"$/],
    ];
    for (const [flags, re] of cases) {
      const run = runSsdStream(['test://', '--model', join(dir, 'absent.onnx'), ...flags]);
      expect(await run.exited).toBe(1);
      const lines = run.stderr().trim().split('\n').filter((l) => !l.startsWith('device:'));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(re);
    }
  });
});

describe.skipIf(!gstAvailable())('ssd stream: MJPEG and HLS of a camera at its own resolution', () => {
  it('serves /mjpeg/src0 and /hls/src0/ with the boxes burned in, behind the token; the HLS playlist ends cleanly', { timeout: 4 * WAIT_MS }, async () => {
    const dir = tempDir('ssd-video-out-');
    const hls = join(dir, 'hls');
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    // A 320x240 camera, a 96x96 model: the outputs must be 320x240.
    const run = runSsdStream(['test://ball?width=320&height=240&fps=15', '--model', tinyModel(dir), '--threshold', '0.6', '--http', `127.0.0.1:${port}`, '--token', 'tok', '--hls', hls]);
    running.push(run);
    await run.until((lines) => lines.some((l) => (l.detections as unknown[]).length > 0), 'a frame with detections');
    const classes = [...new Set(run.lines.flatMap((l) => (l.detections as Array<{ class_id: number }>).map((d) => d.class_id)))];

    // MJPEG: the token first, then three parts of the camera's size with the class colours in them.
    expect((await readMjpeg(`${base}/mjpeg/src0`, 1).status).status).toBe(401);
    const mjpeg = readMjpeg(`${base}/mjpeg/src0?token=tok`, 3);
    expect((await mjpeg.status).status).toBe(200);
    const parts = await mjpeg.parts;
    expect(parts).toHaveLength(3);
    let coloured = 0;
    for (const jpeg of parts) {
      const px = await classPixels(jpeg, classes);
      expect([px.width, px.height]).toEqual([320, 240]);
      if (px.n > 100) coloured++;
    }
    expect(coloured).toBeGreaterThan(0);

    // HLS: segments on disk, served under /hls/ behind the token, played by GStreamer's own HLS client.
    await waitFor(() => existsSync(join(hls, 'src0', 'playlist.m3u8')) && readdirSync(join(hls, 'src0')).filter((f) => f.endsWith('.ts')).length >= 2, 'two HLS segments', { detail: run.stderr });
    expect((await fetch(`${base}/hls/src0/playlist.m3u8`)).status).toBe(401);
    expect((await fetch(`${base}/hls/src0/segment00000.ts`)).status).toBe(401);
    expect((await fetch(`${base}/hls/src0/segment00000.ts`, { headers: { authorization: 'Bearer tok' } })).headers.get('content-type')).toBe('video/mp2t');
    const playlist = await (await fetch(`${base}/hls/src0/playlist.m3u8?token=tok`)).text();
    expect(playlist).toMatch(/^segment\d+\.ts\?token=tok$/m);
    const live = discover(`${base}/hls/src0/playlist.m3u8?token=tok`);
    expect(live.text).toMatch(/H\.264/);
    expect(live.text).toMatch(/Width: 320\s+Height: 240/);

    // A normal end finishes the playlist; the files play on their own.
    run.proc.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    const final = readFileSync(join(hls, 'src0', 'playlist.m3u8'), 'utf8');
    expect(final).toContain('#EXT-X-ENDLIST');
    const file = discover(`file://${join(hls, 'src0', 'playlist.m3u8')}`);
    expect(file.ok, file.text).toBe(true);
    expect(file.text).toMatch(/Width: 320\s+Height: 240/);
    expect(Number(/Duration: 0:00:(\d+\.\d+)/.exec(file.text)?.[1])).toBeGreaterThan(1);
  });
});

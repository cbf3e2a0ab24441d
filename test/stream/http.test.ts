// The HTTP side of ssd stream: address parsing, the loopback/token rules, routes; and the live page
// in headless Chromium (DevTools protocol), screenshot checked for the frame and the box colour.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import sharp from 'sharp';
import WebSocket from 'ws';
import { afterAll, describe, expect, it } from 'vitest';
import { classColourRgb } from '../../runtime/draw.js';
import { StreamHttpServer, isLoopback, packedRgb, parseListenAddress } from '../../runtime/stream/http-server.js';
import type { SourceStats } from '../../runtime/stream/frame.js';
import type { FrameRecord } from '../../runtime/stream/jsonl.js';
import { StreamMetrics } from '../../runtime/stream/metrics.js';
import { VideoOut } from '../../runtime/stream/video-out.js';
import { runSsdStream, stop, tinyModel, freePort } from './helpers.js';
import { tempDir } from '../helpers/temp-dir.js';
import { WAIT_MS } from '../helpers/wait.js';

const CHROMIUM = '/usr/bin/chromium';
const running: Array<ChildProcess | undefined> = [];
afterAll(async () => { for (const p of running) await stop(p); });

function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; type: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => {
        body += d.toString();
        // The feed never ends: the first event is enough.
        if (res.headers['content-type'] === 'text/event-stream' && body.includes('\ndata: ')) req.destroy();
      });
      const done = () => resolve({ status: res.statusCode ?? 0, body, type: String(res.headers['content-type']) });
      res.on('end', done);
      res.on('close', done);
    });
    req.on('error', (e) => (String(e).includes('socket hang up') ? undefined : reject(e)));
    req.end();
  });
}

/**
 * Subscribes to an SSE feed. `opened` resolves on the response headers: the server registers a
 * client in the same tick as it writes them, so from then on a published record reaches us.
 */
function openFeed(url: string): { opened: Promise<void>; first: Promise<{ type: string; body: string }> } {
  let opened!: () => void;
  const openedP = new Promise<void>((resolve) => (opened = resolve));
  const first = new Promise<{ type: string; body: string }>((resolve, reject) => {
    const req = request(url, (res) => {
      opened();
      let body = '';
      res.on('data', (d: Buffer) => {
        body += d.toString();
        // The first unnamed message (named ones, e.g. "event: state", come first).
        if (/(?:^|\n\n)data: /.test(body)) {
          req.destroy();
          resolve({ type: String(res.headers['content-type']), body });
        }
      });
    });
    req.on('error', (e) => (String(e).includes('socket hang up') ? undefined : reject(e)));
    req.end();
  });
  return { opened: openedP, first };
}

describe('listen address and access rules', () => {
  it('parses HOST:PORT, [v6]:PORT, :PORT and PORT (loopback by default)', () => {
    expect(parseListenAddress('127.0.0.1:8080')).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(parseListenAddress(':9000')).toEqual({ host: '127.0.0.1', port: 9000 });
    expect(parseListenAddress('9000')).toEqual({ host: '127.0.0.1', port: 9000 });
    expect(parseListenAddress('[::1]:81')).toEqual({ host: '::1', port: 81 });
    expect(() => parseListenAddress('host:http')).toThrow(/expected HOST:PORT/);
    expect(() => parseListenAddress('::1:80')).toThrow(/brackets/);
    expect(isLoopback('127.0.0.1') && isLoopback('::1') && isLoopback('localhost')).toBe(true);
    expect(isLoopback('0.0.0.0') || isLoopback('192.168.1.2')).toBe(false);
  });

  it('refuses to bind beyond loopback without a token', () => {
    const base = { metrics: new StreamMetrics(), sources: () => [] };
    expect(() => new StreamHttpServer({ ...base, address: { host: '0.0.0.0', port: 8080 } })).toThrow(/reachable from other machines: give --token/);
    expect(() => new StreamHttpServer({ ...base, address: { host: '0.0.0.0', port: 8080 }, token: 't' })).not.toThrow();
  });

  it('BGR with padded rows becomes packed RGB for the JPEG encoder', () => {
    const bgr = Buffer.from([3, 2, 1, 6, 5, 4, 0, 0, 9, 8, 7, 12, 11, 10, 0, 0]);
    expect([...packedRgb({ data: bgr, width: 2, height: 2, format: 'bgr', stride: 8 })]).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  });
});

describe('routes', () => {
  it('a token guards every route; /healthz, /metrics and the feed answer with it', async () => {
    const metrics = new StreamMetrics();
    const stats: SourceStats = { state: 'playing', frames: 3, dropped: 1, reconnects: 2 };
    const video = new VideoOut({ displayFps: 15, log: () => {} });
    video.addSource('src0', undefined);
    const server = new StreamHttpServer({ address: { host: '127.0.0.1', port: 0 }, token: 's3cret', metrics, log: () => {}, sources: () => [{ id: 'src0', uri: 'test://', stats }], video });
    const { port } = await server.listen();
    try {
      const base = `http://127.0.0.1:${port}`;
      for (const path of ['/', '/metrics', '/healthz', '/events', '/frame.jpg', '/mjpeg/src0', '/hls/src0/playlist.m3u8', '/hls/src0/segment00000.ts']) expect((await get(base + path)).status).toBe(401);
      expect((await get(`${base}/mjpeg/src0?token=wrong`)).status).toBe(401);
      expect((await get(`${base}/mjpeg/src9?token=s3cret`)).status).toBe(404);
      // No --hls: the route says so rather than serving anything.
      expect((await get(`${base}/hls/src0/playlist.m3u8?token=s3cret`)).status).toBe(404);
      expect((await get(`${base}/healthz?token=wrong`)).status).toBe(401);
      const health = await get(`${base}/healthz`, { authorization: 'Bearer s3cret' });
      expect(health.status).toBe(200);
      expect(JSON.parse(health.body)).toEqual({ status: 'ok', sources: [{ id: 'src0', uri: 'test://', state: 'playing', frames: 3, reconnects: 2, last_error: null }] });
      const m = await get(`${base}/metrics?token=s3cret`);
      expect(m.type).toContain('text/plain; version=0.0.4');
      expect(m.body).toContain('ssd_reconnects_total{source="src0"} 2');
      expect(m.body).toContain('ssd_dropped_frames_total{source="src0"} 1');
      const page = await get(`${base}/?token=s3cret`);
      expect(page.body).toContain('EventSource("events?frames=1" + q)');
      expect((await get(`${base}/nope?token=s3cret`)).status).toBe(404);

      const feed = openFeed(`${base}/events?token=s3cret`);
      await feed.opened;
      const record: FrameRecord = { source: 'src0', uri: 'test://', frame: 1, pts: 0, ts: 1, wall: 2, latency_ms: 1, infer_ms: 1, width: 4, height: 2, detections: [] };
      const frame = { sourceId: 'src0', seq: 1, pts: 0, captureMs: 1, captureMono: 1, data: Buffer.alloc(24), width: 4, height: 2, format: 'rgb' as const, sourceWidth: 4, sourceHeight: 2 };
      server.publish(record, frame);
      const ev = await feed.first;
      expect(ev.type).toBe('text/event-stream');
      expect(ev.body).toContain(`data: ${JSON.stringify(record)}`);
      // The sources' states come first, as a named event (the page's "reconnecting..." follows them).
      expect(ev.body).toContain('event: state\ndata: [{"id":"src0","uri":"test://","state":"playing"}]\n\n');

      // A source that really reconnects is announced on the open feeds (the page's "reconnecting...").
      const changed = new Promise<string>((resolve, reject) => {
        const req = request(`${base}/events?token=s3cret`, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => {
            body += d.toString();
            if (body.includes('"state":"playing"')) stats.state = 'reconnecting';
            if (body.includes('"state":"reconnecting"')) { req.destroy(); resolve(body); }
          });
        });
        req.on('error', (e) => (String(e).includes('socket hang up') ? undefined : reject(e)));
        req.end();
      });
      expect(await changed).toContain('event: state\ndata: [{"id":"src0","uri":"test://","state":"reconnecting"}]\n\n');
    } finally {
      await server.close();
    }
  });
});

interface Cdp {
  send(method: string, params?: Record<string, unknown>): Promise<Record<string, unknown>>;
  /** Resolves with the params of the next event `method` (e.g. Page.loadEventFired). */
  next(method: string): Promise<Record<string, unknown>>;
  close(): void;
}

/** Headless Chromium with a DevTools endpoint on loopback (stopped after the file at the latest); resolves with its browser WebSocket URL. */
function startChromium(dir: string): Promise<{ browserWs: string; chrome: ChildProcess }> {
  const chrome = spawn(CHROMIUM, ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run', `--user-data-dir=${dir}/chromium`, '--window-size=800,600', '--remote-debugging-port=0', '--remote-debugging-address=127.0.0.1', 'about:blank'],
  { stdio: ['ignore', 'ignore', 'pipe'] });
  running.push(chrome);
  return new Promise((resolve, reject) => {
    let err = '';
    const t = setTimeout(() => reject(new Error(`chromium did not start in ${WAIT_MS / 1000} s: ${err}`)), WAIT_MS);
    chrome.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /DevTools listening on (ws:\/\/\S+)/.exec(err);
      if (m) { clearTimeout(t); resolve({ browserWs: m[1]!, chrome }); }
    });
  });
}

async function cdp(wsUrl: string): Promise<Cdp> {
  const ws = new WebSocket(wsUrl);
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  let id = 0;
  const waiting = new Map<number, (r: Record<string, unknown>) => void>();
  const events = new Map<string, Array<(p: Record<string, unknown>) => void>>();
  ws.on('message', (data: Buffer) => {
    const msg = JSON.parse(data.toString()) as { id?: number; method?: string; params?: Record<string, unknown>; result?: Record<string, unknown>; error?: unknown };
    if (msg.id !== undefined) waiting.get(msg.id)?.(msg.result ?? { error: msg.error });
    else if (msg.method) {
      const fns = events.get(msg.method) ?? [];
      events.delete(msg.method);
      for (const f of fns) f(msg.params ?? {});
    }
  });
  return {
    send: (method, params = {}) => new Promise((resolve) => { const i = ++id; waiting.set(i, resolve); ws.send(JSON.stringify({ id: i, method, params })); }),
    next: (method) => new Promise((resolve) => events.set(method, [...(events.get(method) ?? []), resolve])),
    close: () => ws.close(),
  };
}

/** Class colours as the page and the MJPEG/HLS drawings paint them (runtime/draw.ts), for the digits classes. */
const CLASS_RGB: Record<number, [number, number, number]> = Object.fromEntries(Array.from({ length: 11 }, (_, i) => [i, classColourRgb(i)]));

/** Closes the page's browser and waits until its process has gone. */
async function closeBrowser(page: Cdp, chrome: ChildProcess): Promise<void> {
  await page.send('Browser.close').catch(() => undefined);
  page.close();
  await stop(chrome);
}

/** Opens a page on `url` in the Chromium started for `dir`. */
async function openPage(dir: string, url: string): Promise<{ page: Cdp; chrome: ChildProcess }> {
  const { browserWs, chrome } = await startChromium(dir);
  const targets = await (await fetch(`http://127.0.0.1:${new URL(browserWs).port}/json/list`)).json() as Array<{ type: string; webSocketDebuggerUrl: string }>;
  const page = await cdp(targets.find((t) => t.type === 'page')!.webSocketDebuggerUrl);
  await page.send('Page.enable');
  const loaded = page.next('Page.loadEventFired');
  await page.send('Page.navigate', { url });
  await loaded;
  return { page, chrome };
}

/**
 * The page itself waits until its canvas is `width` x `height` and shows a picture with its boxes
 * drawn (pixels of the detected classes' colours, read back from the canvas), then closes its feed in
 * the same tick so that nothing redraws before the screenshot. Waiting for that state, not for a time,
 * is what keeps this right on a loaded machine. Resolves with the classes drawn and the caption.
 */
async function settleWithBoxes(page: Cdp, width: number, height: number): Promise<{ classes: number[]; caption: string } | { error: string }> {
  const settled = await page.send('Runtime.evaluate', { awaitPromise: true, returnByValue: true, expression: `new Promise((resolve) => {
    const rgb = ${JSON.stringify(CLASS_RGB)};
    const giveUp = setTimeout(() => resolve({ error: "gave up" }), ${WAIT_MS});
    const check = () => {
      const v = views.values().next().value;
      const c = v && v.canvas;
      if (c && c.width === ${width} && c.height === ${height} && v.rec && v.rec.detections.length > 0 && !v.busy) {
        const classes = [...new Set(v.rec.detections.map((d) => d.class_id))];
        const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) {
          for (const k of classes) {
            const [r, g, b] = rgb[k];
            if (Math.abs(d[i] - r) < 40 && Math.abs(d[i + 1] - g) < 40 && Math.abs(d[i + 2] - b) < 40) { n++; break; }
          }
        }
        if (n > 200) { es.close(); clearTimeout(giveUp); resolve({ classes, caption: v.cap.textContent }); return; }
      }
      setTimeout(check, 50);
    };
    check();
  })` });
  return ((settled.result as { value?: unknown } | undefined)?.value ?? { error: JSON.stringify(settled) }) as { classes: number[]; caption: string } | { error: string };
}

/** The canvas in a screenshot: pixels of the given classes' colours, distinct other colours, dark pixels. */
async function screenshotCanvas(page: Cdp, classes: number[]): Promise<{ classPixels: number; colours: number; dark: number; white: number; width: number; height: number }> {
  const shot = await page.send('Page.captureScreenshot', { format: 'png' });
  // SSD_STREAM_SHOT=path keeps the screenshot for a human to look at.
  if (process.env.SSD_STREAM_SHOT) writeFileSync(process.env.SSD_STREAM_SHOT, Buffer.from(shot.data as string, 'base64'));
  const { data, info } = await sharp(Buffer.from(shot.data as string, 'base64')).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const rect = (await page.send('Runtime.evaluate', { expression: 'JSON.stringify(document.querySelector("canvas").getBoundingClientRect())', returnByValue: true })).result as { value: string };
  const { x, y, width, height } = JSON.parse(rect.value) as { x: number; y: number; width: number; height: number };
  let classPixels = 0;
  let dark = 0;
  let white = 0;
  const colours = new Set<number>();
  for (let py = Math.ceil(y); py < Math.floor(y + height); py++) {
    for (let px = Math.ceil(x); px < Math.floor(x + width); px++) {
      const i = py * info.width + px;
      const [r, g, b] = [data[i * 3]!, data[i * 3 + 1]!, data[i * 3 + 2]!];
      if (classes.some((k) => Math.abs(r - CLASS_RGB[k]![0]) < 40 && Math.abs(g - CLASS_RGB[k]![1]) < 40 && Math.abs(b - CLASS_RGB[k]![2]) < 40)) classPixels++;
      else colours.add((r >> 3) * 1024 + (g >> 3) * 32 + (b >> 3));
      if (r + g + b < 30) dark++;
      if (r > 200 && g > 200 && b > 200) white++;
    }
  }
  return { classPixels, colours: colours.size, dark, white, width, height };
}

describe.skipIf(!existsSync(CHROMIUM))('live page in headless Chromium', () => {
  // A few seconds idle; the bound ends a hang only (every wait below is for an event or a page state).
  it('shows the frames and draws the boxes in their class colours (screenshot pixels), behind a token', { timeout: 4 * WAIT_MS }, async () => {
    const dir = tempDir('ssd-stream-');
    const port = await freePort();
    // The demo source (moving digits, no GStreamer needed: the page shows its frames, encoded by sharp)
    // with an untrained model whose threshold leaves a handful of boxes per frame.
    const run = runSsdStream(['--model', tinyModel(dir), '--threshold', '0.9', '--http', `127.0.0.1:${port}`, '--token', 'tok3n', '--no-json']);
    running.push(run.proc);
    await run.until(() => run.stderr().includes('live page: http://127.0.0.1:'), 'the live page');
    // The page takes the token from its own URL and hands it to its feed.
    const { page, chrome } = await openPage(dir, `http://127.0.0.1:${port}/?token=tok3n`);
    try {
      const settled = await settleWithBoxes(page, 256, 256);
      if ('error' in settled) throw new Error(`live page never showed a frame with boxes (${settled.error}); ssd stream stderr:\n${run.stderr()}`);
      const shot = await screenshotCanvas(page, settled.classes);
      // Boxes: a few hundred pixels of the class colours inside the canvas. The frame: a picture
      // (digits on a textured background: many colours), not the blank canvas.
      expect(shot.classPixels).toBeGreaterThan(200);
      expect(shot.colours).toBeGreaterThan(50);
      expect(shot.dark).toBeLessThan(0.5 * shot.width * shot.height);
    } finally {
      await closeBrowser(page, chrome);
      run.proc.kill('SIGTERM');
      await run.exited;
    }
  });

  it('shows a camera at its own resolution, not the model input (display branch), with fps and latency', { timeout: 4 * WAIT_MS }, async () => {
    const dir = tempDir('ssd-stream-');
    const port = await freePort();
    // A 320x240 camera and a 96x96 model: the page must show 320x240 pictures.
    const run = runSsdStream(['test://ball?width=320&height=240&fps=15', '--model', tinyModel(dir), '--threshold', '0.6', '--http', `127.0.0.1:${port}`, '--no-json']);
    running.push(run.proc);
    await run.until(() => run.stderr().includes('live page: http://127.0.0.1:'), 'the live page');
    const { page, chrome } = await openPage(dir, `http://127.0.0.1:${port}/`);
    try {
      const settled = await settleWithBoxes(page, 320, 240);
      if ('error' in settled) throw new Error(`live page never showed a 320x240 picture with boxes (${settled.error}); ssd stream stderr:\n${run.stderr()}`);
      expect(settled.caption).toMatch(/^src0 test:\/\/ball\S* \| 320x240 \| (\d+\.\d fps \| )?latency \d+ ms \| frame \d+ \| \d+ detections$/);
      const shot = await screenshotCanvas(page, settled.classes);
      expect([shot.width, shot.height]).toEqual([320, 240]);
      expect(shot.classPixels).toBeGreaterThan(200);
      // The picture: the test pattern's white ball on black (no colour of its own that a box could
      // be mistaken for), drawn over the whole canvas.
      expect(shot.white).toBeGreaterThan(100);
      expect(shot.dark).toBeGreaterThan(0.3 * shot.width * shot.height);
    } finally {
      await closeBrowser(page, chrome);
      run.proc.kill('SIGTERM');
      await run.exited;
    }
  });

  it('says "waiting for the first frame" while the camera connects and "stream ended" after a normal end', { timeout: 4 * WAIT_MS }, async () => {
    const dir = tempDir('ssd-stream-');
    const port = await freePort();
    // An RTP source nobody sends to: the page is up, no frame ever comes (the connect timeout is far away).
    const run = runSsdStream([`rtp://@:${await freePort()}`, '--model', tinyModel(dir), '--http', `127.0.0.1:${port}`, '--connect-timeout', '600', '--no-json']);
    running.push(run.proc);
    await run.until(() => run.stderr().includes('live page: http://127.0.0.1:'), 'the live page');
    const { browserWs, chrome } = await startChromium(dir);
    const targets = await (await fetch(`http://127.0.0.1:${new URL(browserWs).port}/json/list`)).json() as Array<{ type: string; webSocketDebuggerUrl: string }>;
    const page = await cdp(targets.find((t) => t.type === 'page')!.webSocketDebuggerUrl);
    // Resolves with the status text once it equals `want` (the page is polled from inside; a bound of WAIT_MS ends a hang).
    const statusBecomes = async (want: string) => {
      const r = await page.send('Runtime.evaluate', { awaitPromise: true, returnByValue: true, expression: `new Promise((resolve) => {
        const giveUp = setTimeout(() => resolve(document.getElementById("status").textContent), ${WAIT_MS});
        const check = () => {
          const text = document.getElementById("status").textContent;
          if (text === ${JSON.stringify(want)}) { clearTimeout(giveUp); resolve(text); return; }
          setTimeout(check, 50);
        };
        check();
      })` });
      return (r.result as { value?: string } | undefined)?.value;
    };
    try {
      await page.send('Page.enable');
      const loaded = page.next('Page.loadEventFired');
      await page.send('Page.navigate', { url: `http://127.0.0.1:${port}/` });
      await loaded;
      expect(await statusBecomes('waiting for the first frame')).toBe('waiting for the first frame');
      run.proc.kill('SIGTERM');
      expect(await statusBecomes('stream ended')).toBe('stream ended');
      expect(await run.exited).toBe(0);
    } finally {
      await closeBrowser(page, chrome);
      await stop(run.proc);
    }
  });
});

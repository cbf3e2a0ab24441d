// The HTTP side of ssd stream: address parsing, the loopback/token rules, routes; and the live page
// in headless Chromium (DevTools protocol), screenshot checked for the frame and the box colour.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import sharp from 'sharp';
import WebSocket from 'ws';
import { afterAll, describe, expect, it } from 'vitest';
import { StreamHttpServer, isLoopback, packedRgb, parseListenAddress } from '../../runtime/stream/http-server.js';
import type { FrameRecord } from '../../runtime/stream/jsonl.js';
import { BOX_COLOUR } from '../../runtime/stream/live-page.js';
import { StreamMetrics } from '../../runtime/stream/metrics.js';
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
        if (body.includes('\ndata: ')) {
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
    const stats = { state: 'playing' as const, frames: 3, dropped: 1, reconnects: 2 };
    const server = new StreamHttpServer({ address: { host: '127.0.0.1', port: 0 }, token: 's3cret', metrics, log: () => {}, sources: () => [{ id: 'src0', uri: 'test://', stats }] });
    const { port } = await server.listen();
    try {
      const base = `http://127.0.0.1:${port}`;
      for (const path of ['/', '/metrics', '/healthz', '/events']) expect((await get(base + path)).status).toBe(401);
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

describe.skipIf(!existsSync(CHROMIUM))('live page in headless Chromium', () => {
  // A few seconds idle; the bound ends a hang only (every wait below is for an event or a page state).
  it('shows the frames and draws the boxes (screenshot pixels), behind a token', { timeout: 4 * WAIT_MS }, async () => {
    const dir = tempDir('ssd-stream-');
    const port = await freePort();
    // The demo source (moving digits, no GStreamer needed) with an untrained model whose threshold
    // leaves a handful of boxes per frame.
    const run = runSsdStream(['--model', tinyModel(dir), '--threshold', '0.9', '--http', `127.0.0.1:${port}`, '--token', 'tok3n', '--no-json']);
    running.push(run.proc);
    await run.until(() => run.stderr().includes('live page: http://127.0.0.1:'), 'the live page');

    const { browserWs, chrome } = await startChromium(dir);
    const debugPort = new URL(browserWs).port;
    const targets = await (await fetch(`http://127.0.0.1:${debugPort}/json/list`)).json() as Array<{ type: string; webSocketDebuggerUrl: string }>;
    const page = await cdp(targets.find((t) => t.type === 'page')!.webSocketDebuggerUrl);
    try {
      await page.send('Page.enable');
      // The page takes the token from its own URL and hands it to its feed.
      const loaded = page.next('Page.loadEventFired');
      await page.send('Page.navigate', { url: `http://127.0.0.1:${port}/?token=tok3n` });
      await loaded;
      // The page itself waits until its canvas shows a 256x256 demo frame with boxes drawn on it
      // (pixels of the box colour, read back from the canvas), then closes its feed in the same tick
      // so that nothing redraws before the screenshot. Waiting for that state, not for a time, is
      // what keeps this test right on a loaded machine: frames and boxes arrive when they arrive.
      const box = [parseInt(BOX_COLOUR.slice(1, 3), 16), parseInt(BOX_COLOUR.slice(3, 5), 16), parseInt(BOX_COLOUR.slice(5, 7), 16)];
      const settled = await page.send('Runtime.evaluate', { awaitPromise: true, returnByValue: true, expression: `new Promise((resolve) => {
        const box = ${JSON.stringify(box)};
        const giveUp = setTimeout(() => resolve(-1), ${WAIT_MS});
        const check = () => {
          const c = document.querySelector("canvas");
          const v = views.values().next().value;
          if (c && c.width === 256 && v && !v.busy) {
            const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
            let n = 0;
            for (let i = 0; i < d.length; i += 4) {
              if (Math.abs(d[i] - box[0]) < 40 && Math.abs(d[i + 1] - box[1]) < 40 && Math.abs(d[i + 2] - box[2]) < 40) n++;
            }
            if (n > 200) { es.close(); clearTimeout(giveUp); resolve(n); return; }
          }
          setTimeout(check, 50);
        };
        check();
      })` });
      const inPage = (settled.result as { value?: number } | undefined)?.value;
      if (!(typeof inPage === 'number' && inPage > 200)) {
        throw new Error(`live page never showed a frame with boxes (${JSON.stringify(settled)}); ssd stream stderr:\n${run.stderr()}`);
      }
      const shot = await page.send('Page.captureScreenshot', { format: 'png' });
      // SSD_STREAM_SHOT=path keeps the screenshot for a human to look at.
      if (process.env.SSD_STREAM_SHOT) writeFileSync(process.env.SSD_STREAM_SHOT, Buffer.from(shot.data as string, 'base64'));
      const { data, info } = await sharp(Buffer.from(shot.data as string, 'base64')).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      const rect = (await page.send('Runtime.evaluate', { expression: 'JSON.stringify(document.querySelector("canvas").getBoundingClientRect())', returnByValue: true })).result as { value: string };
      const { x, y, width, height } = JSON.parse(rect.value) as { x: number; y: number; width: number; height: number };
      let boxPixels = 0;
      let dark = 0;
      const colours = new Set<number>();
      for (let py = Math.ceil(y); py < Math.floor(y + height); py++) {
        for (let px = Math.ceil(x); px < Math.floor(x + width); px++) {
          const i = py * info.width + px;
          const [r, g, b] = [data[i * 3]!, data[i * 3 + 1]!, data[i * 3 + 2]!];
          if (Math.abs(r - box[0]!) < 40 && Math.abs(g - box[1]!) < 40 && Math.abs(b - box[2]!) < 40) boxPixels++;
          else colours.add((r >> 3) * 1024 + (g >> 3) * 32 + (b >> 3));
          if (r + g + b < 30) dark++;
        }
      }
      // Boxes: a few hundred pixels of the stroke colour inside the canvas. The frame: a picture
      // (digits on a textured background: many colours), not the blank canvas.
      expect(boxPixels).toBeGreaterThan(200);
      expect(colours.size).toBeGreaterThan(50);
      expect(dark).toBeLessThan(0.5 * width * height);
    } finally {
      await page.send('Browser.close').catch(() => undefined);
      page.close();
      await stop(chrome);
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
      await page.send('Browser.close').catch(() => undefined);
      page.close();
      await stop(chrome);
      await stop(run.proc);
    }
  });
});

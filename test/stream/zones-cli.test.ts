// `ssd stream --zones` end to end: a real GStreamer file source (digits panning past the window,
// rendered here and encoded with x264 by gst-launch), the shipped digits model, a real webhook
// receiver and a hanging one on 127.0.0.1, a real Mosquitto broker; events on stdout, MQTT, the
// webhook and /metrics. Then the one-line refusals, all before any source opens.
import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { renderDigitScene } from '../../core/datasets/digits.js';
import { DEMO_MODEL_PATH } from '../../runtime/stream/demo.js';
import { gstAvailable } from '../../runtime/stream/gst.js';
import { MOSQUITTO, freePort, runSsdStream, SSD_BIN, startBroker, stop } from './helpers.js';
import { waitFor, WAIT_MS } from '../helpers/wait.js';
import { tempDir } from '../helpers/temp-dir.js';

const running: Array<ChildProcess | undefined> = [];
const servers: Array<{ server: Server; sockets: Set<Socket> }> = [];
afterAll(async () => {
  for (const p of running) await stop(p);
  for (const s of servers) {
    for (const sock of s.sockets) sock.destroy();
    await new Promise((r) => s.server.close(r));
  }
});

/**
 * 90 frames (6 s at 15 fps) of a 256x256 window panning right over a 512-wide digit scene and back:
 * the digits move left through the middle of the picture, then right.
 */
function digitsVideo(dir: string): string {
  const W = 256, H = 256, SW = 512, n = 90;
  const scene = renderDigitScene(7000, { width: SW, height: H, split: 'test', minDigits: 5, maxDigits: 10, minDigitSize: 51, maxDigitSize: 115 });
  const raw = Buffer.alloc(n * W * H * 3);
  for (let k = 0; k < n; k++) {
    const half = n / 2;
    const x0 = Math.round((SW - W) * (k < half ? k / (half - 1) : (n - 1 - k) / (half - 1)));
    for (let y = 0; y < H; y++) raw.set(scene.rgb.subarray((y * SW + x0) * 3, (y * SW + x0 + W) * 3), (k * H + y) * W * 3);
  }
  const rawPath = join(dir, 'digits.rgb');
  const mp4 = join(dir, 'digits.mp4');
  writeFileSync(rawPath, raw);
  const r = spawnSync('gst-launch-1.0', ['-q', 'filesrc', `location=${rawPath}`, '!', 'rawvideoparse', `width=${W}`, `height=${H}`, 'format=rgb', 'framerate=15/1',
    '!', 'videoconvert', '!', 'video/x-raw,format=I420', '!', 'x264enc', 'speed-preset=ultrafast', 'pass=quant', 'quantizer=12', '!', 'mp4mux', '!', 'filesink', `location=${mp4}`], { timeout: WAIT_MS });
  if (r.status !== 0) throw new Error(`gst-launch failed: ${r.stderr?.toString()}`);
  return mp4;
}

const ZONES = `# the left half, and a line down the middle (top to bottom: "in" = towards the left)
units: normalized
sources:
  src0:
    zones:
      - name: left
        points: [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]
        loiter_seconds: 1
    lines:
      - name: middle
        from: [0.5, 0]
        to: [0.5, 1]
`;

async function serve(handle: (body: string, res: ServerResponse) => void): Promise<string> {
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => { body += d.toString(); });
    req.on('end', () => handle(body, res));
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  servers.push({ server, sockets });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
}


function get(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    request(url, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => resolve(body));
    }).on('error', reject).end();
  });
}

type Line = Record<string, unknown>;
const isEvent = (l: Line) => typeof l.event === 'string';
/** A frame's JSON line (not an event's, not a finished clip's). */
const isFrame = (l: Line) => !isEvent(l) && l.type !== 'clip';

describe.skipIf(!gstAvailable() || !existsSync(DEMO_MODEL_PATH) || !existsSync(MOSQUITTO))('ssd stream --zones end to end', () => {
  it('events on stdout after their frame, on the webhook and MQTT, counters in /metrics; a hanging webhook never stalls frames', async () => {
    const dir = tempDir('ssd-zones-');
    const video = digitsVideo(dir);
    const zones = join(dir, 'zones.yaml');
    writeFileSync(zones, ZONES);
    const hooked: Line[] = [];
    const good = await serve((body, res) => { hooked.push(JSON.parse(body) as Line); res.writeHead(204).end(); });
    const held: ServerResponse[] = [];
    const hanging = await serve((_body, res) => { held.push(res); });
    const brokerPort = await freePort();
    running.push(await startBroker(dir, brokerPort));
    const mqttEvents: Array<{ topic: string; e: Line }> = [];
    const sub = mqtt.connect(`mqtt://127.0.0.1:${brokerPort}`, { reconnectPeriod: 200 });
    try {
      await new Promise<void>((resolve, reject) => {
        sub.on('connect', () => sub.subscribe('zt/#', { qos: 1 }, (err) => (err ? reject(err) : resolve())));
      });
      sub.on('message', (topic, payload) => { if (topic.endsWith('/events')) mqttEvents.push({ topic, e: JSON.parse(payload.toString()) as Line }); });
      const httpPort = await freePort();
      const run = runSsdStream([video, '--loop', '--model', DEMO_MODEL_PATH, '--zones', zones, '--webhook', good, '--webhook', hanging,
        '--mqtt', `mqtt://127.0.0.1:${brokerPort}`, '--topic', 'zt/{source}', '--qos', '1', '--http', `127.0.0.1:${httpPort}`,
        '--record', join(dir, 'clips'), '--pre-roll', '1', '--post-roll', '1']);
      running.push(run.proc);
      const events = () => run.lines.filter(isEvent);
      await run.until(() => events().some((e) => e.event === 'cross' && e.direction === 'in') && events().some((e) => e.event === 'cross' && e.direction === 'out')
        && events().some((e) => e.event === 'enter') && events().some((e) => e.event === 'leave') && events().some((e) => e.event === 'loiter'),
      'enter, leave, loiter and cross events both ways');
      expect(run.stderr()).toContain('--zones: tracking is on with its defaults (--track not given)');

      // The shape; every event follows its frame's JSON line and names a confirmed track of that frame.
      const lines = [...run.lines];
      lines.forEach((l, i) => {
        if (!isEvent(l)) return;
        expect(l).toMatchObject({ source: 'src0', uri: `file://${video}`, track_id: expect.any(Number), label: expect.any(String), class_id: expect.any(Number) });
        expect(l.box).toHaveLength(4);
        if (l.event === 'cross') expect(l).toMatchObject({ line: 'middle', direction: expect.stringMatching(/^(in|out)$/), count_in: expect.any(Number), count_out: expect.any(Number) });
        else expect(l.zone).toBe('left');
        const rec = lines.slice(0, i).reverse().find(isFrame);
        expect(rec?.frame).toBe(l.frame);
        if (l.event !== 'leave' || l.reason !== 'lost') {
          expect((rec!.detections as Line[]).some((d) => d.track_id === l.track_id)).toBe(true);
        }
      });
      // A digit crossing right to left (the window pans right) is "in", and it is then inside the left zone.
      const cin = events().find((e) => e.event === 'cross' && e.direction === 'in')!;
      expect(events().some((e) => e.event === 'enter' && e.track_id === cin.track_id)).toBe(true);

      // The same events, in the same order, reach the webhook and the broker.
      await waitFor(() => hooked.length >= 10 && mqttEvents.length >= 10, '10 events on the webhook and on MQTT', { detail: run.stderr });
      const first = events().slice(0, 10);
      expect(hooked.slice(0, 10)).toEqual(first);
      expect(mqttEvents.slice(0, 10).map((m) => m.e)).toEqual(first);
      expect(mqttEvents[0]!.topic).toBe('zt/src0/events');

      // The hanging receiver holds a request; frames keep coming meanwhile.
      await waitFor(() => held.length >= 1, 'the hanging webhook to get a request', { detail: run.stderr });
      const frames = run.lines.filter(isFrame).length;
      await run.until((ls) => ls.filter(isFrame).length >= frames + 100, '100 more frames while the webhook hangs');

      const metrics = await get(`http://127.0.0.1:${httpPort}/metrics`);
      expect(metrics).toMatch(/^ssd_line_crossings_total\{source="src0",line="middle",class="\d",direction="in"\} [1-9]\d*$/m);
      expect(metrics).toMatch(/^ssd_line_crossings_total\{source="src0",line="middle",class="\d",direction="out"\} [1-9]\d*$/m);
      expect(metrics).toMatch(/^ssd_zone_occupancy\{source="src0",zone="left",class="\d"\} \d+$/m);
      for (const t of ['enter', 'leave', 'loiter', 'cross']) expect(metrics).toMatch(new RegExp(`^ssd_events_total\\{source="src0",type="${t}"\\} [1-9]\\d*$`, 'm'));
      expect(metrics).toContain('# TYPE ssd_webhook_dropped_total counter');

      // SIGTERM: the flush is bounded (the hanging webhook is abandoned, one line), exit 0.
      run.proc.kill('SIGTERM');
      expect(await run.exited).toBe(0);
      expect(run.stderr()).toMatch(/webhook 1 \(http:\/\/127\.0\.0\.1:\d+\/\.\.\.\): \d+ events not delivered at shutdown/);
      // With --zones, clips are the events' (named after them), not any detection's.
      const clips = run.lines.filter((l) => l.type === 'clip');
      expect(clips.length).toBeGreaterThanOrEqual(1);
      for (const c of clips) {
        expect(c.reason).toMatch(/^(enter-left|leave-left|loiter-left|cross-middle)$/);
        expect(existsSync(c.path as string)).toBe(true);
      }
    } finally {
      sub.end(true);
    }
  }, 2 * WAIT_MS);
});

describe('ssd stream --zones: one-line refusals before any source opens', { timeout: 2 * WAIT_MS }, () => {
  // An RTP source nobody sends to, with a connect timeout far beyond the test's bound: a refusal that
  // waited for the source would never come.
  const src = ['rtp://@:5999', '--connect-timeout', '600', '--model', DEMO_MODEL_PATH];
  const ssd = (args: string[]) => {
    const r = spawnSync(process.execPath, [SSD_BIN, 'stream', ...args], { encoding: 'utf8', timeout: WAIT_MS });
    return { code: r.status, stderr: r.stderr };
  };

  it.skipIf(!existsSync(DEMO_MODEL_PATH))('a missing file, a syntax error, a bad field, an unknown source or class, a webhook without zones', () => {
    const dir = tempDir('ssd-zones-');
    const file = (name: string, text: string) => {
      const p = join(dir, name);
      writeFileSync(p, text);
      return p;
    };
    const bad = file('bad.yaml', 'units: pixels\nsources:\n  src0:\n    zones:\n      - name: a\n        points: [[0, 0], [5, 5]]\n');
    const cases: Array<[string[], RegExp]> = [
      [['--zones', join(dir, 'none.yaml')], /^ssd stream: --zones .*none\.yaml: file not found$/],
      [['--zones', file('syntax.yaml', 'units: pixels\nsources:\n  src0: [1, 2\n')], /^ssd stream: .*syntax\.yaml:3: unclosed "\["$/],
      [['--zones', bad], /^ssd stream: .*bad\.yaml: sources\.src0\.zones\[0\]\.points: needs at least 3 points, got 2$/],
      [['--zones', file('src.json', '{"units": "pixels", "sources": {"src1": {"lines": [{"name": "l", "from": [0, 0], "to": [9, 9]}]}}}')],
        /^ssd stream: .*src\.json: sources\.src1: no such source in this run \(sources are named src0, src1\.\.\. in the order given: src0\)$/],
      [['--zones', file('cls.yaml', 'units: pixels\nsources:\n  src0:\n    lines: [{name: l, from: [0, 0], to: [9, 9], classes: [person]}]\n')],
        /^ssd stream: .*cls\.yaml: sources\.src0\.lines\[0\]\.classes\[0\]: the model has no class "person"/],
      [['--webhook', 'http://127.0.0.1:9/x'], /^ssd stream: --webhook needs --zones/],
      [['--zones', bad, '--webhook', 'ftp://x/'], /^ssd stream: --webhook: scheme must be http:\/\/ or https:\/\//],
    ];
    for (const [args, re] of cases) {
      const r = ssd([...src, ...args]);
      expect(r.code, r.stderr).toBe(1);
      const errors = r.stderr.trim().split('\n').filter((l) => l.startsWith('ssd stream: '));
      expect(errors, r.stderr).toEqual([expect.stringMatching(re)]);
      expect(r.stderr).not.toMatch(/playing|provider/);
    }
  });
});

// `ssd stream --record DIR` from the command line with the shipped digits model on a moving test://
// source: a clip per event, complete and playable (gst-discoverer-1.0) after a normal end and after
// Ctrl-C; a bad DIR is one line and exit 1 before any source opens.
import type { ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { gstAvailable } from '../../runtime/stream/gst.js';
import { tempDir } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait.js';
import { MOSQUITTO, ROOT, freePort, runSsdStream, startBroker, stop, type StreamRun } from './helpers.js';
import { discover, discovererAvailable } from './discover.js';

const MODEL = join(ROOT, 'models', 'digits-ssd.onnx');
const SOURCE = 'test://ball?width=320&height=240&fps=30';
const runs: StreamRun[] = [];
const procs: ChildProcess[] = [];
afterAll(async () => {
  for (const r of runs) await stop(r.proc);
  for (const p of procs) await stop(p);
});


function clipsOf(run: StreamRun): Array<Record<string, unknown>> {
  return run.lines.filter((l) => l.type === 'clip');
}

function checkClip(clip: Record<string, unknown>, dir: string): void {
  const path = clip.path as string;
  expect(path.startsWith(join(dir, 'src0'))).toBe(true);
  expect(existsSync(path)).toBe(true);
  expect(existsSync(`${path}.part`)).toBe(false);
  const d = discover(path);
  expect(d.error).toBeUndefined();
  expect(d.codec).toMatch(/^H\.264/);
  expect(Math.abs(d.duration - (clip.duration_s as number))).toBeLessThan(0.2);
  expect(clip.complete).toBe(true);
}

describe.skipIf(!gstAvailable() || !discovererAvailable || !existsSync(MODEL))('ssd stream --record', () => {
  it('writes a playable clip of the detections and prints and publishes its record (normal end)', async () => {
    const dir = tempDir('ssd-record-cli-');
    const mqttArgs: string[] = [];
    const published: Array<Record<string, unknown>> = [];
    let sub: mqtt.MqttClient | undefined;
    if (existsSync(MOSQUITTO)) {
      const port = await freePort();
      procs.push(await startBroker(dir, port));
      sub = mqtt.connect(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 200 });
      sub.on('message', (_t, payload) => published.push(JSON.parse(payload.toString()) as Record<string, unknown>));
      await new Promise<void>((resolve, reject) => sub!.subscribe('rec-test/clips', { qos: 1 }, (err) => (err ? reject(err) : resolve())));
      mqttArgs.push('--mqtt', `mqtt://127.0.0.1:${port}`, '--topic', 'rec-test', '--qos', '1');
    }
    const run = runSsdStream([SOURCE, '--model', MODEL, '--record', dir, '--pre-roll', '1', '--post-roll', '1', '--max-frames', '120', ...mqttArgs]);
    runs.push(run);
    expect(await run.exited).toBe(0);
    const clips = clipsOf(run);
    if (sub) {
      await waitFor(() => published.length >= clips.length, 'the clip records on rec-test/clips');
      expect(published).toEqual(clips);
      sub.end(true);
    }
    expect(clips.length).toBeGreaterThanOrEqual(1);
    const frames = run.lines.filter((l) => l.type === undefined);
    expect(frames.length).toBe(120);
    const detected = frames.some((f) => (f.detections as unknown[]).length > 0);
    expect(detected).toBe(true);
    for (const c of clips) {
      expect(c).toMatchObject({ type: 'clip', source: 'src0', uri: SOURCE });
      expect(c.reason).toMatch(/^\d$/); // the digit that triggered it
      checkClip(c, dir);
    }
    expect(readdirSync(join(dir, 'src0')).sort()).toEqual(clips.map((c) => (c.path as string).slice(join(dir, 'src0').length + 1)).sort());
    expect(run.stderr()).toMatch(/\[src0\] clip .*\.mp4: \d+\.\d s, /);
  }, 600_000);

  it('finishes the open clip on Ctrl-C: complete and playable, exit 0', async () => {
    const dir = tempDir('ssd-record-cli-');
    // A long post-roll: the clip is still open when the signal comes.
    const run = runSsdStream([SOURCE, '--model', MODEL, '--record', dir, '--pre-roll', '1', '--post-roll', '600', '--http', `127.0.0.1:${await freePort()}`]);
    runs.push(run);
    await run.until(() => /\[src0\] clip \S+\.mp4: \d\n/.test(run.stderr()), 'a clip to start');
    await run.until((l) => l.length >= 30, 'frames while recording');
    run.proc.kill('SIGINT');
    expect(await run.exited).toBe(0);
    const clips = clipsOf(run);
    expect(clips.length).toBe(1);
    checkClip(clips[0]!, dir);
    expect(clips[0]!.duration_s as number).toBeGreaterThan(0.5);
    expect(run.stderr()).toMatch(/stream: \d+ frames in .* stopped/);
  }, 600_000);

  it('refuses a DIR that is a file with one line, before any source opens', async () => {
    const dir = tempDir('ssd-record-cli-');
    const file = join(dir, 'not-a-dir');
    writeFileSync(file, 'x');
    // An RTSP camera nobody serves: reaching the sources would show as a connection error instead.
    const run = runSsdStream([`rtsp://127.0.0.1:${await freePort()}/cam`, '--model', MODEL, '--record', file, '--connect-timeout', '600'], 600_000);
    runs.push(run);
    expect(await run.exited).toBe(1);
    expect(run.stderr().trim().split('\n').filter((l) => !/^device: /.test(l))).toEqual([`ssd stream: --record ${file}: not a directory`]);
    expect(run.lines).toEqual([]);
  }, 600_000);

  it('checks the record flags', async () => {
    const dir = tempDir('ssd-record-cli-');
    for (const [args, message] of [
      [['--pre-roll', '2'], 'ssd stream: --pre-roll needs --record'],
      [['--record', dir, '--post-roll=-1'], 'ssd stream: --post-roll must be a number'],
      [['--record', dir, '--record-classes', 'cat'], `ssd stream: --record-classes: cat not among the model's labels`],
    ] as const) {
      const run = runSsdStream([SOURCE, '--model', MODEL, ...args]);
      runs.push(run);
      expect(await run.exited).toBe(1);
      expect(run.stderr()).toContain(message);
      expect(run.stderr()).not.toMatch(/playing/);
    }
  }, 600_000);
});

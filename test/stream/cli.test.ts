// `ssd stream` as a user runs it: the demo, and the one-line errors with a non-zero exit (never a hang).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { DEMO_MODEL_PATH } from '../../runtime/stream/demo.js';
import { gstAvailable } from '../../runtime/stream/gst.js';
import { freePort, SSD_BIN, tinyModel, testVideo } from './helpers.js';
import { tempDir } from '../helpers/temp-dir.js';
import { WAIT_MS } from '../helpers/wait.js';

// The spawn timeout tells a hang from an exit (a killed run has no exit code); it is a bound, not a speed.
function ssd(args: string[], timeoutMs = WAIT_MS, env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [SSD_BIN, 'stream', ...args], { encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, lines: r.stdout.split('\n').filter(Boolean) };
}

function expectOneLineError(r: ReturnType<typeof ssd>, pattern: RegExp) {
  expect(r.code).not.toBe(0);
  expect(r.code).not.toBeNull(); // not killed by the time limit: it did not hang
  const errors = r.stderr.split('\n').filter((l) => l.startsWith('ssd stream: '));
  expect(errors).toHaveLength(1);
  expect(errors[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
}

// Runs take 1-3 s each idle and several times that at load 13: the per-test bound is generous.
describe('ssd stream', { timeout: 5 * WAIT_MS }, () => {
  const dir = tempDir('ssd-stream-');
  const model = tinyModel(dir);

  it('no source: the built-in demo prints one JSON line per frame and serves the live page', async () => {
    const port = await freePort();
    const r = ssd(['--model', model, '--max-frames', '12', '--http', `127.0.0.1:${port}`, '--threshold', '0.9']);
    expect(r.code).toBe(0);
    expect(r.lines).toHaveLength(12);
    const recs = r.lines.map((l) => JSON.parse(l) as { source: string; uri: string; frame: number; width: number; height: number; detections: Array<{ label: string; box: number[] }> });
    expect(recs.map((x) => x.frame)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect(recs[0]).toMatchObject({ source: 'src0', uri: 'demo://digits', width: 256, height: 256 });
    for (const d of recs.flatMap((x) => x.detections)) expect('0123456789').toContain(d.label);
    expect(r.stderr).toContain(`live page: http://127.0.0.1:${port}/`);
    expect(r.stderr).toMatch(/stream: 12 frames in .*max-frames/);
  });

  it.skipIf(!existsSync(DEMO_MODEL_PATH))('no source, no model: the shipped digits model finds the demo\'s digits', () => {
    const r = ssd(['--max-frames', '30', '--http', '127.0.0.1:0']);
    expect(r.code).toBe(0);
    expect(r.stderr).not.toContain('UNTRAINED');
    const recs = r.lines.map((l) => JSON.parse(l) as { detections: Array<{ label: string; score: number; box: number[] }> });
    expect(recs).toHaveLength(30);
    // The window always shows digits: nearly every frame has confident ones, inside the frame.
    expect(recs.filter((x) => x.detections.some((d) => d.score >= 0.8)).length).toBeGreaterThanOrEqual(24);
    for (const d of recs.flatMap((x) => x.detections)) {
      expect('0123456789').toContain(d.label);
      expect(d.box[0]! >= 0 && d.box[2]! <= 256 && d.box[1]! >= 0 && d.box[3]! <= 256).toBe(true);
    }
  });

  it.skipIf(!gstAvailable())('a file: every frame, boxes in the file\'s pixels, clean exit at its end', () => {
    const clip = testVideo(dir, 20, 256, 144);
    const r = ssd([clip, '--model', model, '--threshold', '0.3', '--connect-timeout', '120']);
    expect(r.code).toBe(0);
    expect(r.lines).toHaveLength(20);
    const recs = r.lines.map((l) => JSON.parse(l) as { width: number; height: number; pts: number; detections: Array<{ box: number[] }> });
    expect(recs.every((x) => x.width === 256 && x.height === 144)).toBe(true);
    for (const d of recs.flatMap((x) => x.detections)) expect(d.box[2]! <= 256 && d.box[3]! <= 144).toBe(true);
    expect(r.stderr).toContain('end of file');
  });

  it('bad flags, URIs and models: one line, non-zero', () => {
    expectOneLineError(ssd(['--threshold', '2']), /--threshold must be a number in \[0, 1\], got "2"/);
    expectOneLineError(ssd(['--bogus']), /^ssd stream: unknown flag --bogus \(see "ssd stream --help"\)$/);
    expectOneLineError(ssd(['--max-frame', '3']), /unknown flag --max-frame \(did you mean --max-frames\?\)$/);
    expectOneLineError(ssd(['--qos', '1']), /--qos needs --mqtt/);
    expectOneLineError(ssd(['--mqtt', 'http://x', '--model', model]), /--mqtt: scheme must be mqtt/);
    expectOneLineError(ssd(['ftp://cam/x', '--model', model]), /unknown scheme "ftp:\/\/"/);
    expectOneLineError(ssd(['/nonexistent/clip.mp4', '--model', model]), /clip\.mp4: file not found/);
    expectOneLineError(ssd(['test://', '--model', '/nonexistent/m.onnx']), /m\.onnx/);
    expectOneLineError(ssd(['test://']), /--model is required with a source/);
    expectOneLineError(ssd(['test://', '--model', model, '--http', '0.0.0.0:0']), /reachable from other machines: give --token/);
    expectOneLineError(ssd(['--device', 'no-such-board', '--model', model]), /unknown device profile "no-such-board"/);
  });

  it('--http and --mqtt are checked before the model loads and before any source opens', async () => {
    // An RTSP camera nobody serves, given the longest connect timeout: had the source been opened
    // first, the run would wait for it (or its refusal) before reporting the flag.
    const camera = `rtsp://127.0.0.1:${await freePort()}/cam`;
    const early = (extra: string[], pattern: RegExp) => {
      const r = ssd([camera, '--model', model, '--connect-timeout', '600', ...extra]);
      expectOneLineError(r, pattern);
      expect(r.stderr).not.toMatch(/\[src0\]|cannot open|onnxruntime/);
    };
    early(['--http', 'localhost'], /--http: expected HOST:PORT \(e\.g\. 127\.0\.0\.1:8080\), got "localhost"/);
    early(['--http', '[::]:8080'], /^ssd stream: --http \[::\]:8080 is reachable from other machines: give --token/);
    early(['--http', '0.0.0.0:8080'], /--http 0\.0\.0\.0:8080 is reachable from other machines/);
    early(['--mqtt', 'mqtt://'], /--mqtt: /);
    early(['--mqtt', 'http://broker'], /--mqtt: scheme must be mqtt/);
    early(['--mqtt', 'mqtt://broker', '--topic', 'a/#'], /--topic: "a\/#" is not a publish topic/);
    // Before the model too: a missing model is not what gets reported.
    expectOneLineError(ssd(['test://', '--model', '/nonexistent/m.onnx', '--mqtt', 'http://broker']), /--mqtt: scheme must be mqtt/);

    // A port in use: the live page binds before the sources open, so the run ends on the bind.
    const busy = createServer();
    await new Promise<void>((res) => busy.listen(0, '127.0.0.1', res));
    try {
      const port = (busy.address() as AddressInfo).port;
      const r = ssd([camera, '--model', model, '--connect-timeout', '600', '--http', `127.0.0.1:${port}`]);
      expectOneLineError(r, new RegExp(`--http 127\\.0\\.0\\.1:${port}: cannot listen \\(EADDRINUSE\\)`));
      expect(r.stderr).not.toMatch(/\[src0\]|cannot open/);
    } finally {
      await new Promise((res) => busy.close(res));
    }
  });

  it('too many sources for an explicit UV_THREADPOOL_SIZE is refused up front, with the fix', () => {
    // Without the variable, bin/ssd.js sizes the pool from the command line (test/stream/many-sources.test.ts).
    const many = Array.from({ length: 7 }, () => 'test://');
    expectOneLineError(ssd([...many, '--model', model], WAIT_MS, { UV_THREADPOOL_SIZE: '16' }), /7 sources need 18 libuv threads but UV_THREADPOOL_SIZE is 16: run with UV_THREADPOOL_SIZE=18/);
  });

  it.skipIf(!gstAvailable())('an unreachable RTSP camera: one line, non-zero, on the refusal (no waiting out a timeout)', async () => {
    const port = await freePort();
    // With the longest --connect-timeout, an error that ends the run can only come from the refusal.
    const r = ssd([`rtsp://admin:hunter2@127.0.0.1:${port}/cam`, '--model', model, '--connect-timeout', '600']);
    expectOneLineError(r, /source rtsp:\/\/admin:\*\*\*@127\.0\.0\.1:\d+\/cam: cannot open: /);
    expect(r.stderr).not.toMatch(/no frame within/);
    expect(r.stderr).not.toContain('hunter2');
  });
});

// ssd stream against a real RTSP server (GstRtspServer, H.264) on 127.0.0.1: frames arrive; the server
// is killed and restarted mid-stream and detections resume in the same ssd stream process.
import type { ChildProcess } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { gstAvailable } from '../../runtime/stream/gst.js';
import { freePort, runSsdStream, startRtspServer, stop, tinyModel, type StreamRun } from './helpers.js';
import { tempDir } from '../helpers/temp-dir.js';

const running: Array<ChildProcess | undefined> = [];
afterAll(async () => { for (const p of running) await stop(p); });

describe.skipIf(!gstAvailable())('RTSP camera', () => {
  it('streams detections, survives the server going down and back up, counts the reconnect in /metrics', async () => {
    const model = tinyModel(tempDir('ssd-stream-'));
    const port = await freePort();
    const httpPort = await freePort();
    // Server lifetimes and the stream's limit are hang bounds; every step below waits for output.
    let server = await startRtspServer(port, 600);
    running.push(server.proc);
    const run: StreamRun = runSsdStream([server.url, '--model', model, '--threshold', '0.2', '--http', `127.0.0.1:${httpPort}`, '--connect-timeout', '120']);
    running.push(run.proc);
    await run.until((l) => l.length >= 15, '15 frames');

    const first = run.lines[0]!;
    expect(first).toMatchObject({ source: 'src0', uri: server.url, frame: 1, width: 320, height: 240 });
    for (const rec of run.lines) {
      expect(rec.wall as number).toBeGreaterThanOrEqual(rec.ts as number);
      expect(rec.latency_ms as number).toBeGreaterThan(0);
      for (const d of rec.detections as Array<{ box: number[]; score: number }>) {
        expect(d.score).toBeGreaterThanOrEqual(0.2);
        const [x1, y1, x2, y2] = d.box as [number, number, number, number];
        expect(0 <= x1 && x1 <= x2 && x2 <= 320 && 0 <= y1 && y1 <= y2 && y2 <= 240).toBe(true);
      }
    }
    // Frames are newest-first from a 30 fps camera: timestamps increase.
    const ts = run.lines.map((r) => r.ts as number);
    expect(ts.every((t, i) => i === 0 || t > ts[i - 1]!)).toBe(true);

    await stop(server.proc);
    const downAt = Date.now();
    await run.until(() => /reconnecting in \d+\.\d s \(attempt 1\)/.test(run.stderr()), 'the reconnect log line');
    const health = await fetch(`http://127.0.0.1:${httpPort}/healthz`);
    expect(health.status).toBe(503);
    expect(((await health.json()) as { sources: Array<{ state: string }> }).sources[0]!.state).toBe('reconnecting');

    server = await startRtspServer(port, 600);
    running.push(server.proc);
    const before = run.lines.length;
    await run.until((l) => l.length >= before + 10 && (l[l.length - 1]!.ts as number) > downAt, 'frames after the restart');
    expect(run.stderr()).toMatch(/src0\] rtsp:\/\/127\.0\.0\.1:\d+\/test: reconnected/);
    const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    expect(metrics).toContain('ssd_reconnects_total{source="src0"} 1');
    expect(metrics).toMatch(/ssd_frames_total\{source="src0"\} \d+/);

    run.proc.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    expect(run.stderr()).toMatch(/stream: \d+ frames in .* stopped/);
  }, 900_000); // ~5 s idle; the bound ends a hang only
});

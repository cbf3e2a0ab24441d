/**
 * Stream benchmarks (docs/stream.md):
 *  1. pipeline fps / bare session.run fps, SSD300 (random init from the exporter), a 300x300 live
 *     test source (model size, so nothing is scaled) through the whole stream path.
 *  2. glass-to-detection latency with a 30 fps camera (clock-camera.ts over RTP/H.264): glass = the
 *     time written into the frame's pixels when it was made; detection = when its boxes are ready.
 *   npx tsx test/stream/bench/stream-bench.ts [--model ssd300|ssd-tiny] [--frames 60] [--rounds 3] [--seconds 20] [--rtsp-latencies 200,50,0]
 */
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { specByName } from '../../../core/specs.js';
import { buildOnnxModel } from '../../../export/build.js';
import { Detector } from '../../../runtime/detector.js';
import { CPU_GST } from '../../../runtime/stream/pipelines.js';
import { runScheduler } from '../../../runtime/stream/scheduler.js';
import { GstFrameSource } from '../../../runtime/stream/source.js';
import { parseSourceUri } from '../../../runtime/stream/uri.js';
import { freePort, ROOT, startRtspServer } from '../helpers.js';
import { readClock, unwrapClock } from './clock-camera.js';

const arg = (name: string, d: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : d;
};
const modelName = arg('model', 'ssd300');
const frames = Number(arg('frames', '60'));
const seconds = Number(arg('seconds', '20'));
const log = (l: string) => process.stderr.write(`${l}\n`);

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

async function main(): Promise<void> {
  const modelPath = join(tmpdir(), `ssd-stream-bench-${modelName}.onnx`);
  if (!existsSync(modelPath)) writeFileSync(modelPath, buildOnnxModel({ spec: specByName(modelName), seed: 1 }));
  const detector = await Detector.load(modelPath, { device: 'cpu', log });
  const S = detector.inputSize;
  const format = detector.metadata.spec.input.channelOrder;

  // 1. Bare session.run (the same detector, an empty prepared tensor, back to back) and the stream
  //    path (GStreamer source at model size -> scheduler -> detector -> results), in alternating
  //    rounds so that a machine whose load drifts (shared CPU) weighs on both alike.
  const rounds = Number(arg('rounds', '3'));
  const perRound = Math.max(4, Math.round(frames / rounds));
  const prepared = detector.emptyPrepared();
  for (let i = 0; i < 2; i++) await detector.run(prepared);
  const inferMs: number[] = [];
  let bareFrames = 0;
  let bareSeconds = 0;
  let pipeFrames = 0;
  let pipeSeconds = 0;
  const pipeInferMs: number[] = [];
  const src = new GstFrameSource('src0', parseSourceUri(`test://ball?width=${S}&height=${S}&fps=30`), { gst: CPU_GST, format, width: S, height: S, log });
  await src.start();
  for (let round = 0; round < rounds; round++) {
    const t0 = performance.now();
    for (let i = 0; i < perRound; i++) inferMs.push((await detector.run(prepared)).inferMs);
    bareSeconds += (performance.now() - t0) / 1000;
    bareFrames += perRound;
    const done: number[] = [];
    const roundInfer: number[] = [];
    // One extra frame: the interval is measured from the first result to the last.
    await runScheduler({ sources: [src], detector, maxFrames: perRound + 1, onResult: (r) => { done.push(performance.now()); roundInfer.push(r.inferMs); } });
    pipeSeconds += (done[done.length - 1]! - done[0]!) / 1000;
    pipeInferMs.push(...roundInfer.slice(1));
    pipeFrames += done.length - 1;
  }
  src.close();
  const bareFps = bareFrames / bareSeconds;
  const pipeFps = pipeFrames / pipeSeconds;

  // 2. Glass to detection with a 30 fps 320x240 H.264 camera in another process, scaled to the model
  //    input in the pipeline as `ssd stream` does: as raw RTP over UDP, and re-served by an RTSP
  //    server (test/stream/fixtures/rtsp-server.py --relay-udp) through `ssd stream`'s own rtspsrc
  //    pipeline at several jitter-buffer latencies.
  const latency: Array<{ name: string; glassToOut: number[]; glassToDet: number[]; excess: number[]; skipped: number }> = [];
  const measure = async (name: string, make: (camPort: number) => Promise<{ source: GstFrameSource; stop: () => void }>) => {
    const camPort = await freePort();
    const cam = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'test/stream/bench/clock-camera.ts'), String(camPort), '--fps', '30', '--width', '320', '--height', '240', '--seconds', String(seconds + 20)], { stdio: 'inherit', cwd: ROOT });
    const m = { name, glassToOut: [] as number[], glassToDet: [] as number[], excess: [] as number[], skipped: 0 };
    const { source, stop } = await make(camPort);
    await source.start();
    const ac = new AbortController();
    setTimeout(() => ac.abort(), seconds * 1000);
    await runScheduler({
      sources: [source], detector, signal: ac.signal,
      onResult: (r) => {
        // Frames whose clock does not read back (e.g. before the first key frame) are skipped.
        const glass = unwrapClock(readClock(r.frame.data, r.frame.stride ?? S * 3, S / 320, S / 240), r.frame.captureMs);
        if (!(glass <= r.frame.captureMs && r.frame.captureMs - glass < 5000)) { m.skipped++; return; }
        m.glassToOut.push(r.frame.captureMs - glass);
        m.glassToDet.push(r.doneMs - glass);
        // Everything but this frame's own inference: the goal is at most one frame interval.
        m.excess.push(r.doneMs - glass - r.inferMs);
      },
    });
    source.close();
    stop();
    cam.kill('SIGTERM');
    latency.push(m);
  };
  await measure('RTP/UDP (rtp://)', async (camPort) => ({
    source: new GstFrameSource('cam', parseSourceUri(`rtp://127.0.0.1:${camPort}`), { gst: CPU_GST, format, width: S, height: S, log, connectTimeoutMs: 20_000 }),
    stop: () => {},
  }));
  for (const rtspLatencyMs of (arg('rtsp-latencies', '200,50,0')).split(',').map(Number)) {
    await measure(`RTSP, --rtsp-latency ${rtspLatencyMs}`, async (camPort) => {
      const port = await freePort();
      const server = await startRtspServer(port, seconds + 20, ['--relay-udp', String(camPort)]);
      return {
        source: new GstFrameSource('cam', parseSourceUri(server.url), { gst: CPU_GST, format, width: S, height: S, rtspLatencyMs, log, connectTimeoutMs: 20_000 }),
        stop: () => server.proc.kill('SIGKILL'),
      };
    });
  }
  await detector.dispose();

  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const inferMean = mean(inferMs);
  const interval = 1000 / 30;
  const row = (k: string, v: string) => `| ${k} | ${v} |`;
  const stats = (xs: number[]) => `${mean(xs).toFixed(1)}, ${percentile(xs, 50).toFixed(1)}, ${percentile(xs, 90).toFixed(1)}`;
  console.log([
    `Model ${modelName} (${S}x${S}, random init), onnxruntime CPU, ${detector.thread} thread, ${new Date().toISOString()}, load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}`,
    '',
    '| measure | value |',
    '| --- | --- |',
    row('bare session.run fps', bareFps.toFixed(2)),
    row('stream pipeline fps (test source at model size)', pipeFps.toFixed(2)),
    row('pipeline / bare', (pipeFps / bareFps).toFixed(3)),
    row('session.run ms, bare (mean, p50, p90)', stats(inferMs)),
    row('session.run ms, inside the stream (mean)', mean(pipeInferMs).toFixed(1)),
    row('stream time per frame outside session.run ms (mean)', ((pipeSeconds * 1000) / pipeFrames - mean(pipeInferMs)).toFixed(1)),
    '',
    '| 30 fps camera | frames | glass to detection ms (mean, p50, p90) | glass to appsink ms (mean, p50, p90) | minus its own session.run ms (mean, p50, p90) | within one inference + one frame interval |',
    '| --- | --- | --- | --- | --- | --- |',
    ...latency.map((m) => `| ${m.name} | ${m.glassToDet.length} (${m.skipped} skipped) | ${stats(m.glassToDet)} | ${stats(m.glassToOut)} | ${stats(m.excess)} | ${((m.excess.filter((x) => x <= interval).length / m.excess.length) * 100).toFixed(0)}% |`),
  ].join('\n'));
  void inferMean;
  process.exit(0);
}

void main();

/**
 * Stream benchmarks (docs/stream.md):
 *  1. pipeline fps / bare session.run fps, SSD300 (random init from the exporter), a 300x300 live
 *     test source (model size, so nothing is scaled) through the whole stream path.
 *  2. glass-to-detection latency with a 30 fps camera (clock-camera.ts over RTP/H.264): glass = the
 *     time written into the frame's pixels when it was made; detection = when its boxes are ready.
 *   npx tsx test/stream/bench/stream-bench.ts [--model ssd300|ssd-tiny] [--frames 60] [--rounds 3] [--seconds 20]
 */
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { specByName } from '../../../core/specs.js';
import { buildOnnxModel } from '../../../export/build.js';
import { Detector } from '../../../runtime/detector.js';
import { CPU_GST } from '../../../runtime/stream/pipelines.js';
import { runScheduler } from '../../../runtime/stream/scheduler.js';
import { GstFrameSource } from '../../../runtime/stream/source.js';
import { parsePipelineSource, parseSourceUri } from '../../../runtime/stream/uri.js';
import { freePort, ROOT } from '../helpers.js';
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

  // 2. Glass to detection with a 30 fps 320x240 RTP/H.264 camera in another process, scaled to the
  //    model input in the pipeline as `ssd stream` does.
  const port = await freePort();
  const cam = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'test/stream/bench/clock-camera.ts'), String(port), '--fps', '30', '--width', '320', '--height', '240', '--seconds', String(seconds + 15)], { stdio: 'inherit', cwd: ROOT });
  const launch = `udpsrc port=${port} address=127.0.0.1 caps="application/x-rtp,media=video,encoding-name=H264,payload=96,clock-rate=90000" ! rtph264depay ! h264parse ! avdec_h264 ! videoconvert ! videoscale ! video/x-raw,format=${format.toUpperCase()},width=${S},height=${S} ! appsink`;
  const rtp = new GstFrameSource('cam', parsePipelineSource(launch), { gst: CPU_GST, format, log, connectTimeoutMs: 20_000 });
  await rtp.start();
  const glassToOut: number[] = [];
  const glassToDet: number[] = [];
  const excess: number[] = [];
  const ac = new AbortController();
  setTimeout(() => ac.abort(), seconds * 1000);
  let skipped = 0;
  await runScheduler({
    sources: [rtp], detector, signal: ac.signal,
    onResult: (r) => {
      // The first frames after a key frame request can be grey: skip frames whose clock is implausible.
      const glass = unwrapClock(readClock(r.frame.data, r.frame.stride ?? S * 3, S / 320, S / 240), r.frame.captureMs);
      if (!(glass <= r.frame.captureMs && r.frame.captureMs - glass < 5000)) { skipped++; return; }
      glassToOut.push(r.frame.captureMs - glass);
      glassToDet.push(r.doneMs - glass);
      // Everything but this frame's own inference: the goal is at most one frame interval.
      excess.push(r.doneMs - glass - r.inferMs);
    },
  });
  rtp.close();
  cam.kill('SIGTERM');
  await detector.dispose();

  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const inferMean = mean(inferMs);
  const interval = 1000 / 30;
  const row = (k: string, v: string) => `| ${k} | ${v} |`;
  console.log([
    `Model ${modelName} (${S}x${S}, random init), onnxruntime CPU, ${detector.thread} thread, ${new Date().toISOString()}`,
    '',
    '| measure | value |',
    '| --- | --- |',
    row('bare session.run fps', bareFps.toFixed(2)),
    row('stream pipeline fps (test source at model size)', pipeFps.toFixed(2)),
    row('pipeline / bare', (pipeFps / bareFps).toFixed(3)),
    row('session.run ms, bare (mean, p50, p90)', `${inferMean.toFixed(1)}, ${percentile(inferMs, 50).toFixed(1)}, ${percentile(inferMs, 90).toFixed(1)}`),
    row('session.run ms, inside the stream (mean)', mean(pipeInferMs).toFixed(1)),
    row('stream time per frame outside session.run ms (mean)', ((pipeSeconds * 1000) / pipeFrames - mean(pipeInferMs)).toFixed(1)),
    row(`glass to detection ms, 30 fps camera, ${glassToDet.length} frames (mean, p50, p90, max)`, `${mean(glassToDet).toFixed(1)}, ${percentile(glassToDet, 50).toFixed(1)}, ${percentile(glassToDet, 90).toFixed(1)}, ${Math.max(...glassToDet).toFixed(1)}`),
    row('of which glass to appsink exit ms (mean, p50)', `${mean(glassToOut).toFixed(1)}, ${percentile(glassToOut, 50).toFixed(1)}`),
    row('glass to detection minus the frame\'s own session.run ms (mean, p50, p90)', `${mean(excess).toFixed(1)}, ${percentile(excess, 50).toFixed(1)}, ${percentile(excess, 90).toFixed(1)}`),
    row('frames within one inference + one frame interval (33.3 ms)', `${((excess.filter((x) => x <= interval).length / excess.length) * 100).toFixed(0)}%`),
    row('frames skipped (clock unreadable)', String(skipped)),
  ].join('\n'));
  process.exit(0);
}

void main();

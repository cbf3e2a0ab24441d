/**
 * `ssd bench MODEL`: how fast a model runs alone (bare session.run on a ready tensor) and inside the
 * full pipeline (decode/resize -> tensor -> run -> decode + NMS -> boxes in pixels), measured in the
 * same process in alternating rounds, so that a busy machine slows both alike and the ratio stays
 * meaningful. The pipeline overlaps preparing frame i+1 and postprocessing frame i-1 with the
 * inference of frame i, as `ssd stream` does; a ratio near 1 means pre/postprocessing is hidden.
 */
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { SsdError, oneLine } from '../core/errors.js';
import { Detector, type LoadOptions, type Prepared, type RawOutputs } from './detector.js';
import { jpegDecoder, type ImageInput, type RawFrame } from './preprocess.js';

export interface ModelBenchOptions extends Pick<LoadOptions, 'device' | 'threads' | 'graphOptimization' | 'thread' | 'log' | 'spinWait'> {
  /** Frames timed in each of the two modes (default 40). */
  frames?: number;
  /**
   * Rounds the frames are split into, alternating modes (default: one per 5 frames). Short rounds
   * make both modes see the same machine load; each pipeline round pays one unoverlapped prepare.
   */
  rounds?: number;
  /** An image file to decode for every frame; default a synthetic 640x480 JPEG. */
  image?: string;
  /** Feed raw 640x480 RGB frames (the stream path, no sharp) instead of encoded images. */
  raw?: boolean;
  /** Decode `image` with shrink-on-load (LoadOptions.shrinkOnLoad; the file is then read every frame). */
  shrinkOnLoad?: boolean;
  /** Score threshold of the postprocessing (default 0.5, as `ssd detect` and `ssd stream`). */
  threshold?: number;
  /** Called after each round with the frames done so far (progress display). */
  onProgress?: (done: number, total: number) => void;
}

export interface StageStats {
  p50: number;
  p95: number;
  mean: number;
}

export interface ModelBenchResult {
  model: string;
  spec: string;
  input_size: number;
  input_layout: string;
  postprocess: string;
  provider: string;
  thread: 'worker' | 'main';
  threads: number | 'default';
  frames: number;
  source: string;
  /** Bare session.run on a ready tensor, frames per second. */
  session_fps: number;
  /** Full pipeline (with overlap), frames per second. */
  pipeline_fps: number;
  /** pipeline_fps / session_fps. */
  ratio: number;
  /** Per-frame stage latencies in the pipeline, milliseconds. */
  preprocess_ms: StageStats;
  inference_ms: StageStats;
  postprocess_ms: StageStats;
  /** session.run latency in the bare loop, milliseconds. */
  session_run_ms: StageStats;
}

export function stats(values: readonly number[]): StageStats {
  if (values.length === 0) return { p50: 0, p95: 0, mean: 0 };
  const s = [...values].sort((a, b) => a - b);
  // Nearest-rank percentiles: p-th percentile = value at rank ceil(p/100 * n).
  const at = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
  return { p50: at(50), p95: at(95), mean: s.reduce((a, b) => a + b, 0) / s.length };
}

/** A 640x480 JPEG with some structure (gradients and blocks), so that decoding costs what a photo's would. */
export async function syntheticJpeg(width = 640, height = 480): Promise<Buffer> {
  const rgb = syntheticRgb(width, height);
  return sharp(rgb, { raw: { width, height, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
}

export function syntheticRgb(width = 640, height = 480): Uint8Array {
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      const block = ((x >> 6) + (y >> 6)) & 1;
      rgb[i] = (x * 255) / width;
      rgb[i + 1] = (y * 255) / height;
      rgb[i + 2] = block ? 200 : (x ^ y) & 255;
    }
  }
  return rgb;
}

async function frameSource(o: ModelBenchOptions): Promise<{ next: () => ImageInput; name: string }> {
  if (o.raw) {
    const data = syntheticRgb();
    // Each frame gets its own buffer, as appsink delivers.
    return { next: (): RawFrame => ({ data: data.slice(), width: 640, height: 480, format: 'rgb' }), name: 'raw RGB 640x480 frames (no sharp)' };
  }
  if (o.image) {
    let bytes: Buffer;
    try {
      bytes = await readFile(o.image);
    } catch (err) {
      throw new SsdError(`--image ${o.image}: cannot read (${oneLine(err)})`, { cause: err });
    }
    const meta = await sharp(bytes).metadata().catch((err: unknown) => { throw new SsdError(`--image ${o.image}: cannot decode (${oneLine(err)})`, { cause: err }); });
    // libjpeg shrinks on load only from a file name, so with shrinkOnLoad the path goes every frame.
    if (o.shrinkOnLoad) return { next: () => o.image!, name: `${o.image} (${meta.format} ${meta.width}x${meta.height}), read and decoded with shrink-on-load every frame` };
    return { next: () => bytes, name: `${o.image} (${meta.format} ${meta.width}x${meta.height}), decoded every frame${meta.format === 'jpeg' ? ` (plain JPEGs: ${jpegDecoder().name})` : ''}` };
  }
  const jpeg = await syntheticJpeg();
  return { next: () => jpeg, name: `synthetic 640x480 JPEG, decoded every frame (${jpegDecoder().name})` };
}

/** Untimed pipeline frames before the first round. */
const PIPELINE_WARMUP_FRAMES = 10;

export async function benchModel(modelPath: string, o: ModelBenchOptions = {}): Promise<ModelBenchResult> {
  const frames = Math.max(1, Math.floor(o.frames ?? 40));
  const rounds = Math.max(1, Math.min(frames, Math.floor(o.rounds ?? Math.ceil(frames / 5))));
  const threshold = o.threshold ?? 0.5;
  const source = await frameSource(o);
  const d = await Detector.load(modelPath, { device: o.device, threads: o.threads, graphOptimization: o.graphOptimization, thread: o.thread, log: o.log, spinWait: o.spinWait, shrinkOnLoad: o.shrinkOnLoad });
  const pre: number[] = [];
  const inf: number[] = [];
  const post: number[] = [];
  const bare: number[] = [];
  let sessionMs = 0;
  let pipelineMs = 0;
  let thread: 'worker' | 'main' = o.thread ?? 'worker';
  try {
    // The tensor of a real frame, for the bare loop.
    const ready = await d.prepare(source.next());
    // The session was warmed up at load; the pipeline's JavaScript (decode call, resize, NMS) is
    // warmed up here, untimed, as it is in a stream that has run a few frames: measured cold, the
    // first rounds ran it unoptimised and a 20-frame int8 run lost ~5% of its ratio to that.
    await pipeline(d, await d.prepare(source.next()), source.next, PIPELINE_WARMUP_FRAMES, threshold, [], [], []);
    let done = 0;
    for (let r = 0; r < rounds; r++) {
      const n = Math.floor(frames / rounds) + (r < frames % rounds ? 1 : 0);
      let t0 = performance.now();
      for (let i = 0; i < n; i++) bare.push((await d.run(ready)).inferMs);
      sessionMs += performance.now() - t0;

      // A running stream always has its next frame prepared; so does each pipeline round when its
      // clock starts (its decode is counted in preprocess_ms, not in the round's time). Without this,
      // every round of 5 frames paid one decode with the inference thread idle: a 5-10% penalty on
      // an int8 SSD300 that no stream or `ssd detect` over a directory pays.
      const first = await d.prepare(source.next());
      t0 = performance.now();
      await pipeline(d, first, source.next, n, threshold, pre, inf, post);
      pipelineMs += performance.now() - t0;
      done += n;
      o.onProgress?.(done, frames);
    }
    thread = d.thread;
  } finally {
    await d.dispose();
  }
  const sessionFps = (frames * 1000) / sessionMs;
  const pipelineFps = (frames * 1000) / pipelineMs;
  const m = d.metadata;
  return {
    model: modelPath, spec: m.spec.name, input_size: m.spec.inputSize, input_layout: m.inputLayout, postprocess: m.postprocess,
    provider: d.provider, thread, threads: d.threads, frames, source: source.name,
    session_fps: sessionFps, pipeline_fps: pipelineFps, ratio: pipelineFps / sessionFps,
    preprocess_ms: stats(pre), inference_ms: stats(inf), postprocess_ms: stats(post), session_run_ms: stats(bare),
  };
}

/**
 * n frames through the detector, as a stream runs them: frame i+1 is submitted to the inference
 * thread while frame i is still being inferred (so that thread never waits for this one), and while
 * it runs, this thread postprocesses frame i and prepares frame i+2.
 */
async function pipeline(d: Detector, first: Prepared, next: () => ImageInput, n: number, threshold: number, pre: number[], inf: number[], post: number[]): Promise<void> {
  type InFlight = Promise<{ raw: RawOutputs; prepared: Prepared }>;
  const inFlight: InFlight[] = [];
  const finish = async (p: InFlight) => {
    const { raw, prepared } = await p;
    inf.push(raw.inferMs);
    const t = performance.now();
    d.finish(raw, prepared, { threshold });
    post.push(performance.now() - t);
  };
  let preparing: Promise<Prepared> | undefined = Promise.resolve(first);
  for (let i = 0; i < n; i++) {
    const prepared: Prepared = await preparing!;
    pre.push(prepared.prepareMs);
    const ran = d.run(prepared).then((raw) => ({ raw, prepared }));
    ran.catch(() => undefined); // a failure surfaces where it is awaited, in order
    inFlight.push(ran);
    preparing = i + 1 < n ? d.prepare(next()) : undefined;
    if (inFlight.length >= 2) await finish(inFlight.shift()!);
  }
  while (inFlight.length) await finish(inFlight.shift()!);
}

const f1 = (v: number) => v.toFixed(1);

export function formatModelBench(r: ModelBenchResult): string {
  const row = (name: string, s: StageStats) => `  ${name.padEnd(22)} ${f1(s.p50).padStart(8)} ${f1(s.p95).padStart(8)} ${f1(s.mean).padStart(8)}`;
  return [
    `model ${r.model}: ${r.spec} ${r.input_size}x${r.input_size}, input ${r.input_layout}, postprocess in graph: ${r.postprocess}`,
    `provider ${r.provider} (${r.thread} thread, threads ${r.threads}); ${r.frames} frames per mode; source: ${r.source}`,
    '',
    `  ${'stage (ms)'.padEnd(22)} ${'p50'.padStart(8)} ${'p95'.padStart(8)} ${'mean'.padStart(8)}`,
    row('preprocess', r.preprocess_ms),
    row('inference', r.inference_ms),
    row('postprocess', r.postprocess_ms),
    row('bare session.run', r.session_run_ms),
    '',
    `  session   ${f1(r.session_fps).padStart(7)} fps  (bare session.run, tensor ready)`,
    `  pipeline  ${f1(r.pipeline_fps).padStart(7)} fps  (decode + preprocess + run + decode/NMS, overlapped)`,
    `  ratio     ${r.ratio.toFixed(3).padStart(7)}`,
  ].join('\n');
}

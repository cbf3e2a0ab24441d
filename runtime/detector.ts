/**
 * The runtime's public entry: an SSD exported to ONNX, run with onnxruntime-node.
 *
 *   const d = await Detector.load('model.onnx', { device: 'orin-nano' });
 *   const dets = await d.detect('photo.jpg', { threshold: 0.5 });   // [{ label, classId, score, box }]
 *   await d.dispose();
 *
 * Everything about the model (input size and layout, mean, channel order, default boxes, labels, what
 * postprocessing the graph already does) comes from its ONNX metadata_props, so a model file is all
 * the runtime needs. Models that end in raw heads or in decoded boxes get the core's decode + NMS;
 * models with NMS in the graph are read as they are.
 *
 * Streams use the three stages separately so that the next frame is prepared while the current one
 * is inferred (see `prepare`, `run`, `finish`): onnxruntime runs the graph off the JS thread, so
 * awaiting `run(a)` after starting `prepare(b)` overlaps them.
 */
import { SsdError, oneLine } from '../core/errors.js';
import { defaultBoxes } from '../core/default-boxes.js';
import { inputTensor, OUTPUTS, outputNames, outputTensorList, type DetectionPixelsXYXY } from '../core/model-contract.js';
import type { ModelMetadata } from '../core/model-metadata.js';
import { multiclassNms, type Detections } from '../core/nms.js';
import { postprocess as corePostprocess } from '../core/postprocess.js';
import { numClasses, numDefaultBoxes } from '../core/specs.js';
import { detectDevice } from '../devices/detect.js';
import { getProfile, providersFor } from '../devices/profiles.js';
import type { DeviceProfile, ExecutionProviderName, ProviderSpec } from '../devices/types.js';
import { readModelMetadata } from './onnx-metadata.js';
import {
  allocTensor, decodeImage, describeInput, elementsPerImage, isRawFrame, jpegDecoder, toOriginalPixels, writeFrameTensor,
  type Geometry, type ImageInput, type ResizeMode, type TensorData, type TensorTarget,
} from './preprocess.js';
import type { InferenceBackend, TensorArray, TensorLike, TensorType } from './inference-thread.js';
import { openSession, resolveThreads, type GraphOptimizationLevel, type SessionPhase, type SkippedProvider } from './session.js';

export type { ImageInput, RawFrame, ResizeMode, Geometry } from './preprocess.js';
export type { GraphOptimizationLevel } from './session.js';

export interface LoadOptions {
  /** A device profile or its name (see `ssd devices`); its providers and thread count are used. */
  device?: string | DeviceProfile;
  /** Providers to try in order (overrides the profile's); CPU is always the last resort. */
  providers?: ReadonlyArray<ProviderSpec | ExecutionProviderName>;
  /** onnxruntime intra-op threads (default: the profile's, else one per core of this machine). */
  threads?: number;
  graphOptimization?: GraphOptimizationLevel;
  /** How images are fitted to the square input: 'warp' (as SSD trains, default) or 'letterbox'. */
  resize?: ResizeMode;
  /** Largest batch one session.run gets when the model's batch is dynamic (default 8). */
  maxBatch?: number;
  /** One inference at load so that the first real one is not slow (default true). */
  warmup?: boolean;
  /** Where the provider line goes (default stderr). */
  log?: (line: string) => void;
  /**
   * 'worker' (default): the graph runs on a worker thread and the JS thread stays free (stream
   * pipelining relies on it); 'main': in-process, as plain onnxruntime-node.
   */
  thread?: 'worker' | 'main';
  /** onnxruntime's spin-waiting of idle intra-op threads (see SessionOptions.spinWait). */
  spinWait?: boolean;
  /**
   * Decode JPEG files at least 2x/4x/8x the input size at 1/2, 1/4, 1/8 size (libjpeg's DCT scaling;
   * runtime/preprocess.ts). Default false: the pixels then differ a little from training's.
   */
  shrinkOnLoad?: boolean;
  /**
   * TensorRT on this DLA core of the profile's board (Xavier, Orin AGX/NX), GPU fallback for the
   * layers DLA lacks. Default: the SSD_DLA_CORE environment variable, else no DLA.
   */
  dlaCore?: number;
  /**
   * Fail with one line instead of falling back to the CPU when no GPU provider loads. Default: the
   * profile's requireGpu, else SSD_REQUIRE_GPU=1 in the environment.
   */
  requireGpu?: boolean;
  /** Told 'building-engine' while TensorRT builds an engine (no cached one for this model), then 'ready'. */
  onPhase?: (phase: SessionPhase) => void;
}

export interface DetectOptions {
  /** Minimum score of a returned detection (default 0.5). */
  threshold?: number;
  /** At most this many detections per image (default: the spec's keepTopK, 200). */
  maxDetections?: number;
}

/** What detect returns: boxes in continuous 0-based pixels of the original image (core/model-contract.ts). */
export type { DetectionPixelsXYXY } from '../core/model-contract.js';

export type BatchResult =
  | { ok: true; input: string; detections: DetectionPixelsXYXY[] }
  | { ok: false; input: string; error: string };

/** Images prepared for one session.run: the input tensor and how to map boxes back. */
export interface Prepared {
  /**
   * The input tensor. While `run` is in flight its buffer is on the inference thread (detached
   * here); `run` puts it back, so a Prepared can be run again (benchmarks do) once run resolved,
   * until `finish` hands the buffer to the next `prepare`.
   */
  tensor: { type: TensorType; data: TensorArray; dims: number[] };
  /** Images in the tensor that are real (a fixed-batch model may need padding). */
  count: number;
  geometries: Geometry[];
  /** Milliseconds spent preparing (decode + resize + tensor). */
  prepareMs: number;
}

/** The outputs of one session.run, as onnxruntime returned them. */
export interface RawOutputs {
  values: Record<string, TensorLike>;
  /** session.run's own time on the inference thread, ms. */
  inferMs: number;
  /** From calling run to its result, ms: inferMs plus any wait behind an earlier run and the thread hops. */
  latencyMs: number;
}

const DEFAULT_THRESHOLD = 0.5;

function toProviderSpecs(list: ReadonlyArray<ProviderSpec | ExecutionProviderName>): ProviderSpec[] {
  return list.map((p) => (typeof p === 'string' ? { name: p } : p));
}

function asNumbers(t: TensorLike): ArrayLike<number> {
  const d = t.data;
  if (d instanceof BigInt64Array || d instanceof BigUint64Array) return Array.from(d, (v) => Number(v));
  if (Array.isArray(d)) throw new SsdError(`model output of type ${t.type} is not numeric`);
  return d as ArrayLike<number>;
}

/** An output by its contract name (checkModelShape checked at load that the graph has it). */
function output(values: Record<string, TensorLike>, name: string): TensorLike {
  const t = values[name];
  if (!t) throw new SsdError(`model output ${name} is missing from the run's results`);
  return t;
}

function asFloat32(t: TensorLike): Float32Array {
  if (t.data instanceof Float32Array) return t.data;
  return Float32Array.from(asNumbers(t));
}

export class Detector {
  /** Which provider the session was created with, and which were skipped and why. */
  readonly provider: ExecutionProviderName;
  readonly skippedProviders: SkippedProvider[];
  /**
   * TensorRT's engine cache for this model when TensorRT runs with one: its directory, the engine
   * files already there at start (non-empty = loaded from cache, not built) and the session's creation time.
   */
  readonly engine: { dir: string; cachedAtStart: string[]; createMs: number } | undefined;
  /** Model batch size: a number when fixed, 'dynamic' when any. */
  readonly batch: number | 'dynamic';
  /** onnxruntime intra-op threads the session was opened with (the option, the profile's, else one per core). */
  readonly threads: number;
  readonly resize: ResizeMode;
  private readonly target: TensorTarget;
  private readonly priorsCXCYWH: Float32Array | undefined;
  private readonly maxBatch: number;
  private readonly shrinkOnLoad: boolean;
  private disposed = false;
  /**
   * Input buffers of finished frames, for the next prepare: a fresh 1 MB Float32Array costs ~0.65 ms
   * of CPU here (page faults on zeroed memory, then freeing it after GC; 1.98 vs 1.33 ms per SSD300
   * resize + tensor, scratch A/B), as much as the JPEG decode, taken from the inference on 2 cores.
   */
  private readonly spareInputs: TensorData[] = [];

  private constructor(
    readonly modelPath: string,
    readonly metadata: ModelMetadata,
    private readonly session: InferenceBackend,
    opened: { provider: ExecutionProviderName; skipped: SkippedProvider[]; engineDir?: string; cachedEnginesAtStart?: string[]; createMs?: number },
    batch: number | 'dynamic',
    opts: LoadOptions,
    threads: number,
  ) {
    this.provider = opened.provider;
    this.engine = opened.engineDir !== undefined
      ? { dir: opened.engineDir, cachedAtStart: opened.cachedEnginesAtStart ?? [], createMs: opened.createMs ?? 0 }
      : undefined;
    this.threads = threads;
    this.skippedProviders = opened.skipped;
    this.batch = batch;
    this.resize = opts.resize ?? 'warp';
    this.maxBatch = Math.max(1, Math.floor(opts.maxBatch ?? 8));
    this.shrinkOnLoad = opts.shrinkOnLoad ?? false;
    this.target = { layout: metadata.inputLayout, inputSize: metadata.spec.inputSize, input: metadata.spec.input };
    this.priorsCXCYWH = metadata.postprocess === 'none' ? defaultBoxes(metadata.spec) : undefined;
  }

  /** Loads a model exported by `ssd export-onnx`; throws an SsdError naming the cause for anything else. */
  static async load(modelPath: string, opts: LoadOptions = {}): Promise<Detector> {
    const metadata = readModelMetadata(modelPath);
    // No device named: the profile this machine matches (a CPU-only machine gets the cpu profile).
    const profile = typeof opts.device === 'string' ? getProfile(opts.device) : opts.device ?? (opts.providers ? undefined : detectDevice().profile);
    // INT8 models (ssd quantize) get the profile's INT8 providers (TensorRT INT8 on Xavier/Orin).
    const envDla = process.env.SSD_DLA_CORE;
    const dlaCore = opts.dlaCore ?? (envDla !== undefined && envDla.trim() !== '' ? Number(envDla) : undefined);
    // NMS models keep NonMaxSuppression out of TensorRT (providersFor says why).
    const providers = opts.providers ? toProviderSpecs(opts.providers) : profile ? providersFor(profile, { precision: metadata.precision, dlaCore, postprocess: metadata.postprocess }) : [{ name: 'cpu' as const }];
    const requireGpu = opts.requireGpu ?? profile?.requireGpu ?? process.env.SSD_REQUIRE_GPU === '1';
    const threads = opts.threads ?? profile?.threads;
    const context = profile ? `device ${profile.name}${opts.device === undefined ? ' (detected)' : ''}` : 'providers given';
    const opened = await openSession(modelPath, { providers, threads, graphOptimization: opts.graphOptimization, log: opts.log, context, thread: opts.thread, spinWait: opts.spinWait, requireGpu, gpuArch: profile?.cudaArch, onPhase: opts.onPhase });
    let batch: number | 'dynamic';
    try {
      batch = checkModelShape(modelPath, opened.session, metadata);
    } catch (err) {
      await opened.session.release();
      throw err;
    }
    const d = new Detector(modelPath, metadata, opened.session, opened, batch, opts, resolveThreads(threads));
    const jpeg = jpegDecoder();
    if (jpeg.why) (opts.log ?? ((line: string) => process.stderr.write(`${line}\n`)))(`JPEG decode: sharp, not libjpeg-turbo (${jpeg.why})`);
    if (opts.warmup ?? true) {
      try {
        await d.run(d.emptyPrepared());
      } catch (err) {
        await d.dispose();
        throw new SsdError(`model ${modelPath}: warm-up run failed (${oneLine(err)})`, { cause: err });
      }
    }
    return d;
  }

  /** The thread the graph runs on. */
  get thread(): 'worker' | 'main' {
    return this.session.thread;
  }

  get labels(): readonly string[] {
    return this.metadata.spec.labels;
  }

  get inputSize(): number {
    return this.metadata.spec.inputSize;
  }

  /** How many images one session.run takes at most. */
  get runBatch(): number {
    return this.batch === 'dynamic' ? this.maxBatch : this.batch;
  }

  /**
   * Decodes and resizes `inputs` (at most `runBatch` of them) into one input tensor. Raw frames take
   * no sharp round trip; encoded images are decoded on libuv's thread pool, so several prepares (and a
   * run) can be in flight at once.
   */
  async prepare(inputs: ImageInput | readonly ImageInput[]): Promise<Prepared> {
    const list = Array.isArray(inputs) ? (inputs as readonly ImageInput[]) : [inputs as ImageInput];
    const { prepared, errors } = await this.prepareSettled(list);
    const failed = errors.find((e) => e !== undefined);
    if (failed !== undefined || !prepared) throw failed ?? new SsdError('prepare: nothing to prepare');
    return prepared;
  }

  /**
   * As prepare, but an input that fails is reported in `errors[i]` and left out of the tensor (the
   * others are packed in order), so that one bad image does not sink its batch.
   */
  private async prepareSettled(list: readonly ImageInput[]): Promise<{ prepared?: Prepared; ok: number[]; errors: Array<SsdError | undefined> }> {
    this.checkOpen();
    if (list.length === 0 || list.length > this.runBatch) throw new RangeError(`prepare: ${list.length} images for a batch of at most ${this.runBatch}`);
    const t0 = performance.now();
    const errors: Array<SsdError | undefined> = new Array(list.length).fill(undefined);
    const asError = (err: unknown, input: ImageInput) => (err instanceof SsdError ? err : new SsdError(`${describeInput(input)}: ${oneLine(err)}`, { cause: err }));
    // Encoded images decode concurrently on libuv's pool; raw frames need no decode. Both then become
    // the model input through the core's one preprocessing (core/preprocess.ts), as in training.
    const decoded = await Promise.all(list.map(async (input, i) => {
      if (isRawFrame(input)) return input;
      try {
        return await decodeImage(input, this.shrinkOnLoad ? { shrinkOnLoad: this.inputSize } : {});
      } catch (err) {
        errors[i] = asError(err, input);
        return undefined;
      }
    }));
    const ok = decoded.flatMap((d, i) => (d === undefined ? [] : [i]));
    if (ok.length === 0) return { ok, errors };
    const n = this.batch === 'dynamic' ? ok.length : this.batch;
    const data = this.takeInput(n);
    const geometries: Geometry[] = [];
    const kept: number[] = [];
    for (const i of ok) {
      try {
        geometries.push(writeFrameTensor(decoded[i]!, this.target, this.resize, data, kept.length));
        kept.push(i);
      } catch (err) {
        errors[i] = asError(err, list[i]!);
      }
    }
    if (kept.length === 0) {
      this.spareInput(data);
      return { ok: kept, errors };
    }
    // A fixed-batch model's unused slots: zeros, as in a fresh buffer, not a finished frame's pixels.
    if (kept.length < n) data.fill(0, kept.length * elementsPerImage(this.target));
    return { prepared: { tensor: this.makeTensor(data, n), count: kept.length, geometries, prepareMs: performance.now() - t0 }, ok: kept, errors };
  }

  /**
   * The bare session.run on a prepared tensor. Several runs may be in flight: they execute one after
   * the other, in call order, on the inference thread (so submitting frame i+1 before frame i is done
   * keeps that thread busy).
   */
  async run(prepared: Prepared): Promise<RawOutputs> {
    this.checkOpen();
    if (prepared.tensor.data.length === 0) throw new Error('run: this Prepared was finished (its input buffer went to the next prepare)');
    const t0 = performance.now();
    const r = await this.session.run(this.session.inputNames[0]!, prepared.tensor);
    prepared.tensor.data = r.input;
    return { values: r.outputs, inferMs: r.computeMs, latencyMs: performance.now() - t0 };
  }

  /** Postprocessing: the core's decode + NMS when the graph has none, then boxes in original pixels. */
  finish(raw: RawOutputs, prepared: Prepared, opts: DetectOptions = {}): DetectionPixelsXYXY[][] {
    const threshold = opts.threshold ?? DEFAULT_THRESHOLD;
    const { spec, postprocess: mode } = this.metadata;
    const maxDet = opts.maxDetections ?? spec.postprocess.keepTopK;
    const out: DetectionPixelsXYXY[][] = [];
    const C = numClasses(spec);
    const P = numDefaultBoxes(spec);
    // Thresholding before NMS with max(spec, user) keeps exactly the detections >= threshold that
    // thresholding after would: lower-scored boxes never suppress higher ones nor push them out of a top-k.
    const nmsOpts = { confidenceThreshold: Math.max(spec.postprocess.confidenceThreshold, threshold), keepTopK: Math.min(maxDet, spec.postprocess.keepTopK) };
    for (let i = 0; i < prepared.count; i++) {
      let det: Detections;
      if (mode === 'none') {
        const loc = asFloat32(output(raw.values, OUTPUTS.none.loc)).subarray(i * P * 4, (i + 1) * P * 4);
        const conf = asFloat32(output(raw.values, OUTPUTS.none.conf)).subarray(i * P * C, (i + 1) * P * C);
        det = corePostprocess(loc, conf, this.priorsCXCYWH!, spec, { fromLogits: true, ...nmsOpts });
      } else if (mode === 'decode') {
        const boxes = asFloat32(output(raw.values, OUTPUTS.decode.boxes)).subarray(i * P * 4, (i + 1) * P * 4);
        const scores = asFloat32(output(raw.values, OUTPUTS.decode.scores)).subarray(i * P * C, (i + 1) * P * C);
        det = multiclassNms(boxes, scores, C, { ...nmsOpts, topKPerClass: spec.postprocess.topKPerClass, nmsThreshold: spec.postprocess.nmsThreshold });
        for (let j = 0; j < det.boxesXYXY.length; j++) det.boxesXYXY[j] = Math.min(1, Math.max(0, det.boxesXYXY[j]!));
      } else {
        det = this.readGraphNms(raw.values, i);
      }
      out.push(this.toDetections(det, prepared.geometries[i]!, threshold, maxDet));
    }
    this.recycleInput(prepared);
    return out;
  }

  /** An input buffer for n images: a finished frame's when one fits (every value gets written), else new. */
  private takeInput(n: number): TensorData {
    const size = elementsPerImage(this.target) * n;
    const i = this.spareInputs.findIndex((b) => b.length === size);
    return i >= 0 ? this.spareInputs.splice(i, 1)[0]! : allocTensor(this.target, n);
  }

  private recycleInput(prepared: Prepared): void {
    const data = prepared.tensor.data;
    if (!(data instanceof Float32Array || data instanceof Uint8Array) || data.length === 0) return;
    // Detached, so that a later run of this Prepared fails instead of reading the next frame's pixels.
    prepared.tensor.data = data instanceof Float32Array ? new Float32Array(0) : new Uint8Array(0);
    this.spareInput(data);
  }

  private spareInput(data: TensorData): void {
    // A few are enough: a stream has at most one frame preparing, one running and one queued.
    if (this.spareInputs.length < 4) this.spareInputs.push(data);
  }

  /** prepare + run + finish for one image. */
  async detect(input: ImageInput, opts: DetectOptions = {}): Promise<DetectionPixelsXYXY[]> {
    const prepared = await this.prepare(input);
    return this.finish(await this.run(prepared), prepared, opts)[0]!;
  }

  /**
   * Many images, in batches of `runBatch` (one by one for a batch-1 model). An image that cannot be
   * read is reported in its slot and the others still run. The next batch is prepared while the
   * current one is inferred.
   */
  async detectBatch(inputs: readonly ImageInput[], opts: DetectOptions = {}): Promise<BatchResult[]> {
    const results: BatchResult[] = [];
    for await (const r of this.detectEach(inputs, opts)) results.push(r);
    return results;
  }

  /**
   * detectBatch as a stream: one result per input, in input order, each yielded as soon as it and
   * those before it are done. The pipeline keeps going while the caller handles a result (prints it,
   * draws it): batch g+1 is on the inference thread and batch g+2 decoding meanwhile, over the whole
   * list, so a long list never drains between chunks.
   */
  async *detectEach(inputs: readonly ImageInput[], opts: DetectOptions = {}): AsyncGenerator<BatchResult, void, undefined> {
    this.checkOpen();
    const names = inputs.map((x) => (typeof x === 'string' ? x : describeInput(x)));
    const B = this.runBatch;
    type Group = { start: number; end: number; failed: Map<number, BatchResult>; prepared?: Prepared; idx: number[] };
    const prepareGroup = async (start: number): Promise<Group> => {
      const list = inputs.slice(start, start + B);
      const r = await this.prepareSettled(list);
      const failed = new Map<number, BatchResult>();
      r.errors.forEach((e, j) => { if (e) failed.set(start + j, { ok: false, input: names[start + j]!, error: oneLine(e) }); });
      return { start, end: start + list.length, failed, prepared: r.prepared, idx: r.ok.map((j) => start + j) };
    };
    type Ran = { group: Group; raw?: RawOutputs };
    const inFlight: Array<Promise<Ran>> = [];
    // Results of a group in input order: its failures in their slots, the rest from its run.
    const finishOne = async function* (this: Detector, p: Promise<Ran>): AsyncGenerator<BatchResult> {
      const { group, raw } = await p;
      const dets = raw && group.prepared ? this.finish(raw, group.prepared, opts) : [];
      const at = new Map(group.idx.map((i, j) => [i, j]));
      for (let i = group.start; i < group.end; i++) {
        yield group.failed.get(i) ?? { ok: true, input: names[i]!, detections: dets[at.get(i)!]! };
      }
    };
    // Two runs in flight: the inference thread starts batch g+1 the moment batch g is done, while
    // this thread postprocesses g and decodes g+2.
    let next = inputs.length ? prepareGroup(0) : undefined;
    next?.catch(() => undefined);
    for (let start = 0; start < inputs.length; start += B) {
      const cur = await next!;
      next = start + B < inputs.length ? prepareGroup(start + B) : undefined;
      next?.catch(() => undefined); // rejections surface where it is awaited
      const prepared = cur.prepared;
      const ran: Promise<Ran> = prepared ? this.run(prepared).then((raw) => ({ group: cur, raw })) : Promise.resolve({ group: cur });
      ran.catch(() => undefined); // rejections surface where it is awaited, in order
      inFlight.push(ran);
      if (inFlight.length >= 2) yield* finishOne.call(this, inFlight.shift()!);
    }
    while (inFlight.length) yield* finishOne.call(this, inFlight.shift()!);
  }

  /** Releases the onnxruntime session. The detector cannot be used afterwards. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.session.release();
  }

  /** A zero tensor of one run's batch (the warm-up and benchmarks use it). */
  emptyPrepared(count = 1): Prepared {
    const n = this.batch === 'dynamic' ? count : this.batch;
    const S = this.inputSize;
    const g: Geometry = { width: S, height: S, scaleX: 1, scaleY: 1, offsetX: 0, offsetY: 0 };
    return { tensor: this.makeTensor(allocTensor(this.target, n), n), count: Math.min(count, n), geometries: Array(n).fill(g), prepareMs: 0 };
  }

  private makeTensor(data: TensorData, n: number): Prepared['tensor'] {
    const S = this.target.inputSize;
    return data instanceof Float32Array ? { type: 'float32', data, dims: [n, 3, S, S] } : { type: 'uint8', data, dims: [n, S, S, 3] };
  }

  private readGraphNms(values: Record<string, TensorLike>, i: number): Detections {
    const scoresT = output(values, OUTPUTS.nms.scores);
    const K = scoresT.dims[1] ?? 0;
    const num = Math.min(K, Math.max(0, Math.round(Number(asNumbers(output(values, OUTPUTS.nms.numDetections))[i] ?? 0))));
    const boxes = asFloat32(output(values, OUTPUTS.nms.boxes));
    const scores = asFloat32(scoresT);
    const classes = asNumbers(output(values, OUTPUTS.nms.classes));
    const det: Detections = { count: num, boxesXYXY: new Float32Array(num * 4), scores: new Float32Array(num), classIds: new Int32Array(num) };
    for (let j = 0; j < num; j++) {
      for (let k = 0; k < 4; k++) det.boxesXYXY[j * 4 + k] = Math.min(1, Math.max(0, boxes[(i * K + j) * 4 + k]!));
      det.scores[j] = scores[i * K + j]!;
      det.classIds[j] = Math.round(classes[i * K + j]!);
    }
    return det;
  }

  private toDetections(det: Detections, g: Geometry, threshold: number, maxDet: number): DetectionPixelsXYXY[] {
    const out: DetectionPixelsXYXY[] = [];
    const labels = this.metadata.spec.labels;
    const S = this.inputSize;
    for (let j = 0; j < det.count && out.length < maxDet; j++) {
      const score = det.scores[j]!;
      if (!(score >= threshold)) continue;
      const classId = det.classIds[j]!;
      const b = det.boxesXYXY;
      out.push({
        label: labels[classId] ?? `class${classId}`,
        classId,
        score,
        box: toOriginalPixels(b[j * 4]!, b[j * 4 + 1]!, b[j * 4 + 2]!, b[j * 4 + 3]!, S, g),
      });
    }
    return out;
  }

  private checkOpen(): void {
    if (this.disposed) throw new SsdError(`detector for ${this.modelPath} was disposed`);
  }
}

/**
 * Checks that the graph's input and outputs are those of an SSD exported for this metadata, and
 * returns its batch size. A model with another shape is an SsdError naming what differs.
 */
function checkModelShape(path: string, session: InferenceBackend, m: ModelMetadata): number | 'dynamic' {
  const where = `model ${path}`;
  const ins = session.inputMetadata;
  if (ins.length !== 1) throw new SsdError(`${where}: has ${ins.length} inputs (${session.inputNames.join(', ')}); an SSD has one image input`);
  const input = ins[0]!;
  const want = inputTensor(m.inputLayout, m.spec.inputSize, 'N');
  if (!input.isTensor) throw new SsdError(`${where}: input ${input.name} is not a tensor`);
  const shape = input.shape;
  const shapeOk = shape.length === 4 && want.dims.every((d, i) => i === 0 || shape[i] === d);
  if (input.type !== want.type || !shapeOk) {
    throw new SsdError(`${where}: input ${input.name} is ${input.type} [${shape.join(',')}], but its SSD metadata (${m.spec.name}, ${m.inputLayout}) needs ${want.type} [${want.dims.join(',')}]`);
  }
  const names = new Set(session.outputNames);
  const needed = outputNames(m.postprocess);
  const missing = needed.filter((n) => !names.has(n));
  if (missing.length) {
    throw new SsdError(`${where}: postprocess "${m.postprocess}" needs outputs ${needed.join(', ')}; missing ${missing.join(', ')}`);
  }
  // Box and class counts must be the metadata's (a spec edited after export would not be). K of an
  // nms model is known only from its metadata.
  if (m.postprocess === 'nms' && m.keepTopK === undefined) return batchOf(shape);
  const expected = new Map(outputTensorList(m.postprocess, {
    batch: 'N', numPriors: numDefaultBoxes(m.spec), numClasses: numClasses(m.spec), keepTopK: m.keepTopK,
  }).map((o) => [o.name, o]));
  for (const out of session.outputMetadata) {
    const w = expected.get(out.name);
    if (!w || !out.isTensor) continue;
    const dims = out.shape.slice(1);
    const wDims = w.dims.slice(1);
    const type = w.dtype === 'float' ? 'float32' : w.dtype;
    if (out.type !== type || dims.length !== wDims.length || dims.some((d, i) => typeof d === 'number' && d !== wDims[i])) {
      throw new SsdError(`${where}: output ${out.name} is ${out.type} [${out.shape.join(',')}], but its SSD metadata (${m.spec.name}) gives ${type} [${w.dims.join(',')}]`);
    }
  }
  return batchOf(shape);
}

function batchOf(inputShape: readonly (number | string)[]): number | 'dynamic' {
  const n = inputShape[0];
  return typeof n === 'number' && n > 0 ? n : 'dynamic';
}

/**
 * Data-parallel training over worker threads: every micro-batch is split by images into shares, this
 * thread computes the first share while each worker thread computes one of the others on its own copy
 * of the model, and the gradients are summed here (in share order, so a step is deterministic) and
 * applied once. The updated trainable weights are then published to the workers through one
 * SharedArrayBuffer, so every copy starts each step from exactly the weights this thread holds: there
 * is no drift to correct.
 *
 * Why threads: on the CPU, the tensorflow backend keeps about 1.1 of 2 cores busy on the digits model
 * (tfjs dispatches every op from one JavaScript thread, and small convs run on that thread), and the
 * wasm backend is single-threaded in Node. Each worker has its own backend instance (tfjs-node's
 * binding loads in worker threads; libtensorflow's thread pools are shared by the process).
 *
 * Exactness: the loss of a share is normalised by the positives of the whole micro-batch and hard
 * negatives are mined per image (gradients.ts), so the shares add up to the single-thread step up to
 * float rounding (test/train/data-parallel.test.ts). Batch norm, when the spec has it, sees the
 * statistics of its share only, as in PyTorch's DistributedDataParallel without SyncBatchNorm.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { SsdError } from '../core/errors.js';
import { numDefaultBoxes, type SsdSpec } from '../core/specs.js';
import type { WeightMap } from '../core/checkpoint.js';
import type { BackendChoice, BackendName } from './backend.js';
import type { TrainBatch } from './data-loader.js';
import { GradientSum, canonicalNames, countPositives, shareGradients, sliceBatch, type LossParts, type LossWeights } from './gradients.js';
import type { SsdModel } from './model.js';
import { stopWorker, workerReady, workerStart } from './worker-start.js';

/**
 * Why the threads never meet an op for the first time together. tfjs-node's binding (4.22,
 * binding/tfjs_backend.cc) keeps the attribute names of the ops it executes in one process-wide
 * `static std::set<std::string> ATTR_NAME_SET`, inserted into on every op without a lock. Each thread
 * has its own backend otherwise, but two threads inserting a name the set lacks corrupt the heap:
 * measured, a 3-thread run aborted with "munmap_chunk(): invalid pointer" or diverged at its first
 * iteration about one run in five (and one CI test process died). Once a name is in the set, an insert
 * only looks it up, which threads may do together. So the workers start one after another, and the
 * first share of a run is computed on this thread before any worker computes one: every op of a
 * share has then been seen. The other ops of a run (the update, validation) run here while the
 * workers wait for work.
 */
export const NATIVE_OPS_ONCE = 'tfjs-node ATTR_NAME_SET';

/** One trainable variable's place in the shared weight and gradient buffers. */
export interface SlotLayout { name: string; shape: number[]; offset: number; size: number }

/** What a worker thread starts from (workerData). */
export interface WorkerInit {
  spec: SsdSpec;
  backend: BackendName;
  frozen: string[];
  /** Every weight of the model (trainable or not) when the workers start. */
  weights: WeightMap;
  layout: SlotLayout[];
  weightsShared: SharedArrayBuffer;
  gradsShared: SharedArrayBuffer;
  /** The worker module (worker-bootstrap.js imports it). */
  entry: string;
}

export interface ShareRequest {
  kind: 'step';
  id: number;
  /** Weights version: the worker reloads the shared weights when it differs from its own. */
  version: number;
  size: number;
  imagesNHWC: Float32Array<ArrayBuffer>;
  locTargets: Float32Array<ArrayBuffer>;
  labels: Int32Array<ArrayBuffer>;
  normalizer: number;
  loss: LossWeights;
}

/** Asks a worker to free its model and end on its own (its event loop empties; no terminate()). */
export interface StopRequest { kind: 'stop' }

export type WorkerRequest = ShareRequest | StopRequest;

export type WorkerReply =
  | { kind: 'ready' }
  | { kind: 'failed'; message: string }
  | { kind: 'done'; id: number; parts: LossParts }
  | { kind: 'error'; id: number; message: string };

export interface SharesPlan {
  /** Shares each micro-batch is split into (1 = no worker threads). */
  shares: number;
  /** Why, for the log line. */
  reason: string;
}

/**
 * How many shares: `ssd train --threads N` as asked (at most the batch size), or by default one per
 * core on a CPU backend (at most the batch size) and 1 on a GPU (one device; a second copy of the
 * model on it would only compete).
 */
export function planShares(requested: number | 'auto', backend: Pick<BackendChoice, 'label'>, batchSize: number, cores = availableParallelism()): SharesPlan {
  if (requested !== 'auto') {
    const shares = Math.max(1, Math.min(requested, batchSize));
    return { shares, reason: shares < requested ? `--threads ${requested}, at most one per image of the batch of ${batchSize}` : `--threads ${requested}` };
  }
  if (backend.label.includes('GPU')) return { shares: 1, reason: 'one GPU computes the whole batch' };
  const shares = Math.max(1, Math.min(cores, batchSize));
  if (shares === 1) return { shares, reason: cores === 1 ? 'one core' : 'a batch of one image' };
  return { shares, reason: shares < cores ? `one per image of the batch of ${batchSize} (${cores} cores)` : `one per core (${cores} cores)` };
}

interface Pending { resolve: (parts: LossParts) => void; reject: (err: Error) => void }

class ShareWorker {
  private readonly pending = new Map<number, Pending>();
  private failure: Error | undefined;
  readonly grads: Float32Array;

  private readonly exited: Promise<void>;

  constructor(readonly index: number, readonly worker: Worker, gradsShared: SharedArrayBuffer) {
    this.grads = new Float32Array(gradsShared);
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    worker.on('message', (m: WorkerReply) => {
      if (m.kind === 'done' || m.kind === 'error') {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        if (m.kind === 'done') p?.resolve(m.parts); else p?.reject(new SsdError(`data-parallel worker ${index}: ${m.message}`));
      }
    });
    const fail = (err: Error): void => {
      this.failure ??= err;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    worker.on('error', (err) => fail(new SsdError(`data-parallel worker ${index} failed: ${err.message}`, { cause: err })));
    worker.on('exit', (code) => fail(new SsdError(`data-parallel worker ${index} exited (code ${code})`)));
  }

  /** Ends the thread: it disposes its model and exits by itself (stopWorker). */
  stop(): Promise<void> {
    return stopWorker(this.worker, this.exited);
  }

  run(req: ShareRequest): Promise<LossParts> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.pending.set(req.id, { resolve, reject });
      this.worker.postMessage(req, [req.imagesNHWC.buffer, req.locTargets.buffer, req.labels.buffer]);
    });
  }
}

export class DataParallel {
  private version = 0;
  private requestId = 0;
  private warmed = false;
  private readonly weights: Float32Array;
  private readonly canonical: Map<string, string>;
  private readonly numPriors: number;

  private constructor(readonly shares: number, private readonly workers: ShareWorker[], private readonly layout: SlotLayout[], weightsShared: SharedArrayBuffer, model: SsdModel) {
    this.weights = new Float32Array(weightsShared);
    this.canonical = canonicalNames(model);
    this.numPriors = numDefaultBoxes(model.spec);
  }

  /** Starts `shares - 1` worker threads holding copies of `model` on `backend`; resolves when all are ready. */
  static async start(model: SsdModel, backend: BackendName, shares: number, frozen: ReadonlySet<string>): Promise<DataParallel> {
    const layout: SlotLayout[] = [];
    let total = 0;
    for (const [name, v] of model.variables) {
      if (!v.trainable) continue;
      layout.push({ name, shape: v.shape.slice(), offset: total, size: v.size });
      total += v.size;
    }
    const weightsShared = new SharedArrayBuffer(total * 4);
    const { entry, start } = workerStart('data-parallel-worker');
    const weights = model.getWeights();
    const started: Array<{ worker: Worker; gradsShared: SharedArrayBuffer }> = [];
    const ready: Promise<void>[] = [];
    // One at a time (see NATIVE_OPS_ONCE): a worker's first ops run while no other thread runs any.
    for (let i = 1; i < shares; i++) {
      if (i > 1) await ready[ready.length - 1]!.catch(() => undefined);
      const gradsShared = new SharedArrayBuffer(total * 4);
      const init: WorkerInit = { spec: model.spec, backend, frozen: [...frozen], weights, layout, weightsShared, gradsShared, entry };
      const worker = new Worker(start, { workerData: init });
      started.push({ worker, gradsShared });
      ready.push(workerReady(worker, `data-parallel worker ${i}`));
    }
    try {
      await Promise.all(ready);
    } catch (err) {
      await Promise.all(started.map((s) => s.worker.terminate()));
      throw err;
    }
    const dp = new DataParallel(shares, started.map((s, i) => new ShareWorker(i + 1, s.worker, s.gradsShared)), layout, weightsShared, model);
    dp.publishWeights(model);
    return dp;
  }

  /**
   * Adds the gradients and loss parts of micro-batch `b` to `sum`, one share per thread. The shares'
   * losses are normalised by the positives of all of `b`, so they add up to `b`'s own.
   */
  async gradients(model: SsdModel, b: TrainBatch, loss: LossWeights, sum: GradientSum): Promise<void> {
    const k = Math.min(this.shares, b.size);
    const normalizer = countPositives(b.labels);
    const S = model.spec.inputSize;
    // Shares as equal as the batch allows; this thread takes the first (it also sums and applies).
    const bounds = Array.from({ length: k + 1 }, (_, i) => Math.round((i * b.size) / k));
    const dispatch = () => this.workers.slice(0, k - 1).map((w, i) => {
      const part = sliceBatch(b, bounds[i + 1]!, bounds[i + 2]!, S, this.numPriors);
      return w.run({
        kind: 'step', id: ++this.requestId, version: this.version, size: part.size,
        imagesNHWC: part.imagesNHWC.slice(), locTargets: part.locTargets.slice(), labels: part.labels.slice(),
        normalizer, loss: { negPosRatio: loss.negPosRatio, alpha: loss.alpha },
      }).then((parts) => ({ parts, size: part.size, worker: w }));
    });
    // The first share of the run is computed here before any worker starts its own (NATIVE_OPS_ONCE).
    const own = this.warmed ? undefined : shareGradients(model, sliceBatch(b, 0, bounds[1]!, S, this.numPriors), loss, normalizer, this.canonical);
    this.warmed = true;
    const remote = dispatch();
    // A failing worker must not leave an unhandled rejection while this thread computes its share.
    const settled = Promise.allSettled(remote);
    const mine = own ?? shareGradients(model, sliceBatch(b, 0, bounds[1]!, S, this.numPriors), loss, normalizer, this.canonical);
    sum.add(mine.grads, mine.parts, bounds[1]!);
    const results = await settled;
    for (const r of results) if (r.status === 'rejected') throw r.reason;
    for (const r of results) {
      if (r.status !== 'fulfilled') continue;
      const { parts, size, worker } = r.value;
      const grads = new Map<string, tf.Tensor>();
      for (const slot of this.layout) grads.set(slot.name, tf.tensor(worker.grads.subarray(slot.offset, slot.offset + slot.size), slot.shape, 'float32'));
      sum.add(grads, parts, size);
    }
  }

  /** Copies the model's trainable weights to the workers (after every update). */
  publishWeights(model: SsdModel): void {
    for (const slot of this.layout) this.weights.set(model.variables.get(slot.name)!.dataSync() as Float32Array, slot.offset);
    this.version++;
  }

  async dispose(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.stop()));
  }
}

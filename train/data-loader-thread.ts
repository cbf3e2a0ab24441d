/**
 * The training data loader on a thread of its own. Building a micro-batch (decode, augmentation,
 * matching to the default boxes) is JavaScript, and on the trainer's thread it competed with the
 * thread that dispatches every op and sums the data-parallel shares: on the digits model about 40-60
 * ms of CPU per batch of 8, next to a 190 ms step. Here a worker thread builds the batches ahead with
 * the same DataLoader (batch m is a function of m, the seed and the data only), so they are exactly
 * the in-thread ones (test/train/data-loader-thread.test.ts).
 */
import { Worker } from 'node:worker_threads';
import { SsdError } from '../core/errors.js';
import type { Dataset } from '../core/datasets/types.js';
import type { SsdSpec } from '../core/specs.js';
import type { TrainBatch } from './data-loader.js';
import { stopWorker, workerReady, workerStart } from './worker-start.js';

/** What the loader thread starts from (workerData). */
export interface LoaderThreadInit {
  dataset: Dataset;
  spec: SsdSpec;
  /** The config's augment list (JSON); the thread builds the pipeline from it. */
  augment: unknown;
  batchSize: number;
  seed: number;
  /** Bytes of decoded images the thread keeps (ImageSource). */
  cacheBytes?: number;
  /** The worker module (worker-bootstrap.js imports it). */
  entry: string;
}

export type LoaderRequest = { kind: 'batch'; m: number } | { kind: 'stop' };

export type LoaderReply =
  | { kind: 'ready' }
  | { kind: 'failed'; message: string }
  | { kind: 'batch'; m: number; batch: TrainBatch }
  | { kind: 'error'; m: number; message: string }
  | { kind: 'warn'; line: string };

/** A requested micro-batch: its promise, settled when the thread's reply arrives. */
interface Pending { promise: Promise<TrainBatch>; resolve: (b: TrainBatch) => void; reject: (e: Error) => void }

/** The interface the trainer takes batches through: DataLoader or LoaderThread. */
export interface BatchSource { batch(m: number): Promise<TrainBatch> }

export class LoaderThread implements BatchSource {
  /** Every micro-batch asked of the thread and not yet passed by the trainer, answered or not. */
  private readonly pending = new Map<number, Pending>();
  private failure: Error | undefined;
  private readonly exited: Promise<void>;

  private constructor(private readonly worker: Worker, private readonly prefetch: number) {
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
  }

  /** Starts the thread; resolves once it has loaded the data's code and built its pipeline. */
  static async start(init: Omit<LoaderThreadInit, 'entry'>, opts: { prefetch?: number; warn?: (line: string) => void } = {}): Promise<LoaderThread> {
    const { entry, start } = workerStart('data-loader-worker');
    const worker = new Worker(start, { workerData: { ...init, entry } satisfies LoaderThreadInit });
    const t = new LoaderThread(worker, Math.max(1, opts.prefetch ?? 2));
    await workerReady(worker, 'data loader thread');
    worker.on('message', (m: LoaderReply) => t.onReply(m, opts.warn ?? (() => {})));
    worker.on('error', (err) => t.fail(new SsdError(`data loader thread failed: ${err.message}`, { cause: err })));
    worker.on('exit', (code) => t.fail(new SsdError(`data loader thread exited (code ${code})`)));
    return t;
  }

  private onReply(m: LoaderReply, warn: (line: string) => void): void {
    if (m.kind === 'warn') { warn(m.line); return; }
    if (m.kind !== 'batch' && m.kind !== 'error') return;
    const p = this.pending.get(m.m);
    if (!p) return; // the trainer has moved past it
    if (m.kind === 'batch') p.resolve(m.batch);
    else p.reject(new SsdError(m.message));
  }

  private fail(err: Error): void {
    this.failure ??= err;
    // Settled ones ignore this; the rest would otherwise wait for a thread that is gone.
    for (const p of this.pending.values()) p.reject(err);
  }

  /** Micro-batch m (the DataLoader's); asks for the next `prefetch` ones as well. */
  batch(m: number): Promise<TrainBatch> {
    if (this.failure) return Promise.reject(this.failure);
    for (const k of [...this.pending.keys()]) if (k < m) this.pending.delete(k);
    for (let j = m; j <= m + this.prefetch; j++) {
      if (this.pending.has(j)) continue;
      let resolve!: (b: TrainBatch) => void;
      let reject!: (e: Error) => void;
      const promise = new Promise<TrainBatch>((res, rej) => { resolve = res; reject = rej; });
      promise.catch(() => undefined); // a prefetched batch that fails is reported when it is asked for
      this.pending.set(j, { promise, resolve, reject });
      this.worker.postMessage({ kind: 'batch', m: j } satisfies LoaderRequest);
    }
    return this.pending.get(m)!.promise;
  }

  /** Ends the thread: it finishes the batch in hand, closes its port and exits by itself (stopWorker). */
  async dispose(): Promise<void> {
    this.fail(new SsdError('data loader thread: disposed'));
    this.pending.clear();
    await stopWorker(this.worker, this.exited);
  }
}

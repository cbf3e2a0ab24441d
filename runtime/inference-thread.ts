/**
 * Where session.run executes: on the JS thread, or on a worker thread.
 *
 * onnxruntime-node's `session.run` returns a promise but computes synchronously on the calling thread
 * (it only defers the start with setImmediate). On the main thread, a 200 ms SSD300 inference
 * therefore freezes everything else: no image decode can be dispatched, no GStreamer frame pulled, no
 * MQTT message sent. The worker backend runs the session on its own thread, so the JS thread
 * prepares frame i+1 and postprocesses frame i-1 while frame i is inferred. Tensors cross the thread
 * boundary by transfer, not copy; the input buffer is handed back with the outputs.
 *
 * The worker is a small plain-JS script (evaluated, not a file) so that it runs the same from the
 * TypeScript sources and from the compiled runtime bundle, with nothing but onnxruntime-node.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import ort from 'onnxruntime-node';

export type ValueMetadata = ort.InferenceSession.ValueMetadata;
export type TensorType = 'float32' | 'uint8' | 'int32' | 'int64' | 'float16';
export type TensorArray = Float32Array | Uint8Array | Int32Array | BigInt64Array | Uint16Array;

/** A tensor as plain data: what crosses threads, and what ort.Tensor also satisfies. */
export interface TensorLike {
  type: string;
  data: unknown;
  dims: readonly number[];
}

export interface RunResult {
  outputs: Record<string, TensorLike>;
  /** The input data, usable again (a worker hands back the buffer it was given). */
  input: TensorArray;
  /** Milliseconds session.run itself took on its thread (not counting any wait in the queue). */
  computeMs: number;
}

/** One loaded model on one thread. */
export interface InferenceBackend {
  readonly thread: 'main' | 'worker';
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly inputMetadata: readonly ValueMetadata[];
  readonly outputMetadata: readonly ValueMetadata[];
  run(inputName: string, input: { type: TensorType; data: TensorArray; dims: readonly number[] }): Promise<RunResult>;
  release(): Promise<void>;
}

/** Creates sessions on one thread; `create` throws what onnxruntime throws (the caller falls back). */
export interface SessionFactory {
  create(modelPath: string, options: ort.InferenceSession.SessionOptions): Promise<InferenceBackend>;
  /** Frees the thread when no session was created. */
  close(): Promise<void>;
}

export function mainThreadFactory(): SessionFactory {
  return {
    async create(modelPath, options) {
      const s = await ort.InferenceSession.create(modelPath, options);
      return {
        thread: 'main',
        inputNames: s.inputNames,
        outputNames: s.outputNames,
        inputMetadata: s.inputMetadata,
        outputMetadata: s.outputMetadata,
        async run(inputName, input) {
          const t = new ort.Tensor(input.type, input.data as Float32Array, input.dims);
          // run() defers its synchronous work with setImmediate: time from inside that callback's turn.
          const t0 = performance.now();
          const out = await s.run({ [inputName]: t });
          return { outputs: out as Record<string, TensorLike>, input: input.data, computeMs: performance.now() - t0 };
        },
        release: () => s.release(),
      };
    },
    async close() {},
  };
}

const WORKER_SOURCE = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const ort = require(workerData.ortPath);
ort.env.logLevel = workerData.logLevel;
let session = null;
function reply(msg, transfer) {
  try { parentPort.postMessage(msg, transfer); }
  catch (e) { parentPort.postMessage(msg); }
}
parentPort.on('message', async (m) => {
  try {
    if (m.kind === 'create') {
      session = await ort.InferenceSession.create(m.path, m.options);
      reply({ id: m.id, ok: true, inputNames: session.inputNames, outputNames: session.outputNames,
        inputMetadata: session.inputMetadata, outputMetadata: session.outputMetadata });
    } else if (m.kind === 'run') {
      const t = new ort.Tensor(m.input.type, m.input.data, m.input.dims);
      const t0 = performance.now();
      const out = await session.run({ [m.name]: t });
      const ms = performance.now() - t0;
      const outputs = {};
      const transfer = [m.input.data.buffer];
      for (const k of Object.keys(out)) {
        const o = out[k];
        outputs[k] = { type: o.type, data: o.data, dims: o.dims };
        if (o.data && o.data.buffer && o.data.byteOffset === 0 && o.data.byteLength === o.data.buffer.byteLength) transfer.push(o.data.buffer);
      }
      reply({ id: m.id, ok: true, outputs, input: m.input.data, ms }, transfer);
    } else if (m.kind === 'release') {
      if (session) await session.release();
      session = null;
      reply({ id: m.id, ok: true });
    }
  } catch (e) {
    reply({ id: m.id, ok: false, error: String(e && e.message || e) });
  }
});
`;

interface WorkerReply {
  id: number;
  ok: boolean;
  error?: string;
  [k: string]: unknown;
}

/** Whether a typed array owns its whole buffer, so that transferring the buffer moves nothing else. */
function ownsBuffer(a: TensorArray): boolean {
  return a.byteOffset === 0 && a.byteLength === a.buffer.byteLength && !(a.buffer instanceof SharedArrayBuffer);
}

export function workerThreadFactory(logLevel: 'verbose' | 'info' | 'warning' | 'error' | 'fatal'): SessionFactory {
  const ortPath = createRequire(import.meta.url).resolve('onnxruntime-node');
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { ortPath, logLevel } });
  const pending = new Map<number, { resolve: (r: WorkerReply) => void; reject: (e: Error) => void }>();
  let nextId = 0;
  let dead: Error | undefined;
  // Idle workers do not keep the process alive, as an in-process session would not.
  worker.unref();
  const failAll = (err: Error) => {
    dead = err;
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };
  worker.on('message', (m: WorkerReply) => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (pending.size === 0) worker.unref();
    if (m.ok) p.resolve(m);
    else p.reject(new Error(m.error ?? 'inference worker failed'));
  });
  worker.on('error', (err) => failAll(err));
  worker.on('exit', (code) => failAll(new Error(`inference worker exited (code ${code})`)));
  const call = (msg: Record<string, unknown>, transfer: ArrayBuffer[] = []): Promise<WorkerReply> => {
    if (dead) return Promise.reject(dead);
    return new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      worker.ref();
      try {
        worker.postMessage({ ...msg, id }, transfer);
      } catch {
        // A buffer that cannot be transferred (e.g. external memory) is copied instead.
        worker.postMessage({ ...msg, id });
      }
    });
  };
  let created = false;
  return {
    async create(modelPath, options) {
      const r = await call({ kind: 'create', path: modelPath, options });
      created = true;
      return {
        thread: 'worker',
        inputNames: r.inputNames as string[],
        outputNames: r.outputNames as string[],
        inputMetadata: r.inputMetadata as ValueMetadata[],
        outputMetadata: r.outputMetadata as ValueMetadata[],
        async run(inputName, input) {
          const transfer = ownsBuffer(input.data) ? [input.data.buffer as ArrayBuffer] : [];
          const r2 = await call({ kind: 'run', name: inputName, input: { type: input.type, data: input.data, dims: input.dims } }, transfer);
          return { outputs: r2.outputs as Record<string, TensorLike>, input: r2.input as TensorArray, computeMs: r2.ms as number };
        },
        async release() {
          if (!dead) await call({ kind: 'release' }).catch(() => undefined);
          await worker.terminate();
        },
      };
    },
    async close() {
      if (!created) await worker.terminate();
    },
  };
}

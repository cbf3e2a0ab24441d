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
 * The worker's side is runtime/inference-worker.js, a plain-JavaScript module (it starts without the
 * TypeScript loader of this process) that runs the same from the sources and from the compiled
 * runtime bundle, with nothing but onnxruntime-node.
 */
import { readFileSync } from 'node:fs';
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
      await ensureOrtEnvironment(modelPath);
      const s = await ort.InferenceSession.create(modelPath, options);
      ortEnvironmentReady = true;
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

/** What inference-worker.js is asked (see its header for the replies). */
type WorkerRequest =
  | { kind: 'create'; path: string; options: ort.InferenceSession.SessionOptions }
  | { kind: 'run'; name: string; input: { type: TensorType; data: TensorArray; dims: readonly number[] } }
  | { kind: 'release' };

interface WorkerReply {
  id: number;
  ok: boolean;
  error?: string;
  [k: string]: unknown;
}

/** The worker module, beside this file in the sources and in the compiled bundle alike. */
export const INFERENCE_WORKER_URL = new URL('./inference-worker.js', import.meta.url);

/**
 * Bytes of this process's command line, as onnxruntime reads it (/proc/self/cmdline); where there is
 * no /proc, the arguments Node was given.
 */
export function commandLineBytes(): number {
  try {
    return readFileSync('/proc/self/cmdline').length;
  } catch {
    return [process.execPath, ...process.execArgv, ...process.argv.slice(1)].reduce((n, a) => n + Buffer.byteLength(a) + 1, 0);
  }
}

/**
 * Stack of an inference thread, MB, for a command line of `cmdlineBytes`.
 *
 * onnxruntime creates its process-wide environment with the first session, and doing so runs a
 * recursive match over /proc/self/cmdline that takes ~300 bytes of stack per byte of command line
 * (measured with onnxruntime-node 1.30 on x64: 90 KB of arguments need 24-28 MB). On Node's default
 * 4 MB worker stack that is a SIGSEGV (exit 139, no message) from ~14 KB on: `ssd detect model.onnx`
 * with 300 image paths. So the thread gets 512 bytes per byte of command line over a 16 MB floor;
 * a stack is reserved address space, and only the pages the recursion touches take memory.
 * test/runtime/detect-many.test.ts runs `ssd detect` on 500 paths.
 */
export function inferenceStackMb(cmdlineBytes = commandLineBytes()): number {
  return Math.max(16, Math.ceil((cmdlineBytes * 512) / (1024 * 1024)) + 8);
}

/**
 * The main thread's stack is fixed (ulimit -s, 8 MB as a rule): beyond this much command line it
 * cannot create onnxruntime's environment itself (it fails from ~28 KB), so mainThreadFactory has a
 * worker with a large enough stack create it first (see ensureOrtEnvironment).
 */
const MAIN_THREAD_CMDLINE_BYTES = 8 * 1024;

/** Set once any session was created in this process: onnxruntime's environment exists from then on. */
let ortEnvironmentReady = false;

/**
 * Creates onnxruntime's process-wide environment on a worker thread whose stack fits the command line
 * (the environment is created once per process, whichever thread creates the first session, and
 * sessions on other threads then reuse it). A session of `modelPath` is created and released to do so:
 * onnxruntime-node has no call that creates only the environment. A failure is left to the caller's
 * own session creation to report.
 */
async function ensureOrtEnvironment(modelPath: string): Promise<void> {
  if (ortEnvironmentReady || commandLineBytes() <= MAIN_THREAD_CMDLINE_BYTES) return;
  const factory = workerThreadFactory(ort.env.logLevel ?? 'warning');
  try {
    const session = await factory.create(modelPath, { executionProviders: ['cpu'] });
    await session.release();
  } catch {
    await factory.close();
  }
}

/** Whether a typed array owns its whole buffer, so that transferring the buffer moves nothing else. */
function ownsBuffer(a: TensorArray): boolean {
  return a.byteOffset === 0 && a.byteLength === a.buffer.byteLength && !(a.buffer instanceof SharedArrayBuffer);
}

export function workerThreadFactory(logLevel: 'verbose' | 'info' | 'warning' | 'error' | 'fatal'): SessionFactory {
  const ortPath = createRequire(import.meta.url).resolve('onnxruntime-node');
  // execArgv []: the worker is plain JavaScript with no use for this process's flags, and some of them
  // (--input-type, a TypeScript loader's --import) are wrong or slow for it.
  const worker = new Worker(INFERENCE_WORKER_URL, { workerData: { ortPath, logLevel }, execArgv: [], resourceLimits: { stackSizeMb: inferenceStackMb() } });
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
  const call = (msg: WorkerRequest, transfer: ArrayBuffer[] = []): Promise<WorkerReply> => {
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
      ortEnvironmentReady = true;
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

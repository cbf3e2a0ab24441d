// @ts-check
/**
 * The inference thread's side of runtime/inference-thread.ts: one onnxruntime session, driven by
 * messages. Plain JavaScript (ESM), not TypeScript: a worker starts as a fresh module loader, without
 * the tsx or vitest hooks of the process that spawned it, so this file must run as it is, from the
 * sources and from the compiled runtime bundle alike (deploy/bundle.ts copies it next to the
 * compiled inference-thread.js, which loads it with new URL('./inference-worker.js', import.meta.url)).
 *
 * Protocol (the types are WorkerRequest / WorkerReply in inference-thread.ts):
 *   { id, kind: 'create', path, options }        -> { id, ok, inputNames, outputNames, inputMetadata, outputMetadata }
 *   { id, kind: 'run', name, input: {type, data, dims} } -> { id, ok, outputs, input, ms }  (buffers transferred)
 *   { id, kind: 'release' }                      -> { id, ok }
 *   any failure                                  -> { id, ok: false, error }
 */
import { createRequire } from 'node:module';
import { parentPort, workerData } from 'node:worker_threads';

if (!parentPort) throw new Error('inference-worker.js runs only as a worker thread (see inference-thread.ts)');
const port = parentPort;

// The same onnxruntime-node installation the spawning thread resolved (workerData.ortPath), so that
// both threads agree on the binding even where several copies are installed.
const ort = createRequire(import.meta.url)(workerData.ortPath);
ort.env.logLevel = workerData.logLevel;

/** @type {any} */
let session = null;

/**
 * Posts a reply, moving `transfer` buffers; a buffer that cannot be moved (onnxruntime may hand out
 * external memory) makes it a copy instead.
 * @param {Record<string, unknown>} msg
 * @param {ArrayBuffer[]} [transfer]
 */
function reply(msg, transfer = []) {
  try {
    port.postMessage(msg, transfer);
  } catch {
    port.postMessage(msg);
  }
}

/** @param {unknown} v */
function ownsBuffer(v) {
  const a = /** @type {ArrayBufferView | undefined} */ (v);
  return !!a && a.buffer instanceof ArrayBuffer && a.byteOffset === 0 && a.byteLength === a.buffer.byteLength;
}

port.on('message', async (/** @type {any} */ m) => {
  try {
    if (m.kind === 'create') {
      session = await ort.InferenceSession.create(m.path, m.options);
      reply({
        id: m.id, ok: true, inputNames: session.inputNames, outputNames: session.outputNames,
        inputMetadata: session.inputMetadata, outputMetadata: session.outputMetadata,
      });
    } else if (m.kind === 'run') {
      if (!session) throw new Error('no session (create it first)');
      const t = new ort.Tensor(m.input.type, m.input.data, m.input.dims);
      const t0 = performance.now();
      const out = await session.run({ [m.name]: t });
      const ms = performance.now() - t0;
      /** @type {Record<string, {type: string, data: unknown, dims: readonly number[]}>} */
      const outputs = {};
      /** @type {ArrayBuffer[]} */
      const transfer = ownsBuffer(m.input.data) ? [m.input.data.buffer] : [];
      for (const k of Object.keys(out)) {
        const o = out[k];
        outputs[k] = { type: o.type, data: o.data, dims: o.dims };
        if (ownsBuffer(o.data)) transfer.push(o.data.buffer);
      }
      reply({ id: m.id, ok: true, outputs, input: m.input.data, ms }, transfer);
    } else if (m.kind === 'release') {
      if (session) await session.release();
      session = null;
      reply({ id: m.id, ok: true });
    } else {
      throw new Error(`unknown request ${JSON.stringify(m.kind)}`);
    }
  } catch (e) {
    reply({ id: m.id, ok: false, error: String((e && /** @type {Error} */ (e).message) || e) });
  }
});

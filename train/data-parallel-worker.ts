/**
 * A data-parallel worker thread (data-parallel.ts): holds a copy of the model on its own backend
 * instance, and for each share it is sent, loads the trainable weights the trainer published (when
 * they changed), computes the share's gradients with the trainer's own code (gradients.ts) and writes
 * them into its shared gradient buffer, in the layout the trainer reads.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from './backend.js';
import type { WorkerInit, WorkerReply, WorkerRequest } from './data-parallel.js';
import { canonicalNames, shareGradients } from './gradients.js';
import { createSsdModel } from './model.js';

if (!parentPort) throw new Error('data-parallel-worker runs only as a worker thread (see data-parallel.ts)');
const port = parentPort;
const init = workerData as WorkerInit;
const reply = (m: WorkerReply): void => port.postMessage(m);

try {
  // Quiet: the trainer's thread has already said which backend runs.
  await selectBackend(init.backend, { log: () => {} });
  const model = createSsdModel(init.spec, { weights: init.weights, frozen: new Set(init.frozen) });
  const canonical = canonicalNames(model);
  const weights = new Float32Array(init.weightsShared);
  const grads = new Float32Array(init.gradsShared);
  let version = -1;

  port.on('message', (req: WorkerRequest) => {
    if (req.kind === 'stop') {
      // Free the model's tensors and let the thread end by itself: with the port closed and nothing
      // else pending its event loop is empty (worker-start.ts stopWorker).
      model.dispose();
      port.close();
      return;
    }
    try {
      if (req.version !== version) {
        for (const slot of init.layout) {
          tf.tidy(() => model.variables.get(slot.name)!.assign(tf.tensor(weights.subarray(slot.offset, slot.offset + slot.size), slot.shape, 'float32')));
        }
        version = req.version;
      }
      const s = shareGradients(model, {
        size: req.size, imagesNHWC: req.imagesNHWC, locTargets: req.locTargets, labels: req.labels, numPositive: 0, ids: [],
      }, req.loss, req.normalizer, canonical);
      for (const slot of init.layout) {
        const g = s.grads.get(slot.name);
        if (g) grads.set(g.dataSync() as Float32Array, slot.offset);
        else grads.fill(0, slot.offset, slot.offset + slot.size);
      }
      for (const g of s.grads.values()) g.dispose();
      reply({ kind: 'done', id: req.id, parts: s.parts });
    } catch (err) {
      reply({ kind: 'error', id: req.id, message: err instanceof Error ? err.message : String(err) });
    }
  });
  reply({ kind: 'ready' });
} catch (err) {
  reply({ kind: 'failed', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
}

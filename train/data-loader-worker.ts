/**
 * The loader thread (data-loader-thread.ts): builds the micro-batches it is asked for, in order, with
 * the trainer's own DataLoader and augmentation pipeline, and sends each back with its buffers
 * transferred (no copy).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { defaultBoxes } from '../core/default-boxes.js';
import { buildPipeline } from './augment/pipeline.js';
import { DataLoader, ImageSource } from './data-loader.js';
import type { LoaderReply, LoaderRequest, LoaderThreadInit } from './data-loader-thread.js';

if (!parentPort) throw new Error('data-loader-worker runs only as a worker thread (see data-loader-thread.ts)');
const port = parentPort;
const init = workerData as LoaderThreadInit;
const reply = (m: LoaderReply, transfer: ArrayBuffer[] = []): void => port.postMessage(m, transfer);

try {
  const warn = (line: string): void => reply({ kind: 'warn', line });
  const steps = buildPipeline(init.augment, init.spec);
  // prefetch 0: the requests are the prefetching; the thread builds one batch at a time.
  const loader = new DataLoader({ dataset: init.dataset, spec: init.spec, steps, batchSize: init.batchSize, seed: init.seed, prefetch: 0, images: new ImageSource(init.cacheBytes, warn), warn }, defaultBoxes(init.spec));
  const queue: number[] = [];
  let stopping = false;
  let busy = false;
  const pump = async (): Promise<void> => {
    if (busy) return;
    busy = true;
    while (queue.length && !stopping) {
      const m = queue.shift()!;
      try {
        const batch = await loader.batch(m);
        reply({ kind: 'batch', m, batch }, [batch.imagesNHWC.buffer, batch.locTargets.buffer, batch.labels.buffer] as ArrayBuffer[]);
      } catch (err) {
        reply({ kind: 'error', m, message: err instanceof Error ? err.message : String(err) });
      }
    }
    busy = false;
    if (stopping) port.close();
  };
  port.on('message', (req: LoaderRequest) => {
    if (req.kind === 'stop') {
      stopping = true;
      if (!busy) port.close();
      return;
    }
    queue.push(req.m);
    void pump();
  });
  reply({ kind: 'ready' });
} catch (err) {
  reply({ kind: 'failed', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
}

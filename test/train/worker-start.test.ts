// train/worker-start.ts workerReady: the one start-up wait of the training threads (data-parallel
// workers, the loader thread): ready resolves; a reported failure, an uncaught error or an early exit
// each reject with one line naming the thread.
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { workerReady } from '../../train/worker-start.js';

const worker = (body: string) => new Worker(`const { parentPort } = require('node:worker_threads'); ${body}`, { eval: true });

describe('workerReady', () => {
  it('resolves on ready; rejects on failed (first line), an uncaught error, or an exit before ready', async () => {
    const ok = worker("parentPort.postMessage({ kind: 'ready' }); setTimeout(() => {}, 10);");
    await expect(workerReady(ok, 'test thread')).resolves.toBeUndefined();
    await ok.terminate();
    const failed = worker("parentPort.postMessage({ kind: 'failed', message: 'no backend\\n  at somewhere' }); setTimeout(() => {}, 10);");
    await expect(workerReady(failed, 'test thread')).rejects.toThrow(/^test thread could not start: no backend$/);
    await failed.terminate();
    await expect(workerReady(worker("throw new Error('bad init')"), 'loader')).rejects.toThrow('loader could not start: bad init');
    await expect(workerReady(worker('process.exit(3)'), 'worker 2')).rejects.toThrow('worker 2 exited while starting (code 3)');
  });
});

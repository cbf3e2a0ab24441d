// @ts-check
/**
 * Starts a training worker thread from the TypeScript sources (worker-start.ts): a worker begins
 * without the tsx or vitest hooks of the thread that spawned it, so this plain module registers tsx's
 * loader, then imports the worker (workerData.entry). Compiled code starts the worker
 * (data-parallel-worker.js, data-loader-worker.js) directly and does not need it.
 */
import { workerData } from 'node:worker_threads';

const { register } = await import('tsx/esm/api');
register();
await import(workerData.entry);

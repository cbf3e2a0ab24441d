// @ts-check
/**
 * Starts a data-parallel worker thread from the TypeScript sources (data-parallel.ts): a worker begins
 * without the tsx or vitest hooks of the thread that spawned it, so this plain module registers tsx's
 * loader, then imports the worker (workerData.entry). Compiled code starts data-parallel-worker.js
 * directly and does not need it.
 */
import { workerData } from 'node:worker_threads';

const { register } = await import('tsx/esm/api');
register();
await import(workerData.entry);

/**
 * How a training worker thread starts (data-parallel workers, the loader thread). From the sources a
 * worker is TypeScript and starts through worker-bootstrap.js, which registers tsx's loader (a
 * worker begins without the hooks of the thread that spawned it) and then imports `entry`; compiled,
 * the worker is plain JavaScript next to this file and starts directly.
 */
import type { Worker } from 'node:worker_threads';
import { SsdError } from '../core/errors.js';

export function workerStart(name: string): { entry: string; start: URL } {
  const typescript = import.meta.url.endsWith('.ts');
  const entry = new URL(`./${name}.${typescript ? 'ts' : 'js'}`, import.meta.url);
  return { entry: entry.href, start: typescript ? new URL('./worker-bootstrap.js', import.meta.url) : entry };
}

/**
 * Resolves when a starting worker posts `{ kind: 'ready' }`; rejects, naming it as `name`, when it
 * posts `{ kind: 'failed', message }`, emits an error or exits first.
 */
export function workerReady(worker: Worker, name: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onMessage = (m: { kind: string; message?: string }): void => {
      if (m.kind === 'ready') { worker.off('message', onMessage); resolve(); }
      if (m.kind === 'failed') { worker.off('message', onMessage); reject(new SsdError(`${name} could not start: ${(m.message ?? '').split('\n')[0]}`)); }
    };
    worker.on('message', onMessage);
    worker.once('error', (err) => reject(new SsdError(`${name} could not start: ${err.message}`, { cause: err })));
    worker.once('exit', (code) => reject(new SsdError(`${name} exited while starting (code ${code})`)));
  });
}

/**
 * Ends a worker the way it began: asked with `{ kind: 'stop' }`, it frees what it holds and closes its
 * port, and the thread exits when its event loop is empty (`exited`: a promise of its 'exit' event,
 * made when the worker was). terminate() stops a thread wherever it is, and a thread that holds
 * libtensorflow is better not stopped mid-call: one CI run under load lost its test process while such
 * threads were being terminated. A worker that has not gone after `graceMs` (a hang) is terminated
 * all the same.
 */
export async function stopWorker(worker: Worker, exited: Promise<void>, graceMs = 30_000): Promise<void> {
  if (worker.threadId < 0) return;
  worker.postMessage({ kind: 'stop' });
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => { timer = setTimeout(() => resolve('late'), graceMs); });
  const how = await Promise.race([exited.then(() => 'exited' as const), late]);
  clearTimeout(timer);
  if (how === 'late') await worker.terminate();
}

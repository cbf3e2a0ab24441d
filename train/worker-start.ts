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

/**
 * How a training worker thread starts (data-parallel workers, the loader thread). From the sources a
 * worker is TypeScript and starts through worker-bootstrap.js, which registers tsx's loader (a
 * worker begins without the hooks of the thread that spawned it) and then imports `entry`; compiled,
 * the worker is plain JavaScript next to this file and starts directly.
 */
export function workerStart(name: string): { entry: string; start: URL } {
  const typescript = import.meta.url.endsWith('.ts');
  const entry = new URL(`./${name}.${typescript ? 'ts' : 'js'}`, import.meta.url);
  return { entry: entry.href, start: typescript ? new URL('./worker-bootstrap.js', import.meta.url) : entry };
}

#!/usr/bin/env node
// Entry point of the `ssd` CLI. Runs the TypeScript sources through tsx in a checkout, or the compiled
// dist/ in a deployed runtime bundle (which ships no .ts files).
// Each pending GStreamer pull() holds a libuv threadpool thread, so the pool must be sized before the
// first asynchronous I/O of the process; nothing above this line may start any.
if (!process.env.UV_THREADPOOL_SIZE) process.env.UV_THREADPOOL_SIZE = '16';

import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'cli', 'main.ts');
const compiled = join(root, 'dist', 'cli', 'main.js');

let main;
if (existsSync(source) && process.env.SSD_USE_DIST !== '1') {
  const { register } = await import('tsx/esm/api');
  register();
  main = await import(pathToFileURL(source).href);
} else {
  main = await import(pathToFileURL(compiled).href);
}
process.exitCode = await main.main(process.argv.slice(2));

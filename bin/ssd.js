#!/usr/bin/env node
// Entry point of the `ssd` CLI. Runs the TypeScript sources through tsx in a checkout, or the compiled
// dist/ in a deployed runtime bundle (which ships no .ts files).
// Each GStreamer source of `ssd stream` holds two libuv threadpool threads (its pending pull() and its
// bus poll; runtime/stream/gst.ts), and libuv sizes its pool once, from UV_THREADPOOL_SIZE, at its
// first use. For an ES module entry that first use is Node's own loader reading this file, so setting
// the variable here is too late (the pool already has its default 4 threads). So `ssd stream` without
// the variable runs itself again as a child with the pool sized from the command line: every word
// after "stream" that is not a flag might be a source (flag values count too: spare threads cost
// nothing), plus each --pipeline, and 4 threads stay for sharp, files and the session. An explicit
// UV_THREADPOOL_SIZE is used as given (ssd stream refuses more sources than it fits, with the fix).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';

const argv = process.argv.slice(2);
// The command is the first word that is not a flag.
const streamAt = argv.findIndex((w) => !w.startsWith('-'));
if (streamAt >= 0 && argv[streamAt] === 'stream' && !process.env.UV_THREADPOOL_SIZE) {
  const words = argv.slice(streamAt + 1);
  const sources = words.filter((w) => !w.startsWith('-')).length + words.filter((w) => w === '--pipeline' || w.startsWith('--pipeline=')).length;
  // --record adds two per source: the recording appsink's pull and a finishing clip's bus poll (runtime/stream/record.ts).
  const perSource = 2 + (words.some((w) => w === '--record' || w.startsWith('--record=')) ? 2 : 0);
  // --http/--hls add the display branch's pull, --hls the HLS writer's bus poll (runtime/stream/video-out.ts).
  const given = (flag) => words.some((w) => w === flag || w.startsWith(`${flag}=`));
  const videoOut = (given('--http') || given('--hls') ? 1 : 0) + (given('--hls') ? 1 : 0);
  const size = String(Math.min(1024, Math.max(16, (perSource + videoOut) * sources + 4)));
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    // glibc gives each thread that mallocs its own arena (up to 8 per core), and GStreamer's streaming
    // threads, the pool and libvips allocate every frame: in the soak runs (docs/stream.md "Soak") the
    // resident size rose in 10-15 MB steps with the JS heap flat; two arenas kept it lower and flat. glibc
    // reads the variable when the process starts, hence here. A value the user set is kept.
    env: { ...process.env, UV_THREADPOOL_SIZE: size, SSD_POOL_CHILD: '1', MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? '2' },
  });
  // Ctrl-C on a terminal reaches both processes; a signal sent to this one alone (a supervisor, a
  // test) is passed on. SIGINT goes on as SIGTERM so that the child, which may get the terminal's
  // SIGINT as well, never sees a second SIGINT (its first one is handled once; a second would kill it).
  const forward = { SIGINT: 'SIGTERM', SIGTERM: 'SIGTERM', SIGHUP: 'SIGHUP' };
  for (const [sig, as] of Object.entries(forward)) process.on(sig, () => child.kill(as));
  child.on('exit', (code, signal) => {
    for (const sig of Object.keys(forward)) process.removeAllListeners(sig);
    if (signal) process.kill(process.pid, signal);
    else process.exit(code ?? 1);
  });
} else {
  if (process.env.SSD_POOL_CHILD === '1' && process.channel) {
    // A parent killed outright (SIGKILL) cannot pass anything on: its IPC channel closing is the sign.
    process.channel.unref();
    process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
  }
  await run();
}

async function run() {
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
}

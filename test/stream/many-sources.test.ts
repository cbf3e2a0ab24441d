// Many cameras in one process: bin/ssd.js sizes the libuv pool from the command line before libuv
// starts, so 16 GStreamer sources (2 pool threads each) run in one `ssd stream`.
import { describe, expect, it } from 'vitest';
import { gstAvailable } from '../../runtime/stream/gst.js';
import { runSsdStream, stop, tinyModel } from './helpers.js';
import { tempDir } from '../helpers/temp-dir.js';
import { WAIT_MS } from '../helpers/wait.js';

describe.skipIf(!gstAvailable())('16 sources in one process', { timeout: 3 * WAIT_MS }, () => {
  it('every one of 16 test:// sources delivers frames; Ctrl-C ends the run cleanly', async () => {
    const model = tinyModel(tempDir('ssd-many-'));
    const uris = Array.from({ length: 16 }, (_, i) => `test://${i % 2 ? 'ball' : 'smpte'}?width=64&height=48&fps=15`);
    // No UV_THREADPOOL_SIZE from outside (child_process leaves undefined variables out).
    const env = { UV_THREADPOOL_SIZE: undefined };
    const run = runSsdStream([...uris, '--model', model, '--connect-timeout', String(WAIT_MS / 1000)], 3 * WAIT_MS, env);
    try {
      const ids = Array.from({ length: 16 }, (_, i) => `src${i}`);
      await run.until((lines) => ids.every((id) => lines.filter((l) => l.source === id).length >= 3), 'three frames from each of the 16 sources');
      const sizes = new Set(run.lines.map((l) => `${String(l.width)}x${String(l.height)}`));
      expect(sizes).toEqual(new Set(['64x48']));
      // A camera's frame is taken only when its turn comes (scheduler.ts), so every frame taken is
      // detected: each source's frame numbers go 1, 2, 3, ... without a gap.
      for (const id of ids) {
        const frames = run.lines.filter((l) => l.source === id).map((l) => l.frame as number);
        expect(frames.every((f, i) => f === i + 1), `${id}: ${frames.join(',')}`).toBe(true);
      }
      run.proc.kill('SIGINT');
      expect(await run.exited).toBe(0);
      expect(run.stderr()).toMatch(/stream: \d+ frames in .*stopped/);
    } finally {
      await stop(run.proc);
    }
  });
});

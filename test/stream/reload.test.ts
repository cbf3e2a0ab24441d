// Hot model reload (runtime/stream/reload.ts) on a real `ssd stream` process: SIGHUP reloads; a model
// file replaced by a truncated copy, or by a model that does not fit the running pipeline, is refused
// with one line; a good copy is loaded. The stream never stops: its frame numbers go on without a gap.
import { copyFileSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Detector } from '../../runtime/detector.js';
import { gstAvailable } from '../../runtime/stream/gst.js';
import { DetectorSlot } from '../../runtime/stream/reload.js';
import { ROOT, freePort, runSsdStream, stop, tinyModel } from './helpers.js';
import { tempDir } from '../helpers/temp-dir.js';
import { WAIT_MS } from '../helpers/wait.js';

const count = (text: string, re: RegExp) => text.split('\n').filter((l) => re.test(l)).length;

describe('DetectorSlot: swapped between rounds, the old session disposed after its last round', () => {
  const fake = (name: string, disposed: string[]) => ({ name, dispose: async () => { disposed.push(name); } }) as unknown as Detector;

  it('a round in flight keeps the old session until it releases it; later rounds get the new one', async () => {
    const disposed: string[] = [];
    const a = fake('a', disposed);
    const b = fake('b', disposed);
    const slot = new DetectorSlot(a);
    const round = slot.acquire();
    expect(round.detector).toBe(a);
    slot.swap(b);
    expect(slot.acquire().detector).toBe(b);
    expect(disposed).toEqual([]);
    round.release();
    round.release();
    await slot.dispose();
    expect(disposed).toEqual(['a', 'b']);
  });

  it('no round in flight: the old session goes at once', async () => {
    const disposed: string[] = [];
    const slot = new DetectorSlot(fake('a', disposed));
    slot.acquire().release();
    slot.swap(fake('b', disposed));
    expect(disposed).toEqual(['a']);
    await slot.dispose();
    expect(disposed).toEqual(['a', 'b']);
  });
});

describe.skipIf(!gstAvailable())('hot model reload in ssd stream', { timeout: 4 * WAIT_MS }, () => {
  it('SIGHUP and file changes swap the model, bad ones are refused, and frames never stop', async () => {
    const dir = tempDir('ssd-reload-');
    const shipped = join(ROOT, 'models', 'digits-ssd.onnx');
    const model = join(dir, 'model.onnx');
    copyFileSync(shipped, model);
    // The digits model takes 96x96; an ssd-tiny of 64x64 does not fit a pipeline built for 96x96.
    const other = tinyModel(dir, { inputSize: 64 });
    const port = await freePort();
    const run = runSsdStream(['test://ball?width=160&height=120&fps=15', '--model', model, '--http', `127.0.0.1:${port}`, '--connect-timeout', String(WAIT_MS / 1000)], 4 * WAIT_MS);
    const framesAfter = async (what: string) => {
      const n = run.lines.length;
      await run.until((lines) => lines.length >= n + 5, `five more frames after ${what}`);
    };
    const logged = (re: RegExp, times: number, what: string) => run.until(() => count(run.stderr(), re) >= times, what);
    const reloaded = /^model reload \((SIGHUP|file changed)\): ssd-digits \(model\.onnx.*\) -> ssd-digits \(model\.onnx.*\), loaded in \d+ ms$/;
    const refused = /^model reload \(file changed\): refused .*model\.onnx: .*; still running ssd-digits/;
    try {
      await run.until((lines) => lines.length >= 3, 'the first frames');

      run.proc.kill('SIGHUP');
      await logged(reloaded, 1, 'the reload line after SIGHUP');
      await framesAfter('the SIGHUP reload');

      // A broken file written over the model in place, as cp does. (Should the stream look between
      // the truncation and the write, it refuses the empty file too: hence "at least" below.)
      writeFileSync(model, readFileSync(shipped).subarray(0, 100_000));
      await logged(/refused .*not a valid ONNX file/, 1, 'the refusal of a truncated model');
      expect(count(run.stderr(), refused)).toBeGreaterThanOrEqual(1);
      await framesAfter('the truncated model');

      // A model of another input size, renamed over the file (as editors save).
      copyFileSync(other, join(dir, 'next.onnx'));
      renameSync(join(dir, 'next.onnx'), model);
      await logged(/refused .*: it takes 64x64 (RGB|BGR) frames but the running pipelines deliver 96x96 (RGB|BGR)/, 1, 'the refusal of a model that does not fit the pipeline');
      await framesAfter('the misfit model');

      // A good copy, renamed over the file.
      copyFileSync(shipped, join(dir, 'good.onnx'));
      renameSync(join(dir, 'good.onnx'), model);
      await logged(reloaded, 2, 'the reload of a good copy');
      await framesAfter('the good copy');

      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(metrics).toMatch(/^ssd_model_reloads_total\{result="ok"\} 2$/m);
      const refusedTotal = Number(/^ssd_model_reloads_total\{result="refused"\} (\d+)$/m.exec(metrics)?.[1]);
      expect(refusedTotal).toBeGreaterThanOrEqual(2);
      expect(refusedTotal).toBe(count(run.stderr(), refused));

      run.proc.kill('SIGINT');
      expect(await run.exited).toBe(0);
      // One source: every frame it delivered was detected, numbered 1, 2, 3, ... across the swaps.
      const frames = run.lines.map((l) => l.frame as number);
      expect(frames.every((f, i) => f === i + 1)).toBe(true);
      expect(count(run.stderr(), reloaded)).toBe(2);
    } finally {
      await stop(run.proc);
    }
  });
});

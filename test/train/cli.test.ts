import { readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../cli/main.js';
import { loadCheckpoint } from '../../core/checkpoint.js';
import { tempDir } from '../helpers/temp-dir.js';
import { vocTree } from './helpers.js';

/** `ssd train` errors: one line naming the flag or file, non-zero exit, no stack. */
describe('ssd train (CLI errors)', () => {
  afterEach(() => vi.restoreAllMocks());

  async function run(args: string[]): Promise<{ code: number; err: string }> {
    const lines: string[] = [];
    vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => { lines.push(a.join(' ')); });
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const code = await main(['train', ...args]);
    return { code, err: lines.join('\n') };
  }

  it('names what is missing or wrong', async () => {
    const out = tempDir('ssd-train-cli-');
    let r = await run(['--data', 'digits']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^ssd train: --out DIR is required/);
    r = await run(['--out', out, '--data', 'digits', '--config', 'nope']);
    expect(r.err).toMatch(/unknown config "nope"/);
    r = await run(['--out', out, '--data', 'digits', '--config', 'digits', '--lr', 'fast']);
    expect(r.err).toMatch(/--lr must be a number/);
    r = await run(['--out', out, '--data', 'digits', '--config', 'digits', '--steps', '10,x']);
    expect(r.err).toMatch(/--steps must be whole numbers/);
    r = await run(['--out', out, '--data', 'digits', '--config', 'digits', '--backend', 'gpu']);
    expect(r.err).toMatch(/--backend must be one of tensorflow, wasm, cpu/);
    r = await run(['--out', out, '--data', '/no/such/voc', '--config', 'ssd300', '--iterations', '1']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/\/no\/such\/voc: no such directory/);
    r = await run(['--out', out, '--bogus']);
    expect(r.err).toMatch(/bogus/);
    for (const line of r.err.split('\n')) expect(line).not.toMatch(/^\s+at /);
  });

  it('--iterations scales the config decay steps and says so; --labels names the classes; the last line names the metric', async () => {
    const dir = tempDir('ssd-train-cli-run-');
    const root = await vocTree(dir, {
      trainval: [[['cat', [4, 4, 30, 30]]], [['dog', [10, 10, 50, 40]]]],
      test: [[['dog', [8, 8, 40, 40]]]],
    });
    const labels = join(dir, 'classes.txt');
    writeFileSync(labels, 'dog\ncat\n');
    const config = join(dir, 'tiny.json');
    writeFileSync(config, JSON.stringify({ base: 'ssd-tiny', train: { iterations: 400, steps: [300, 350], batchSize: 2, valEvery: 0, checkpointEvery: 0 } }));
    const stderr: string[] = [];
    const stdout: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => { stderr.push(String(chunk)); return true; });
    vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => { stdout.push(a.join(' ')); });
    vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => { stderr.push(a.join(' ')); });
    const out = join(dir, 'run');
    const code = await main(['train', '--config', config, '--data', root, '--labels', labels, '--out', out, '--iterations', '4', '--backend', 'wasm', '--quiet']);
    expect(code, stderr.join('')).toBe(0);
    expect(stderr.join('')).toContain('schedule: --iterations 4: 4 iterations instead of 400; lr decay steps 300, 350 -> 3, 4 (same fractions of the run; --steps sets them)');
    expect(readFileSync(join(out, 'labels.txt'), 'utf8')).toBe('dog\ncat\n');
    expect(loadCheckpoint(out).training!.config.train).toMatchObject({ iterations: 4, steps: [3, 4] });
    expect(stdout).toEqual([expect.stringMatching(/^VOC07 mAP \d\.\d{4} after 4 iterations/)]);
    // Without --threads, a batch of 2 on a CPU backend is split over one thread per core (at most 2).
    const shares = Math.min(2, availableParallelism());
    if (shares > 1) expect(stderr.join('')).toContain(`data-parallel: each batch split over 2 threads (one per `);
    else expect(stderr.join('')).not.toContain('data-parallel:');
  }, 600_000);
});

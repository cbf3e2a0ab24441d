import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { CHECKPOINT_FILE, removeStaleCheckpointTemps } from '../../core/checkpoint.js';
import { main } from '../../cli/main.js';
import { ssdTiny } from '../../core/specs.js';
import { selectBackend } from '../../train/backend.js';
import { DEFAULT_RECIPE, type TrainConfig } from '../../train/config.js';
import { train } from '../../train/trainer.js';
import { waitFor } from '../helpers/wait.js';
import { tempDir } from '../helpers/temp-dir.js';
import { digitsDataset } from './helpers.js';

const ROOT = new URL('../../', import.meta.url).pathname;

/**
 * Starts a process that writes `target` with writeFileAtomic and SIGKILLs it once the temporary file
 * holds its first bytes (it then waits forever, before the rename): the orphan a kill -9 of a trainer
 * leaves while it saves a checkpoint. Returns the orphan's name.
 */
async function orphanTemp(dir: string, target: string): Promise<string> {
  const marker = join(dir, 'writer-ready');
  const script = [
    `const { writeFileAtomic } = await import(${JSON.stringify(pathToFileURL(join(ROOT, 'core', 'atomic-write.ts')).href)});`,
    `const { writeFileSync } = await import('node:fs');`,
    `function* parts() { yield new Uint8Array(4096).fill(7); writeFileSync(${JSON.stringify(marker)}, 'x'); Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); }`,
    `writeFileAtomic(${JSON.stringify(join(dir, target))}, parts());`,
  ].join(' ');
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  await waitFor(() => existsSync(marker), 'the writer to start its temporary file', { detail: () => stderr });
  child.kill('SIGKILL');
  expect(await exited).toBe('SIGKILL');
  const temps = readdirSync(dir).filter((f) => f.startsWith(`.${target}.${child.pid}.`) && f.endsWith('.tmp'));
  expect(temps).toHaveLength(1);
  expect(statSync(join(dir, temps[0]!)).size).toBe(4096);
  return temps[0]!;
}

const labels = ['background', ...'0123456789'.split('')];
const spec = { ...ssdTiny(labels, 64), name: 'tiny64-bn', batchNorm: true };
const recipe = { ...DEFAULT_RECIPE, iterations: 1, batchSize: 2, warmup: 0, steps: [], valEvery: 0, checkpointEvery: 0, seed: 5 };

describe('a run directory: nothing half-done', () => {
  beforeAll(async () => {
    await selectBackend('wasm', { log: () => {} });
  });
  afterEach(() => vi.restoreAllMocks());

  it('temporary checkpoints orphaned by kill -9 are removed when a run starts; live writes and other files are not', async () => {
    const out = tempDir('ssd-train-orphans-');
    const orphan = await orphanTemp(out, CHECKPOINT_FILE);
    // A write in progress (this process) and files that only look alike stay.
    const live = `.${CHECKPOINT_FILE}.${process.pid}.0123abcd.tmp`;
    const others = [live, `.${CHECKPOINT_FILE}.999999999.zzzzzzzz.tmp`, `.notes.txt.1.0123abcd.tmp`, 'checkpoint.ssdckpt.tmp'];
    for (const f of others) writeFileSync(join(out, f), 'keep');
    const ds = await digitsDataset(tempDir('ssd-train-orphans-data-'), 2, { size: 64, minDigitSize: 16, maxDigitSize: 30 });
    const lines: string[] = [];
    await train({ config: { name: 'orphans', spec, augment: [{ type: 'Resize' }, { type: 'Normalize' }], train: recipe }, trainSet: ds, outDir: out, progress: false, log: (l) => lines.push(l), handleSigint: false });
    const left = readdirSync(out);
    expect(left).not.toContain(orphan);
    for (const f of others) expect(left).toContain(f);
    expect(left).toContain(CHECKPOINT_FILE);
    expect(lines).toContain(`run ${out}: removed 1 temporary file(s) (0.0 MB) that an interrupted run left behind`);
    // The core function alone: nothing more to remove.
    expect(removeStaleCheckpointTemps(out)).toEqual([]);
  }, 600_000);

  it('a bad augmentation config leaves no run directory (from a config file, or given to the trainer)', async () => {
    const dir = tempDir('ssd-train-bad-augment-');
    const out = join(dir, 'run');
    const ds = await digitsDataset(join(dir, 'data'), 2, { size: 64, minDigitSize: 16, maxDigitSize: 30 });
    const bad: TrainConfig = { name: 'bad', spec, augment: [{ type: 'Resize' }, { type: 'RandomFlip', p: 3 }], train: recipe };
    await expect(train({ config: bad, trainSet: ds, outDir: out, progress: false, log: () => {}, handleSigint: false })).rejects.toThrow(/augment\[1\]: RandomFlip: probability/);
    expect(existsSync(out)).toBe(false);
    // Through the command line: the config is refused at load, before the data is read.
    const config = join(dir, 'bad.json');
    writeFileSync(config, JSON.stringify({ base: 'ssd-tiny', augment: [{ type: 'Resize' }, { type: 'Flip' }] }));
    const errors: string[] = [];
    vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => { errors.push(a.join(' ')); });
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    expect(await main(['train', '--config', config, '--data', join(dir, 'no-such-voc'), '--out', out])).toBe(1);
    expect(errors).toEqual([expect.stringMatching(/^ssd train: config .*bad\.json: augment\[1\]\.type must be one of .*got "Flip"/)]);
    expect(existsSync(out)).toBe(false);
  }, 600_000);
});

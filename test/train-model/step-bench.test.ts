/** The training-step benchmark's entry point: --help, bad input, SIGTERM; and its case syntax. */
import { spawn, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { parseCases } from '../../train/step-bench.js';

const SCRIPT = ['--import', 'tsx', 'scripts/bench-train-step.ts'];

describe('scripts/bench-train-step.ts', () => {
  it('--help prints the usage and runs nothing', () => {
    const r = spawnSync(process.execPath, [...SCRIPT, '--help'], { encoding: 'utf8', timeout: 120_000 });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^Usage: npx tsx scripts\/bench-train-step\.ts/);
    expect(r.stdout).toContain('--cases');
    expect(r.stderr).not.toContain('backend:');
  });

  it('an unknown flag or a bad case is one line and exit 2', () => {
    const r = spawnSync(process.execPath, [...SCRIPT, '--thread', '2'], { encoding: 'utf8', timeout: 120_000 });
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^bench-train-step: .*--thread/)]);
    const bad = spawnSync(process.execPath, [...SCRIPT, '--cases', 'digits:0'], { encoding: 'utf8', timeout: 120_000 });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/batch must be a whole number >= 1/);
  });

  it('SIGTERM stops it after the running step: partial table, exit 143', async () => {
    const child = spawn(process.execPath, [...SCRIPT, '--cases', 'ssd-digits:1:wasm:100000', '--warmup', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => { stdout += b.toString(); });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // Signal once a step has been timed (an event, not a guessed delay).
    await new Promise<void>((resolve, reject) => {
      child.stderr.on('data', (b: Buffer) => {
        stderr += b.toString();
        if (/step 1\/100000/.test(stderr)) resolve();
      });
      child.on('exit', () => reject(new Error(`exited before the first step: ${stderr}`)));
    });
    child.kill('SIGTERM');
    expect(await exited).toBe(143);
    expect(stderr).toContain('SIGTERM, stopping after this step');
    expect(stdout).toMatch(/\| ssd-digits \| 1 \| wasm \| \d+ \|/);
  }, 300_000);
});

describe('parseCases', () => {
  it('reads config:batch[:backends[:steps]]', () => {
    expect(parseCases('digits:8:tensorflow+wasm:20,ssd300:1,ssd512')).toEqual([
      { config: 'digits', batch: 8, backends: ['tensorflow', 'wasm'], steps: 20 },
      { config: 'ssd300', batch: 1 },
      { config: 'ssd512' },
    ]);
    expect(() => parseCases('ssd300:x')).toThrow(/batch must be a whole number/);
    expect(() => parseCases('ssd300:1:wasm:0')).toThrow(/steps must be a whole number/);
  });
});

import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../cli/main.js';
import { tempDir } from './helpers.js';

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
    const out = tempDir('cli');
    let r = await run(['--data', 'digits']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^ssd train: train: --out DIR is required/);
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
});

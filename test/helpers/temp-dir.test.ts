import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from './temp-dir.js';
import { WAIT_MS } from './wait.js';

const REPO = join(import.meta.dirname, '..', '..');

describe('tempDir', () => {
  it('makes a new empty directory under the OS temp dir with the prefix', () => {
    const a = tempDir('ssd-tempdir-self-');
    const b = tempDir('ssd-tempdir-self-');
    expect(a).not.toBe(b);
    expect(a.startsWith(join(tmpdir(), 'ssd-tempdir-self-'))).toBe(true);
    expect(statSync(a).isDirectory()).toBe(true);
  });

  it('removes every directory it made once the test file ends, from collection, hooks, passing and failing tests', () => {
    const log = join(tempDir('ssd-tempdir-log-'), 'dirs.txt');
    const r = spawnSync(process.execPath, [join(REPO, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--config', 'test/helpers/fixtures/vitest.config.ts'], {
      cwd: REPO, encoding: 'utf8', env: { ...process.env, TEMP_DIR_LOG: log }, timeout: WAIT_MS,
    });
    // One test of the fixture fails on purpose: vitest exits 1 (not killed, not crashed).
    expect(r.status, r.stdout + r.stderr).toBe(1);
    expect(r.stdout.replace(/\x1b\[[0-9;]*m/g, '')).toMatch(/1 failed.*1 passed|1 passed.*1 failed/);
    const dirs = readFileSync(log, 'utf8').trim().split('\n');
    expect(dirs).toHaveLength(5);
    for (const d of dirs) expect(existsSync(d), d).toBe(false);
  }, 2 * WAIT_MS);
});

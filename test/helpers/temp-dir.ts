/**
 * The one temporary-directory helper of the tests: every directory made through it is removed when
 * the test file that made it ends, passed or failed, whether it was made at collection time, in a
 * hook or inside a test.
 *
 * The cleanup is an afterAll registered when this module is first imported, i.e. while vitest
 * collects the importing test file (each file runs in its own module graph), so it belongs to that
 * file. Import it from test files only: scripts run outside vitest (benches, fixtures) have no
 * afterAll to register.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

const made: string[] = [];

afterAll(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A new empty directory under the OS temp dir, named `<prefix>XXXXXX`; removed after this file's tests. */
export function tempDir(prefix = 'ssd-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

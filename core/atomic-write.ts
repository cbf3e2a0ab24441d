import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readdirSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/**
 * Writes a file so that readers see either the old content or the new, never half of it: the bytes go
 * to a temporary file in the same directory, are flushed, and the temporary file is renamed over the
 * target. A crash (or Ctrl-C) mid-write leaves the previous file intact.
 */
export function writeFileAtomic(path: string, data: Uint8Array | string | readonly Uint8Array[]): void {
  // The writer's pid is in the name so that removeStaleAtomicTemps can tell an orphan from a live write.
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'w');
  try {
    const parts = typeof data === 'string' ? [Buffer.from(data)] : data instanceof Uint8Array ? [data] : data;
    for (const part of parts) {
      let off = 0;
      while (off < part.byteLength) off += writeSync(fd, part, off, part.byteLength - off);
    }
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  try {
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** The temporary names writeFileAtomic uses: `.<target>.<pid>.<8 hex digits>.tmp`. */
const TEMP_NAME = /^\.(.+)\.(\d+)\.[0-9a-f]{8}\.tmp$/;

function processRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes what writeFileAtomic left in `dir` when its process died between writing the temporary file
 * and renaming it (kill -9, power loss; a training checkpoint of SSD300 leaves 210 MB each time). Only
 * files of exactly its temporary pattern, for one of the `targets` (base names), whose writing process
 * is no longer running are removed: a live write (this process or another) is never touched. Returns
 * what was removed.
 */
export function removeStaleAtomicTemps(dir: string, targets: readonly string[]): { path: string; bytes: number }[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: { path: string; bytes: number }[] = [];
  for (const name of names) {
    const m = TEMP_NAME.exec(name);
    if (!m || !targets.includes(m[1]!)) continue;
    const pid = Number(m[2]);
    if (pid === process.pid || processRunning(pid)) continue;
    const path = join(dir, name);
    try {
      const st = statSync(path);
      if (!st.isFile()) continue;
      rmSync(path);
      removed.push({ path, bytes: st.size });
    } catch {
      // Gone already (another process cleaning the same directory): nothing to do.
    }
  }
  return removed;
}

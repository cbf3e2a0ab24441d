/**
 * Where a command writes: checked before any work starts (a typo in an output path must not cost a
 * whole run), created only once the inputs have proved good, and removed again when the command
 * fails, so that a failed command leaves nothing half-done behind.
 */
import { accessSync, constants, existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { SsdError, oneLine } from '../core/errors.js';

function nearestExisting(path: string): string {
  let p = resolve(path);
  while (!existsSync(p)) {
    const up = dirname(p);
    if (up === p) break;
    p = up;
  }
  return p;
}

function writable(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** A directory the command will create or fill: an existing directory, or creatable under a writable one. */
export function checkOutputDir(flag: string, path: string): void {
  if (existsSync(path)) {
    if (!statSync(path).isDirectory()) throw new SsdError(`${flag} ${path}: exists and is not a directory`);
    if (!writable(path)) throw new SsdError(`${flag} ${path}: not writable`);
    return;
  }
  const base = nearestExisting(path);
  if (!statSync(base).isDirectory()) throw new SsdError(`${flag} ${path}: cannot create it (${base} is a file)`);
  if (!writable(base)) throw new SsdError(`${flag} ${path}: cannot create it (${base} is not writable)`);
}

/** A file the command will write: its directory must exist (it is not created), and it must not be a directory. */
export function checkOutputFile(flag: string, path: string): void {
  const dir = dirname(resolve(path));
  if (!existsSync(dir)) throw new SsdError(`${flag} ${path}: directory ${dirname(path)} does not exist`);
  if (!statSync(dir).isDirectory()) throw new SsdError(`${flag} ${path}: ${dirname(path)} is not a directory`);
  if (existsSync(path) && statSync(path).isDirectory()) throw new SsdError(`${flag} ${path}: is a directory`);
  if (!writable(dir)) throw new SsdError(`${flag} ${path}: directory ${dirname(path)} is not writable`);
}

/** Directories a command created, removed again (with what is in them) when the command fails. */
export class CreatedDirs {
  private readonly created: string[] = [];

  /** Creates `path` (and missing parents); remembers the topmost directory that did not exist. */
  make(flag: string, path: string): void {
    let first: string | undefined;
    try {
      first = mkdirSync(path, { recursive: true });
    } catch (err) {
      throw new SsdError(`${flag} ${path}: cannot create (${oneLine(err)})`, { cause: err });
    }
    if (first !== undefined) this.created.push(first);
  }

  /** Removes every directory this made, newest first. */
  removeAll(): void {
    for (const dir of this.created.splice(0).reverse()) rmSync(dir, { recursive: true, force: true });
  }
}

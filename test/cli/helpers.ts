/** Running `ssd` as a user does (node bin/ssd.js), for the CLI tests. */
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '..', '..');

export interface SsdRun {
  code: number | null;
  /** The signal that ended the process (e.g. SIGSEGV for a crash), null when it exited. */
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `node ...nodeArgs` in `cwd` and collects what it prints. The kill after `hangMs` only ends a
 * hang; runs take seconds, more on a loaded machine.
 */
export function runNodeArgs(nodeArgs: string[], opts: { cwd?: string; hangMs?: number } = {}): Promise<SsdRun> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, nodeArgs, {
      cwd: opts.cwd ?? ROOT,
      env: { ...process.env, SSD_DEBUG: '' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.hangMs ?? 300_000);
    child.on('error', rej);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      res({ code, signal, stdout, stderr });
    });
  });
}

/**
 * Runs `node bin/ssd.js ...args` (or another script with `script`) in `cwd` and collects what it
 * prints. The kill after `hangMs` only ends a hang; runs take seconds, more on a loaded machine.
 */
export function runNode(args: string[], opts: { cwd?: string; script?: string; hangMs?: number } = {}): Promise<SsdRun> {
  // tsx's loader by URL: `--import tsx` would look for the package under cwd.
  const entry = opts.script ? ['--import', import.meta.resolve('tsx'), opts.script] : [join(ROOT, 'bin', 'ssd.js')];
  return runNodeArgs([...entry, ...args], opts);
}

export const ssd = (args: string[], cwd?: string): Promise<SsdRun> => runNode(args, { cwd });

/** Fails with what the command printed when it did not exit 0. */
export function expectOk(r: SsdRun, what: string): SsdRun {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}:\n${r.stderr}\n${r.stdout.slice(-2000)}`);
  return r;
}

/**
 * ssh and rsync as `ssd deploy` runs them: never interactive (BatchMode, so a missing key fails
 * instead of prompting for a password), with a connect timeout, one multiplexed connection for all
 * steps, and ssh's failures turned into one line that says what to do.
 */
import { spawn } from 'node:child_process';
import { SsdError } from '../core/errors.js';

export interface SshTarget {
  user?: string;
  host: string;
  port: number;
  identity?: string;
  /** Extra `-o` options, e.g. "UserKnownHostsFile=/tmp/kh". */
  options: string[];
  /** Socket of a shared master connection (ControlMaster); undefined = a connection per command. */
  controlPath?: string;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** "user@host", "host", "user@[::1]" -> parts; throws on anything else. */
export function parseHost(spec: string): { user?: string; host: string } {
  const m = /^(?:([A-Za-z0-9._-]+)@)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)$/.exec(spec);
  if (!m) throw new SsdError(`--host ${spec}: expected user@host or host`);
  return { user: m[1], host: m[2]!.replace(/^\[|\]$/g, '') };
}

export function destination(t: SshTarget): string {
  const host = t.host.includes(':') ? `[${t.host}]` : t.host;
  return t.user ? `${t.user}@${host}` : host;
}

export function describeTarget(t: SshTarget): string {
  return `${destination(t)}${t.port === 22 ? '' : ` (port ${t.port})`}`;
}

/**
 * ssh's arguments. The user's `-o` options come first: for each option ssh keeps the first value it is
 * given, so `-o StrictHostKeyChecking=yes` (strict mode: only hosts already in known_hosts) overrides
 * the accept-new default instead of being silently ignored after it.
 */
export function sshArgs(t: SshTarget): string[] {
  const args: string[] = [];
  for (const o of t.options) args.push('-o', o);
  args.push('-p', String(t.port), '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', '-o', 'StrictHostKeyChecking=accept-new', '-o', 'LogLevel=ERROR');
  if (t.identity) args.push('-i', t.identity, '-o', 'IdentitiesOnly=yes');
  if (t.controlPath) args.push('-o', 'ControlMaster=auto', '-o', `ControlPath=${t.controlPath}`, '-o', 'ControlPersist=20');
  return args;
}

/** Quotes one word for a POSIX shell. */
export function shQuote(word: string): string {
  return /^[A-Za-z0-9._/@%+=:,-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export function run(command: string, args: string[], opts: { input?: string; onStderrLine?: (line: string) => void; onStdoutLine?: (line: string) => void } = {}): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const lines = (cb: ((l: string) => void) | undefined) => {
      let rest = '';
      return (chunk: string) => {
        if (!cb) return;
        rest += chunk;
        const parts = rest.split('\n');
        rest = parts.pop()!;
        parts.forEach(cb);
      };
    };
    const outLines = lines(opts.onStdoutLine);
    const errLines = lines(opts.onStderrLine);
    child.stdout.setEncoding('utf8').on('data', (c: string) => ((stdout += c), outLines(c)));
    child.stderr.setEncoding('utf8').on('data', (c: string) => ((stderr += c), errLines(c)));
    child.on('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'ENOENT' ? new SsdError(`"${command}" is not installed on this machine (sudo apt-get install ${command === 'ssh' ? 'openssh-client' : command})`) : err);
    });
    child.on('close', (code) => resolvePromise({ code: code ?? 1, stdout, stderr }));
    child.stdin.on('error', () => {
      // The remote side may exit before reading its input; its exit status says what happened.
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** One line for an ssh failure (exit status 255 is ssh's own; anything else is the remote command's). */
export function sshFailure(t: SshTarget, stderr: string): SsdError {
  const where = describeTarget(t);
  const last = stderr.trim().split('\n').filter(Boolean).at(-1) ?? 'no message';
  if (/Could not resolve hostname/i.test(stderr)) return new SsdError(`cannot reach ${where}: host name not found`);
  if (/Connection refused/i.test(stderr)) return new SsdError(`cannot reach ${where}: connection refused (is sshd running there, and is --port right?)`);
  if (/timed out|No route to host|Network is unreachable/i.test(stderr)) return new SsdError(`cannot reach ${where}: ${last.replace(/^ssh: /, '')}`);
  if (/Permission denied/i.test(stderr)) {
    return new SsdError(
      `ssh refused the key for ${where} (${last.replace(/^.*?: /, '')}): pass --identity KEY, or install your key with ssh-copy-id -p ${t.port} ${destination(t)}`,
    );
  }
  if (/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED/i.test(stderr)) {
    return new SsdError(`the host key of ${where} does not match your known_hosts: check the device, then ssh-keygen -R ${t.host}`);
  }
  return new SsdError(`ssh to ${where} failed: ${last}`);
}

export async function ssh(t: SshTarget, remoteCommand: string, opts: { input?: string; onStderrLine?: (line: string) => void; onStdoutLine?: (line: string) => void } = {}): Promise<RunResult> {
  const r = await run('ssh', [...sshArgs(t), destination(t), remoteCommand], opts);
  if (r.code === 255) throw sshFailure(t, r.stderr);
  return r;
}

/** Ends the shared master connection, if one was opened. */
export async function closeMaster(t: SshTarget): Promise<void> {
  if (!t.controlPath) return;
  await run('ssh', [...sshArgs(t), '-O', 'exit', destination(t)]).catch(() => undefined);
}

export interface RsyncStats {
  /** Bytes of the files that had to be sent (changed or new). */
  transferredBytes: number;
  totalBytes: number;
  /** Bytes that actually went over the wire. */
  sentBytes: number;
}

export function parseRsyncStats(out: string): RsyncStats {
  const num = (re: RegExp) => Number((re.exec(out)?.[1] ?? '0').replace(/,/g, ''));
  return {
    transferredBytes: num(/Total transferred file size:\s*([\d,]+)/),
    totalBytes: num(/Total file size:\s*([\d,]+)/),
    sentBytes: num(/Total bytes sent:\s*([\d,]+)/),
  };
}

/**
 * Copies `localDir/` into `remoteDir/` on the device. Files equal (by checksum) to the ones of the
 * release `linkDest` are hard-linked there instead of sent, so a re-deploy moves only what changed.
 */
export async function rsyncTo(t: SshTarget, localDir: string, remoteDir: string, linkDest: string | undefined): Promise<RsyncStats> {
  const rsh = ['ssh', ...sshArgs(t)].map(shQuote).join(' ');
  const args = ['-a', '--delete', '--checksum', '--stats', '-e', rsh];
  if (linkDest) args.push(`--link-dest=${linkDest}`);
  args.push(`${localDir.replace(/\/+$/, '')}/`, `${destination(t)}:${remoteDir.replace(/\/+$/, '')}/`);
  const r = await run('rsync', args);
  if (r.code !== 0) {
    if (/rsync: (command )?not found|rsync: not found/i.test(r.stderr)) throw new SsdError(`rsync is not installed on ${describeTarget(t)} (sudo apt-get install rsync)`);
    if (/Permission denied \(publickey|Connection refused|Could not resolve/i.test(r.stderr)) throw sshFailure(t, r.stderr);
    throw new SsdError(`rsync to ${describeTarget(t)} failed: ${r.stderr.trim().split('\n').at(-1) ?? `exit ${r.code}`}`);
  }
  return parseRsyncStats(r.stdout);
}

/** Shared pieces of the stream tests: free ports, fixture videos, a tiny model, child processes. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DIGIT_CLASSES, withBackground } from '../../core/labels.js';
import { specByName, ssdTiny } from '../../core/specs.js';
import { buildOnnxModel } from '../../export/build.js';
import { WAIT_MS, waitFor } from '../helpers/wait.js';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SSD_BIN = join(ROOT, 'bin', 'ssd.js');
export const RTSP_SERVER = join(ROOT, 'test', 'stream', 'fixtures', 'rtsp-server.py');

/** A port nobody listens on right now (bound then released; loopback only). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A random-init ssd-tiny (96x96 unless told, digits labels) from the exporter. */
export function tinyModel(dir: string, opts: { batch?: number | 'dynamic'; inputSize?: number } = {}): string {
  const path = join(dir, `tiny-${opts.batch ?? 1}-${opts.inputSize ?? 96}.onnx`);
  const spec = opts.inputSize === undefined ? specByName('ssd-tiny') : ssdTiny(withBackground(DIGIT_CLASSES), opts.inputSize);
  if (!existsSync(path)) writeFileSync(path, buildOnnxModel({ spec, seed: 3, batch: opts.batch ?? 1 }));
  return path;
}

/** An H.264 MP4 of `frames` videotestsrc frames, made with gst-launch-1.0. */
export function testVideo(dir: string, frames: number, width = 320, height = 240, fps = 30): string {
  const path = join(dir, `test-${frames}-${width}x${height}.mp4`);
  const r = spawnSync('gst-launch-1.0', ['-q', 'videotestsrc', `num-buffers=${frames}`, 'pattern=ball', '!', `video/x-raw,width=${width},height=${height},framerate=${fps}/1`,
    '!', 'videoconvert', '!', 'video/x-raw,format=I420', '!', 'x264enc', 'speed-preset=ultrafast', '!', 'mp4mux', '!', 'filesink', `location=${path}`], { timeout: WAIT_MS });
  if (r.status !== 0) throw new Error(`gst-launch failed: ${r.stderr?.toString()}`);
  return path;
}

/** Starts the loopback RTSP server fixture and waits for its READY line. */
export async function startRtspServer(port: number, lifetimeS = 60, extra: string[] = []): Promise<{ proc: ChildProcess; url: string }> {
  const proc = spawn('/usr/bin/python3', [RTSP_SERVER, String(port), '--lifetime', String(lifetimeS), ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  const url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`RTSP server did not print READY in ${WAIT_MS / 1000} s`)), WAIT_MS);
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /READY (\S+)/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(m[1]!);
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`RTSP server exited with ${code}`));
    });
  });
  return { proc, url };
}

export function stop(proc: ChildProcess | undefined, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    proc.once('exit', () => resolve());
    proc.kill(signal);
  });
}

/**
 * Runs `ssd stream ...` as a child, collecting JSON lines and stderr. `limitMs` kills it (a hang
 * bound, default WAIT_MS); tests wait on its output with `until`, never on time.
 */
export interface StreamRun {
  proc: ChildProcess;
  lines: Array<Record<string, unknown>>;
  stderr: () => string;
  /** Resolves when `predicate` holds for the lines so far (checked on every new output); fails after `timeoutMs` (default WAIT_MS). */
  until(predicate: (lines: Array<Record<string, unknown>>) => boolean, what: string, timeoutMs?: number): Promise<void>;
  exited: Promise<number | null>;
}

export function runSsdStream(args: string[], limitMs = 2 * WAIT_MS, env: NodeJS.ProcessEnv = {}): StreamRun {
  const proc = spawn(process.execPath, [SSD_BIN, 'stream', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const lines: Array<Record<string, unknown>> = [];
  let err = '';
  let buf = '';
  const checks = new Set<() => void>();
  proc.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
    }
    for (const c of checks) c();
  });
  proc.stderr!.on('data', (d: Buffer) => { err += d.toString(); for (const c of checks) c(); });
  const kill = setTimeout(() => proc.kill('SIGKILL'), limitMs);
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => { clearTimeout(kill); resolve(code); }));
  return {
    proc, lines, stderr: () => err, exited,
    until(predicate, what, timeoutMs = WAIT_MS) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (predicate(lines)) {
            checks.delete(check);
            clearTimeout(t);
            resolve();
          }
        };
        const t = setTimeout(() => { checks.delete(check); reject(new Error(`timed out waiting for ${what}; stderr:\n${err}`)); }, timeoutMs);
        checks.add(check);
        void exited.then(() => { if (checks.has(check)) { check(); if (checks.has(check)) { checks.delete(check); clearTimeout(t); reject(new Error(`ssd stream exited before ${what}; stderr:\n${err}`)); } } });
        check();
      });
    },
  };
}

/** Debian's Mosquitto broker (the MQTT tests skip without it). */
export const MOSQUITTO = '/usr/sbin/mosquitto';

/**
 * A real Mosquitto on 127.0.0.1:`port` (config in `dir`), resolved once it accepts a connection; the
 * caller stops the process (stop()).
 */
export async function startBroker(dir: string, port: number): Promise<ChildProcess> {
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\n`);
  const proc = spawn(MOSQUITTO, ['-c', conf], { stdio: 'ignore' });
  try {
    await waitFor(() => {
      if (proc.exitCode !== null) throw new Error(`mosquitto exited with ${proc.exitCode}`);
      return new Promise<boolean>((resolve) => {
        const s = connect(port, '127.0.0.1', () => { s.end(); resolve(true); });
        s.on('error', () => resolve(false));
      });
    }, `mosquitto to listen on ${port}`);
  } catch (err) {
    proc.kill('SIGKILL');
    throw err;
  }
  return proc;
}

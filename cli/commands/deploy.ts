import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SsdError } from '../../core/errors.js';
import { getProfile } from '../../devices/profiles.js';
import { deploy } from '../../deploy/index.js';
import { intFlag, parseFlags, type Command } from '../args.js';

const USAGE = `Usage: ssd deploy --host USER@HOST --device NAME --model MODEL.onnx [options]
       ssd deploy --to-dir DIR --device NAME --model MODEL.onnx [options]

Bundles the runtime (compiled JavaScript of the runtime, core and devices; a package.json with only
onnxruntime-node, sharp, gstreamer-superficial and mqtt; the model; the profile; an env file; a systemd
unit running "ssd stream") and deploys it over ssh: the device is detected remotely and must match
--device, the bundle is copied with rsync into DIR/releases/<id> (files unchanged since the current
release are hard-linked, not sent), installed there (npm install --omit=dev), checked, and only then
made current by switching the DIR/current symlink.

Options:
  --host USER@HOST      the device (ssh, key authentication only)
  --port N              ssh port (default 22)
  --identity KEY        ssh private key (default: ssh's own choice)
  -o, --ssh-option OPT  extra ssh -o option, repeatable (e.g. -o UserKnownHostsFile=./known_hosts);
                        yours come before the built-in ones and win. Strict host keys (only hosts
                        already in known_hosts): -o StrictHostKeyChecking=yes (default accept-new)
  --device NAME         device profile (see "ssd devices"); must match the device unless --force
                        (was --profile, which still works until 0.3)
  --model PATH          the ONNX model to run (from "ssd export-onnx")
  --dir DIR             deploy directory on the device (default /opt/ssd)
  --source URI          stream source for the service, repeatable (default csi://0 on a Jetson,
                        v4l2:///dev/video0 elsewhere); edit DIR/ssd.local.env on the device to change it
  --stream-arg ARG      extra "ssd stream" argument for the service, repeatable (--stream-arg=--http
                        --stream-arg=0.0.0.0:8080)
  --service             install and restart the systemd unit (needs root or passwordless sudo)
  --service-name NAME   unit name (default ssd)
  --service-user NAME   user the unit runs as (default: the ssh user; with --to-dir: ssd)
  --warm                build the TensorRT engine at install time, before the service starts
  --require-gpu         the service fails instead of running on the CPU (SSD_REQUIRE_GPU=1)
  --keep N              releases kept on the device (default 3)
  --force               deploy even if the device does not look like --device
  --to-dir DIR          write the bundle to DIR (empty or new) and stop; no ssh
  --dry-run             build the bundle, report its size and print the steps; copy and run nothing
  -h, --help            this text

Errors (unreachable host, refused key, missing model, profile mismatch, failed install) print one
line and exit non-zero; a failed install removes its release directory and leaves "current" as it was.`;

function repoRoot(): string {
  // cli/commands/deploy.ts -> the project root (also from dist/cli/commands/deploy.js).
  const here = dirname(fileURLToPath(import.meta.url));
  const up2 = resolve(here, '..', '..');
  return existsSync(join(up2, 'package.json')) ? up2 : resolve(up2, '..');
}

const command: Command = {
  name: 'deploy',
  summary: 'bundle the runtime and deploy it to a Jetson over ssh',
  usage: USAGE,
  async run(argv) {
    const { values } = parseFlags(
      'deploy',
      argv,
      {
        host: { type: 'string' },
        port: { type: 'string' },
        identity: { type: 'string' },
        'ssh-option': { type: 'string', short: 'o', multiple: true },
        device: { type: 'string' },
        model: { type: 'string' },
        dir: { type: 'string' },
        source: { type: 'string', multiple: true },
        'stream-arg': { type: 'string', multiple: true },
        service: { type: 'boolean' },
        'service-name': { type: 'string' },
        'service-user': { type: 'string' },
        warm: { type: 'boolean' },
        'require-gpu': { type: 'boolean' },
        keep: { type: 'string' },
        force: { type: 'boolean' },
        'to-dir': { type: 'string' },
        'dry-run': { type: 'boolean' },
      },
      false,
      [{ old: 'profile', now: 'device' }],
    );
    if (!values.device) throw new SsdError('--device NAME is required (see "ssd devices")');
    getProfile(values.device);
    if (!values.model) throw new SsdError('--model is required');
    const modelPath = resolve(values.model);
    if (!existsSync(modelPath) || !statSync(modelPath).isFile()) throw new SsdError(`--model ${values.model}: file not found`);
    if (!values.host && !values['to-dir']) throw new SsdError('--host USER@HOST is required (or --to-dir DIR to write the bundle locally)');
    if (values.identity && !existsSync(values.identity)) throw new SsdError(`--identity ${values.identity}: file not found`);
    const port = intFlag('port', values.port, 22, 1, 65535);
    const keep = intFlag('keep', values.keep, 3, 1, 100);
    const baseDir = values.dir ?? '/opt/ssd';
    if (!baseDir.startsWith('/')) throw new SsdError(`--dir ${baseDir}: must be an absolute path on the device`);

    await deploy({
      repoRoot: repoRoot(),
      host: values.host,
      port,
      profile: values.device,
      modelPath,
      baseDir: baseDir.replace(/\/+$/, '') || '/',
      service: values.service ?? false,
      serviceName: values['service-name'] ?? 'ssd',
      dryRun: values['dry-run'] ?? false,
      identity: values.identity ? resolve(values.identity) : undefined,
      sshOptions: values['ssh-option'] ?? [],
      toDir: values['to-dir'] ? resolve(values['to-dir']) : undefined,
      sources: values.source ?? [],
      streamArgs: values['stream-arg'] ?? [],
      force: values.force ?? false,
      keepReleases: keep,
      serviceUser: values['service-user'],
      warm: values.warm ?? false,
      requireGpu: values['require-gpu'] ?? false,
      // Testing aid (test/deploy): the device is this machine, so its node_modules can be linked.
      linkNodeModules: process.env.SSD_DEPLOY_LINK_NODE_MODULES || undefined,
      log: (line) => console.log(line),
    });
    return 0;
  },
};
export default command;

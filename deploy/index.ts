/**
 * `ssd deploy`: bundle the runtime for one device profile, check the device over ssh (is it the board
 * the profile is for? has it node 20, npm, rsync?), copy the bundle into a new release directory with
 * rsync (unchanged files hard-linked from the current release), install it there, switch the `current`
 * symlink, and (with --service) install and restart the systemd unit.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SsdError } from '../core/errors.js';
import { detectFromEvidence, NVIDIA_SMI_ARGS, type DeviceEvidence, type Detection } from '../devices/detect.js';
import { buildProfiles, getProfile, isJetson } from '../devices/profiles.js';
import type { DeviceProfile } from '../devices/types.js';
import { buildBundle, formatBytes, type Bundle } from './bundle.js';
import { closeMaster, describeTarget, destination, parseHost, rsyncTo, shQuote, ssh, sshArgs, type RsyncStats, type SshTarget } from './ssh.js';
import { cacheDirOf, checkServiceOptions, releaseLink, type ServiceOptions } from './systemd.js';

export interface DeployOptions {
  repoRoot: string;
  /** user@host; undefined only with toDir. */
  host?: string;
  port: number;
  profile: string;
  modelPath: string;
  baseDir: string;
  service: boolean;
  serviceName: string;
  dryRun: boolean;
  identity?: string;
  sshOptions: string[];
  /** Write the bundle here and stop (no ssh). */
  toDir?: string;
  sources: string[];
  streamArgs: string[];
  /** Deploy even if the device does not look like the profile's board. */
  force: boolean;
  keepReleases: number;
  /** User the unit runs as; default: the ssh user (over ssh), "ssd" (--to-dir). */
  serviceUser?: string;
  /** Build the TensorRT engine at install time, before the service starts (install.sh --warm). */
  warm?: boolean;
  /** The service fails instead of running on the CPU (SSD_REQUIRE_GPU=1 in ssd.env). */
  requireGpu?: boolean;
  /** Testing aid: link this directory as the release's node_modules instead of running npm on the device. */
  linkNodeModules?: string;
  log: (line: string) => void;
}

export interface RemoteFacts {
  evidence: DeviceEvidence;
  detection: Detection;
  nodePath?: string;
  nodeVersion?: string;
  hasNpm: boolean;
  hasRsync: boolean;
  user: string;
  currentRelease?: string;
}

export interface DeployResult {
  bundle: Bundle;
  releaseId?: string;
  remote?: RemoteFacts;
  rsync?: RsyncStats;
}

const MARK = '@@ssd-probe ';

/** One ssh round trip that prints everything the deploy needs to know about the device. */
export function probeScript(baseDir: string): string {
  const section = (name: string, cmd: string) => `echo '${MARK}${name}'; ${cmd}`;
  return [
    section('nv_tegra_release', 'cat /etc/nv_tegra_release 2>/dev/null'),
    // Device-tree strings are NUL-separated; NULs do not survive a shell pipe well, newlines do.
    section('model', "tr '\\0' '\\n' < /proc/device-tree/model 2>/dev/null"),
    section('compatible', "tr '\\0' '\\n' < /proc/device-tree/compatible 2>/dev/null"),
    section('nvidia_smi', `[ -e /etc/nv_tegra_release ] || nvidia-smi ${NVIDIA_SMI_ARGS.join(' ')} 2>/dev/null`),
    section('machine', 'uname -m'),
    // The PATH of a non-interactive ssh command, which is also what install.sh and the unit see at deploy
    // time; node set up only in an interactive shell (nvm from .bashrc) is not found, and that is reported.
    section('node', 'command -v node && node -v'),
    section('npm', 'command -v npm'),
    section('rsync', 'command -v rsync'),
    section('user', 'id -un'),
    section('current', `readlink ${shQuote(releaseLink({ baseDir }))} 2>/dev/null`),
    `echo '${MARK}end'`,
  ].join('\n');
}

export function parseProbe(out: string): RemoteFacts {
  const sections = new Map<string, string>();
  let name: string | undefined;
  let lines: string[] = [];
  for (const line of out.split('\n')) {
    if (line.startsWith(MARK)) {
      if (name !== undefined) sections.set(name, lines.join('\n'));
      name = line.slice(MARK.length).trim();
      lines = [];
    } else if (name !== undefined) lines.push(line);
  }
  if (!sections.has('user')) throw new SsdError('the device answered ssh but not the probe (is its login shell a POSIX shell?)');
  const get = (k: string) => {
    const v = sections.get(k)?.trim();
    return v === undefined || v === '' ? undefined : v;
  };
  const evidence: DeviceEvidence = {
    nvTegraRelease: get('nv_tegra_release'),
    model: get('model')?.split('\n')[0],
    compatible: get('compatible')?.split('\n').join('\0'),
    nvidiaSmi: get('nvidia_smi'),
    machine: get('machine'),
  };
  const nodeLines = get('node')?.split('\n') ?? [];
  const current = get('current');
  return {
    evidence,
    detection: detectFromEvidence(evidence),
    nodePath: nodeLines[0],
    nodeVersion: nodeLines[1],
    hasNpm: get('npm') !== undefined,
    hasRsync: get('rsync') !== undefined,
    user: get('user')!,
    currentRelease: current?.replace(/^.*\//, ''),
  };
}

/** Whether a profile may be deployed to a device detected as `detected`. */
export function profileFits(profile: DeviceProfile, detected: DeviceProfile): boolean {
  // Every machine can run the CPU provider; anything else must be the board the profile describes.
  return profile.name === 'cpu' || profile.name === detected.name;
}

function checkRemote(o: DeployOptions, t: SshTarget, facts: RemoteFacts, profile: DeviceProfile): void {
  const where = describeTarget(t);
  if (!facts.nodePath) {
    const jp4 = profile.software?.l4t === 'R32' ? ' (JetPack 4: see the glibc limit in "ssd devices")' : '';
    throw new SsdError(`node is not installed on ${where}: install Node.js 20 there first${jp4}`);
  }
  const major = Number(/^v(\d+)/.exec(facts.nodeVersion ?? '')?.[1] ?? 0);
  if (major < 20) throw new SsdError(`${where} has node ${facts.nodeVersion ?? '(unknown version)'}; the runtime needs Node.js 20 or newer`);
  if (!facts.hasRsync) throw new SsdError(`rsync is not installed on ${where} (sudo apt-get install rsync)`);
  if (!facts.hasNpm && !o.linkNodeModules) throw new SsdError(`npm is not installed on ${where} (it comes with Node.js 20)`);
  const detected = facts.detection.profile;
  if (!profileFits(profile, detected)) {
    const why = facts.detection.evidence.filter((e) => !e.startsWith('note:')).join('; ');
    const msg = `--device ${profile.name} does not match ${where}, detected as ${detected.name} (${why}): use --device ${detected.name}, or --force`;
    if (!o.force) throw new SsdError(msg);
    o.log(`warning: ${msg.replace(/, or --force$/, '')}; deploying anyway (--force)`);
  }
}

function releaseId(bundle: Bundle, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
  return `${stamp}-${bundle.contentHash.slice(0, 8)}`;
}

/** The unit's user of a --to-dir bundle when --service-user is not given (the README says how to create it). */
export const DEFAULT_SERVICE_USER = 'ssd';

function serviceOptions(o: DeployOptions, profile: DeviceProfile, nodePath: string, user: string | undefined): ServiceOptions {
  const sources = o.sources.length > 0 ? o.sources : [isJetson(profile) ? 'csi://0' : 'v4l2:///dev/video0'];
  return {
    serviceName: o.serviceName, baseDir: o.baseDir, profileName: profile.name, nodePath, user: o.serviceUser ?? user, sources,
    streamArgs: o.streamArgs, requireGpu: o.requireGpu,
  };
}

export async function deploy(o: DeployOptions): Promise<DeployResult> {
  // The profile as the device will compute it: TensorRT caches under <dir>/cache, not this machine's home.
  const profile = buildProfiles(cacheDirOf({ baseDir: o.baseDir })).find((p) => p.name === getProfile(o.profile).name)!;
  checkServiceOptions(serviceOptions(o, profile, '/usr/bin/node', undefined));

  if (o.toDir) {
    // No ssh user to run as: a unit without User= would run as root with the token and camera passwords.
    const bundle = await buildBundle({ repoRoot: o.repoRoot, outDir: o.toDir, profile, modelPath: o.modelPath, service: serviceOptions(o, profile, '/usr/bin/node', DEFAULT_SERVICE_USER) });
    o.log(`bundle for ${profile.name} written to ${o.toDir}: ${bundle.files.length} files, ${formatBytes(bundle.bytes)} (${bundle.modules} modules; dependencies ${Object.keys(bundle.dependencies).join(', ')})`);
    return { bundle };
  }
  if (!o.host) throw new SsdError('--host is required (or --to-dir DIR to write the bundle locally)');
  const { user, host } = parseHost(o.host);
  const target: SshTarget = { user, host, port: o.port, identity: o.identity, options: o.sshOptions };
  const where = describeTarget(target);

  const staging = mkdtempSync(join(tmpdir(), 'ssd-bundle-'));
  try {
    if (o.dryRun) {
      const bundle = await buildBundle({ repoRoot: o.repoRoot, outDir: join(staging, 'b'), profile, modelPath: o.modelPath, service: serviceOptions(o, profile, '/usr/bin/node', user) });
      const id = releaseId(bundle);
      const rel = `${o.baseDir}/releases/${id}`;
      const sshCmd = ['ssh', ...sshArgs(target), destination(target)].map(shQuote).join(' ');
      o.log(`dry run: nothing is copied or run. Bundle for ${profile.name}: ${bundle.files.length} files, ${formatBytes(bundle.bytes)}.`);
      o.log(`1. ${sshCmd} <probe: /etc/nv_tegra_release, /proc/device-tree/model, nvidia-smi, node, npm, rsync> (refuses a device that is not ${profile.name} without --force)`);
      o.log(`2. ${sshCmd} mkdir -p ${o.baseDir}/releases ${o.baseDir}/cache`);
      o.log(`3. rsync -a --delete --checksum --link-dest=${releaseLink(o)}/ <bundle>/ ${destination(target)}:${rel}/`);
      o.log(`4. ${sshCmd} bash ${rel}/install.sh --base ${o.baseDir} --release ${id}${o.service ? ` --service ${o.serviceName}` : ''} --keep ${o.keepReleases}${o.warm ? ' --warm' : ''}`);
      o.log(`   (npm install --omit=dev, smoke check, then ${releaseLink(o)} -> releases/${id}${o.service ? `, systemctl restart ${o.serviceName}` : ''})`);
      return { bundle, releaseId: id };
    }

    target.controlPath = join(tmpdir(), `ssd-cm-${randomBytes(4).toString('hex')}`);
    try {
      const probe = await ssh(target, probeScript(o.baseDir));
      const facts = parseProbe(probe.stdout);
      o.log(`device ${where}: ${facts.detection.profile.name} (${facts.detection.evidence.join('; ')}); node ${facts.nodeVersion ?? 'missing'}`);
      checkRemote(o, target, facts, profile);

      const bundle = await buildBundle({
        repoRoot: o.repoRoot,
        outDir: join(staging, 'b'),
        profile,
        modelPath: o.modelPath,
        service: serviceOptions(o, profile, facts.nodePath!, facts.user),
      });
      const id = releaseId(bundle);
      const rel = `${o.baseDir}/releases/${id}`;
      o.log(`bundle: ${bundle.files.length} files, ${formatBytes(bundle.bytes)} (${bundle.modules} modules; dependencies ${Object.keys(bundle.dependencies).join(', ')})`);

      const base = shQuote(o.baseDir);
      const prep = await ssh(
        target,
        `mkdir -p ${base}/releases ${base}/cache 2>/dev/null || { sudo -n mkdir -p ${base}/releases ${base}/cache && sudo -n chown -R "$(id -un)" ${base}; }`,
      );
      if (prep.code !== 0) throw new SsdError(`cannot create ${o.baseDir} on ${where} (no write access and no passwordless sudo): choose --dir in the user's home, or create it once with sudo`);

      const stats = await rsyncTo(target, bundle.outDir, rel, facts.currentRelease ? `${o.baseDir}/releases/${facts.currentRelease}/` : undefined);
      o.log(
        `copied ${formatBytes(stats.transferredBytes)} of ${formatBytes(stats.totalBytes)} to ${where}:${rel}${facts.currentRelease ? ` (unchanged files hard-linked from ${facts.currentRelease})` : ''}`,
      );

      const args = ['bash', `${rel}/install.sh`, '--base', o.baseDir, '--release', id, '--keep', String(o.keepReleases)];
      if (o.service) args.push('--service', o.serviceName);
      if (o.warm) args.push('--warm');
      if (o.linkNodeModules) args.push('--link-node-modules', o.linkNodeModules);
      let lastErr = '';
      const install = await ssh(target, args.map(shQuote).join(' '), {
        onStderrLine: (line) => {
          if (line.trim() !== '') {
            lastErr = line;
            o.log(`  ${line}`);
          }
        },
      });
      if (install.code !== 0) {
        throw new SsdError(`install on ${where} failed: ${lastErr.replace(/^install: /, '') || `exit ${install.code}`}`);
      }
      const sshLine = `ssh${o.port === 22 ? '' : ` -p ${o.port}`} ${destination(target)}`;
      if (o.service) {
        o.log(`deployed ${id} to ${where}:${releaseLink(o)}; ${o.serviceName}.service restarted. Follow its logs: ${sshLine} journalctl -u ${o.serviceName} -f`);
      } else {
        o.log(`deployed ${id} to ${where}:${releaseLink(o)}. Run it: ${sshLine} '${releaseLink(o)}/bin/ssd.js stream <URI> --model ${releaseLink(o)}/model/model.onnx --device ${profile.name}' (or deploy with --service)`);
      }
      return { bundle, releaseId: id, remote: facts, rsync: stats };
    } finally {
      await closeMaster(target);
    }
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

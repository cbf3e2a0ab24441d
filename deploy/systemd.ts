/**
 * The service a deployed device runs: `ssd stream` under systemd, restarted on failure, configured by
 * an env file in the release (written by `ssd deploy`) and an optional local one the user edits on the
 * device (kept across deploys, read last so it wins).
 */
import { SsdError } from '../core/errors.js';

export interface ServiceOptions {
  /** systemd unit name without ".service". */
  serviceName: string;
  /** Deploy directory on the device: releases/, current -> releases/<id>, cache/. */
  baseDir: string;
  profileName: string;
  /** Absolute path of node on the device. */
  nodePath: string;
  /** User the service runs as (the ssh user; with --to-dir, --service-user or "ssd"); undefined or root = root. */
  user?: string;
  /** Stream sources (URIs); empty = the profile's default camera. */
  sources: string[];
  /**
   * Extra `ssd stream` arguments, e.g. ["--http", "0.0.0.0:8080", "--token", "..."]. A `--token` is
   * moved into the env file as SSD_TOKEN (read by `ssd stream`): on the command line it would show in `ps`.
   */
  streamArgs: string[];
  /** Write SSD_REQUIRE_GPU=1: the service fails instead of running on the CPU. */
  requireGpu?: boolean;
}

/** `streamArgs` without `--token T` / `--token=T`, and the token. */
export function splitToken(streamArgs: readonly string[]): { args: string[]; token?: string } {
  const args: string[] = [];
  let token: string | undefined;
  for (let i = 0; i < streamArgs.length; i++) {
    const a = streamArgs[i]!;
    if (a === '--token') {
      token = streamArgs[i + 1];
      if (token === undefined) throw new SsdError('--stream-arg --token needs a value (--stream-arg=--token --stream-arg=T)');
      i++;
    } else if (a.startsWith('--token=')) token = a.slice('--token='.length);
    else args.push(a);
  }
  return { args, token };
}

const SAFE_PATH = /^\/[A-Za-z0-9._/@+-]*$/;
const SAFE_WORD = /^[A-Za-z0-9._/@+:,=?&%~-]+$/;

export function checkServiceOptions(o: ServiceOptions): void {
  if (!SAFE_PATH.test(o.baseDir)) throw new SsdError(`--dir ${o.baseDir}: must be an absolute path of letters, digits and ._/@+-`);
  if (!SAFE_PATH.test(o.nodePath)) throw new SsdError(`node on the device is at "${o.nodePath}", a path the unit cannot hold`);
  if (o.user !== undefined && !/^[a-z_][a-z0-9_-]*\$?$/i.test(o.user)) throw new SsdError(`--service-user ${o.user}: not a user name`);
  if (!/^[A-Za-z0-9_.@-]+$/.test(o.serviceName)) throw new SsdError(`--service-name ${o.serviceName}: letters, digits and _.@- only`);
  for (const w of [...o.sources, ...o.streamArgs]) {
    // Each becomes one word of an env file that systemd splits on whitespace ($SSD_SOURCE): no quoting games.
    if (!SAFE_WORD.test(w)) throw new SsdError(`"${w}": stream sources and arguments may not contain spaces, quotes or shell characters`);
  }
}

export function releaseLink(o: Pick<ServiceOptions, 'baseDir'>): string {
  return `${o.baseDir}/current`;
}

export function cacheDirOf(o: Pick<ServiceOptions, 'baseDir'>): string {
  return `${o.baseDir}/cache`;
}

/**
 * The release's env file. It may hold RTSP passwords (in sources) and the HTTP token, so the bundle
 * writes it 0600 and install.sh keeps it so; systemd reads it as root before switching to `User=`.
 */
export function envFile(o: ServiceOptions): string {
  checkServiceOptions(o);
  const { args, token } = splitToken(o.streamArgs);
  return [
    '# Written by "ssd deploy"; replaced by the next deploy.',
    `# Put your own settings in ${o.baseDir}/ssd.local.env: it is read after this file and kept.`,
    `SSD_DEVICE=${o.profileName}`,
    // TensorRT engines outlive releases: rebuilding one takes minutes on a small Jetson.
    `SSD_CACHE_DIR=${cacheDirOf(o)}`,
    `SSD_SOURCE=${o.sources.join(' ')}`,
    `SSD_STREAM_ARGS=${args.join(' ')}`,
    ...(token !== undefined ? [`SSD_TOKEN=${token}`] : []),
    ...(o.requireGpu ? ['SSD_REQUIRE_GPU=1'] : []),
    'UV_THREADPOOL_SIZE=16',
    'NODE_ENV=production',
    '',
  ].join('\n');
}

export function systemdUnit(o: ServiceOptions): string {
  checkServiceOptions(o);
  const current = releaseLink(o);
  return [
    '[Unit]',
    `Description=SSD object detector (ssd stream, ${o.profileName})`,
    'Wants=network-online.target',
    'After=network-online.target',
    '',
    '[Service]',
    'Type=simple',
    ...(o.user && o.user !== 'root' ? [`User=${o.user}`] : []),
    // Cameras (/dev/video*, nvargus) are group video on a Jetson.
    'SupplementaryGroups=video',
    `WorkingDirectory=${current}`,
    `EnvironmentFile=${current}/ssd.env`,
    `EnvironmentFile=-${o.baseDir}/ssd.local.env`,
    // $VAR (not ${VAR}) is split on whitespace by systemd: several sources, several extra arguments.
    `ExecStart=${o.nodePath} ${current}/bin/ssd.js stream $SSD_SOURCE --model ${current}/model/model.onnx --device \${SSD_DEVICE} $SSD_STREAM_ARGS`,
    'Restart=on-failure',
    'RestartSec=5',
    // A first start may build a TensorRT engine for minutes before the first frame; that is not a hang.
    'TimeoutStopSec=20',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

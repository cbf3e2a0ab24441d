/**
 * Which profile fits this machine, from the files a Jetson carries (/etc/nv_tegra_release,
 * /proc/device-tree/model and .../compatible) and, elsewhere, nvidia-smi. The same pure function
 * (`detectFromEvidence`) runs on files read locally and on files read from a remote device over ssh.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { getProfile, PROFILES } from './profiles.js';
import type { DeviceProfile } from './types.js';

/** Raw text of the files detection reads; undefined = absent. */
export interface DeviceEvidence {
  nvTegraRelease?: string;
  model?: string;
  compatible?: string;
  /** Output of `nvidia-smi --query-gpu=name,compute_cap --format=csv,noheader`. */
  nvidiaSmi?: string;
  /** `uname -m` */
  machine?: string;
}

export interface Detection {
  profile: DeviceProfile;
  /** One human-readable sentence per fact used, in the order they were considered. */
  evidence: string[];
}

export interface DetectOptions {
  /** Filesystem root to read from (a fake root of fixture files in tests); default "/". */
  root?: string;
  /** Runs nvidia-smi; default: the real one, but only when root is the real "/". */
  runNvidiaSmi?: () => string | undefined;
}

/** The files detection reads, relative to the filesystem root. */
export const EVIDENCE_FILES = {
  nvTegraRelease: 'etc/nv_tegra_release',
  model: 'proc/device-tree/model',
  compatible: 'proc/device-tree/compatible',
} as const;

export const NVIDIA_SMI_ARGS = ['--query-gpu=name,compute_cap', '--format=csv,noheader'] as const;

const L4T_TO_JETPACK: Record<string, string> = { R32: '4', R34: '5', R35: '5', R36: '6', R38: '7' };

export function detectDevice(opts: DetectOptions = {}): Detection {
  const root = opts.root ?? '/';
  const realRoot = opts.root === undefined || opts.root === '/';
  const runSmi = opts.runNvidiaSmi ?? (realRoot ? runRealNvidiaSmi : () => undefined);
  const evidence: DeviceEvidence = {
    nvTegraRelease: readOptional(join(root, EVIDENCE_FILES.nvTegraRelease)),
    model: readOptional(join(root, EVIDENCE_FILES.model)),
    compatible: readOptional(join(root, EVIDENCE_FILES.compatible)),
  };
  // nvidia-smi is not how a Jetson reports itself (JetPack <= 5 has none); ask it only off-Jetson.
  if (evidence.nvTegraRelease === undefined && evidence.model === undefined) evidence.nvidiaSmi = runSmi();
  return detectFromEvidence(evidence);
}

export function detectFromEvidence(e: DeviceEvidence): Detection {
  const notes: string[] = [];
  const release = e.nvTegraRelease === undefined ? undefined : parseTegraRelease(e.nvTegraRelease);
  if (release) {
    const jp = L4T_TO_JETPACK[release.major];
    notes.push(
      `/etc/nv_tegra_release: L4T ${release.major}.${release.revision}${jp ? ` (JetPack ${jp})` : ' (unknown JetPack)'}${release.board ? `, board ${release.board}` : ''}`,
    );
  } else if (e.nvTegraRelease !== undefined) {
    notes.push('/etc/nv_tegra_release: present but not in the "# R<major> (release), REVISION: ..." form');
  }

  const model = e.model === undefined ? undefined : cleanDeviceTreeString(e.model);
  const compatible = e.compatible === undefined ? undefined : e.compatible.split('\0').map((s) => s.trim()).filter(Boolean);
  if (model !== undefined) notes.push(`/proc/device-tree/model: "${model}"`);

  let jetson: DeviceProfile | undefined;
  if (model !== undefined) {
    jetson = PROFILES.find((p) => p.match?.model?.some((re) => new RegExp(re, 'i').test(model)));
    if (jetson) notes.push(`model matches profile ${jetson.name}`);
  }
  if (!jetson && compatible && compatible.length > 0) {
    const joined = compatible.join(' ');
    notes.push(`/proc/device-tree/compatible: ${compatible.join(', ')}`);
    jetson = PROFILES.find((p) => p.match?.compatible?.some((re) => new RegExp(re, 'i').test(joined)));
    if (jetson) notes.push(`compatible string matches profile ${jetson.name}`);
  }
  if (jetson) {
    if (release && jetson.software && release.major !== jetson.software.l4t) {
      const jp = L4T_TO_JETPACK[release.major] ?? '?';
      notes.push(
        `note: profile ${jetson.name} is written for JetPack ${jetson.software.jetpack} (L4T ${jetson.software.l4t}) but this board runs JetPack ${jp}; its limits may differ`,
      );
    }
    return { profile: jetson, evidence: notes };
  }
  if (release || (model !== undefined && /jetson|tegra/i.test(model))) {
    // A Tegra board we have no profile for: its GPU is still CUDA, but guessing a Jetson profile would
    // pick the wrong CUDA architecture and engine cache, so fall back to the CPU and say so.
    notes.push('a Jetson, but not one with a built-in profile: using cpu (pass --device NAME to choose)');
    return { profile: getProfile('cpu'), evidence: notes };
  }

  const gpus = parseNvidiaSmi(e.nvidiaSmi);
  if (gpus.length > 0) {
    notes.push(`nvidia-smi: ${gpus.map((g) => `${g.name}${g.computeCap ? ` (compute ${g.computeCap})` : ''}`).join(', ')}`);
    return { profile: getProfile('x86-cuda'), evidence: notes };
  }
  notes.push(e.nvidiaSmi === undefined ? 'no Jetson files and no nvidia-smi: CPU only' : 'nvidia-smi lists no GPU: CPU only');
  return { profile: getProfile('cpu'), evidence: notes };
}

export interface TegraRelease {
  /** "R32", "R35", "R36" */
  major: string;
  /** "7.1", "4.1", "3.0" */
  revision: string;
  board?: string;
}

/** "# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref, EABI: aarch64, DATE: ..." */
export function parseTegraRelease(text: string): TegraRelease | undefined {
  const m = /#\s*(R\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)/i.exec(text);
  if (!m) return undefined;
  const board = /BOARD:\s*([^,\s]+)/i.exec(text)?.[1];
  return { major: m[1]!.toUpperCase(), revision: m[2]!, board };
}

export function parseNvidiaSmi(text: string | undefined): { name: string; computeCap?: string }[] {
  if (text === undefined) return [];
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !/^(NVIDIA-SMI has failed|No devices were found)/i.test(l))
    .map((l) => {
      const [name, cap] = l.split(',').map((s) => s.trim());
      return { name: name!, computeCap: cap && /^\d+\.\d+$/.test(cap) ? cap : undefined };
    });
}

/** Device-tree strings end with NUL bytes. */
function cleanDeviceTreeString(s: string): string {
  return s.replace(/\0+$/g, '').replace(/\0/g, ' ').trim();
}

function readOptional(path: string): string | undefined {
  try {
    return readFileSync(path, 'latin1');
  } catch {
    return undefined;
  }
}

function runRealNvidiaSmi(): string | undefined {
  try {
    return execFileSync('nvidia-smi', [...NVIDIA_SMI_ARGS], { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return undefined;
  }
}

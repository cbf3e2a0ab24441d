/**
 * Picks the TensorFlow.js backend that trains: the native TensorFlow binding (`@tensorflow/tfjs-node-gpu`,
 * then `@tensorflow/tfjs-node`) when one is installed, else WebAssembly, else plain JavaScript, and says
 * what really runs: "tensorflow (GPU: <device>)" only when libtensorflow reports a GPU device in use
 * (tfjs-node-gpu falls back to the CPU silently when CUDA or cuDNN is missing), else "tensorflow (CPU)".
 * The native packages are not dependencies of this package (their install script downloads
 * libtensorflow; `npm run setup -- --tensorflow` installs tfjs-node another way): they are loaded by a
 * dynamic import only if present, and their absence is a reason, not a crash.
 */
import { execFileSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { SsdError, oneLine } from '../core/errors.js';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';
/**
 * Fastest first, as measured with the step benchmark on the digits config and on SSD300
 * (docs/train-model.md, "Backends compared"): tensorflow, then wasm, then cpu.
 */
export const BACKEND_ORDER: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];

export interface BackendChoice {
  /** The tfjs backend that now runs: `tensorflow`, `wasm` or `cpu`. */
  name: BackendName;
  /** What computes: `tensorflow (GPU: <device>)`, `tensorflow (CPU)`, `wasm` or `cpu`. */
  label: string;
  /** Why this one: which package provides it and why the preferred ones are not available. */
  reason: string;
}

export interface SelectBackendOptions {
  /** Where the one log line goes (default: stderr). */
  log?: (line: string) => void;
}

/** The native bindings, fastest first. A string variable as specifier keeps tsc from resolving them. */
const NATIVE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;
type NativePackage = (typeof NATIVE_PACKAGES)[number];

/**
 * Environment libtensorflow reads once, when it loads; set here unless the user set it.
 * TF_CPP_MIN_LOG_LEVEL=1 keeps its INFO lines (CPU feature guard) out of the training log.
 * TF_ENABLE_ONEDNN_OPTS stays unset (oneDNN on): with it on, libtensorflow 2.21's Conv2DBackpropInput
 * dies with SIGFPE on some 1x1 convs, but layers/conv.ts runs every 1x1 conv as a matMul on this
 * backend, and oneDNN makes the digits step about 1.8x faster than TF_ENABLE_ONEDNN_OPTS=0.
 */
function prepareTensorflowEnv(): void {
  process.env.TF_CPP_MIN_LOG_LEVEL ??= '1';
}

async function importOptional(pkg: NativePackage): Promise<string | undefined> {
  try {
    prepareTensorflowEnv();
    const specifier: string = pkg;
    await import(specifier);
    return undefined;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') return `${pkg} is not installed`;
    return `${pkg} failed to load (${oneLine(err).slice(0, 200)})`;
  }
}

async function trySetBackend(name: string): Promise<string | undefined> {
  try {
    if (!tf.findBackendFactory(name)) return `backend ${name} is not registered`;
    const ok = await tf.setBackend(name);
    if (!ok) return `backend ${name} failed to initialise`;
    await tf.ready();
    return undefined;
  } catch (err) {
    return `backend ${name} failed to initialise (${oneLine(err).slice(0, 200)})`;
  }
}

/** What the tensorflow backend reports about itself (tfjs-node's NodeJSKernelBackend). */
export interface NativeBackendInfo {
  isUsingGpuDevice?: boolean;
  binding?: { TF_Version?: string };
}

/**
 * The GPU libtensorflow uses: tfjs-node's binding takes the last GPU device TensorFlow lists, i.e. the
 * last of CUDA_VISIBLE_DEVICES (or of all GPUs). The binding does not expose its name; nvidia-smi does.
 */
function gpuName(): string {
  try {
    const visible = process.env.CUDA_VISIBLE_DEVICES?.split(',').map((s) => s.trim()).filter((s) => s !== '');
    const args = ['--query-gpu=name', '--format=csv,noheader', ...(visible?.length ? ['-i', visible.join(',')] : [])];
    const names = execFileSync('nvidia-smi', args, { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n').filter((s) => s.trim() !== '');
    if (names.length) return names[names.length - 1]!.trim();
  } catch {
    // No nvidia-smi: the device is still a GPU, only its name is unknown.
  }
  return 'CUDA device, name unknown (no nvidia-smi)';
}

/**
 * The label and source of a running tensorflow backend: a GPU only when libtensorflow says it uses
 * one (`isUsingGpuDevice`); tfjs-node-gpu without a usable CUDA runs on the CPU and is named so.
 */
export function describeNativeBackend(pkg: string, info: NativeBackendInfo, gpu: () => string): { label: string; source: string } {
  const usingGpu = info.isUsingGpuDevice === true;
  const tfVersion = info.binding?.TF_Version;
  const fellBack = !usingGpu && pkg === '@tensorflow/tfjs-node-gpu'
    ? ' (it found no usable GPU: it needs CUDA 11.2 and cuDNN 8.1, see docs/train-model.md)' : '';
  return { label: usingGpu ? `tensorflow (GPU: ${gpu()})` : 'tensorflow (CPU)', source: `${pkg}${tfVersion ? ` on libtensorflow ${tfVersion}` : ''}${fellBack}` };
}

async function tryTensorflow(): Promise<{ ok: true; label: string; source: string } | { ok: false; why: string }> {
  const whys: string[] = [];
  for (const pkg of NATIVE_PACKAGES) {
    const why = await importOptional(pkg);
    if (why) { whys.push(why); continue; }
    const fail = await trySetBackend('tensorflow');
    if (fail) { whys.push(`${pkg}: ${fail}`); continue; }
    return { ok: true, ...describeNativeBackend(pkg, tf.backend() as unknown as NativeBackendInfo, gpuName) };
  }
  return { ok: false, why: whys.join(', ') };
}

/**
 * Activates a backend and logs one line naming what computes and why the faster ones are not used,
 * e.g. `backend: tensorflow (CPU) via @tensorflow/tfjs-node on libtensorflow 2.21.0`. With no
 * preference: BACKEND_ORDER. A named preference is a demand: if it cannot run, an SsdError says why
 * (no silent fallback from a GPU the user asked for to a CPU).
 */
export async function selectBackend(preferred?: BackendName, options: SelectBackendOptions = {}): Promise<BackendChoice> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  if (preferred !== undefined && !BACKEND_ORDER.includes(preferred)) {
    throw new SsdError(`--backend ${String(preferred)}: unknown backend (known: ${BACKEND_ORDER.join(', ')})`);
  }
  const candidates = preferred ? [preferred] : [...BACKEND_ORDER];
  const skipped: string[] = [];
  for (const name of candidates) {
    let why: string | undefined;
    let source = '';
    let label: string = name;
    if (name === 'tensorflow') {
      const r = await tryTensorflow();
      if (r.ok) { source = r.source; label = r.label; } else why = r.why;
    } else {
      why = await trySetBackend(name);
      // tfjs-backend-wasm 4.22 loads its single-threaded build in Node (no SharedArrayBuffer workers).
      source = name === 'wasm' ? '@tensorflow/tfjs-backend-wasm, one thread' : 'pure JavaScript';
    }
    if (why === undefined) {
      const reason = skipped.length ? `${source}; not ${skipped.join('; not ')}` : preferred ? `${source}, as requested` : source;
      log(`backend: ${label} via ${reason}`);
      return { name, label, reason };
    }
    skipped.push(`${name}: ${why}`);
  }
  if (preferred) throw new SsdError(`--backend ${preferred}: not available (${skipped.join('; ')})`);
  throw new SsdError(`no TensorFlow.js backend could start (${skipped.join('; ')})`);
}

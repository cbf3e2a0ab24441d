/**
 * Picks the TensorFlow.js backend that trains: the native TensorFlow binding (`@tensorflow/tfjs-node-gpu`,
 * then `@tensorflow/tfjs-node`) when the user installed one, else WebAssembly, else plain JavaScript.
 * The native packages download libtensorflow when installed, so they are not dependencies of this
 * package: they are loaded by a dynamic import only if present, and their absence is a reason, not a crash.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { SsdError, oneLine } from '../core/errors.js';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';
export const BACKEND_ORDER: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];

export interface BackendChoice {
  /** The tfjs backend that now runs: `tensorflow`, `wasm` or `cpu`. */
  name: string;
  /** Why this one: which package provides it and why the preferred ones are not available. */
  reason: string;
}

export interface SelectBackendOptions {
  /** Where the one log line goes (default: stderr). */
  log?: (line: string) => void;
}

/** The native bindings, fastest first. A string variable as specifier keeps tsc from resolving them. */
const NATIVE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'];

async function importOptional(pkg: string): Promise<string | undefined> {
  try {
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

async function tryTensorflow(): Promise<{ ok: true; pkg: string } | { ok: false; why: string }> {
  const whys: string[] = [];
  for (const pkg of NATIVE_PACKAGES) {
    const why = await importOptional(pkg);
    if (why) { whys.push(why); continue; }
    const fail = await trySetBackend('tensorflow');
    if (!fail) return { ok: true, pkg };
    whys.push(`${pkg}: ${fail}`);
  }
  return { ok: false, why: whys.join(', ') };
}

/**
 * Activates a backend and logs one line naming it and why the faster ones are not used. With no
 * preference: tensorflow -> wasm -> cpu. A named preference is a demand: if it cannot run, an SsdError
 * says why (no silent fallback from a GPU the user asked for to a CPU).
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
    if (name === 'tensorflow') {
      const r = await tryTensorflow();
      if (r.ok) source = r.pkg === '@tensorflow/tfjs-node-gpu' ? `${r.pkg} (CUDA)` : `${r.pkg} (CPU, native)`;
      else why = r.why;
    } else {
      why = await trySetBackend(name);
      source = name === 'wasm' ? '@tensorflow/tfjs-backend-wasm' : 'pure JavaScript';
    }
    if (why === undefined) {
      const reason = skipped.length ? `${source}; not ${skipped.join('; not ')}` : preferred ? `${source}, as requested` : source;
      log(`backend: ${name} (${reason})`);
      return { name, reason };
    }
    skipped.push(`${name}: ${why}`);
  }
  if (preferred) throw new SsdError(`--backend ${preferred}: not available (${skipped.join('; ')})`);
  throw new SsdError(`no TensorFlow.js backend could start (${skipped.join('; ')})`);
}

/**
 * An onnxruntime-node session on the best execution provider that actually loads.
 *
 * onnxruntime-node throws at session creation when a provider's shared library (TensorRT, CUDA) is
 * missing instead of falling back, so the providers of a device profile are tried in order: first the
 * whole list (onnxruntime then places each node on the first provider that takes it), then without the
 * head that failed, and so on down to CPU, which is always last. One log line says which provider was
 * chosen and why the ones before it were skipped.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import ort from 'onnxruntime-node';
import { SsdError, oneLine } from '../core/errors.js';
import type { ExecutionProviderName, ProviderSpec } from '../devices/types.js';
import { mainThreadFactory, workerThreadFactory, type InferenceBackend } from './inference-thread.js';

export const GRAPH_OPTIMIZATION_LEVELS = ['disabled', 'basic', 'extended', 'all'] as const;
export type GraphOptimizationLevel = (typeof GRAPH_OPTIMIZATION_LEVELS)[number];

export interface SessionOptions {
  /** Providers in order of preference; CPU is appended when missing. Default: CPU only. */
  providers?: readonly ProviderSpec[];
  /**
   * onnxruntime intra-op threads; 0 or undefined = one per core of this machine (defaultThreads).
   * onnxruntime's own default is not that everywhere: on some VMs it picks 1, which halves SSD300's speed.
   */
  threads?: number;
  graphOptimization?: GraphOptimizationLevel;
  /** Where the one provider line goes (default: stderr, so that stdout stays clean for --json). */
  log?: (line: string) => void;
  /** Said at the start of the log line, e.g. which device profile the providers came from. */
  context?: string;
  /**
   * Thread that runs the graph: 'worker' (default) keeps the JS thread free while a frame is
   * inferred (see inference-thread.ts); 'main' runs it in-process, as onnxruntime-node does.
   */
  thread?: 'worker' | 'main';
  /**
   * Whether idle intra-op threads spin-wait for work (onnxruntime's default, true). Spinning shaves
   * a little latency off a lone inference but burns the cores that decoding the next frame needs.
   */
  spinWait?: boolean;
}

export interface SkippedProvider {
  name: ExecutionProviderName;
  reason: string;
}

export interface OpenedSession {
  session: InferenceBackend;
  /** The provider at the head of the list the session was created with. */
  provider: ExecutionProviderName;
  skipped: SkippedProvider[];
  /** The line that was logged. */
  logLine: string;
}

let logLevelSet = false;

/**
 * onnxruntime logs each failed provider load as a multi-line error on stderr before throwing; the
 * reason is in the thrown message anyway, so the native log is kept to fatal unless SSD_DEBUG=1. The
 * level is fixed when onnxruntime initialises (the first session), hence once per process.
 */
function nativeLogLevel(): 'warning' | 'fatal' {
  return process.env.SSD_DEBUG === '1' ? 'warning' : 'fatal';
}

function quietNativeLog(): void {
  if (logLevelSet) return;
  logLevelSet = true;
  ort.env.logLevel = nativeLogLevel();
}

/** What the stock binding understands: `deviceId`; the profile's own option names ride along for patched builds. */
function toOrtProvider(p: ProviderSpec): ort.InferenceSession.ExecutionProviderConfig {
  if (p.name === 'cpu') return 'cpu';
  const opts = p.options ?? {};
  const deviceId = typeof opts.device_id === 'number' ? opts.device_id : Number(opts.device_id ?? 0);
  return { ...opts, name: p.name, deviceId } as ort.InferenceSession.ExecutionProviderConfig;
}

/** Why a provider failed, short: onnxruntime's message names the symbol; the useful part is the cause. */
function shortReason(err: unknown): string {
  const msg = oneLine(err);
  if (/Failed to load shared library|cannot open shared object|providers_shared/i.test(msg)) return 'its library is not installed';
  if (/backend not found|no available backend/i.test(msg)) return 'not in this onnxruntime build';
  return msg.length > 160 ? `${msg.slice(0, 157)}...` : msg;
}

export function normaliseProviders(providers: readonly ProviderSpec[] | undefined): ProviderSpec[] {
  const list = (providers ?? []).filter((p, i, all) => all.findIndex((q) => q.name === p.name) === i);
  const cpu = list.findIndex((p) => p.name === 'cpu');
  // Anything after CPU would never be used: CPU takes every node.
  const head = cpu >= 0 ? list.slice(0, cpu + 1) : [...list, { name: 'cpu' as const }];
  return head;
}

function sessionOptions(o: SessionOptions, providers: ProviderSpec[]): ort.InferenceSession.SessionOptions {
  const opts: ort.InferenceSession.SessionOptions = {
    executionProviders: providers.map(toOrtProvider),
    graphOptimizationLevel: o.graphOptimization ?? 'all',
    logSeverityLevel: process.env.SSD_DEBUG === '1' ? 2 : 3,
  };
  if (o.spinWait !== undefined) {
    opts.extra = { session: { intra_op: { allow_spinning: o.spinWait ? '1' : '0' }, inter_op: { allow_spinning: o.spinWait ? '1' : '0' } } };
  }
  opts.intraOpNumThreads = resolveThreads(o.threads);
  opts.interOpNumThreads = 1;
  return opts;
}

/** Intra-op threads when none are asked for: one per core the process may use. */
export function defaultThreads(): number {
  return Math.max(1, availableParallelism());
}

/** The intra-op thread count a session gets for a `threads` option (0 or undefined: defaultThreads). */
export function resolveThreads(threads: number | undefined): number {
  return threads !== undefined && threads > 0 ? threads : defaultThreads();
}

/**
 * Opens `modelPath` on the first provider of `o.providers` that loads. A model onnxruntime rejects
 * (corrupt, unsupported op) is an SsdError naming the file; a provider that fails only moves on to the
 * next one, so a missing GPU library never stops the program.
 */
export async function openSession(modelPath: string, o: SessionOptions = {}): Promise<OpenedSession> {
  if (!existsSync(modelPath)) throw new SsdError(`model ${modelPath}: file not found`);
  quietNativeLog();
  const thread = o.thread ?? 'worker';
  const factory = thread === 'worker' ? workerThreadFactory(nativeLogLevel()) : mainThreadFactory();
  const providers = normaliseProviders(o.providers);
  const skipped: SkippedProvider[] = [];
  for (let i = 0; i < providers.length; i++) {
    const list = providers.slice(i);
    const head = list[0]!;
    try {
      const session = await factory.create(modelPath, sessionOptions(o, list));
      const why = skipped.length ? `; skipped ${skipped.map((s) => `${s.name} (${s.reason})`).join(', ')}` : '';
      const n = resolveThreads(o.threads);
      const threads = `${n} threads${o.threads && o.threads > 0 ? '' : ' = cores'}`;
      const fallback = list.length > 1 ? `, nodes it cannot take fall back to ${list.slice(1).map((p) => p.name).join(' -> ')}` : '';
      const logLine = `onnxruntime${o.context ? ` [${o.context}]` : ''}: provider ${head.name}${fallback} (${threads}, graph optimization ${o.graphOptimization ?? 'all'}, ${thread} thread)${why}`;
      (o.log ?? ((l: string) => process.stderr.write(`${l}\n`)))(logLine);
      return { session, provider: head.name, skipped, logLine };
    } catch (err) {
      if (head.name === 'cpu') {
        await factory.close();
        throw new SsdError(`model ${modelPath}: onnxruntime cannot load it (${shortReason(err)})`, { cause: err });
      }
      skipped.push({ name: head.name, reason: shortReason(err) });
    }
  }
  // normaliseProviders always ends with CPU, whose failure throws above.
  throw new Error('unreachable: no CPU provider in the list');
}

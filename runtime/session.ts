/**
 * An onnxruntime-node session on the best execution provider that actually loads.
 *
 * First the binding is asked which backends it was built with (`listSupportedBackends`): the
 * linux-arm64 npm package has no CUDA or TensorRT, and onnxruntime-common silently drops (with a
 * console.warn) a requested provider the binding lacks, so without this check the log would name a
 * provider that never ran. Providers the binding lacks are skipped with that reason. Then: onnxruntime-node throws at session creation when a provider's shared library (TensorRT, CUDA) is
 * missing instead of falling back, so the providers of a device profile are tried in order: first the
 * whole list (onnxruntime then places each node on the first provider that takes it), then without the
 * head that failed, and so on down to CPU, which is always last. One log line says which provider was
 * chosen and why the ones before it were skipped. `requireGpu` turns "fell back to the CPU" into a
 * one-line error. Before a TensorRT session, its engine cache is keyed by the model's bytes and its
 * directories are created (devices/trt-cache.ts).
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import ort from 'onnxruntime-node';
import { SsdError, oneLine } from '../core/errors.js';
import { ensureProviderCacheDirs } from '../devices/provider-options.js';
import { cachedEngines, detectTensorRtVersion, prepareEngineCache } from '../devices/trt-cache.js';
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
  /**
   * Told 'building-engine' when TensorRT starts without a cached engine for this model (minutes on a
   * Jetson) and 'ready' once the session is open; the stream's /healthz reports it.
   */
  onPhase?: (phase: SessionPhase) => void;
  /** Fail (one-line SsdError) instead of falling back to the CPU when no GPU provider loads. */
  requireGpu?: boolean;
  /** The backends the binding offers; default: ask it (bindingBackends). Tests pass a board's list. */
  backends?: readonly BindingBackend[];
  /** CUDA compute capability, part of the TensorRT engine cache key (a profile's cudaArch). */
  gpuArch?: number | string;
  /** TensorRT version in the engine cache key; default: from libnvinfer's file name (detectTensorRtVersion). */
  tensorrtVersion?: string;
}

export type SessionPhase = 'building-engine' | 'ready';

/** How often a TensorRT engine build still running is logged. */
const ENGINE_NOTE_MS = 20_000;

/** One entry of onnxruntime-node's listSupportedBackends: `bundled` false = its library ships separately. */
export interface BindingBackend {
  name: string;
  bundled: boolean;
}

/** What this onnxruntime-node binding was built with, e.g. cpu, webgpu, cuda, tensorrt on linux-x64. */
export function bindingBackends(): BindingBackend[] {
  return ort.listSupportedBackends().map((b) => ({ name: b.name, bundled: b.bundled }));
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
  /** TensorRT's engine directory for this model when TensorRT is in use with an engine cache. */
  engineDir?: string;
  /** Engine files that were already in engineDir before the session opened (a cache hit when non-empty). */
  cachedEnginesAtStart?: string[];
  /** Milliseconds the session took to create (an engine build on a first TensorRT start). */
  createMs: number;
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
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const wanted = normaliseProviders(o.providers);
  const skipped: SkippedProvider[] = [];
  // Only providers the binding has: anything else onnxruntime-common would drop behind our back.
  const backends = o.backends ?? bindingBackends();
  const offered = new Set(backends.map((b) => b.name));
  let providers = wanted.filter((p) => {
    if (p.name === 'cpu' || offered.has(p.name)) return true;
    skipped.push({ name: p.name, reason: `not in this onnxruntime-node build (it has ${backends.map((b) => b.name).join(', ')})` });
    return false;
  });
  let engineDir: string | undefined;
  let cachedAtStart: string[] | undefined;
  if (providers.some((p) => p.name === 'tensorrt')) {
    const prepared = prepareEngineCache(providers, modelPath, { gpuArch: o.gpuArch, tensorrtVersion: o.tensorrtVersion ?? detectTensorRtVersion() });
    providers = prepared.providers;
    engineDir = prepared.engineDir;
    if (engineDir) cachedAtStart = cachedEngines(engineDir);
  }
  // onnxruntime creates only the last level of a cache path: make the rest before the session.
  ensureProviderCacheDirs(providers);
  const requireGpuError = () => new SsdError(
    `--require-gpu: model ${modelPath} would run on the CPU (${skipped.map((s) => `${s.name}: ${s.reason}`).join('; ') || 'no GPU provider asked for'})`,
  );
  if (o.requireGpu && providers[0]!.name === 'cpu') throw requireGpuError();
  const thread = o.thread ?? 'worker';
  const factory = thread === 'worker' ? workerThreadFactory(nativeLogLevel()) : mainThreadFactory();
  for (let i = 0; i < providers.length; i++) {
    const list = providers.slice(i);
    const head = list[0]!;
    // The preferred order, whichever check skipped a provider.
    skipped.sort((a, b) => wanted.findIndex((p) => p.name === a.name) - wanted.findIndex((p) => p.name === b.name));
    if (o.requireGpu && head.name === 'cpu') {
      await factory.close();
      throw requireGpuError();
    }
    const building = head.name === 'tensorrt' && engineDir !== undefined && cachedAtStart!.length === 0;
    const started = performance.now();
    // A missing TensorRT library fails at once; an engine build takes minutes on a Jetson and would
    // otherwise say nothing, so a build still going after a while is reported every ENGINE_NOTE_MS.
    const note = building
      ? setInterval(() => log(`onnxruntime: building the TensorRT engine for ${modelPath} (${((performance.now() - started) / 1000).toFixed(0)} s so far; later starts load it from ${engineDir})`), ENGINE_NOTE_MS)
      : undefined;
    note?.unref();
    if (building) o.onPhase?.('building-engine');
    try {
      const session = await factory.create(modelPath, sessionOptions(o, list)).finally(() => clearInterval(note));
      const createMs = performance.now() - started;
      o.onPhase?.('ready');
      const why = skipped.length ? `; skipped ${skipped.map((s) => `${s.name} (${s.reason})`).join(', ')}` : '';
      const n = resolveThreads(o.threads);
      const threads = `${n} threads${o.threads && o.threads > 0 ? '' : ' = cores'}`;
      const fallback = list.length > 1 ? `, nodes it cannot take fall back to ${list.slice(1).map((p) => p.name).join(' -> ')}` : '';
      const engine = head.name === 'tensorrt' && engineDir !== undefined
        ? `, engine ${cachedAtStart!.length > 0 ? 'loaded from cache' : `built in ${(createMs / 1000).toFixed(1)} s`} (${engineDir})`
        : '';
      const logLine = `onnxruntime${o.context ? ` [${o.context}]` : ''}: provider ${head.name}${fallback} (${threads}, graph optimization ${o.graphOptimization ?? 'all'}, ${thread} thread)${engine}${why}`;
      log(logLine);
      const onTrt = head.name === 'tensorrt';
      return { session, provider: head.name, skipped, logLine, createMs, ...(onTrt && engineDir ? { engineDir, cachedEnginesAtStart: cachedAtStart } : {}) };
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

/**
 * Several sources, one detector session. Each round serves the sources that have a frame, the one
 * served longest ago first (round-robin; a source that had nothing in a round keeps its place, so
 * sources of equal rate get equal service, within one frame, however their frames interleave), and
 * runs the picked frames together when the model takes a batch. One result per frame goes to the sinks.
 *
 * Freshness without favourites: a camera that keeps its newest frame in hand (`FrameSource.ready` /
 * `poll`, GstFrameSource) is only asked for its frame when its turn comes, and that frame is the
 * newest it has: never older than one frame interval at the start of its run, however long the turn
 * took, and no frame was taken from it and thrown away (so `frame` numbers have no gaps). The earlier
 * rule (drop a held frame that waited through a run, ask again) served whichever cameras' frames
 * happened to land in the short window after each run: with 16 cameras, min/max fps 0.55-0.69.
 * Other cameras (the demo) are held as before and dropped when stale. Files keep their frame (every
 * frame counts) and decode their next one during the run.
 *
 * The session can change between rounds (hot model reload): with a `DetectorProvider` each round
 * leases the current detector and releases it once its results are out, so an old session is
 * disposed only after its last run.
 */
import type { DetectionPixelsXYXY } from '../../core/model-contract.js';
import type { Detector, DetectOptions } from '../detector.js';
import type { Frame, FrameSource } from './frame.js';

/** The part of runtime/detector.ts's Detector a stream uses. */
export type StreamDetector = Pick<Detector, 'prepare' | 'run' | 'finish' | 'runBatch' | 'inputSize' | 'labels'>;

export interface FrameResult {
  frame: Frame;
  detections: DetectionPixelsXYXY[];
  /** Bare session.run time of the batch this frame was in. */
  inferMs: number;
  prepareMs: number;
  /** Frames in that session.run. */
  batch: number;
  /** Wall clock (ms since the epoch) when the detections were ready. */
  doneMs: number;
  /** From the frame leaving the pipeline to the detections being ready. */
  latencyMs: number;
}

/** A detector for one round, released once that round's results are out. */
export interface DetectorLease {
  detector: StreamDetector;
  release(): void;
}

/** The session in use, which may be swapped between rounds (runtime/stream/reload.ts). */
export interface DetectorProvider {
  acquire(): DetectorLease;
}

export interface SchedulerOptions {
  sources: readonly FrameSource[];
  detector: StreamDetector | DetectorProvider;
  detect?: DetectOptions;
  /** Stop after this many frames in all (undefined: until every source ends or `signal` aborts). */
  maxFrames?: number;
  signal?: AbortSignal;
  onResult: (r: FrameResult) => void | Promise<void>;
  /** Called once per session.run, before that run's results. */
  onRun?: (inferMs: number, batch: number) => void;
}

export interface SchedulerSummary {
  frames: number;
  runs: number;
  /** Wall time from the first frame to the last result, ms. */
  elapsedMs: number;
  reason: 'max-frames' | 'sources-ended' | 'stopped';
}

/** How long a round waits for more sources' frames when the model takes a batch. */
export const BATCH_GRACE_MS = 3;

/** What the scheduler has of one source: a frame in hand, or (keep-fresh cameras) a readiness signal. */
interface Slot {
  source: FrameSource;
  promise: Promise<void>;
  settled: boolean;
  /** Held sources only: the frame next() gave (null: the source ended). */
  frame?: Frame | null;
  error?: unknown;
}

type FreshSource = FrameSource & Required<Pick<FrameSource, 'ready' | 'poll'>>;

function isFresh(s: FrameSource): s is FreshSource {
  return s.live && typeof s.ready === 'function' && typeof s.poll === 'function';
}

function isProvider(d: StreamDetector | DetectorProvider): d is DetectorProvider {
  return typeof (d as Partial<DetectorProvider>).acquire === 'function';
}

export async function runScheduler(opts: SchedulerOptions): Promise<SchedulerSummary> {
  const { signal } = opts;
  const provider: DetectorProvider = isProvider(opts.detector)
    ? opts.detector
    : { acquire: () => ({ detector: opts.detector as StreamDetector, release: () => {} }) };
  const active = new Set(opts.sources);
  const slots = new Map<FrameSource, Slot>();
  // Round of each source's last service (-1: never), the round-robin order.
  const lastServed = new Map<FrameSource, number>();
  const order = new Map(opts.sources.map((s, i) => [s, i]));
  const maxFrames = opts.maxFrames ?? Infinity;
  let frames = 0;
  let runs = 0;
  let lastRunStart = -Infinity;
  let firstMono: number | undefined;
  let lastDone = performance.now();
  let reason: SchedulerSummary['reason'] = 'sources-ended';
  // Waits are wake-ups, not Promise.race over the slots and a stop promise each round: a race adds a
  // reaction to every promise it is given, kept until that promise settles. The stop promise never
  // did before the end: ~300 bytes of heap per round, which was the soak's steady RSS creep (0.7
  // MB/min at 30 fps; docs/stream.md "Soak": heap snapshots 7 minutes apart held 2923 more
  // PromiseReactions, one per round). A camera down for hours among live ones would do the same.
  let waiter: (() => void) | undefined;
  const wake = () => waiter?.();
  /** Resolves once `done()` holds (checked whenever a slot settles or the run is stopped), or after `ms`. */
  const until = (done: () => boolean, ms?: number): Promise<void> => new Promise<void>((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const finish = () => { waiter = undefined; clearTimeout(timer); resolve(); };
    if (done()) return finish();
    waiter = () => { if (done()) finish(); };
    if (ms !== undefined) timer = setTimeout(finish, ms);
  });
  signal?.addEventListener('abort', wake, { once: true });

  const arm = (source: FrameSource) => {
    const slot: Slot = { source, settled: false, promise: Promise.resolve() };
    const settle = (f: Frame | null | undefined) => { slot.frame = f; slot.settled = true; wake(); };
    const fail = (err: unknown) => { slot.error = err; slot.settled = true; wake(); };
    slot.promise = isFresh(source) ? source.ready().then(() => settle(undefined), fail) : source.next().then(settle, fail);
    slots.set(source, slot);
  };

  while (active.size > 0) {
    if (frames >= maxFrames) { reason = 'max-frames'; break; }
    if (signal?.aborted) { reason = 'stopped'; break; }
    for (const s of active) {
      const slot = slots.get(s);
      // A held camera frame that waited through the last run is stale: the camera has a newer one.
      if (slot?.settled && slot.frame && s.live && slot.frame.captureMono < lastRunStart) slots.delete(s);
      if (!slots.has(s)) arm(s);
    }
    await until(() => signal?.aborted === true || [...slots.values()].some((h) => h.settled));
    if (signal?.aborted) { reason = 'stopped'; break; }
    const lease = provider.acquire();
    try {
      const { detector } = lease;
      // Let frames already waiting in other appsinks arrive too: one turn of the event loop, or, when
      // they could share the run, up to BATCH_GRACE_MS (a pull of a full appsink takes well under that).
      const others = [...slots.values()].filter((h) => !h.settled).map((h) => h.promise);
      if (detector.runBatch > 1 && others.length > 0) {
        await until(() => [...slots.values()].every((h) => h.settled), BATCH_GRACE_MS);
      } else {
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      const ready: Slot[] = [];
      for (const slot of [...slots.values()]) {
        if (!slot.settled) continue;
        if (slot.error !== undefined) throw slot.error;
        if (slot.frame === null) {
          slots.delete(slot.source);
          active.delete(slot.source);
          continue;
        }
        ready.push(slot);
      }
      // Round-robin: served longest ago first, then the order the sources were given in.
      const rank = (s: FrameSource) => lastServed.get(s) ?? -1;
      ready.sort((a, b) => rank(a.source) - rank(b.source) || order.get(a.source)! - order.get(b.source)!);
      const want = Math.min(detector.runBatch, maxFrames - frames);
      const take: Array<{ source: FrameSource; frame: Frame }> = [];
      for (const slot of ready) {
        if (take.length >= want) break;
        if (slot.frame) {
          slots.delete(slot.source);
          take.push({ source: slot.source, frame: slot.frame });
          continue;
        }
        // A keep-fresh camera: its newest frame, taken only now that it is picked.
        const f = (slot.source as FreshSource).poll();
        slots.delete(slot.source);
        if (f === null) active.delete(slot.source);
        else if (f !== undefined) take.push({ source: slot.source, frame: f });
      }
      if (take.length === 0) continue;
      const batch = take.map((t) => t.frame);
      firstMono ??= Math.min(...batch.map((f) => f.captureMono));
      const prepared = await detector.prepare(batch);
      for (const t of take) t.source.prefetch();
      lastRunStart = performance.now();
      const raw = await detector.run(prepared);
      const dets = detector.finish(raw, prepared, opts.detect);
      const doneMono = performance.now();
      const doneMs = Date.now();
      runs++;
      lastDone = doneMono;
      opts.onRun?.(raw.inferMs, take.length);
      for (let i = 0; i < take.length; i++) {
        const frame = batch[i]!;
        lastServed.set(take[i]!.source, runs);
        frames++;
        await opts.onResult({
          frame, detections: dets[i] ?? [], inferMs: raw.inferMs, prepareMs: prepared.prepareMs, batch: take.length,
          doneMs, latencyMs: doneMono - frame.captureMono,
        });
      }
    } finally {
      lease.release();
    }
  }
  signal?.removeEventListener('abort', wake);
  return { frames, runs, elapsedMs: firstMono === undefined ? 0 : lastDone - firstMono, reason };
}

/**
 * Several sources, one detector session. Each round takes the frames that are ready (waiting for the
 * first one), runs them together when the model takes a batch (else the source served longest ago
 * goes first), and hands one result per frame to the sinks.
 *
 * Freshness: a live source's frame that was not picked in a round was captured before that round's
 * inference, so it is dropped and the source asked again: what reaches the detector is never older
 * than one frame interval at the start of its run. Files keep their frame (every frame counts) and
 * decode their next one during the run.
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

export interface SchedulerOptions {
  sources: readonly FrameSource[];
  detector: StreamDetector;
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

interface Held {
  source: FrameSource;
  promise: Promise<void>;
  settled: boolean;
  frame?: Frame | null;
  error?: unknown;
}

export async function runScheduler(opts: SchedulerOptions): Promise<SchedulerSummary> {
  const { detector, signal } = opts;
  const active = new Set(opts.sources);
  const held = new Map<FrameSource, Held>();
  const lastServed = new Map<FrameSource, number>();
  const maxFrames = opts.maxFrames ?? Infinity;
  let frames = 0;
  let runs = 0;
  let lastRunStart = -Infinity;
  let firstMono: number | undefined;
  let lastDone = performance.now();
  let reason: SchedulerSummary['reason'] = 'sources-ended';
  const stopped = new Promise<void>((resolve) => {
    if (signal?.aborted) resolve();
    signal?.addEventListener('abort', () => resolve(), { once: true });
  });

  const ask = (source: FrameSource) => {
    const h: Held = { source, settled: false, promise: Promise.resolve() };
    h.promise = source.next().then(
      (f) => { h.frame = f; h.settled = true; },
      (err: unknown) => { h.error = err; h.settled = true; },
    );
    held.set(source, h);
  };

  while (active.size > 0) {
    if (frames >= maxFrames) { reason = 'max-frames'; break; }
    if (signal?.aborted) { reason = 'stopped'; break; }
    for (const s of active) {
      const h = held.get(s);
      // A camera frame that waited through the last run is stale: the appsink has a newer one.
      if (h?.settled && h.frame && s.live && h.frame.captureMono < lastRunStart) held.delete(s);
      if (!held.has(s)) ask(s);
    }
    await Promise.race([...[...held.values()].map((h) => h.promise), stopped]);
    if (signal?.aborted) { reason = 'stopped'; break; }
    // Let frames already waiting in other appsinks arrive too: one turn of the event loop, or, when
    // they could share the run, up to BATCH_GRACE_MS (a pull of a full appsink takes well under that).
    const others = [...held.values()].filter((h) => !h.settled).map((h) => h.promise);
    if (detector.runBatch > 1 && others.length > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all(others), new Promise<void>((resolve) => { timer = setTimeout(resolve, BATCH_GRACE_MS); })]);
      clearTimeout(timer);
    } else {
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    const ready: Array<Held & { frame: Frame }> = [];
    for (const h of [...held.values()]) {
      if (!h.settled) continue;
      if (h.error !== undefined) throw h.error;
      if (h.frame === null) {
        held.delete(h.source);
        active.delete(h.source);
        continue;
      }
      ready.push(h as Held & { frame: Frame });
    }
    if (ready.length === 0) continue;
    ready.sort((a, b) => (lastServed.get(a.source) ?? -1) - (lastServed.get(b.source) ?? -1));
    const take = ready.slice(0, Math.min(detector.runBatch, maxFrames - frames));
    for (const h of take) held.delete(h.source);
    const batch = take.map((h) => h.frame);
    firstMono ??= Math.min(...batch.map((f) => f.captureMono));
    const prepared = await detector.prepare(batch);
    for (const h of take) h.source.prefetch();
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
  }
  return { frames, runs, elapsedMs: firstMono === undefined ? 0 : lastDone - firstMono, reason };
}

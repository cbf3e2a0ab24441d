/**
 * Hot model reload for `ssd stream`: SIGHUP, or the model file changing, swaps the onnxruntime
 * session without stopping a stream.
 *
 * The new model is loaded next to the running one and checked before anything changes: its metadata
 * must read (a truncated or half-copied file fails here), the graph must be the SSD its metadata
 * describes (Detector.load), it must take the frames the running GStreamer pipelines deliver (the
 * pipelines scale to the model's input size and convert to its channel order when they are built,
 * and are not rebuilt), and one blank frame must go through prepare, run and finish. Only then is it
 * swapped in, between two rounds of the scheduler; the old session is disposed once the round that
 * still uses it has handed out its results. Anything that fails is refused with one log line and the
 * old model keeps running.
 *
 * Watching: the model's directory, not the file, so that a replacement by rename (editors, `mv`,
 * `cp` to a temporary name first) is seen as well as a rewrite in place; events are debounced (a
 * copy writes in many chunks) and a file whose inode, size and modification time are those of the
 * last attempt is not loaded again.
 */
import { watch, statSync, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { oneLine } from '../../core/errors.js';
import type { Detector } from '../detector.js';
import type { LogFn } from './frame.js';
import type { PixelFormat } from './pipelines.js';
import type { DetectorLease, DetectorProvider } from './scheduler.js';

/** What the GStreamer pipelines were built to deliver for a model: colour order, and the size when they scale. */
export interface PipelineContract {
  format: PixelFormat;
  /** Square output size when the pipeline scales to the model input ('warp'), undefined when frames keep the source's size. */
  size: number | undefined;
}

/** The frames a model needs from the pipelines (the one rule index.ts builds them by). */
export function pipelineContract(d: Pick<Detector, 'metadata' | 'resize' | 'inputSize'>): PipelineContract {
  const format: PixelFormat = d.metadata.inputLayout === 'uint8-nhwc' ? 'rgb' : d.metadata.spec.input.channelOrder;
  return { format, size: d.resize === 'warp' ? d.inputSize : undefined };
}

function describeContract(c: PipelineContract): string {
  return `${c.size === undefined ? 'source-size' : `${c.size}x${c.size}`} ${c.format.toUpperCase()}`;
}

/**
 * The session in use. Each scheduler round leases it; `swap` makes the next round use another, and
 * the old one is disposed when its last lease is released.
 */
export class DetectorSlot implements DetectorProvider {
  private cur: Detector;
  private readonly leases = new Map<Detector, number>();
  private readonly retired = new Set<Detector>();
  private readonly disposals: Array<Promise<void>> = [];

  constructor(initial: Detector, private readonly log: LogFn = () => {}) {
    this.cur = initial;
  }

  get current(): Detector {
    return this.cur;
  }

  acquire(): DetectorLease {
    const d = this.cur;
    this.leases.set(d, (this.leases.get(d) ?? 0) + 1);
    let released = false;
    return {
      detector: d,
      release: () => {
        if (released) return;
        released = true;
        const n = this.leases.get(d)! - 1;
        if (n > 0) this.leases.set(d, n);
        else this.leases.delete(d);
        if (n === 0 && this.retired.has(d)) this.disposeOld(d);
      },
    };
  }

  /** Makes `next` the session of the following rounds; the old one goes once no round holds it. */
  swap(next: Detector): Detector {
    const old = this.cur;
    this.cur = next;
    this.retired.add(old);
    if (!this.leases.has(old)) this.disposeOld(old);
    return old;
  }

  /** Disposes the current session and waits for the old ones' disposal. */
  async dispose(): Promise<void> {
    await this.cur.dispose();
    await Promise.all(this.disposals);
  }

  private disposeOld(d: Detector): void {
    this.retired.delete(d);
    this.disposals.push(d.dispose().catch((err: unknown) => this.log(`model reload: disposing the old session: ${oneLine(err)}`)));
  }
}

export type ReloadResult = 'ok' | 'refused';

export interface ModelReloaderOptions {
  /** The model file (re)loaded. */
  path: string;
  slot: DetectorSlot;
  /** Loads a model with the options the running one was loaded with. */
  load: (path: string) => Promise<Detector>;
  /** What the running pipelines deliver. */
  contract: PipelineContract;
  log: LogFn;
  onResult?: (result: ReloadResult) => void;
  /** Watch the file (default true). */
  watch?: boolean;
  /** Quiet time after the last change event before loading (default 300 ms). */
  debounceMs?: number;
}

interface FileStamp { ino: number; size: number; mtimeMs: number }

function stampOf(path: string): FileStamp | undefined {
  try {
    const s = statSync(path);
    return { ino: s.ino, size: s.size, mtimeMs: s.mtimeMs };
  } catch {
    return undefined;
  }
}

const sameStamp = (a: FileStamp | undefined, b: FileStamp | undefined) =>
  a !== undefined && b !== undefined && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs;

function describeModel(d: Detector, stamp: FileStamp | undefined): string {
  const when = stamp ? `, ${new Date(stamp.mtimeMs).toISOString().replace(/\.\d+Z$/, 'Z')}` : '';
  const size = stamp ? `, ${(stamp.size / 1e6).toFixed(1)} MB` : '';
  return `${d.metadata.spec.name} (${basename(d.modelPath)}${when}${size})`;
}

export class ModelReloader {
  private readonly path: string;
  private watcher: FSWatcher | undefined;
  private debounce: NodeJS.Timeout | undefined;
  /** The file as it was at the last load attempt (and at start). */
  private lastStamp: FileStamp | undefined;
  private currentStamp: FileStamp | undefined;
  private running: Promise<void> | undefined;
  private again: string | undefined;
  private closed = false;

  constructor(private readonly o: ModelReloaderOptions) {
    this.path = resolve(o.path);
    this.lastStamp = stampOf(this.path);
    this.currentStamp = this.lastStamp;
    if (o.watch ?? true) {
      const name = basename(this.path);
      try {
        this.watcher = watch(dirname(this.path), { persistent: false }, (_event, file) => {
          if (file === null || file === name) this.onChange();
        });
        this.watcher.on('error', (err) => o.log(`model reload: watching ${this.path} stopped (${oneLine(err)}); SIGHUP still reloads`));
      } catch (err) {
        o.log(`model reload: cannot watch ${this.path} (${oneLine(err)}); SIGHUP still reloads`);
      }
    }
  }

  /** Reloads now (SIGHUP). A reload in progress finishes first; requests made meanwhile make one more. */
  request(why: string): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.running) {
      this.again = why;
      return this.running;
    }
    this.running = this.reload(why).finally(() => {
      this.running = undefined;
      const next = this.again;
      this.again = undefined;
      if (next !== undefined && !this.closed) void this.request(next);
    });
    return this.running;
  }

  /** Stops watching and waits for a reload in progress. */
  async close(): Promise<void> {
    this.closed = true;
    this.again = undefined;
    clearTimeout(this.debounce);
    this.watcher?.close();
    await this.running;
  }

  private onChange(): void {
    if (this.closed) return;
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      const stamp = stampOf(this.path);
      // Gone (mid-rename) or unchanged since the last attempt: the next event says more.
      if (stamp === undefined || sameStamp(stamp, this.lastStamp)) return;
      void this.request('file changed');
    }, this.o.debounceMs ?? 300);
  }

  private async reload(why: string): Promise<void> {
    const { slot, log } = this.o;
    const old = slot.current;
    const stamp = stampOf(this.path);
    this.lastStamp = stamp;
    const t0 = performance.now();
    let next: Detector | undefined;
    try {
      next = await this.o.load(this.path);
      const want = this.o.contract;
      const got = pipelineContract(next);
      if (got.format !== want.format || got.size !== want.size) {
        throw new Error(`it takes ${describeContract(got)} frames but the running pipelines deliver ${describeContract(want)}; restart ssd stream to change that`);
      }
      // A blank frame through prepare, run and finish, as the stream will send them.
      const side = want.size ?? next.inputSize;
      await next.detect({ data: new Uint8Array(side * side * 3), width: side, height: side, format: want.format });
      if (this.closed) throw new Error('the stream is ending');
    } catch (err) {
      if (next !== undefined) await next.dispose().catch(() => undefined);
      log(`model reload (${why}): refused ${this.path}: ${oneLine(err)}; still running ${describeModel(old, this.currentStamp)}`);
      this.o.onResult?.('refused');
      return;
    }
    const ms = performance.now() - t0;
    slot.swap(next);
    log(`model reload (${why}): ${describeModel(old, this.currentStamp)} -> ${describeModel(next, stamp)}, loaded in ${ms.toFixed(0)} ms`);
    this.currentStamp = stamp;
    this.o.onResult?.('ok');
  }
}

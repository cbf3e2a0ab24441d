/**
 * A GStreamer pipeline as a frame source with newest-frame semantics.
 *
 * Frames are pulled on demand: the appsink (drop=true max-buffers=1) always holds the newest decoded
 * frame, and `next()` takes it when the detector is ready for one, so a frame is at most one frame
 * interval old when inference starts, however slow inference is. Capture, decode and scaling run on
 * GStreamer's threads and overlap inference. (A camera pull issued before a run would return at once
 * with the frame of that moment, a whole run old by the time the detector is free; files, where every
 * frame counts, do prefetch.) The stream scheduler uses cameras in keep-fresh mode instead (`ready()`
 * / `poll()`): a pull always pending and the newest sample in hand, so that it knows which cameras
 * have a frame without taking one that would go stale while other cameras are served.
 *
 * Failures: a bus error, an EOS of a camera, or no frame for `stallTimeoutMs` tears the pipeline down
 * and reconnects after a capped exponential backoff (logged). A source that never produced a frame
 * fails instead: an unreachable camera or a bad URI is an SsdError, not an endless retry. A file ends
 * at EOS, or starts over with `loop`.
 */
import { SsdError } from '../../core/errors.js';
import type { GstElements } from '../../devices/types.js';
import type { Frame, FrameSource, LogFn, SourceStats } from './frame.js';
import { GDP_TYPE_BUFFER, gdpPayloaderAvailable, parseGdpPacket, videoCapsOfGdp, withGdpPayloader } from './gdp.js';
import { createPipeline, type GstAppSink, type GstBusMessage, type GstCaps, type GstPipeline } from './gst.js';
import { buildPipeline, declaredSourceSize, withRecordBranch, type BuiltPipeline, type DisplayBranchOptions, type PixelFormat } from './pipelines.js';
import type { Recorder } from './record.js';
import type { ParsedSource, VideoCodec } from './uri.js';
import { DisplayTap, withDisplayPayloader } from './video-out.js';

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 10_000 };

/** Delay before reconnect attempt `attempt` (1-based): initial * 2^(attempt-1), capped. */
export function backoffDelay(attempt: number, b: BackoffOptions = DEFAULT_BACKOFF): number {
  return Math.min(b.maxMs, b.initialMs * 2 ** Math.max(0, attempt - 1));
}

export interface GstSourceOptions {
  gst: GstElements;
  format: PixelFormat;
  /** Output (model input) size; undefined keeps the source's size. */
  width?: number;
  height?: number;
  loop?: boolean;
  codec?: VideoCodec;
  rtspLatencyMs?: number;
  backoff?: BackoffOptions;
  /** How long the first frame of a connection may take. */
  connectTimeoutMs?: number;
  /** How long a playing source may go without a frame before it counts as down. */
  stallTimeoutMs?: number;
  log?: LogFn;
  /** Adds the display branch (camera-resolution JPEGs; runtime/stream/video-out.ts), read through `displayTap`. */
  displayBranch?: DisplayBranchOptions;
  /** --record: the pipeline gets a recording branch whose appsink this recorder pulls (record.ts). */
  recorder?: Recorder;
}

interface Pulled {
  gen: number;
  buf: Buffer | null;
  caps: GstCaps;
  /** The buffer's own timestamp (GDP frame branch), undefined when the pipeline does not carry it. */
  pts?: number | null;
  mono: number;
  wall: number;
}

function parseFraction(text: unknown): number | undefined {
  if (typeof text !== 'string') return undefined;
  const m = /^(\d+)\/(\d+)$/.exec(text);
  if (!m || Number(m[2]) === 0) return undefined;
  const v = Number(m[1]) / Number(m[2]);
  return v > 0 ? v : undefined;
}

function describeBusError(msg: GstBusMessage): string {
  const where = msg._src_element_name ? ` (${msg._src_element_name})` : '';
  return `${String(msg.message ?? msg.type).replace(/\.$/, '')}${where}`;
}

const stopped = new WeakSet<GstPipeline>();

function stopOnce(p: GstPipeline): void {
  if (stopped.has(p)) return;
  stopped.add(p);
  p.stop();
}

/**
 * Ends a pipeline without stranding a libuv thread. The addon's bus poll blocks a pool thread in
 * gst_bus_timed_pop with no timeout and only re-checks for the NULL state after a message; stop()
 * called from outside can flush the very state-change messages that would wake it (auto-flush-bus),
 * leaving the thread blocked for good: one lost pool thread per reconnect, and a process that never
 * exits. So: pause() (which posts state-changed messages), and stop() from inside the bus callback
 * that delivers one; the poll then sees NULL and ends. A pipeline too broken to change state is
 * stopped from outside after a second.
 */
function retire(p: GstPipeline, retiring: { flag: boolean }): void {
  retiring.flag = true;
  try {
    p.pause();
  } catch {
    stopOnce(p);
    return;
  }
  setTimeout(() => stopOnce(p), 1000);
}

export class GstFrameSource implements FrameSource {
  readonly display: string;
  readonly live: boolean;
  readonly stats: SourceStats = { state: 'connecting', frames: 0, dropped: 0, reconnects: 0 };
  readonly built: BuiltPipeline;
  /** The camera-resolution pictures of the display branch, when asked for (opts.displayBranch). */
  readonly displayTap: DisplayTap | undefined;
  /** The launch text run: `built.launch` with gdppay before the frame appsink when available (gdp.ts). */
  private readonly launch: string;
  private readonly gdp: boolean;
  private readonly opts: GstSourceOptions;
  private readonly log: LogFn;
  private pipeline: GstPipeline | undefined;
  private sink: GstAppSink | undefined;
  /** Bumped at every teardown, so that callbacks of an old pipeline are recognised and ignored. */
  private gen = 0;
  private pending: Promise<Pulled> | undefined;
  private sourceSize: { width: number; height: number } | undefined;
  private probeWait: Promise<void> | undefined;
  private everPlayed = false;
  private attempt = 0;
  private fatal: SsdError | undefined;
  private waiters: Array<() => void> = [];
  private timer: NodeJS.Timeout | undefined;
  private stallTimer: NodeJS.Timeout | undefined;
  private lastPts: number | null = null;
  private retiring: { flag: boolean } | undefined;
  private fps: number | undefined;
  private reconnecting = false;
  private recordCodec: VideoCodec | undefined;
  /** Keep-fresh mode (`ready()` was called): a pull is always pending and `latest` holds the newest sample. */
  private fresh = false;
  private latest: Pulled | undefined;
  /** The generation whose pipeline the keep-fresh pull runs on (-1: none running). */
  private pumpGen = -1;

  constructor(readonly id: string, parsed: ParsedSource, opts: GstSourceOptions) {
    this.display = parsed.display;
    this.live = parsed.live;
    this.opts = opts;
    this.log = opts.log ?? ((line) => process.stderr.write(`${line}\n`));
    if (parsed.desc.kind === 'csi' && !opts.gst.csiSource) {
      throw new SsdError(`source ${parsed.display}: this device profile has no CSI camera element (csi:// needs nvarguscamerasrc on a Jetson; pick the profile with --device)`);
    }
    this.built = buildPipeline(parsed.desc, {
      gst: opts.gst, format: opts.format, width: opts.width, height: opts.height,
      everyFrame: !parsed.live, codec: opts.codec, rtspLatencyMs: opts.rtspLatencyMs, display: opts.displayBranch,
    });
    if (opts.recorder) this.built = this.withRecording(parsed, opts.recorder);
    this.sourceSize = declaredSourceSize(parsed.desc);
    const g = gdpPayloaderAvailable() ? withGdpPayloader(this.built.launch, this.built.sink) : { launch: this.built.launch, gdp: false };
    const d = withDisplayPayloader(g.launch, this.built);
    this.launch = d.launch;
    this.gdp = g.gdp;
    this.displayTap = this.built.display ? new DisplayTap(d.gdp) : undefined;
  }

  /** The recording branch added to the pipeline (pipelines.ts withRecordBranch), or a log line saying there is none. */
  private withRecording(parsed: ParsedSource, recorder: Recorder): BuiltPipeline {
    const o = this.opts;
    const r = withRecordBranch(parsed.desc, { gst: o.gst, format: o.format, width: o.width, height: o.height, everyFrame: !parsed.live, codec: o.codec, rtspLatencyMs: o.rtspLatencyMs }, this.built);
    if (!r) {
      this.log(`[${this.id}] ${this.display}: no place for a recording branch in this pipeline; --record records nothing here`);
      return this.built;
    }
    recorder.register(this.id, this.display);
    this.recordCodec = r.recordCodec;
    return r;
  }

  async start(): Promise<void> {
    this.open();
    // The first frame proves the source works; it stays pending for the first next().
    await this.waitFirst();
  }

  private async waitFirst(): Promise<void> {
    for (;;) {
      if (this.fatal) throw this.fatal;
      if (this.stats.state === 'ended' || this.stats.state === 'closed') return;
      if (this.sink && !this.reconnecting) {
        const gen = this.gen;
        const r = await this.pull();
        if (r.gen === this.gen && r.buf) {
          // Keep it: the first next() returns this very frame.
          this.pending = Promise.resolve(r);
          return;
        }
        if (r.gen === gen && !r.buf) this.onEos();
        continue;
      }
      await this.changed();
    }
  }

  async next(): Promise<Frame | null> {
    for (;;) {
      if (this.fresh) {
        const f = this.poll();
        if (f !== undefined) return f;
        await this.ready();
        continue;
      }
      if (this.fatal) throw this.fatal;
      if (this.stats.state === 'ended' || this.stats.state === 'closed') return null;
      if (!this.sink || this.reconnecting) {
        await this.changed();
        continue;
      }
      const gen = this.gen;
      const r = await this.pull();
      if (r.gen !== this.gen) continue;
      if (!r.buf) {
        // The appsink is at EOS. The bus does not always say so (rtspsrc ends its stream when the
        // server hangs up but the pipeline posts no EOS), so act on it here.
        if (r.gen === gen) this.onEos();
        continue;
      }
      if (this.probeWait) await this.probeWait;
      if (r.gen !== this.gen) continue;
      return this.toFrame(r);
    }
  }

  /**
   * Cameras only (files keep every frame and prefetch instead). The first call starts keep-fresh
   * mode: one pull always pending, each sample replacing the one before if nobody took it (that one
   * then counts as dropped, from the timestamp gap). So every camera with a new frame is known to have
   * one, and what `poll()` gives is at most one frame interval old however long it waited for its turn.
   */
  async ready(): Promise<void> {
    if (!this.live) throw new Error('ready() is for live sources; files use next()');
    this.fresh = true;
    for (;;) {
      if (this.fatal || this.stats.state === 'ended' || this.stats.state === 'closed') return;
      this.pump();
      if (this.latest?.gen === this.gen) {
        if (!this.probeWait) return;
        await this.probeWait;
        continue;
      }
      await this.changed();
    }
  }

  poll(): Frame | null | undefined {
    if (this.fatal) throw this.fatal;
    if (this.stats.state === 'ended' || this.stats.state === 'closed') return null;
    const r = this.latest;
    if (r === undefined || r.gen !== this.gen || this.probeWait) return undefined;
    this.latest = undefined;
    return this.toFrame(r);
  }

  private pump(): void {
    if (!this.sink || this.reconnecting || this.pumpGen === this.gen) return;
    const gen = this.gen;
    this.pumpGen = gen;
    void this.pull().then((r) => {
      if (this.pumpGen === gen) this.pumpGen = -1;
      if (r.gen !== this.gen) return;
      if (!r.buf) {
        // As in next(): an appsink at EOS is the stream's end even when the bus says nothing.
        if (r.gen === gen) this.onEos();
        return;
      }
      this.latest = r;
      this.wake();
      this.pump();
    });
  }

  prefetch(): void {
    if (!this.live && this.sink && !this.pending && !this.reconnecting) this.pending = this.startPull();
  }

  close(): void {
    if (this.stats.state === 'closed') return;
    this.teardown();
    this.stats.state = 'closed';
    this.wake();
  }

  /** The next sample: the one prefetched (or kept by start()) if any, else a new pull. */
  private pull(): Promise<Pulled> {
    const p = this.pending ?? this.startPull();
    this.pending = undefined;
    return p;
  }

  private startPull(): Promise<Pulled> {
    const sink = this.sink!;
    const gen = this.gen;
    const p = new Promise<Pulled>((resolve) => {
      const done = (buf: Buffer | null, caps: GstCaps, pts?: number | null) => resolve({ gen, buf, caps, pts, mono: performance.now(), wall: Date.now() });
      const onSample = (buf: Buffer | null, caps: GstCaps) => {
        if (!this.gdp || buf === null) return done(buf, caps);
        const packet = parseGdpPacket(buf);
        // Caps and event packets (stream start, segment, tags) precede the frames: pull on.
        if (packet !== undefined && packet.type !== GDP_TYPE_BUFFER) return sink.pull(onSample);
        if (packet === undefined) return done(buf, caps);
        done(packet.payload, videoCapsOfGdp(caps) ?? {}, packet.pts);
      };
      sink.pull(onSample);
    });
    this.armStall(gen);
    void p.then((r) => {
      if (r.gen === this.gen) this.disarmStall();
      if (r.gen === this.gen && r.buf) this.onFrameArrived();
    });
    return p;
  }

  private onFrameArrived(): void {
    if (this.stats.state === 'connecting' || this.stats.state === 'reconnecting') {
      if (this.everPlayed) {
        this.stats.reconnects++;
        this.log(`[${this.id}] ${this.display}: reconnected`);
      }
      this.stats.state = 'playing';
      this.everPlayed = true;
      this.attempt = 0;
      this.clearTimer();
    }
  }

  private toFrame(r: Pulled): Frame {
    const buf = r.buf!;
    const width = Number(r.caps.width);
    const height = Number(r.caps.height);
    const fmt = String(r.caps.format ?? '').toLowerCase();
    if (!(width > 0 && height > 0)) throw new SsdError(`source ${this.display}: sample without a frame size in its caps`);
    if (fmt !== 'rgb' && fmt !== 'bgr') throw new SsdError(`source ${this.display}: frames are ${r.caps.format ?? 'of unknown format'}; the pipeline must deliver video/x-raw,format=RGB or BGR to its appsink`);
    this.fps ??= parseFraction(r.caps.framerate);
    let pts: number | null;
    if (r.pts !== undefined) {
      pts = r.pts;
    } else {
      const pos = this.pipeline?.queryPosition() ?? -1;
      pts = pos >= 0 ? pos : null;
    }
    if (pts !== null && this.lastPts !== null && this.fps && this.live) {
      this.stats.dropped += Math.max(0, Math.round((pts - this.lastPts) * this.fps) - 1);
    }
    this.lastPts = pts;
    this.stats.frames++;
    const size = this.sourceSize ?? { width, height };
    return {
      sourceId: this.id, seq: this.stats.frames, pts, captureMs: r.wall, captureMono: r.mono,
      data: buf, width, height, format: fmt, stride: Math.floor(buf.length / height),
      sourceWidth: size.width, sourceHeight: size.height,
    };
  }

  private open(): void {
    this.reconnecting = false;
    this.stats.state = this.everPlayed ? 'reconnecting' : 'connecting';
    this.lastPts = null;
    const gen = this.gen;
    let pipeline: GstPipeline;
    try {
      pipeline = createPipeline(this.launch, `source ${this.display}`);
    } catch (err) {
      this.fail(err instanceof SsdError ? err : new SsdError(`source ${this.display}: ${String(err)}`));
      return;
    }
    this.pipeline = pipeline;
    const sink = pipeline.findChild(this.built.sink) as GstAppSink | undefined;
    if (!sink || typeof sink.pull !== 'function') {
      stopOnce(pipeline);
      this.fail(new SsdError(`source ${this.display}: the pipeline has no appsink named "${this.built.sink}"`));
      return;
    }
    this.sink = sink;
    const retiring = { flag: false };
    this.retiring = retiring;
    pipeline.pollBus((msg) => {
      // Stopped from inside its own bus callback, the addon's poll ends for sure (see retire()).
      if (retiring.flag) stopOnce(pipeline);
      else this.onBus(gen, msg);
    });
    // Pull only once playing: an appsink that is not started yet answers a pull with nothing.
    pipeline.play();
    if (this.built.record && this.recordCodec) {
      // After play(): an appsink that is not started answers a pull with nothing.
      const rec = pipeline.findChild(this.built.record) as GstAppSink | undefined;
      if (rec) this.opts.recorder?.attach(this.id, rec, this.recordCodec);
    }
    // After play(), as the frame sink: an appsink not started yet answers a pull with nothing.
    if (this.built.display) this.displayTap?.attach(pipeline, this.built.display);
    if (this.built.probe) this.probeWait = this.readProbe(pipeline, this.built.probe, gen);
    const timeout = this.opts.connectTimeoutMs ?? 10_000;
    this.clearTimer();
    this.timer = setTimeout(() => {
      if (gen === this.gen && this.stats.state !== 'playing') this.onFailure(`no frame within ${(timeout / 1000).toFixed(1)} s`);
    }, timeout);
  }

  /** The decoded size before scaling, from one sample of the probe appsink. */
  private async readProbe(pipeline: GstPipeline, name: string, gen: number): Promise<void> {
    const probe = pipeline.findChild(name) as GstAppSink | undefined;
    if (!probe) return;
    while (gen === this.gen) {
      const caps = await new Promise<GstCaps | undefined>((resolve) => probe.pull((buf, c) => resolve(buf ? c : undefined)));
      if (gen !== this.gen) return;
      if (caps && Number(caps.width) > 0 && Number(caps.height) > 0) {
        this.sourceSize = { width: Number(caps.width), height: Number(caps.height) };
        this.probeWait = undefined;
        return;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  private onBus(gen: number, msg: GstBusMessage): void {
    if (gen !== this.gen) return;
    if (msg.type === 'error') this.onFailure(describeBusError(msg));
    else if (msg.type === 'eos') this.onEos();
  }

  private onEos(): void {
    if (this.live) {
      this.onFailure('end of stream');
      return;
    }
    if (this.opts.loop) {
      this.teardown();
      this.log(`[${this.id}] ${this.display}: end of file, looping`);
      this.open();
      this.wake();
      return;
    }
    this.teardown();
    this.stats.state = 'ended';
    this.log(`[${this.id}] ${this.display}: end of file`);
    this.wake();
  }

  private onFailure(reason: string): void {
    if (this.stats.state === 'closed' || this.stats.state === 'ended' || this.fatal) return;
    this.stats.lastError = reason;
    if (!this.everPlayed || !this.live) {
      this.teardown();
      this.fail(new SsdError(`source ${this.display}: ${this.everPlayed ? '' : 'cannot open: '}${reason}`));
      return;
    }
    this.teardown();
    this.attempt++;
    const delay = backoffDelay(this.attempt, this.opts.backoff);
    this.stats.state = 'reconnecting';
    this.reconnecting = true;
    this.log(`[${this.id}] ${this.display}: ${reason}; reconnecting in ${(delay / 1000).toFixed(1)} s (attempt ${this.attempt})`);
    this.clearTimer();
    this.timer = setTimeout(() => {
      if (this.stats.state === 'closed') return;
      this.open();
      this.wake();
    }, delay);
    this.wake();
  }

  private fail(err: SsdError): void {
    this.fatal = err;
    this.stats.state = 'failed';
    this.stats.lastError = err.message;
    this.clearTimer();
    this.wake();
  }

  private teardown(): void {
    this.gen++;
    this.disarmStall();
    this.clearTimer();
    const p = this.pipeline;
    const retiring = this.retiring;
    this.pipeline = undefined;
    this.retiring = undefined;
    this.sink = undefined;
    this.displayTap?.detach();
    this.pending = undefined;
    this.latest = undefined;
    this.probeWait = undefined;
    // The open clip ends with the pipeline (camera drop, end of file, stop): finished, playable.
    if (p && this.built.record) this.opts.recorder?.detach(this.id);
    if (p && retiring) retire(p, retiring);
  }

  private armStall(gen: number): void {
    this.disarmStall();
    if (this.stats.state !== 'playing') return;
    // A slow camera (a frame every few seconds) is not a stalled one: allow three of its intervals.
    const ms = Math.max(this.opts.stallTimeoutMs ?? 5_000, this.fps ? 3000 / this.fps : 0);
    this.stallTimer = setTimeout(() => {
      if (gen === this.gen && this.stats.state === 'playing') this.onFailure(`no frame for ${(ms / 1000).toFixed(1)} s`);
    }, ms);
  }

  private disarmStall(): void {
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private changed(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

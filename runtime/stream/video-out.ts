/**
 * Annotated video out: the camera-resolution pictures behind the live page, the MJPEG endpoint
 * (/mjpeg/<source>) and the HLS output (--hls DIR, served under /hls/<source>/).
 *
 * Where the pictures come from. The detector sees the frame scaled to the model input (96x96 for
 * ssd-tiny); showing that frame scaled back up is what the page used to do. Instead every GStreamer
 * source gets a display branch (runtime/stream/pipelines.ts displayBranch): a tee on the decoded video
 * before any scaling, a valve, videorate (at most --display-fps pictures a second) and jpegenc, into
 * its own appsink. All of that runs on GStreamer's threads, and only while someone watches: the valve
 * is closed otherwise. A DisplayTap keeps the last few JPEGs with their buffer timestamps (gdppay, as
 * the frame branch), and each processed frame is shown on the picture with the same timestamp (or the
 * nearest one when videorate dropped that frame), so boxes land on the frame they were found in.
 *
 * - The live page gets that JPEG as it is (no decode, no encode in this process) and draws the boxes
 *   itself.
 * - MJPEG and HLS need the boxes burned in: sharp decodes the JPEG, composites the detections' SVG
 *   (runtime/draw.ts overlaySvg: a colour per class, label and score on a filled tag) and encodes a
 *   JPEG (MJPEG) and/or hands raw RGB to `appsrc ! videoconvert ! x264enc ! h264parse ! hlssink2`.
 *   One such encode per source at a time, shared by every client of that source; frames arriving
 *   meanwhile are skipped, never queued.
 * - Sources without a display branch (the built-in demo, --pipeline) use the processed frame itself.
 *
 * Memory stays bounded: per source at most RING_SIZE JPEGs, one encode in flight, and a client whose
 * socket is MAX_BACKLOG behind skips parts.
 *
 * Threads: a DisplayTap's pending pull holds one libuv pool thread while the tap is open (counted in
 * runtime/stream/gst.ts THREADS_PER_SOURCE), an HLS writer's bus poll one more (THREADS_PER_HLS).
 *
 * RTSP out is not offered: gst-rtsp-server (GstRTSPServer, a GObject API with its own main loop) has
 * no binding reachable from Node here; gstreamer-superficial wraps pipelines and app elements only.
 */
import { mkdirSync, readdirSync, rmSync, statSync, accessSync, constants as fsConstants } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import sharp, { type Sharp } from 'sharp';
import { SsdError, oneLine } from '../../core/errors.js';
import type { DetectionPixelsXYXY } from '../../core/model-contract.js';
import { overlaySvg } from '../draw.js';
import type { Frame, LogFn } from './frame.js';
import { GDP_TYPE_BUFFER, gdpPayloaderAvailable, parseGdpPacket, videoCapsOfGdp, withGdpPayloader } from './gdp.js';
import { createPipeline, type GstAppSink, type GstAppSrc, type GstCaps, type GstElement, type GstPipeline } from './gst.js';
import type { FrameRecord } from './jsonl.js';
import { DEFAULT_H264_ENCODER, quote, type BuiltPipeline } from './pipelines.js';

/** Display pictures kept per source: enough to reach back one inference of a slow model at 15 fps. */
export const RING_SIZE = 8;
/** Default --display-fps. */
export const DEFAULT_DISPLAY_FPS = 15;
/** A client further behind than this (bytes not yet taken by its socket) skips pictures. */
export const MAX_BACKLOG = 4 * 1024 * 1024;
export const MJPEG_BOUNDARY = 'ssdframe';

/** One camera-resolution JPEG of the display branch. */
export interface DisplayPicture {
  jpeg: Buffer;
  width: number;
  height: number;
  /** The buffer's own timestamp in seconds (the frame branch's pts of the same frame); null if unknown. */
  pts: number | null;
}

/** The launch text with gdppay before the display appsink as well (when the install has gdppay). */
export function withDisplayPayloader(launch: string, built: BuiltPipeline): { launch: string; gdp: boolean } {
  if (!built.display || !gdpPayloaderAvailable()) return { launch, gdp: false };
  return withGdpPayloader(launch, built.display.sink);
}

/**
 * The display branch of one GStreamer source, across its reconnects: `attach` on every new pipeline,
 * `detach` at every teardown. While wanted, the valve is open and one pull is always pending; the last
 * RING_SIZE pictures are kept.
 */
export class DisplayTap {
  private sink: GstAppSink | undefined;
  private valve: GstElement | undefined;
  private gen = 0;
  /** Generation of the pull now pending (-1: none). */
  private pulling = -1;
  private ring: DisplayPicture[] = [];
  private wanted = false;

  constructor(private readonly gdp: boolean) {}

  attach(pipeline: GstPipeline, names: NonNullable<BuiltPipeline['display']>): void {
    this.gen++;
    this.sink = pipeline.findChild(names.sink) as GstAppSink | undefined;
    this.valve = pipeline.findChild(names.valve);
    this.ring = [];
    this.apply();
  }

  detach(): void {
    this.gen++;
    this.sink = undefined;
    this.valve = undefined;
    this.ring = [];
  }

  setWanted(on: boolean): void {
    if (on === this.wanted) return;
    this.wanted = on;
    if (!on) this.ring = [];
    this.apply();
  }

  get isWanted(): boolean {
    return this.wanted;
  }

  /** The picture whose timestamp is nearest `pts` (the newest when pts is unknown); undefined if none yet. */
  closest(pts: number | null): DisplayPicture | undefined {
    const ring = this.ring;
    if (ring.length === 0) return undefined;
    if (pts === null) return ring[ring.length - 1];
    let best = ring[ring.length - 1]!;
    let bestD = Infinity;
    for (const p of ring) {
      if (p.pts === null) continue;
      const d = Math.abs(p.pts - pts);
      if (d < bestD) {
        best = p;
        bestD = d;
      }
    }
    return best;
  }

  private apply(): void {
    // Closed, the valve drops buffers before they are converted or encoded: no cost while unwatched.
    if (this.valve) this.valve.drop = !this.wanted;
    if (this.wanted && this.sink && this.pulling !== this.gen) this.pull(this.sink, this.gen);
  }

  private pull(sink: GstAppSink, gen: number): void {
    this.pulling = gen;
    const onSample = (buf: Buffer | null, caps: GstCaps): void => {
      if (gen !== this.gen) return;
      if (buf === null) {
        // EOS or stopped: a new pull would return at once, forever. attach() starts again.
        this.pulling = -1;
        return;
      }
      let data = buf;
      let c: GstCaps | undefined = caps;
      let pts: number | null = null;
      if (this.gdp) {
        const packet = parseGdpPacket(buf);
        if (packet !== undefined && packet.type !== GDP_TYPE_BUFFER) {
          sink.pull(onSample);
          return;
        }
        if (packet !== undefined) {
          data = packet.payload;
          pts = packet.pts;
          c = videoCapsOfGdp(caps);
        }
      }
      const width = Number(c?.width);
      const height = Number(c?.height);
      if (width > 0 && height > 0) {
        this.ring.push({ jpeg: data, width, height, pts });
        if (this.ring.length > RING_SIZE) this.ring.shift();
      }
      if (this.wanted) sink.pull(onSample);
      else this.pulling = -1;
    };
    sink.pull(onSample);
  }
}

/** Box coordinates of a record (source pixels) in a picture of width x height. */
function scaledDetections(record: FrameRecord, width: number, height: number): DetectionPixelsXYXY[] {
  const sx = width / record.width;
  const sy = height / record.height;
  return record.detections.map((d) => ({
    label: d.label, classId: d.class_id, score: d.score,
    box: [d.box[0] * sx, d.box[1] * sy, d.box[2] * sx, d.box[3] * sy],
  }));
}

/**
 * `appsrc ! videoconvert ! x264enc tune=zerolatency ! h264parse ! hlssink2` for one source: raw RGB
 * pictures in (timestamped by their capture time), a live HLS playlist and 2 s MPEG-TS segments out,
 * in `dir`. close() sends EOS, so that the playlist ends with #EXT-X-ENDLIST.
 */
export class HlsWriter {
  readonly width: number;
  readonly height: number;
  private readonly pipeline: GstPipeline;
  private readonly src: GstAppSrc;
  private startMono: number | undefined;
  private lastNs = -1;
  private failed = false;
  private stopped = false;
  private readonly ended: Promise<void>;

  /** `encoder`: the device profile's H.264 encoder (GstElements.h264Encoder, fed I420), default x264enc. */
  constructor(readonly dir: string, width: number, height: number, fps: number, private readonly log: LogFn, what: string, encoder?: string) {
    this.width = width;
    this.height = height;
    mkdirSync(dir, { recursive: true });
    // Segments of an earlier run would be served as if new.
    for (const f of readdirSync(dir)) if (/^(segment\d+\.ts|playlist\.m3u8)$/.test(f)) rmSync(join(dir, f), { force: true });
    const caps = `video/x-raw,format=RGB,width=${width},height=${height},framerate=${Math.max(1, Math.round(fps))}/1`;
    // A stuck encoder drops old pictures in the leaky queue instead of growing appsrc's own queue
    // (appsrc's leaky-type needs GStreamer 1.20; JetPack 5 has 1.16).
    const launch = `appsrc name=src is-live=true format=time do-timestamp=false caps=${quote(caps)}`
      + ` ! queue max-size-buffers=4 max-size-bytes=0 max-size-time=0 leaky=downstream ! ${encoder ? `videoconvert ! video/x-raw,format=I420 ! ${encoder}` : DEFAULT_H264_ENCODER}`
      + ` ! h264parse ! hlssink2 location=${quote(join(dir, 'segment%05d.ts'))} playlist-location=${quote(join(dir, 'playlist.m3u8'))}`
      + ' target-duration=2 playlist-length=6 max-files=12';
    this.pipeline = createPipeline(launch, what);
    this.src = this.pipeline.findChild('src') as GstAppSrc;
    let done!: () => void;
    this.ended = new Promise((resolve) => (done = resolve));
    this.pipeline.pollBus((msg) => {
      if (msg.type === 'error' && !this.failed) {
        this.failed = true;
        this.log(`${what}: ${String(msg.message ?? 'error')}; HLS output stopped`);
      }
      // Stopped from inside its own bus callback, the addon's poll ends (runtime/stream/source.ts retire()).
      if (msg.type === 'eos' || msg.type === 'error') {
        this.stopOnce();
        done();
      }
    });
    this.pipeline.play();
  }

  /** Pushes one picture (packed RGB, width x height) captured at `mono` (performance.now() ms). */
  push(rgb: Buffer, mono: number): void {
    if (this.failed || this.stopped) return;
    this.startMono ??= mono;
    const ns = Math.round((mono - this.startMono) * 1e6);
    if (ns <= this.lastNs) return;
    this.lastNs = ns;
    const pts = Buffer.alloc(8);
    pts.writeBigUInt64BE(BigInt(ns));
    this.src.push(rgb, pts);
  }

  async close(): Promise<void> {
    if (this.stopped) return;
    if (this.failed || this.lastNs < 0) {
      this.stopOnce();
      return;
    }
    this.pipeline.sendEOS();
    // The EOS reaches hlssink2 within the encoder's latency; a wedged pipeline is stopped anyway.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.ended, new Promise<void>((resolve) => { timer = setTimeout(resolve, 5000); })]);
    clearTimeout(timer);
    this.stopOnce();
  }

  private stopOnce(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.pipeline.stop();
  }
}

interface SourceOut {
  id: string;
  tap: DisplayTap | undefined;
  mjpeg: Set<ServerResponse>;
  /** An annotated encode (MJPEG and/or HLS) is in flight. */
  busy: boolean;
  /** The display picture last handed to the page (the same one is not sent twice). */
  lastPage: Buffer | undefined;
  hls: HlsWriter | undefined;
  hlsFailed: boolean;
}

export interface VideoOutOptions {
  /** --hls DIR: one subdirectory per source. */
  hlsDir?: string;
  /** The display branch's rate (HLS caps' nominal frame rate). */
  displayFps: number;
  /** H.264 encoder of the device profile (GstElements.h264Encoder); default x264enc tune=zerolatency. */
  h264Encoder?: string;
  log: LogFn;
}

/** Checks --hls DIR before anything starts: a directory that exists or can be made, and is writable. */
export function checkHlsDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw new SsdError(`--hls ${dir}: cannot create the directory (${oneLine(err)})`, { cause: err });
  }
  if (!statSync(dir).isDirectory()) throw new SsdError(`--hls ${dir}: not a directory`);
  try {
    accessSync(dir, fsConstants.W_OK);
  } catch {
    throw new SsdError(`--hls ${dir}: not writable`);
  }
}

export class VideoOut {
  private readonly outs = new Map<string, SourceOut>();
  private pageWatchers = 0;
  private closed = false;

  constructor(private readonly opts: VideoOutOptions) {}

  /** A source of the run; `tap` when it has a display branch. */
  addSource(id: string, tap: DisplayTap | undefined): void {
    const out: SourceOut = { id, tap, mjpeg: new Set(), busy: false, lastPage: undefined, hls: undefined, hlsFailed: false };
    this.outs.set(id, out);
    this.update(out);
  }

  /** How many live pages (feeds with frames) are open: they want every source's pictures. */
  setPageWatchers(n: number): void {
    this.pageWatchers = n;
    for (const out of this.outs.values()) this.update(out);
  }

  /**
   * The camera picture for the live page for this processed frame: `undefined` when the source has no
   * display branch (the caller encodes the frame itself), null when there is no new picture for it.
   */
  pagePicture(sourceId: string, pts: number | null): DisplayPicture | null | undefined {
    const out = this.outs.get(sourceId);
    if (!out?.tap) return undefined;
    const pic = out.tap.closest(pts);
    if (!pic || pic.jpeg === out.lastPage) return null;
    out.lastPage = pic.jpeg;
    return pic;
  }

  /** One processed frame: the annotated picture for the MJPEG clients and the HLS output of its source. */
  publish(record: FrameRecord, frame: Frame): void {
    const out = this.outs.get(record.source);
    if (!out || out.busy || this.closed) return;
    const mjpeg = [...out.mjpeg].filter((res) => res.writableLength < MAX_BACKLOG);
    const hls = this.opts.hlsDir !== undefined && !out.hlsFailed;
    if (mjpeg.length === 0 && !hls) return;
    let input: Sharp;
    let width: number;
    let height: number;
    if (out.tap) {
      const pic = out.tap.closest(frame.pts);
      if (!pic) return;
      ({ width, height } = pic);
      input = sharp(pic.jpeg);
    } else {
      ({ width, height } = frame);
      input = sharp(packedRgb(frame), { raw: { width, height, channels: 3 } });
    }
    const svg = Buffer.from(overlaySvg(scaledDetections(record, width, height), width, height));
    const drawn = input.composite([{ input: svg, top: 0, left: 0 }]);
    const jobs: Array<Promise<void>> = [];
    if (mjpeg.length > 0) {
      jobs.push(drawn.clone().jpeg({ quality: 80 }).toBuffer().then((jpeg) => {
        const head = `--${MJPEG_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: ${jpeg.length}\r\n\r\n`;
        for (const res of out.mjpeg) {
          if (res.writableLength < MAX_BACKLOG) res.write(Buffer.concat([Buffer.from(head), jpeg, Buffer.from('\r\n')]));
        }
      }));
    }
    if (hls) {
      const size = out.hls ?? { width, height };
      jobs.push(drawn.clone().resize(size.width, size.height, { fit: 'fill' }).removeAlpha().raw().toBuffer().then((rgb) => {
        if (this.closed || out.hlsFailed) return;
        if (!out.hls) {
          try {
            out.hls = new HlsWriter(join(this.opts.hlsDir!, out.id), width, height, this.opts.displayFps, this.opts.log, `[${out.id}] --hls`, this.opts.h264Encoder);
            this.opts.log(`[${out.id}] HLS: ${join(this.opts.hlsDir!, out.id, 'playlist.m3u8')} (${width}x${height})`);
          } catch (err) {
            out.hlsFailed = true;
            this.opts.log(`[${out.id}] --hls: ${oneLine(err)}; HLS output stopped`);
            return;
          }
        }
        out.hls.push(rgb, frame.captureMono);
      }));
    }
    out.busy = true;
    Promise.all(jobs)
      .catch((err: unknown) => this.opts.log(`[${out.id}] annotated video: ${oneLine(err)}`))
      .finally(() => { out.busy = false; });
  }

  /** GET /mjpeg/<source>: multipart/x-mixed-replace JPEGs with the boxes burned in, until the client leaves. */
  serveMjpeg(id: string, req: IncomingMessage, res: ServerResponse): void {
    const out = this.outs.get(id);
    if (!out) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`no source "${id}"\n`);
      return;
    }
    res.writeHead(200, {
      'content-type': `multipart/x-mixed-replace; boundary=${MJPEG_BOUNDARY}`,
      'cache-control': 'no-store',
      connection: 'close',
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    // The headers now: a client (and a test) knows it is subscribed before the first picture.
    res.flushHeaders();
    out.mjpeg.add(res);
    this.update(out);
    const gone = () => {
      out.mjpeg.delete(res);
      this.update(out);
    };
    req.on('close', gone);
    res.on('close', gone);
  }

  /**
   * GET /hls/<source>/<file>: the playlist and its segments. A request that carried its token in the
   * query gets a playlist whose segment URIs carry it too: players (hlsdemux, Safari) fetch segments
   * without the playlist's query or headers.
   */
  async serveHls(id: string, file: string, res: ServerResponse, queryToken: string | undefined): Promise<void> {
    const dir = this.opts.hlsDir;
    if (dir === undefined || !this.outs.has(id) || !/^(segment\d+\.ts|playlist\.m3u8)$/.test(file)) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(dir === undefined ? 'no HLS output (start ssd stream with --hls DIR)\n' : 'not found\n');
      return;
    }
    let body: Buffer;
    try {
      body = await readFile(join(dir, id, file));
    } catch {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`${file} of source "${id}" not written yet\n`);
      return;
    }
    if (file.endsWith('.m3u8')) {
      let text = body.toString('utf8');
      if (queryToken !== undefined) {
        const q = `?token=${encodeURIComponent(queryToken)}`;
        text = text.split('\n').map((l) => (l.trim() && !l.startsWith('#') ? `${l.trim()}${q}` : l)).join('\n');
      }
      res.writeHead(200, { 'content-type': 'application/vnd.apple.mpegurl', 'cache-control': 'no-store' }).end(text);
      return;
    }
    res.writeHead(200, { 'content-type': 'video/mp2t', 'cache-control': 'no-store' }).end(body);
  }

  /** Ends every MJPEG response and finishes every HLS playlist (#EXT-X-ENDLIST). */
  async close(): Promise<void> {
    this.closed = true;
    for (const out of this.outs.values()) {
      for (const res of out.mjpeg) res.end();
      out.mjpeg.clear();
      out.tap?.setWanted(false);
    }
    await Promise.all([...this.outs.values()].map((o) => o.hls?.close()));
  }

  private update(out: SourceOut): void {
    out.tap?.setWanted(!this.closed && (this.pageWatchers > 0 || out.mjpeg.size > 0 || this.opts.hlsDir !== undefined));
  }
}

/** A frame in packed RGB without row padding, as sharp's raw input wants it. */
export function packedRgb(frame: Pick<Frame, 'data' | 'width' | 'height' | 'format' | 'stride'>): Buffer {
  const { width: W, height: H } = frame;
  const stride = frame.stride ?? W * 3;
  const src = frame.data;
  if (frame.format === 'rgb' && stride === W * 3) return Buffer.from(src.buffer, src.byteOffset, W * H * 3);
  const out = Buffer.allocUnsafe(W * H * 3);
  const swap = frame.format === 'bgr';
  for (let y = 0; y < H; y++) {
    let si = y * stride;
    let di = y * W * 3;
    for (let x = 0; x < W; x++, si += 3, di += 3) {
      out[di] = src[si + (swap ? 2 : 0)]!;
      out[di + 1] = src[si + 1]!;
      out[di + 2] = src[si + (swap ? 0 : 2)]!;
    }
  }
  return out;
}

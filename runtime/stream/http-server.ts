/**
 * `--http ADDR`: the live page (/), the detections feed as Server-Sent Events (/events; add
 * ?frames=1 for the camera picture of each frame in the same message), the newest JPEG of a source
 * (/frame.jpg?source=src0), the annotated video (/mjpeg/<source>, /hls/<source>/playlist.m3u8; see
 * runtime/stream/video-out.ts), Prometheus metrics (/metrics) and a health check (/healthz).
 *
 * Binding: loopback unless told otherwise. A non-loopback address is refused without --token; with a
 * token every route (the page included) wants `Authorization: Bearer <token>` or `?token=<token>`.
 * The page's pictures are the display branch's JPEGs (camera resolution, encoded by GStreamer while
 * someone watches). Sources without one (the demo, --pipeline) have their processed frame encoded by
 * sharp, at most one per source at a time; frames arriving meanwhile are skipped, never queued.
 *
 * Besides the frames, the feed carries named events: `state` (every source's id, uri and state, at
 * connection and whenever one changes: the page says "reconnecting" only while a source is) and
 * `end` (the run ended normally: the page stops reconnecting).
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';
import { SsdError, oneLine } from '../../core/errors.js';
import type { Frame, LogFn, SourceStats } from './frame.js';
import type { FrameRecord } from './jsonl.js';
import { livePage } from './live-page.js';
import type { StreamMetrics } from './metrics.js';
import { MAX_BACKLOG, packedRgb, type VideoOut } from './video-out.js';

export { packedRgb };

export interface ListenAddress {
  host: string;
  port: number;
}

/** "127.0.0.1:8080", "[::1]:8080", "0.0.0.0:8080", ":8080" (loopback) or "8080" (loopback). */
export function parseListenAddress(text: string): ListenAddress {
  const t = text.trim();
  let host = '127.0.0.1';
  let portText = t;
  const v6 = /^\[([^\]]+)\]:(\d+)$/.exec(t);
  if (v6) {
    host = v6[1]!;
    portText = v6[2]!;
  } else if (t.includes(':')) {
    const i = t.lastIndexOf(':');
    host = t.slice(0, i) || '127.0.0.1';
    portText = t.slice(i + 1);
  }
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535) throw new SsdError(`--http: expected HOST:PORT (e.g. 127.0.0.1:8080), got "${text}"`);
  if (host.includes(':') && !v6) throw new SsdError(`--http: write IPv6 addresses in brackets, e.g. [::1]:8080, got "${text}"`);
  return { host, port };
}

/** An address as the user writes it: "127.0.0.1:8080", "[::]:8080" (IPv6 in brackets). */
export function formatListenAddress(a: ListenAddress): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** A non-loopback address needs a token: the live page shows the cameras. */
export function checkHttpAccess(address: ListenAddress, token: string | undefined): void {
  if (!isLoopback(address.host) && !token) {
    throw new SsdError(`--http ${formatListenAddress(address)} is reachable from other machines: give --token (or bind 127.0.0.1)`);
  }
}

export type StreamPhase = 'loading model' | 'building engine' | 'running';

export interface SourceInfo {
  id: string;
  uri: string;
  stats: SourceStats;
}

export interface HttpOptions {
  address: ListenAddress;
  token?: string;
  metrics: StreamMetrics;
  sources: () => SourceInfo[];
  /**
   * Where the stream is: the page comes up before the model loads, and a first TensorRT start builds
   * its engine for minutes; /healthz says so (200, "building engine") rather than failing. Default: running.
   */
  phase?: () => StreamPhase;
  log?: LogFn;
  title?: string;
  /** A line shown on the live page (e.g. that the demo model is untrained). */
  notice?: string;
  /** The camera pictures and the annotated video (/mjpeg/, /hls/); without it the page shows processed frames. */
  video?: VideoOut;
}

interface Client {
  res: ServerResponse;
  frames: boolean;
}

/** A client further behind than MAX_BACKLOG (bytes not yet taken by its socket) skips messages. */
function send(c: Client, msg: string): void {
  if (c.res.writableLength < MAX_BACKLOG) c.res.write(msg);
}

/** How often the source states are compared with what the feeds were last told. */
const STATE_POLL_MS = 500;

export class StreamHttpServer {
  private server: Server | undefined;
  private clients = new Set<Client>();
  private encoding = new Set<string>();
  private latestJpeg = new Map<string, Buffer>();
  private readonly log: LogFn;
  private readonly token: Buffer | undefined;
  private stateTimer: NodeJS.Timeout | undefined;
  private lastStates = '';

  constructor(private readonly opts: HttpOptions) {
    checkHttpAccess(opts.address, opts.token);
    this.log = opts.log ?? ((l) => process.stderr.write(`${l}\n`));
    this.token = opts.token ? Buffer.from(opts.token) : undefined;
  }

  async listen(): Promise<ListenAddress> {
    const server = createServer((req, res) => this.handle(req, res));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        reject(new SsdError(`--http ${formatListenAddress(this.opts.address)}: cannot listen (${err.code ?? oneLine(err)})`, { cause: err }));
      });
      server.listen(this.opts.address.port, this.opts.address.host, () => resolve());
    });
    const a = server.address() as AddressInfo;
    this.log(`live page: http://${formatListenAddress({ host: a.address, port: a.port })}/${this.opts.token ? '?token=...' : ''}`);
    return { host: a.address, port: a.port };
  }

  /** Sends one processed frame to the feed (and its picture to those watching frames). */
  publish(record: FrameRecord, frame: Frame): void {
    if (this.clients.size === 0) return;
    const plain = `data: ${JSON.stringify(record)}\n\n`;
    let wantFrames = false;
    for (const c of this.clients) {
      if (c.frames) wantFrames = true;
      else send(c, plain);
    }
    if (!wantFrames) return;
    const picture = this.opts.video?.pagePicture(record.source, frame.pts);
    // null: the camera picture of this frame went out with an earlier record (detection outran
    // the display rate); the page's fps and latency come from the records it does get.
    if (picture === null) return;
    if (picture !== undefined) {
      this.sendPicture(record, picture.jpeg);
      return;
    }
    if (this.encoding.has(record.source)) return;
    this.encoding.add(record.source);
    sharp(packedRgb(frame), { raw: { width: frame.width, height: frame.height, channels: 3 } })
      .jpeg({ quality: 75 })
      .toBuffer()
      .then((jpeg) => this.sendPicture(record, jpeg))
      .catch((err: unknown) => this.log(`live page: JPEG encoding failed (${oneLine(err)})`))
      .finally(() => this.encoding.delete(record.source));
  }

  private sendPicture(record: FrameRecord, jpeg: Buffer): void {
    this.latestJpeg.set(record.source, jpeg);
    const msg = `data: ${JSON.stringify({ ...record, jpeg: jpeg.toString('base64') })}\n\n`;
    for (const c of this.clients) if (c.frames) send(c, msg);
  }

  async close(): Promise<void> {
    // A named "end" event first: the page tells a finished stream from a dropped connection (an
    // EventSource whose response just ends would reconnect, and say so, forever).
    this.sendStates(true);
    for (const c of this.clients) c.res.end('event: end\ndata: {}\n\n');
    this.clients.clear();
    this.watchersChanged();
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections?.();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  private authorised(req: IncomingMessage, url: URL): boolean {
    if (!this.token) return true;
    const given = givenToken(req, url) ?? '';
    const g = Buffer.from(given);
    return g.length === this.token.length && timingSafeEqual(g, this.token);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (!this.authorised(req, url)) {
      res.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Bearer' }).end('unauthorised: give ?token= or Authorization: Bearer\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const video = /^\/(mjpeg|hls)\/([^/]+)(?:\/([^/]+))?$/.exec(url.pathname);
    if (video && this.opts.video) {
      const [, kind, id, file] = video;
      if (kind === 'mjpeg' && file === undefined) {
        this.opts.video.serveMjpeg(id!, req, res);
        return;
      }
      if (kind === 'hls' && file !== undefined) {
        const fromQuery = this.token && !req.headers.authorization?.startsWith('Bearer ') ? url.searchParams.get('token') ?? undefined : undefined;
        void this.opts.video.serveHls(id!, file, res, fromQuery);
        return;
      }
    }
    switch (url.pathname) {
      case '/':
      case '/index.html':
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(livePage(this.opts.title ?? 'ssd stream', this.opts.notice));
        return;
      case '/events':
        this.openFeed(req, res, url.searchParams.get('frames') === '1');
        return;
      case '/frame.jpg': {
        const id = url.searchParams.get('source') ?? this.opts.sources()[0]?.id ?? '';
        const jpeg = this.latestJpeg.get(id);
        if (!jpeg) {
          res.writeHead(404, { 'content-type': 'text/plain' }).end(`no frame of source "${id}" yet (frames are encoded while /events?frames=1 is watched)\n`);
          return;
        }
        res.writeHead(200, { 'content-type': 'image/jpeg', 'cache-control': 'no-store' }).end(jpeg);
        return;
      }
      case '/metrics':
        for (const s of this.opts.sources()) this.opts.metrics.sourceStats(s.id, s.stats);
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(this.opts.metrics.registry.render());
        return;
      case '/healthz': {
        const phase = this.opts.phase?.() ?? 'running';
        if (phase !== 'running') {
          // Alive and working, not ready: a watchdog must not restart an engine build.
          res.writeHead(200, { 'content-type': 'application/json' }).end(`${JSON.stringify({ status: phase, ready: false, sources: [] })}\n`);
          return;
        }
        const sources = this.opts.sources().map((s) => ({ id: s.id, uri: s.uri, state: s.stats.state, frames: s.stats.frames, reconnects: s.stats.reconnects, last_error: s.stats.lastError ?? null }));
        const ok = sources.every((s) => s.state === 'playing' || s.state === 'ended' || s.state === 'connecting');
        res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(`${JSON.stringify({ status: ok ? 'ok' : 'degraded', sources })}\n`);
        return;
      }
      default:
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  }

  private openFeed(req: IncomingMessage, res: ServerResponse, frames: boolean): void {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    res.write(': ssd stream feed\n\n');
    const client: Client = { res, frames };
    send(client, this.statesEvent());
    this.clients.add(client);
    this.watchersChanged();
    req.on('close', () => {
      this.clients.delete(client);
      this.watchersChanged();
    });
  }

  /** Pages watching frames open the display branches; the state poll runs while any feed is open. */
  private watchersChanged(): void {
    let pages = 0;
    for (const c of this.clients) if (c.frames) pages++;
    this.opts.video?.setPageWatchers(pages);
    if (this.clients.size > 0 && !this.stateTimer) {
      this.lastStates = this.statesJson();
      this.stateTimer = setInterval(() => this.sendStates(false), STATE_POLL_MS);
      this.stateTimer.unref();
    } else if (this.clients.size === 0 && this.stateTimer) {
      clearInterval(this.stateTimer);
      this.stateTimer = undefined;
    }
  }

  private statesJson(): string {
    return JSON.stringify(this.opts.sources().map((s) => ({ id: s.id, uri: s.uri, state: s.stats.state })));
  }

  private statesEvent(): string {
    return `event: state\ndata: ${this.statesJson()}\n\n`;
  }

  /** Tells the feeds the source states when they changed (or always, with `force`). */
  private sendStates(force: boolean): void {
    const now = this.statesJson();
    if (!force && now === this.lastStates) return;
    this.lastStates = now;
    const msg = `event: state\ndata: ${now}\n\n`;
    for (const c of this.clients) send(c, msg);
  }
}

/** The token a request gives: its Bearer header, else its ?token= query. */
function givenToken(req: IncomingMessage, url: URL): string | undefined {
  const header = req.headers.authorization;
  return header?.startsWith('Bearer ') ? header.slice(7) : url.searchParams.get('token') ?? undefined;
}

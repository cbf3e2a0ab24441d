/**
 * `--webhook URL` (repeatable): every event is POSTed as JSON to each URL, one event per request.
 *
 * The frame loop never waits for it: `send` only appends to the URL's queue (bounded; when full, the
 * oldest waiting event is dropped, counted, and one log line is written per burst of drops). One
 * request at a time per URL, in event order; a request that gets no answer within `timeoutMs` is
 * abandoned. Network errors, timeouts and 408/429/5xx answers are retried with exponential backoff
 * (0.5, 1, 2, 4, 8 s...) up to `retries` times, then the event is dropped; other answers (a 4xx: the
 * receiver refuses the event itself) are not retried. `close` stops taking events, lets the queues
 * drain for at most `flushMs`, then abandons what is left (counted as dropped, one line).
 */
import { request as httpRequest, type ClientRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { SsdError, oneLine } from '../../core/errors.js';
import type { LogFn } from './frame.js';

export type WebhookDropReason = 'queue-full' | 'retries' | 'rejected' | 'shutdown';

export interface WebhookOptions {
  urls: readonly string[];
  log?: LogFn;
  /** Events waiting per URL (default 1000). */
  maxQueue?: number;
  /** Per request (default 5000). */
  timeoutMs?: number;
  /** Retries after the first attempt (default 5). */
  retries?: number;
  /** First backoff (default 500 ms), doubled per retry up to `maxBackoffMs` (default 30 s). */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** A POST failed (each failed attempt); `webhook` is the URL's index in `urls`, as a string. */
  onFailure?: (webhook: string) => void;
  /** `count` events will never be delivered to `webhook`. */
  onDrop?: (webhook: string, reason: WebhookDropReason, count: number) => void;
}

/** Checks a --webhook URL (http or https with a host); throws one SsdError line. */
export function parseWebhookUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new SsdError(`--webhook: malformed URL "${redactUrl(text)}" (expected http://host:port/path)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new SsdError(`--webhook: scheme must be http:// or https://, got "${url.protocol}//"`);
  if (!url.hostname) throw new SsdError(`--webhook: no host in "${redactUrl(text)}"`);
  return url;
}

/**
 * A URL as logged: scheme, host and port only. Webhook paths and queries often are the secret
 * (chat and automation services put the token there), and user:password may be in it.
 */
export function redactUrl(text: string): string {
  try {
    const u = new URL(text);
    return `${u.protocol}//${u.host}${u.pathname !== '/' || u.search ? '/...' : '/'}`;
  } catch {
    return text.replace(/\/\/[^@/]*@/, '//***@').replace(/(\/\/[^/]+\/).*/, '$1...');
  }
}

type PostResult = { ok: true } | { ok: false; retry: boolean; reason: string };

class Target {
  private readonly queue: string[] = [];
  private busy = false;
  private stopped = false;
  private inflight: ClientRequest | undefined;
  private sleeping: { timer: NodeJS.Timeout; resolve: () => void } | undefined;
  private idleWaiters: Array<() => void> = [];
  private failing = false;
  private dropBurst = 0;
  delivered = 0;
  failures = 0;
  dropped = 0;

  constructor(readonly index: string, private readonly url: URL, private readonly o: WebhookOptions, private readonly log: LogFn) {}

  get name(): string {
    return `webhook ${this.index} (${redactUrl(this.url.href)})`;
  }

  get pending(): number {
    return this.queue.length + (this.busy ? 1 : 0);
  }

  enqueue(body: string): void {
    if (this.stopped) return;
    this.queue.push(body);
    const max = this.o.maxQueue ?? 1000;
    if (this.queue.length > max) {
      const n = this.queue.length - max;
      this.queue.splice(0, n);
      this.drop('queue-full', n);
      if (this.dropBurst === 0) this.log(`${this.name}: ${max} events waiting, dropping the oldest (the receiver is slower than the events or down)`);
      this.dropBurst += n;
    }
    void this.pump();
  }

  private drop(reason: WebhookDropReason, n: number): void {
    this.dropped += n;
    this.o.onDrop?.(this.index, reason, n);
  }

  private async pump(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      while (this.queue.length > 0 && !this.stopped) {
        const body = this.queue.shift()!;
        await this.deliver(body);
        // A burst of drops ends when the queue has room again; the next overflow logs a new line.
        if (this.dropBurst > 0 && this.queue.length <= (this.o.maxQueue ?? 1000) / 2) {
          this.log(`${this.name}: ${this.dropBurst} events were dropped while the queue was full`);
          this.dropBurst = 0;
        }
      }
    } finally {
      this.busy = false;
      if (this.queue.length === 0 || this.stopped) for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  private async deliver(body: string): Promise<void> {
    const retries = this.o.retries ?? 5;
    for (let attempt = 0; ; attempt++) {
      const r = await this.post(body);
      if (r.ok) {
        this.delivered++;
        if (this.failing) this.log(`${this.name}: delivering again`);
        this.failing = false;
        return;
      }
      this.failures++;
      this.o.onFailure?.(this.index);
      if (this.stopped) {
        this.drop('shutdown', 1);
        return;
      }
      if (!r.retry) {
        this.log(`${this.name}: ${r.reason}; event dropped (not retried)`);
        this.drop('rejected', 1);
        return;
      }
      if (!this.failing) this.log(`${this.name}: ${r.reason}; retrying with backoff`);
      this.failing = true;
      if (attempt >= retries) {
        this.drop('retries', 1);
        return;
      }
      const wait = Math.min(this.o.maxBackoffMs ?? 30_000, (this.o.backoffMs ?? 500) * 2 ** attempt);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => { this.sleeping = undefined; resolve(); }, wait);
        this.sleeping = { timer, resolve };
      });
      if (this.stopped) {
        this.drop('shutdown', 1);
        return;
      }
    }
  }

  private post(body: string): Promise<PostResult> {
    const timeoutMs = this.o.timeoutMs ?? 5000;
    return new Promise((resolve) => {
      let settled = false;
      const done = (r: PostResult) => {
        if (!settled) {
          settled = true;
          resolve(r);
        }
      };
      const u = this.url;
      const headers: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'user-agent': 'ssd-stream' };
      if (u.username || u.password) headers.authorization = `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}`;
      const opts = { method: 'POST', hostname: u.hostname.replace(/^\[|\]$/g, ''), port: u.port || undefined, path: `${u.pathname}${u.search}`, headers, agent: false as const };
      const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(opts, (res) => {
        const s = res.statusCode ?? 0;
        // The body is not needed; draining it lets the connection close.
        res.resume();
        res.on('error', () => undefined);
        res.on('end', () => { clearTimeout(timer); this.inflight = undefined; });
        if (s >= 200 && s < 300) done({ ok: true });
        else done({ ok: false, retry: s === 408 || s === 429 || s >= 500, reason: `HTTP ${s}` });
      });
      this.inflight = req;
      // One bound for the whole exchange: connect, send, answer (and the answer's body).
      const timer = setTimeout(() => req.destroy(new Error(`no answer in ${timeoutMs / 1000} s`)), timeoutMs);
      req.on('error', (err) => {
        clearTimeout(timer);
        this.inflight = undefined;
        done({ ok: false, retry: true, reason: oneLine(err) });
      });
      req.on('close', () => {
        clearTimeout(timer);
        done({ ok: false, retry: true, reason: 'connection closed without an answer' });
      });
      req.end(body);
    });
  }

  /** Resolves when nothing is queued or in flight. */
  idle(): Promise<void> {
    if (!this.busy && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Abandons what is left: the request in flight, a backoff wait, the queue. Returns how many events. */
  abort(): number {
    this.stopped = true;
    const left = this.queue.length;
    this.queue.length = 0;
    if (left > 0) this.drop('shutdown', left);
    let n = left;
    if (this.busy) n++;
    this.inflight?.destroy(new Error('shutting down'));
    if (this.sleeping) {
      clearTimeout(this.sleeping.timer);
      this.sleeping.resolve();
      this.sleeping = undefined;
    }
    return n;
  }

  stop(): void {
    this.stopped = true;
  }
}

export class WebhookSender {
  private readonly targets: Target[];
  private readonly log: LogFn;
  private closed = false;

  constructor(o: WebhookOptions) {
    const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
    this.targets = o.urls.map((u, i) => new Target(String(i), parseWebhookUrl(u), o, log));
    this.log = log;
  }

  /** Queues `event` for every URL; returns at once. */
  send(event: object): void {
    if (this.closed) return;
    const body = JSON.stringify(event);
    for (const t of this.targets) t.enqueue(body);
  }

  /** Per URL: delivered, failed attempts, dropped events, and events still queued or in flight. */
  stats(): Array<{ webhook: string; delivered: number; failures: number; dropped: number; pending: number }> {
    return this.targets.map((t) => ({ webhook: t.index, delivered: t.delivered, failures: t.failures, dropped: t.dropped, pending: t.pending }));
  }

  /** Stops taking events; waits at most `flushMs` for the queues to drain, then abandons the rest. */
  async close(flushMs = 5000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    let timer: NodeJS.Timeout | undefined;
    const all = Promise.all(this.targets.map((t) => t.idle()));
    const bound = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), flushMs); });
    const r = await Promise.race([all, bound]);
    clearTimeout(timer);
    for (const t of this.targets) {
      if (r === 'timeout') {
        const n = t.abort();
        if (n > 0) this.log(`${t.name}: ${n} events not delivered at shutdown (flush bound ${flushMs / 1000} s)`);
      } else {
        t.stop();
      }
    }
    // The aborted requests settle on their own next tick; wait for the workers to finish.
    if (r === 'timeout') await Promise.all(this.targets.map((t) => t.idle()));
  }
}

// --webhook: the sender against real HTTP servers on 127.0.0.1: one that fails the first N requests
// (retry with backoff, order kept), one that refuses (4xx: not retried), one that never answers (the
// caller's event loop keeps running, the queue is bounded, shutdown is bounded).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { parseWebhookUrl, redactUrl, WebhookSender, type WebhookDropReason } from '../../runtime/stream/webhook.js';
import { waitFor } from '../helpers/wait.js';

const servers: Array<{ server: Server; sockets: Set<Socket> }> = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    for (const sock of s.sockets) sock.destroy();
    await new Promise((r) => s.server.close(r));
  }
});

/** A server on a free loopback port; `handle` answers each request (or not). */
async function serve(handle: (req: IncomingMessage, body: string, res: ServerResponse) => void): Promise<string> {
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => { body += d.toString(); });
    req.on('end', () => handle(req, body, res));
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  servers.push({ server, sockets });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook/secret-token?x=1`;
}

function recorder() {
  const logs: string[] = [];
  const failures: string[] = [];
  const drops: Array<[string, WebhookDropReason, number]> = [];
  return {
    logs, failures, drops,
    opts: { log: (l: string) => logs.push(l), onFailure: (w: string) => failures.push(w), onDrop: (w: string, r: WebhookDropReason, n: number) => drops.push([w, r, n]) },
  };
}

describe('webhook URLs', () => {
  it('http(s) only; logs never show the path, query or password', () => {
    expect(() => parseWebhookUrl('ftp://x/y')).toThrow(/^--webhook: scheme must be http:\/\/ or https:\/\//);
    expect(() => parseWebhookUrl('not a url')).toThrow(/^--webhook: malformed URL/);
    expect(redactUrl('https://u:pw@hooks.example.com/services/T000/B000/XXXX?k=1')).toBe('https://hooks.example.com/...');
    expect(redactUrl('http://127.0.0.1:8123/')).toBe('http://127.0.0.1:8123/');
  });
});

describe('WebhookSender against real servers', () => {
  it('retries with backoff until the server takes the events, in order, each once', async () => {
    let requests = 0;
    const got: Array<{ body: unknown; type: string | undefined; auth: string | undefined }> = [];
    const url = await serve((req, body, res) => {
      requests++;
      if (requests <= 3) {
        res.writeHead(503).end();
        return;
      }
      got.push({ body: JSON.parse(body), type: req.headers['content-type'], auth: req.headers.authorization });
      res.writeHead(204).end();
    });
    const r = recorder();
    const w = new WebhookSender({ urls: [url.replace('http://', 'http://me:pw@')], backoffMs: 5, ...r.opts });
    for (let i = 0; i < 4; i++) w.send({ event: 'cross', n: i });
    // The server has the 4th event before the sender has read its response: wait for both.
    await waitFor(() => got.length === 4 && w.stats()[0]!.delivered === 4, '4 events delivered and acknowledged');
    expect(got.map((g) => g.body)).toEqual([0, 1, 2, 3].map((n) => ({ event: 'cross', n })));
    expect(got[0]!.type).toBe('application/json');
    expect(got[0]!.auth).toBe(`Basic ${Buffer.from('me:pw').toString('base64')}`);
    expect(r.failures).toEqual(['0', '0', '0']);
    expect(r.drops).toEqual([]);
    // One line when it starts failing, one when it delivers again; the secret path is not in them.
    expect(r.logs).toEqual(['webhook 0 (http://127.0.0.1:' + new URL(url).port + '/...): HTTP 503; retrying with backoff', expect.stringMatching(/: delivering again$/)]);
    expect(w.stats()).toEqual([{ webhook: '0', delivered: 4, failures: 3, dropped: 0, pending: 0 }]);
    await w.close();
  });

  it('gives an event up after the retries; a 4xx is not retried', async () => {
    let refused = 0;
    const down = await serve((_req, _body, res) => { res.writeHead(500).end(); });
    const picky = await serve((_req, _body, res) => { refused++; res.writeHead(400).end(); });
    const r = recorder();
    const w = new WebhookSender({ urls: [down, picky], backoffMs: 2, retries: 2, ...r.opts });
    w.send({ event: 'enter' });
    await waitFor(() => r.drops.length === 2, 'both webhooks to give the event up');
    expect(r.drops.sort()).toEqual([['0', 'retries', 1], ['1', 'rejected', 1]]);
    expect(r.failures.filter((f) => f === '0')).toHaveLength(3);
    expect(refused).toBe(1);
    await w.close();
  });

  it('a server that never answers: send returns at once, the loop keeps running, the queue stays bounded, close is bounded', async () => {
    const held: ServerResponse[] = [];
    const url = await serve((_req, _body, res) => { held.push(res); });
    const r = recorder();
    const w = new WebhookSender({ urls: [url], maxQueue: 5, timeoutMs: 60_000, ...r.opts });
    for (let i = 0; i < 20; i++) w.send({ event: 'loiter', n: i });
    // The first event is in flight (held by the server); of the 19 behind it, the 14 oldest were dropped.
    expect(r.drops).toEqual(Array.from({ length: 14 }, () => ['0', 'queue-full', 1]));
    expect(r.logs.filter((l) => /dropping the oldest/.test(l))).toHaveLength(1);
    // The event loop turns while the request hangs: timers keep firing.
    let ticks = 0;
    const iv = setInterval(() => { ticks++; }, 1);
    await waitFor(() => ticks >= 20 && held.length === 1, 'the loop to turn while the server holds the request');
    clearInterval(iv);
    expect(w.stats()[0]!.pending).toBe(6);
    await w.close(50);
    expect(r.logs.filter((l) => /6 events not delivered at shutdown/.test(l))).toHaveLength(1);
    expect(w.stats()[0]).toMatchObject({ delivered: 0, dropped: 20, pending: 0 });
    w.send({ event: 'after-close' });
    expect(w.stats()[0]!.pending).toBe(0);
  });

  it('a request with no answer times out and is retried', async () => {
    let n = 0;
    const got: unknown[] = [];
    const url = await serve((_req, body, res) => {
      if (n++ === 0) return; // the first request hangs
      got.push(JSON.parse(body));
      res.writeHead(200).end('ok');
    });
    const r = recorder();
    const w = new WebhookSender({ urls: [url], timeoutMs: 1000, backoffMs: 1, ...r.opts });
    w.send({ event: 'leave' });
    await waitFor(() => got.length >= 1, 'the retried event');
    expect(got[0]).toEqual({ event: 'leave' });
    expect(r.logs[0]).toMatch(/no answer in 1 s; retrying with backoff$/);
    await w.close();
  });
});

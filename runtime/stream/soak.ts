/**
 * Soak benchmark of `ssd stream` (not in CI): the real CLI as a child process on a live source, with
 * the live page open in headless Chromium (or, without Chromium, a client that pulls what the page
 * pulls: /events?frames=1), a plain SSE client on /events, and /metrics polled every few seconds.
 * Every `sampleMs` the stream process's memory is sampled: RSS from /proc/<pid>/status (split into
 * anonymous and file-backed pages), and the JS heap, external memory and ArrayBuffers from /metrics.
 * The verdict: RSS growth from the first sample at or after `baselineMs` (10 minutes: start-up, the
 * first JPEG encodes and the allocators' warm-up are over) to the end, against < 5% over 2 hours.
 *
 *   npx tsx scripts/soak-stream.ts [--minutes 120] [--fps 30] [--out FILE]
 *
 * `bin/ssd.js stream` without UV_THREADPOOL_SIZE runs itself again as a child (docs/stream.md,
 * "Thread budget"), as it does for a user: the process measured is that child, the one doing the
 * work, found among the started process's children.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { request, type ClientRequest } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';

export const DEFAULT_CHROMIUM = '/usr/bin/chromium';

/** Growth goal: RSS after the baseline grows less than this, in %, over a 2-hour run. */
export const SOAK_GOAL_PCT = 5;

export interface SoakOptions {
  /** bin/ssd.js of the checkout. */
  ssdBin: string;
  model: string;
  /** The source URI (default a 640x480 test:// camera at `fps`). */
  source?: string;
  fps?: number;
  /** Run length from the first frame; the run also ends after `maxSamples` samples or on `signal`. */
  durationMs: number;
  maxSamples?: number;
  /** Memory sample interval (default 30 s). */
  sampleMs?: number;
  /** /metrics poll interval (default 5 s). */
  metricsMs?: number;
  /** Growth is measured from the first sample at or after this (default 10 min). */
  baselineMs?: number;
  /** The page: headless Chromium (default when installed), a Node client pulling /events?frames=1, or none. */
  page?: 'chromium' | 'client' | 'none';
  chromium?: string;
  /** More `ssd stream` flags. */
  extraArgs?: string[];
  /** Extra environment for `ssd stream` (e.g. to compare allocator settings). */
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  log?: (line: string) => void;
  /** After each sample; `snapshot()` is the result so far (reason "running"). */
  onSample?: (s: SoakSample, snapshot: () => SoakResult) => void;
}

export interface SoakSample {
  /** Seconds since the first frame. */
  t: number;
  /** The stream process: VmRSS, RssAnon, RssFile (MB = 2^20 bytes), threads. */
  rssMb: number;
  anonMb: number;
  fileMb: number;
  threads: number;
  /** From /metrics (undefined when the server does not expose them). */
  heapMb?: number;
  externalMb?: number;
  arrayBuffersMb?: number;
  /** Detected frames per second since the previous sample (ssd_frames_total). */
  fps?: number;
  frames?: number;
  /** SSE messages per second since the previous sample: the plain /events client, and the page. */
  sseRate: number;
  pageRate?: number;
  /** Messages since the start: the plain client's, the page's. */
  sseMessages: number;
  pageMessages?: number;
}

export interface SoakVerdict {
  baselineT: number;
  endT: number;
  baselineRssMb: number;
  endRssMb: number;
  growthPct: number;
  /** Least-squares slope of RSS over the samples from the baseline on, MB per minute. */
  slopeMbPerMin: number;
  /** The slope carried to 2 hours (from minute 10 to 120), in % of the baseline. */
  projected2hPct: number;
  met: boolean;
}

export interface SoakResult {
  samples: SoakSample[];
  verdict?: SoakVerdict;
  reason: 'running' | 'done' | 'stopped' | 'stream exited';
  page: 'chromium' | 'client' | 'none';
  source: string;
  model: string;
  env: Record<string, string>;
  cpu: string;
  cores: number;
  loadAverage: [number, number];
  startedAt: string;
  /** Last lines of the stream's stderr (for a stream that exited). */
  stderrTail: string;
}

const MB = 1024 * 1024;

/** VmRSS, RssAnon, RssFile in MB and the thread count of a process, from /proc/<pid>/status. */
export function readProcMemory(pid: number): { rssMb: number; anonMb: number; fileMb: number; threads: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? NaN) / 1024;
  const threads = Number(/^Threads:\s+(\d+)/m.exec(text)?.[1] ?? NaN);
  const rssMb = kb('VmRSS');
  return Number.isFinite(rssMb) ? { rssMb, anonMb: kb('RssAnon'), fileMb: kb('RssFile'), threads } : undefined;
}

/** Direct children of `pid` (scanning /proc: the kernel's per-task children file is not always built in). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      // The comm field may hold spaces and parentheses: the ppid is the 2nd field after the last ")".
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(name));
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

/** Values of unlabelled (or first-labelled) samples of the Prometheus text, by metric name. */
export function parseMetrics(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !line.trim()) continue;
    const r = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$/.exec(line);
    if (!r) continue;
    // Several sources: sum the per-source series (frames), which is what a one-source soak reads.
    const name = r[1]!;
    const v = Number(r[3]);
    if (name.endsWith('_bucket')) continue;
    m.set(name, (m.get(name) ?? 0) + v);
  }
  return m;
}

/** Growth of RSS from the first sample at or after `baselineS` to the last one. */
export function soakVerdict(samples: readonly SoakSample[], baselineS: number): SoakVerdict | undefined {
  const from = samples.findIndex((s) => s.t >= baselineS);
  if (from < 0 || from === samples.length - 1) return undefined;
  const rest = samples.slice(from);
  const base = rest[0]!;
  const end = rest[rest.length - 1]!;
  const n = rest.length;
  const mx = rest.reduce((a, s) => a + s.t / 60, 0) / n;
  const my = rest.reduce((a, s) => a + s.rssMb, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const s of rest) {
    sxy += (s.t / 60 - mx) * (s.rssMb - my);
    sxx += (s.t / 60 - mx) ** 2;
  }
  const slope = sxx > 0 ? sxy / sxx : 0;
  const growthPct = ((end.rssMb - base.rssMb) / base.rssMb) * 100;
  return {
    baselineT: base.t, endT: end.t, baselineRssMb: base.rssMb, endRssMb: end.rssMb, growthPct,
    slopeMbPerMin: slope, projected2hPct: ((slope * 110) / base.rssMb) * 100,
    met: growthPct < SOAK_GOAL_PCT && (slope * 110 / base.rssMb) * 100 < SOAK_GOAL_PCT,
  };
}

function fmt(v: number | undefined, digits = 1): string {
  return v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(digits);
}

export function formatSoakTable(samples: readonly SoakSample[]): string {
  const head = '| minute | RSS MB | anon MB | file MB | heap MB | external MB | arrayBuffers MB | threads | fps | SSE msg/s | page msg/s |';
  const rows = samples.map((s) => `| ${fmt(s.t / 60)} | ${fmt(s.rssMb)} | ${fmt(s.anonMb)} | ${fmt(s.fileMb)} | ${fmt(s.heapMb)} | ${fmt(s.externalMb)} | ${fmt(s.arrayBuffersMb)} | ${s.threads} | ${fmt(s.fps)} | ${fmt(s.sseRate)} | ${fmt(s.pageRate)} |`);
  return [head, '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |', ...rows].join('\n');
}

export function formatVerdict(v: SoakVerdict | undefined, baselineS: number): string {
  if (!v) return `verdict: none yet (needs two samples from minute ${fmt(baselineS / 60)} on)`;
  return `verdict: RSS ${fmt(v.baselineRssMb)} MB at minute ${fmt(v.baselineT / 60)} -> ${fmt(v.endRssMb)} MB at minute ${fmt(v.endT / 60)}: `
    + `${v.growthPct >= 0 ? '+' : ''}${fmt(v.growthPct, 2)}%; slope ${fmt(v.slopeMbPerMin, 3)} MB/min, `
    + `carried to 2 hours ${v.projected2hPct >= 0 ? '+' : ''}${fmt(v.projected2hPct, 2)}% (goal < ${SOAK_GOAL_PCT}% over 2 hours): ${v.met ? 'met' : 'NOT met'}`;
}

export function formatSoak(r: Pick<SoakResult, 'samples' | 'verdict' | 'reason' | 'page' | 'source' | 'model' | 'env' | 'cpu' | 'cores' | 'loadAverage' | 'startedAt'>, baselineS: number): string {
  const env = Object.entries(r.env).map(([k, v]) => `${k}=${v}`).join(' ');
  return [
    `ssd stream soak, started ${r.startedAt}: ${r.source}, model ${r.model}, page: ${r.page}${env ? `, env ${env}` : ''}`,
    `${r.cpu} x${r.cores}, load average ${r.loadAverage[0].toFixed(1)} -> ${r.loadAverage[1].toFixed(1)}; ended: ${r.reason}`,
    '',
    formatSoakTable(r.samples),
    '',
    formatVerdict(r.verdict, baselineS),
  ].join('\n');
}

/** Writes `text` to `path` whole or not at all (a soak killed mid-write leaves the previous table). */
export function writeWhole(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

/**
 * An SSE client counting unnamed messages (one per processed frame: a message that starts with its
 * `data:` line; named ones such as `event: state` start with `event:`). Reconnects are not its job:
 * the stream must not drop it.
 */
function sseClient(url: string, onMessage: () => void): { req: ClientRequest; close: () => void } {
  const req = request(url, (res) => {
    // The last 6 characters of the previous chunk: a "\n\ndata:" split across chunks is counted
    // once, and one inside the carry alone cannot be (it is 7 characters long).
    let carry = '\n\n';
    res.on('data', (d: Buffer) => {
      const text = carry + d.toString('latin1');
      for (let i = text.indexOf('\n\ndata:'); i >= 0; i = text.indexOf('\n\ndata:', i + 1)) onMessage();
      carry = text.slice(-6);
    });
  });
  req.on('error', () => undefined);
  req.end();
  return { req, close: () => req.destroy() };
}

function getText(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    // A fresh connection each time: a reused keep-alive socket that the server is closing fails.
    const req = request(url, { agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => resolve(body));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * Headless Chromium with the page open; counts the page's EventSource messages over DevTools. The
 * protocol runs over a pipe (--remote-debugging-pipe: Chromium reads fd 3 and writes fd 4, messages
 * NUL-terminated JSON), so no WebSocket client is needed (the runtime's packages have none).
 */
async function openChromium(path: string, url: string, dir: string, onMessage: () => void, log: (l: string) => void): Promise<{ proc: ChildProcess; close: () => Promise<void> }> {
  const proc = spawn(path, ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run', '--mute-audio', `--user-data-dir=${dir}`, '--window-size=1000,800',
    '--remote-debugging-pipe', 'about:blank'], { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
  const toChrome = proc.stdio[3] as NodeJS.WritableStream;
  const fromChrome = proc.stdio[4] as NodeJS.ReadableStream;
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-2000); });
  let id = 0;
  const replies = new Map<number, (r: { result?: Record<string, unknown>; error?: { message?: string } }) => void>();
  let pending = '';
  fromChrome.on('data', (d: Buffer) => {
    pending += d.toString();
    let at: number;
    while ((at = pending.indexOf('\0')) >= 0) {
      const msg = JSON.parse(pending.slice(0, at)) as { id?: number; method?: string; params?: { eventName?: string }; result?: Record<string, unknown>; error?: { message?: string } };
      pending = pending.slice(at + 1);
      if (msg.id !== undefined) replies.get(msg.id)?.(msg);
      // Frames only: named events (state, end) are not.
      else if (msg.method === 'Network.eventSourceMessageReceived' && (msg.params?.eventName ?? 'message') === 'message') onMessage();
    }
  });
  fromChrome.on('error', (e) => log(`chromium DevTools: ${String(e)}`));
  const exited = new Promise<never>((_, reject) => proc.once('exit', (code) => reject(new Error(`chromium exited (${String(code)}): ${err.slice(-500)}`))));
  exited.catch(() => undefined);
  const send = (method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<Record<string, unknown>> => {
    const i = ++id;
    const reply = new Promise<Record<string, unknown>>((resolve, reject) => {
      replies.set(i, (r) => {
        replies.delete(i);
        if (r.error) reject(new Error(`chromium ${method}: ${r.error.message ?? 'failed'}`));
        else resolve(r.result ?? {});
      });
    });
    toChrome.write(`${JSON.stringify({ id: i, method, params, ...(sessionId ? { sessionId } : {}) })}\0`);
    return Promise.race([reply, exited]);
  };
  const { targetId } = await send('Target.createTarget', { url: 'about:blank' }) as { targetId: string };
  const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true }) as { sessionId: string };
  // Network events say when the page's feed delivers; tiny buffers keep Chromium from keeping the
  // feed's bodies (a soak's worth of base64 JPEGs) for DevTools.
  await send('Network.enable', { maxTotalBufferSize: 1024 * 1024, maxResourceBufferSize: 64 * 1024 }, sessionId);
  await send('Page.navigate', { url }, sessionId);
  return {
    proc,
    close: async () => {
      toChrome.end();
      await stopChild(proc, 'SIGTERM');
    },
  };
}

/** Signals a child and waits for its exit, SIGKILL after 20 s. */
function stopChild(proc: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => proc.kill('SIGKILL'), 20_000);
    proc.once('exit', () => { clearTimeout(t); resolve(); });
    proc.kill(signal);
  });
}

export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const fps = o.fps ?? 30;
  const source = o.source ?? `test://ball?width=640&height=480&fps=${fps}`;
  const sampleMs = o.sampleMs ?? 30_000;
  const metricsMs = o.metricsMs ?? 5_000;
  const chromium = o.chromium ?? DEFAULT_CHROMIUM;
  const page = o.page ?? (existsSync(chromium) ? 'chromium' : 'client');
  const load0 = loadavg()[0]!;
  const startedAt = new Date().toISOString();
  const env: NodeJS.ProcessEnv = { ...process.env, ...o.env };
  // As a user starts it: bin/ssd.js sizes the libuv pool and re-runs itself.
  delete env.UV_THREADPOOL_SIZE;
  const child = spawn(process.execPath, [o.ssdBin, 'stream', source, '--model', o.model, '--http', '127.0.0.1:0', '--no-json',
    '--connect-timeout', '120', ...(o.extraArgs ?? [])], { stdio: ['ignore', 'ignore', 'pipe'], env });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-20_000); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // A soak process that dies without its cleanup (an exception, a second signal) takes its children along.
  const children: ChildProcess[] = [child];
  const killChildren = () => { for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM'); };
  process.once('exit', killChildren);
  const samples: SoakSample[] = [];
  const closers: Array<() => Promise<void> | void> = [];
  let reason: SoakResult['reason'] = 'done';
  let closing = false;
  const result = (): SoakResult => ({
    samples: [...samples], verdict: soakVerdict(samples, (o.baselineMs ?? 600_000) / 1000), reason, page, source, model: o.model,
    env: Object.fromEntries(Object.entries(o.env ?? {}).filter((e): e is [string, string] => e[1] !== undefined)),
    cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, loadAverage: [load0, loadavg()[0]!], startedAt,
    stderrTail: stderr.split('\n').slice(-15).join('\n'),
  });
  // Resolves on whichever comes first: stop asked, the stream gone, or the run's end.
  let finish!: (r: SoakResult['reason']) => void;
  const finished = new Promise<SoakResult['reason']>((resolve) => { finish = resolve; });
  const onAbort = () => finish('stopped');
  if (o.signal?.aborted) finish('stopped');
  o.signal?.addEventListener('abort', onAbort, { once: true });
  void exited.then(() => finish('stream exited'));
  try {
    // The port: ssd stream logs "live page: http://127.0.0.1:PORT/".
    const base = await new Promise<string | undefined>((resolve) => {
      const check = () => {
        const m = /live page: (http:\/\/127\.0\.0\.1:\d+)\//.exec(stderr);
        if (m) {
          child.stderr!.off('data', check);
          resolve(m[1]!);
        }
      };
      child.stderr!.on('data', check);
      void finished.then(() => resolve(undefined));
    });
    if (base === undefined) {
      reason = await finished;
      return result();
    }
    let pid: number | undefined;
    const streamPid = () => {
      // The pool child (bin/ssd.js re-runs itself); the started process when it did not.
      pid ??= childPids(child.pid!).find((p) => readProcMemory(p) !== undefined);
      return pid ?? child.pid!;
    };

    let sse = 0;
    let pageMsgs = 0;
    let t0: number | undefined;
    let firstFrame!: () => void;
    const frameSeen = new Promise<void>((resolve) => { firstFrame = resolve; });
    // The clock starts when the feed and the page (if any) both have their first message: from then
    // on everything the soak is about is running.
    const started = () => {
      if (t0 === undefined && sse > 0 && (page === 'none' || pageMsgs > 0)) {
        t0 = performance.now();
        firstFrame();
      }
    };
    const feed = sseClient(`${base}/events`, () => { sse++; started(); });
    closers.push(feed.close);
    if (page === 'chromium') {
      const dir = join(tmpdir(), `ssd-soak-chromium-${process.pid}`);
      const c = await openChromium(chromium, `${base}/`, dir, () => { pageMsgs++; started(); }, log);
      children.push(c.proc);
      closers.push(async () => {
        await c.close();
        rmSync(dir, { recursive: true, force: true });
      });
      c.proc.once('exit', () => { if (reason === 'done' && !closing) log('soak: chromium exited'); });
    } else if (page === 'client') {
      const c = sseClient(`${base}/events?frames=1`, () => { pageMsgs++; started(); });
      closers.push(c.close);
    }
    const poll = async (): Promise<Map<string, number> | undefined> => {
      try {
        return parseMetrics(await getText(`${base}/metrics`));
      } catch {
        // The stream is stopping (the sample loop notices), or the machine is that busy: a sample
        // then goes without the /metrics columns rather than with stale ones.
        return undefined;
      }
    };
    const poller = setInterval(() => void poll(), metricsMs);
    closers.push(() => clearInterval(poller));

    if ((await Promise.race([frameSeen.then(() => 'frame' as const), finished])) !== 'frame') {
      reason = await finished;
      return result();
    }
    log(`soak: first frame; sampling the stream process (pid ${streamPid()}) every ${sampleMs / 1000} s`);
    let prev: { t: number; frames?: number; sse: number; page: number } | undefined;
    const takeSample = async () => {
      const lastMetrics = (await poll()) ?? (await poll()) ?? new Map<string, number>();
      const mem = readProcMemory(streamPid());
      if (!mem) return;
      const t = (performance.now() - t0!) / 1000;
      const frames = lastMetrics.get('ssd_frames_total');
      const mb = (name: string) => {
        const v = lastMetrics.get(name);
        return v === undefined ? undefined : v / MB;
      };
      const dt = prev ? t - prev.t : 0;
      const s: SoakSample = {
        t, ...mem, heapMb: mb('nodejs_heap_size_used_bytes'), externalMb: mb('nodejs_external_memory_bytes'), arrayBuffersMb: mb('nodejs_array_buffers_bytes'),
        frames,
        fps: prev && dt > 0 && frames !== undefined && prev.frames !== undefined ? (frames - prev.frames) / dt : lastMetrics.get('ssd_fps'),
        sseRate: prev && dt > 0 ? (sse - prev.sse) / dt : 0,
        pageRate: page === 'none' ? undefined : prev && dt > 0 ? (pageMsgs - prev.page) / dt : 0,
        sseMessages: sse, pageMessages: page === 'none' ? undefined : pageMsgs,
      };
      prev = { t, frames, sse, page: pageMsgs };
      samples.push(s);
      o.onSample?.(s, () => ({ ...result(), reason: 'running' }));
    };
    await takeSample();
    // Samples on a fixed grid from the first frame (a slow sample does not shift the later ones).
    for (let k = 1; ; k++) {
      if (o.maxSamples !== undefined && samples.length >= o.maxSamples) break;
      const due = t0! + k * sampleMs;
      if (due - t0! > o.durationMs + 1) break;
      let timer: NodeJS.Timeout | undefined;
      const tick = new Promise<'tick'>((resolve) => { timer = setTimeout(() => resolve('tick'), Math.max(0, due - performance.now())); });
      const r = await Promise.race([tick, finished]);
      clearTimeout(timer);
      if (r !== 'tick') {
        reason = r;
        break;
      }
      await takeSample();
    }
    return result();
  } finally {
    closing = true;
    o.signal?.removeEventListener('abort', onAbort);
    for (const c of closers.reverse()) {
      try {
        await c();
      } catch (err) {
        log(`soak: closing: ${String(err)}`);
      }
    }
    // SIGTERM to bin/ssd.js, which passes it on to the pool child: a clean stop (exit 0).
    await stopChild(child, 'SIGTERM');
    await exited;
    process.off('exit', killChildren);
  }
}

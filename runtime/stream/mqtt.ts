/**
 * `--mqtt mqtt://host:1883 --topic T [--qos 0|1|2]`: one message per processed frame (the JSON line
 * of that frame) to `T` (default ssd/<hostname>/<source>; "{source}" in T is replaced by the source id).
 *
 * The client reconnects by itself (every 2 s). While the broker is away, QoS 0 messages are dropped
 * (a detection stream is only worth its newest state); QoS 1/2 messages are kept up to `maxQueued`,
 * then the oldest go, so a long outage never grows memory without bound.
 */
import { hostname } from 'node:os';
import { SsdError, oneLine } from '../../core/errors.js';
import type { LogFn } from './frame.js';
import type { StreamEvent } from './events.js';
import type { FrameRecord } from './jsonl.js';
import type { ClipRecord } from './record.js';

export type Qos = 0 | 1 | 2;

export interface MqttOptions {
  url: string;
  topic?: string;
  qos?: Qos;
  clientId?: string;
  /** QoS 1/2 messages kept while disconnected. */
  maxQueued?: number;
  log?: LogFn;
}

/** Checks an --mqtt URL: mqtt://, mqtts://, ws:// or wss:// with a host. */
export function parseMqttUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new SsdError(`--mqtt: malformed URL "${text}" (expected mqtt://host:1883)`);
  }
  if (!['mqtt:', 'mqtts:', 'ws:', 'wss:', 'tcp:'].includes(url.protocol)) throw new SsdError(`--mqtt: scheme must be mqtt://, mqtts://, ws:// or wss://, got "${url.protocol}//"`);
  if (!url.hostname) throw new SsdError(`--mqtt: no host in "${text}"`);
  return url;
}

/** The topic of a source: a template with {source} and {host}, or T/<source> when several sources share T. */
export function topicFor(template: string | undefined, source: string, manySources: boolean): string {
  const t = template ?? 'ssd/{host}/{source}';
  if (t.includes('{source}') || t.includes('{host}')) return t.replace(/\{source\}/g, source).replace(/\{host\}/g, hostname());
  return manySources ? `${t}/${source}` : t;
}

export function validateTopic(topic: string): void {
  if (!topic || /[#+]/.test(topic) || topic.includes('\0')) throw new SsdError(`--topic: "${topic}" is not a publish topic (no wildcards # or +, not empty)`);
}

interface MqttClientLike {
  connected: boolean;
  publish(topic: string, message: string, opts: { qos: Qos }, cb?: (err?: Error) => void): unknown;
  on(event: string, cb: (...args: unknown[]) => void): unknown;
  end(force?: boolean, opts?: object, cb?: () => void): unknown;
}

export class MqttPublisher {
  private client: MqttClientLike | undefined;
  private queue: Array<{ topic: string; payload: string }> = [];
  private readonly log: LogFn;
  private wasConnected = false;
  private warnedDown = false;
  published = 0;
  dropped = 0;

  constructor(private readonly opts: MqttOptions, private readonly manySources: boolean) {
    parseMqttUrl(opts.url);
    if (opts.topic !== undefined) validateTopic(opts.topic.replace(/\{(source|host)\}/g, 'x'));
    this.log = opts.log ?? ((l) => process.stderr.write(`${l}\n`));
  }

  async connect(): Promise<void> {
    let mqtt: typeof import('mqtt');
    try {
      mqtt = await import('mqtt');
    } catch (err) {
      throw new SsdError(`--mqtt: the "mqtt" package is not installed (${oneLine(err)}); run "npm install mqtt"`, { cause: err });
    }
    const shown = this.opts.url.replace(/\/\/[^@/]*@/, '//***@');
    const client = mqtt.connect(this.opts.url, {
      clientId: this.opts.clientId ?? `ssd-${hostname()}-${process.pid}`,
      reconnectPeriod: 2000,
      connectTimeout: 5000,
      queueQoSZero: false,
    }) as unknown as MqttClientLike;
    this.client = client;
    client.on('connect', () => {
      this.log(`mqtt: ${this.wasConnected ? 're' : ''}connected to ${shown}`);
      this.wasConnected = true;
      this.warnedDown = false;
      this.flush();
    });
    client.on('error', (err) => {
      if (!this.warnedDown) this.log(`mqtt: ${shown}: ${oneLine(err)}; retrying every 2 s`);
      this.warnedDown = true;
    });
    client.on('offline', () => {
      if (!this.warnedDown) this.log(`mqtt: ${shown} unreachable; retrying every 2 s`);
      this.warnedDown = true;
    });
  }

  publish(record: FrameRecord): void {
    this.send(topicFor(this.opts.topic, record.source, this.manySources), JSON.stringify(record));
  }

  /** A zone/line event (--zones) to the source's frame topic + "/events", with the same QoS and queueing. */
  publishEvent(event: StreamEvent): void {
    this.send(`${topicFor(this.opts.topic, event.source, this.manySources)}/events`, JSON.stringify(event));
  }

  /** A finished clip (--record) to the source's frame topic + "/clips", with the same QoS and queueing. */
  publishClip(clip: ClipRecord): void {
    this.send(`${topicFor(this.opts.topic, clip.source, this.manySources)}/clips`, JSON.stringify(clip));
  }

  private send(topic: string, payload: string): void {
    const qos = this.opts.qos ?? 0;
    const c = this.client;
    if (c?.connected) {
      c.publish(topic, payload, { qos });
      this.published++;
      return;
    }
    if (qos === 0) {
      this.dropped++;
      return;
    }
    this.queue.push({ topic, payload });
    const max = this.opts.maxQueued ?? 1000;
    while (this.queue.length > max) {
      this.queue.shift();
      this.dropped++;
    }
  }

  private flush(): void {
    const c = this.client;
    if (!c) return;
    const q = this.queue;
    this.queue = [];
    for (const m of q) {
      c.publish(m.topic, m.payload, { qos: this.opts.qos ?? 0 });
      this.published++;
    }
  }

  /** Waits (at most `timeoutMs`) for in-flight messages, then disconnects. */
  async close(timeoutMs = 2000): Promise<void> {
    const c = this.client;
    this.client = undefined;
    if (!c) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => { c.end(true); resolve(); }, timeoutMs);
      c.end(false, {}, () => { clearTimeout(t); resolve(); });
    });
  }
}

/**
 * Prometheus text exposition (format 0.0.4) without a client library: counters, gauges and
 * histograms with labels, enough for /metrics of a stream.
 */
import type { StreamEvent } from './events.js';

export type Labels = Record<string, string>;

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

export function formatLabels(labels: Labels, extra?: Labels): string {
  const all = { ...labels, ...extra };
  const keys = Object.keys(all);
  if (keys.length === 0) return '';
  return `{${keys.map((k) => `${k}="${escapeLabel(all[k]!)}"`).join(',')}}`;
}

function formatNumber(v: number): string {
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  if (Number.isNaN(v)) return 'NaN';
  return String(v);
}

interface Metric {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  render(): string[];
}

export class Counter implements Metric {
  readonly type = 'counter';
  private values = new Map<string, { labels: Labels; value: number }>();
  constructor(readonly name: string, readonly help: string) {}
  inc(labels: Labels = {}, by = 1): void {
    const key = formatLabels(labels);
    const e = this.values.get(key) ?? { labels, value: 0 };
    e.value += by;
    this.values.set(key, e);
  }
  /** For counts kept elsewhere (a source's reconnects): exposes the current total. */
  set(labels: Labels, value: number): void {
    this.values.set(formatLabels(labels), { labels, value });
  }
  get(labels: Labels = {}): number {
    return this.values.get(formatLabels(labels))?.value ?? 0;
  }
  render(): string[] {
    return [...this.values.values()].map((e) => `${this.name}${formatLabels(e.labels)} ${formatNumber(e.value)}`);
  }
}

export class Gauge implements Metric {
  readonly type = 'gauge';
  private values = new Map<string, { labels: Labels; value: number }>();
  constructor(readonly name: string, readonly help: string) {}
  set(labels: Labels, value: number): void {
    this.values.set(formatLabels(labels), { labels, value });
  }
  get(labels: Labels = {}): number | undefined {
    return this.values.get(formatLabels(labels))?.value;
  }
  render(): string[] {
    return [...this.values.values()].map((e) => `${this.name}${formatLabels(e.labels)} ${formatNumber(e.value)}`);
  }
}

export class Histogram implements Metric {
  readonly type = 'histogram';
  private series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  /** Upper bounds, ascending; +Inf is implicit. */
  constructor(readonly name: string, readonly help: string, readonly buckets: readonly number[]) {
    for (let i = 1; i < buckets.length; i++) if (!(buckets[i]! > buckets[i - 1]!)) throw new Error(`histogram ${name}: buckets must ascend`);
  }
  observe(labels: Labels, value: number): void {
    const key = formatLabels(labels);
    let s = this.series.get(key);
    if (!s) {
      s = { labels, counts: new Array(this.buckets.length).fill(0), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]!) s.counts[i]!++;
    s.sum += value;
    s.count++;
  }
  count(labels: Labels = {}): number {
    return this.series.get(formatLabels(labels))?.count ?? 0;
  }
  render(): string[] {
    const lines: string[] = [];
    for (const s of this.series.values()) {
      this.buckets.forEach((b, i) => lines.push(`${this.name}_bucket${formatLabels(s.labels, { le: formatNumber(b) })} ${s.counts[i]}`));
      lines.push(`${this.name}_bucket${formatLabels(s.labels, { le: '+Inf' })} ${s.count}`);
      lines.push(`${this.name}_sum${formatLabels(s.labels)} ${formatNumber(s.sum)}`);
      lines.push(`${this.name}_count${formatLabels(s.labels)} ${s.count}`);
    }
    return lines;
  }
}

export class Registry {
  private metrics: Metric[] = [];
  private collectors: Array<() => void> = [];
  add<M extends Metric>(m: M): M {
    this.metrics.push(m);
    return m;
  }
  /** Runs `f` before every render: for values read at scrape time (the process's memory). */
  collect(f: () => void): void {
    this.collectors.push(f);
  }
  render(): string {
    for (const f of this.collectors) f();
    const out: string[] = [];
    for (const m of this.metrics) {
      out.push(`# HELP ${m.name} ${m.help}`, `# TYPE ${m.name} ${m.type}`, ...m.render());
    }
    return `${out.join('\n')}\n`;
  }
}

/** Latency buckets in seconds, 5 ms .. 10 s. */
export const LATENCY_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2.5, 5, 10];

/** The metrics of `ssd stream`, per source. */
export class StreamMetrics {
  readonly registry = new Registry();
  readonly frames = this.registry.add(new Counter('ssd_frames_total', 'Frames detected, per source.'));
  readonly detections = this.registry.add(new Counter('ssd_detections_total', 'Detections above the threshold, per source.'));
  readonly dropped = this.registry.add(new Counter('ssd_dropped_frames_total', 'Frames the source produced that were never detected (newest-frame policy), per source.'));
  readonly reconnects = this.registry.add(new Counter('ssd_reconnects_total', 'Reconnections after the source went down, per source.'));
  readonly fps = this.registry.add(new Gauge('ssd_fps', 'Detected frames per second over the last 5 seconds, per source.'));
  readonly up = this.registry.add(new Gauge('ssd_source_up', '1 while the source is delivering frames, 0 while it reconnects or has ended.'));
  readonly inference = this.registry.add(new Histogram('ssd_inference_seconds', 'Bare session.run time per batch.', LATENCY_BUCKETS_S));
  readonly latency = this.registry.add(new Histogram('ssd_latency_seconds', 'End to end: frame out of the pipeline to detections ready, per source.', LATENCY_BUCKETS_S));
  // Zones and lines (--zones, runtime/stream/events.ts) and their webhooks (--webhook).
  readonly zoneOccupancy = this.registry.add(new Gauge('ssd_zone_occupancy', 'Tracked objects inside a zone now, per source, zone and class.'));
  readonly lineCrossings = this.registry.add(new Counter('ssd_line_crossings_total', 'Line crossings per source, line, class and direction (in/out).'));
  readonly events = this.registry.add(new Counter('ssd_events_total', 'Zone and line events per source and type (enter, leave, loiter, cross).'));
  readonly webhookFailures = this.registry.add(new Counter('ssd_webhook_failures_total', 'Webhook POSTs that failed (every attempt, retries included), per webhook (its index in the --webhook flags).'));
  readonly webhookDropped = this.registry.add(new Counter('ssd_webhook_dropped_total', 'Events never delivered to a webhook, per webhook and reason (queue-full, retries, rejected, shutdown).'));
  readonly reloads = this.registry.add(new Counter('ssd_model_reloads_total', 'Model reloads (SIGHUP or a changed model file), per result: ok, refused (the old model kept running).'));
  // The process's memory, read at each scrape, under the names prom-client uses. Split so that a
  // soak (runtime/stream/soak.ts) can tell a JS heap leak from Buffers (external, arrayBuffers)
  // from native memory (RSS minus the rest: libvips, GStreamer, onnxruntime, malloc arenas).
  readonly rss = this.registry.add(new Gauge('process_resident_memory_bytes', 'Resident set size of the process.'));
  readonly heapUsed = this.registry.add(new Gauge('nodejs_heap_size_used_bytes', 'V8 heap in use.'));
  readonly heapTotal = this.registry.add(new Gauge('nodejs_heap_size_total_bytes', 'V8 heap reserved.'));
  readonly external = this.registry.add(new Gauge('nodejs_external_memory_bytes', 'Memory of C++ objects bound to JS objects, Buffers included.'));
  readonly arrayBuffers = this.registry.add(new Gauge('nodejs_array_buffers_bytes', 'Memory of ArrayBuffers and Buffers (part of external).'));
  private windows = new Map<string, number[]>();

  constructor() {
    this.registry.collect(() => {
      const m = process.memoryUsage();
      this.rss.set({}, m.rss);
      this.heapUsed.set({}, m.heapUsed);
      this.heapTotal.set({}, m.heapTotal);
      this.external.set({}, m.external);
      this.arrayBuffers.set({}, m.arrayBuffers);
    });
  }

  /** Records one processed frame at monotonic time `nowMs`. */
  frame(source: string, latencyMs: number, detections: number, nowMs: number): void {
    const l = { source };
    this.frames.inc(l);
    this.detections.inc(l, detections);
    this.latency.observe(l, latencyMs / 1000);
    const w = this.windows.get(source) ?? [];
    w.push(nowMs);
    while (w.length > 0 && w[0]! < nowMs - 5000) w.shift();
    this.windows.set(source, w);
    const span = w.length > 1 ? (w[w.length - 1]! - w[0]!) / 1000 : 0;
    this.fps.set(l, span > 0 ? (w.length - 1) / span : 0);
  }

  run(inferMs: number): void {
    this.inference.observe({}, inferMs / 1000);
  }

  sourceStats(source: string, s: { dropped: number; reconnects: number; state: string }): void {
    const l = { source };
    this.dropped.set(l, s.dropped);
    this.reconnects.set(l, s.reconnects);
    this.up.set(l, s.state === 'playing' ? 1 : 0);
  }

  /** Counts one zone/line event; enter and leave carry the zone's new occupancy of their class. */
  event(e: StreamEvent): void {
    this.events.inc({ source: e.source, type: e.event });
    if (e.event === 'cross') this.lineCrossings.inc({ source: e.source, line: e.line, class: e.label, direction: e.direction });
    if (e.event === 'enter' || e.event === 'leave') this.zoneOccupancy.set({ source: e.source, zone: e.zone, class: e.label }, e.occupancy);
  }
}

/**
 * `ssd stream` as a library call: sources -> one detector -> JSON lines, live page, MQTT, metrics.
 * The CLI (cli/commands/stream.ts) parses flags and calls runStream; tests call it too.
 */
import type { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SsdError, oneLine } from '../../core/errors.js';
import { detectDevice } from '../../devices/detect.js';
import { getProfile } from '../../devices/profiles.js';
import type { DeviceProfile } from '../../devices/types.js';
import { Detector } from '../detector.js';
import { DEMO_MODEL_PATH, DEMO_URI, DemoSource, demoModelAvailable } from './demo.js';
import type { FrameSource, LogFn } from './frame.js';
import { maxGstSources, threadPoolSize, threadsPerSource } from './gst.js';
import { StreamHttpServer, checkHttpAccess, formatListenAddress, parseListenAddress, type ListenAddress, type StreamPhase } from './http-server.js';
import { readModelMetadata } from '../onnx-metadata.js';
import { JsonlWriter, toRecord } from './jsonl.js';
import { StreamMetrics } from './metrics.js';
import { MqttPublisher, type Qos } from './mqtt.js';
import { runScheduler, type SchedulerSummary } from './scheduler.js';
import { DetectorSlot, ModelReloader, pipelineContract } from './reload.js';
import { GstFrameSource, type BackoffOptions } from './source.js';
import { StreamTracking, type StreamTrackOptions } from './tracking.js';
import { StreamZones, type StreamEvent, type StreamEventListener } from './events.js';
import { WebhookSender, parseWebhookUrl } from './webhook.js';
import { loadZonesFile, type ZonesConfig } from '../../core/zones/config.js';
import { DEFAULT_TRACKER_OPTIONS } from '../../core/tracking/tracker.js';
import { Recorder, RECORD_THREADS_PER_SOURCE, prepareRecordDir, type ClipRecord } from './record.js';
import { parsePipelineSource, parseSourceUri, type ParsedSource, type VideoCodec } from './uri.js';
import { DEFAULT_DISPLAY_FPS, VideoOut, checkHlsDir } from './video-out.js';

export interface StreamOptions {
  /** Source URIs; none (and no pipeline) = the built-in demo. */
  uris: string[];
  /** Extra sources given as gst-launch text ending in an appsink. */
  pipelines?: string[];
  model?: string;
  /** "auto" (default) or a profile name from `ssd devices`. */
  device?: string;
  threshold?: number;
  /** Track objects across frames (ids in every detection's track_id); undefined = no tracking. */
  track?: StreamTrackOptions;
  /** --zones FILE: zones and lines per source (core/zones/config.ts); turns tracking on when `track` is undefined. */
  zones?: string;
  /** --webhook URLs: every zone/line event is POSTed to each (webhook.ts). */
  webhooks?: string[];
  /** Called with every zone/line event, after the JSON line, MQTT and webhooks have it (a clip recorder, say). */
  onEvent?: StreamEventListener;
  maxFrames?: number;
  /** "HOST:PORT" for the live page; undefined = no server (the demo defaults to 127.0.0.1:8080). */
  http?: string;
  token?: string;
  /** --hls DIR: the annotated video of every source as HLS (DIR/<source>/playlist.m3u8, also under /hls/ of --http). */
  hls?: string;
  /** Most camera-resolution pictures a second per source for the page, MJPEG and HLS (default 15). */
  displayFps?: number;
  mqtt?: string;
  topic?: string;
  qos?: Qos;
  loop?: boolean;
  codec?: VideoCodec;
  rtspLatencyMs?: number;
  connectTimeoutMs?: number;
  stallTimeoutMs?: number;
  backoff?: BackoffOptions;
  /** Write JSON lines here (default process.stdout); null = none. */
  out?: NodeJS.WritableStream | null;
  log?: LogFn;
  signal?: AbortSignal;
  /** Each 'reload' event (the CLI's SIGHUP) reloads the model; a changed model file does too unless `watchModel` is false. */
  reloadRequests?: EventEmitter;
  watchModel?: boolean;
  /** --record DIR: an MP4 clip per event with pre- and post-roll (record.ts); clip records go to stdout. */
  record?: { dir: string; preRollS?: number; postRollS?: number; maxBytes?: number; classes?: string[] };
  /** Called once everything is listening and the first frames are coming. */
  onReady?: (info: { http?: ListenAddress; sources: FrameSource[]; recorder?: Recorder }) => void;
}

export interface StreamSummary extends SchedulerSummary {
  sources: Array<{ id: string; uri: string; frames: number; dropped: number; reconnects: number }>;
  /** Frames per second over the run. */
  fps: number;
}

function resolveProfile(device: string | undefined, log: LogFn): DeviceProfile {
  if (device && device !== 'auto') return getProfile(device);
  const found = detectDevice();
  log(`device: ${found.profile.name} (${found.evidence[0] ?? 'detected'})`);
  return found.profile;
}

export async function runStream(o: StreamOptions): Promise<StreamSummary> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  // Stops the run from inside (stdout closed) as well as from the caller's signal.
  const stopAll = new AbortController();
  if (o.signal?.aborted) stopAll.abort();
  o.signal?.addEventListener('abort', () => stopAll.abort(), { once: true });
  const demo = o.uris.length === 0 && (o.pipelines ?? []).length === 0;
  const parsed: ParsedSource[] = [...o.uris.map(parseSourceUri), ...(o.pipelines ?? []).map(parsePipelineSource)];
  const pool = threadPoolSize();
  const perSource = threadsPerSource({ display: o.http !== undefined, hls: o.hls !== undefined }) + (o.record ? RECORD_THREADS_PER_SOURCE : 0);
  if (parsed.length > maxGstSources(pool, perSource)) {
    const need = parsed.length * perSource + 4;
    throw new SsdError(`${parsed.length} sources need ${need} libuv threads but UV_THREADPOOL_SIZE is ${pool}: run with UV_THREADPOOL_SIZE=${need} (at most ${maxGstSources(pool, perSource)} sources at ${pool})`);
  }
  const threshold = o.threshold ?? 0.5;
  // Zones need track ids: --zones without --track tracks with the defaults.
  if (o.zones !== undefined && o.track === undefined) log('--zones: tracking is on with its defaults (--track not given)');
  const trackOptions = o.track ?? (o.zones !== undefined ? {} : undefined);
  const tracking = trackOptions === undefined ? undefined : new StreamTracking(threshold, trackOptions);
  for (const u of o.webhooks ?? []) parseWebhookUrl(u);
  if ((o.webhooks ?? []).length > 0 && o.zones === undefined) throw new SsdError('--webhook needs --zones (webhooks carry zone and line events)');
  // Every option is checked before the model loads or a source opens: a typo in --http or --mqtt
  // must not wait for a camera's first frame (or its connect timeout) to be reported.
  const httpText = o.http ?? (demo ? '127.0.0.1:8080' : undefined);
  const httpRequested = httpText === undefined ? undefined : parseListenAddress(httpText);
  if (httpRequested) checkHttpAccess(httpRequested, o.token);
  if (o.hls !== undefined) checkHlsDir(o.hls);
  if (o.record !== undefined) {
    if (demo) throw new SsdError('--record needs a GStreamer source (the built-in demo has no video to record)');
    prepareRecordDir(o.record.dir);
  }
  const sourceCount = demo ? 1 : parsed.length;
  const mqtt = o.mqtt === undefined ? undefined : new MqttPublisher({ url: o.mqtt, topic: o.topic, qos: o.qos, log }, sourceCount > 1);
  const profile = resolveProfile(o.device, log);
  let model = o.model;

  if (model === undefined) {
    if (!demo) throw new SsdError('--model is required with a source (the built-in digits model only runs the demo: "ssd stream" with no source)');
    // The trained digits model is committed (models/digits-ssd.onnx) and shipped in every bundle.
    if (!demoModelAvailable()) throw new SsdError(`demo: ${DEMO_MODEL_PATH} is missing from this install; give --model`);
    model = DEMO_MODEL_PATH;
  }
  if (!existsSync(model)) throw new SsdError(`--model ${model}: file not found`);
  const modelPath = model;
  // The zones file is checked in full (source ids, the model's class names) before anything opens.
  const zonesConfig: ZonesConfig | undefined = o.zones === undefined ? undefined : loadZonesFile(o.zones, {
    sourceIds: demo ? ['src0'] : parsed.map((_, i) => `src${i}`), labels: readModelMetadata(modelPath).spec.labels.slice(1),
  });
  const zones = zonesConfig === undefined ? undefined : new StreamZones(zonesConfig, trackOptions?.maxMisses ?? DEFAULT_TRACKER_OPTIONS.maxMisses);
  const cleanup: Array<() => Promise<void> | void> = [];
  const sources: FrameSource[] = [];
  // /healthz during the model load: a first TensorRT start builds its engine for minutes.
  let phase: StreamPhase = 'loading model';
  try {
    // The live page and the broker come up before the sources open: a port in use fails at once,
    // and the page is there while the cameras connect. The page comes up before the model loads,
    // so that /healthz answers "building engine" during a TensorRT build instead of refusing.
    const metrics = new StreamMetrics();
    // Camera-resolution pictures (display branch), MJPEG and HLS: runtime/stream/video-out.ts.
    const displayFps = o.displayFps ?? DEFAULT_DISPLAY_FPS;
    const video = httpRequested !== undefined || o.hls !== undefined ? new VideoOut({ hlsDir: o.hls, displayFps, log, h264Encoder: profile.gst.h264Encoder }) : undefined;
    let server: StreamHttpServer | undefined;
    let httpAddress: ListenAddress | undefined;
    if (httpRequested !== undefined) {
      const make = (a: ListenAddress) => new StreamHttpServer({
        address: a, token: o.token, metrics, log, title: `ssd stream: ${readModelMetadata(modelPath).spec.name}`, phase: () => phase,
        sources: () => sources.map((s) => ({ id: s.id, uri: s.display, stats: s.stats })), video,
      });
      server = make(httpRequested);
      try {
        httpAddress = await server.listen();
      } catch (err) {
        // The demo's default port may be taken; any free port will do there.
        if (o.http !== undefined) throw err;
        log(`live page: ${formatListenAddress(httpRequested)} is busy (${oneLine(err)}); picking a free port`);
        server = make({ host: httpRequested.host, port: 0 });
        httpAddress = await server.listen();
      }
      const srv = server;
      cleanup.push(() => srv.close());
    }
    // Before the server closes (cleanup runs in reverse): MJPEG responses end, HLS playlists get their end.
    if (video) cleanup.push(() => video.close());
    const detector = await Detector.load(modelPath, {
      device: profile, log, onPhase: (p) => { phase = p === 'building-engine' ? 'building engine' : 'running'; },
    });
    phase = 'running';
    // Hot reload (reload.ts): the scheduler leases the session from the slot each round.
    const slot = new DetectorSlot(detector, log);
    cleanup.push(() => slot.dispose());
    const contract = pipelineContract(detector);
    const reloader = new ModelReloader({
      path: modelPath, slot, contract, log, watch: o.watchModel ?? true,
      load: (path) => Detector.load(path, { device: profile, log: () => {} }),
      onResult: (result) => metrics.reloads.inc({ result }),
    });
    const onReload = () => { void reloader.request('SIGHUP'); };
    o.reloadRequests?.on('reload', onReload);
    cleanup.push(() => { o.reloadRequests?.off('reload', onReload); return reloader.close(); });
    const format = contract.format;
    const scaleInPipeline = contract.size !== undefined;
    if (mqtt !== undefined) {
      await mqtt.connect();
      cleanup.push(() => mqtt.close());
    }
    let recorder: Recorder | undefined;
    if (o.record !== undefined) {
      const unknown = (o.record.classes ?? []).filter((c) => !detector.labels.includes(c));
      if (unknown.length > 0) throw new SsdError(`--record-classes: ${unknown.join(', ')} not among the model's labels (${detector.labels.slice(1).join(', ')})`);
      const out = o.out === null ? undefined : o.out ?? process.stdout;
      recorder = new Recorder({
        ...o.record, threshold, log,
        onClip: (c: ClipRecord) => {
          out?.write(`${JSON.stringify(c)}\n`);
          mqtt?.publishClip(c);
        },
      });
      const rec = recorder;
      // Runs after the sources have closed (cleanup is reversed): their clips are finished first.
      cleanup.push(() => rec.close());
    }
    if (demo) {
      sources.push(new DemoSource('src0'));
    } else {
      parsed.forEach((p, i) => sources.push(new GstFrameSource(`src${i}`, p, {
        gst: profile.gst, format,
        width: scaleInPipeline ? detector.inputSize : undefined, height: scaleInPipeline ? detector.inputSize : undefined,
        loop: o.loop, codec: o.codec, rtspLatencyMs: o.rtspLatencyMs, backoff: o.backoff,
        connectTimeoutMs: o.connectTimeoutMs, stallTimeoutMs: o.stallTimeoutMs, log, recorder,
        displayBranch: video ? { maxFps: displayFps } : undefined,
      })));
    }
    for (const s of sources) video?.addSource(s.id, s instanceof GstFrameSource ? s.displayTap : undefined);
    cleanup.push(() => { for (const s of sources) s.close(); });
    // Ctrl-C while a camera is still connecting stops at once, not after the connect timeout.
    const aborted = new Promise<'aborted'>((resolve) => {
      if (stopAll.signal.aborted) resolve('aborted');
      stopAll.signal.addEventListener('abort', () => resolve('aborted'), { once: true });
    });
    const started = Promise.all(sources.map((s) => s.start()));
    started.catch(() => undefined);
    if ((await Promise.race([started, aborted])) === 'aborted') {
      return { frames: 0, runs: 0, elapsedMs: 0, reason: 'stopped', fps: 0, sources: sources.map((s) => ({ id: s.id, uri: s.display, frames: 0, dropped: 0, reconnects: 0 })) };
    }
    for (const s of sources) log(`[${s.id}] ${s.display}: playing`);

    const jsonl = o.out === null ? undefined : new JsonlWriter(o.out ?? process.stdout, () => stopAll.abort());
    // Where zone/line events go, in this order; o.onEvent last (it may start slow work, e.g. a clip).
    const onEvent: StreamEventListener[] = [];
    if (zones !== undefined) {
      if (jsonl) onEvent.push((e) => jsonl.write(e));
      onEvent.push((e) => metrics.event(e));
      if (mqtt) onEvent.push((e) => mqtt.publishEvent(e));
      if ((o.webhooks ?? []).length > 0) {
        const webhooks = new WebhookSender({
          urls: o.webhooks!, log,
          onFailure: (w) => metrics.webhookFailures.inc({ webhook: w }),
          onDrop: (w, reason, n) => metrics.webhookDropped.inc({ webhook: w, reason }, n),
        });
        // Cleanup runs in reverse: the queues are flushed (5 s at most) before anything else closes.
        cleanup.push(() => webhooks.close());
        onEvent.push((e) => webhooks.send(e));
      }
      // With zones, a clip is an event's (its name and zone or line in the file name), not any detection's.
      if (recorder) { const rec = recorder; onEvent.push((e) => rec.trigger(e.source, `${e.event}-${'zone' in e ? e.zone : e.line}`)); }
      if (o.onEvent) onEvent.push(o.onEvent);
    }
    o.onReady?.({ http: httpAddress, sources, recorder });

    const byId = new Map(sources.map((s) => [s.id, s]));
    const summary = await runScheduler({
      sources, detector: slot, detect: { threshold: tracking?.detectThreshold ?? threshold }, maxFrames: o.maxFrames, signal: stopAll.signal,
      onRun: (inferMs) => metrics.run(inferMs),
      onResult: (r) => {
        const src = byId.get(r.frame.sourceId)!;
        let record;
        let events: StreamEvent[] | undefined;
        if (tracking === undefined) {
          record = toRecord(r, src.display);
        } else {
          const t = tracking.apply(src.id, r.detections);
          record = toRecord({ ...r, detections: t.detections }, src.display, t.trackIds);
          events = zones?.apply(r.frame, src.display, t.detections, t.trackIds);
        }
        jsonl?.write(record);
        metrics.frame(src.id, r.latencyMs, record.detections.length, performance.now());
        server?.publish(record, r.frame);
        video?.publish(record, r.frame);
        mqtt?.publish(record);
        if (zones === undefined) recorder?.onDetections(src.id, record.detections);
        for (const e of events ?? []) for (const f of onEvent) f(e);
      },
    });
    const seconds = summary.elapsedMs / 1000;
    return {
      ...summary,
      fps: seconds > 0 ? summary.frames / seconds : 0,
      sources: sources.map((s) => ({ id: s.id, uri: s.display, frames: s.stats.frames, dropped: s.stats.dropped, reconnects: s.stats.reconnects })),
    };
  } finally {
    for (const f of cleanup.reverse()) {
      try {
        await f();
      } catch (err) {
        log(`cleanup: ${oneLine(err)}`);
      }
    }
  }
}

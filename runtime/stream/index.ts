/**
 * `ssd stream` as a library call: sources -> one detector -> JSON lines, live page, MQTT, metrics.
 * The CLI (cli/commands/stream.ts) parses flags and calls runStream; tests call it too.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SsdError, oneLine } from '../../core/errors.js';
import { detectDevice } from '../../devices/detect.js';
import { getProfile } from '../../devices/profiles.js';
import type { DeviceProfile } from '../../devices/types.js';
import { Detector } from '../detector.js';
import { DEMO_MODEL_PATH, DEMO_URI, DemoSource, demoModelAvailable } from './demo.js';
import type { FrameSource, LogFn } from './frame.js';
import { maxGstSources, threadPoolSize } from './gst.js';
import { StreamHttpServer, checkHttpAccess, formatListenAddress, parseListenAddress, type ListenAddress, type StreamPhase } from './http-server.js';
import { readModelMetadata } from '../onnx-metadata.js';
import { JsonlWriter, toRecord } from './jsonl.js';
import { StreamMetrics } from './metrics.js';
import { MqttPublisher, type Qos } from './mqtt.js';
import { runScheduler, type SchedulerSummary } from './scheduler.js';
import { GstFrameSource, type BackoffOptions } from './source.js';
import { StreamTracking, type StreamTrackOptions } from './tracking.js';
import { parsePipelineSource, parseSourceUri, type ParsedSource, type VideoCodec } from './uri.js';

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
  maxFrames?: number;
  /** "HOST:PORT" for the live page; undefined = no server (the demo defaults to 127.0.0.1:8080). */
  http?: string;
  token?: string;
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
  /** Called once everything is listening and the first frames are coming. */
  onReady?: (info: { http?: ListenAddress; sources: FrameSource[] }) => void;
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
  if (parsed.length > maxGstSources(pool)) {
    throw new SsdError(`${parsed.length} sources need ${parsed.length * 2 + 4} libuv threads but UV_THREADPOOL_SIZE is ${pool}: run with UV_THREADPOOL_SIZE=${parsed.length * 2 + 4} (at most ${maxGstSources(pool)} sources at ${pool})`);
  }
  const threshold = o.threshold ?? 0.5;
  const tracking = o.track === undefined ? undefined : new StreamTracking(threshold, o.track);
  // Every option is checked before the model loads or a source opens: a typo in --http or --mqtt
  // must not wait for a camera's first frame (or its connect timeout) to be reported.
  const httpText = o.http ?? (demo ? '127.0.0.1:8080' : undefined);
  const httpRequested = httpText === undefined ? undefined : parseListenAddress(httpText);
  if (httpRequested) checkHttpAccess(httpRequested, o.token);
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
  const cleanup: Array<() => Promise<void> | void> = [];
  const sources: FrameSource[] = [];
  // /healthz during the model load: a first TensorRT start builds its engine for minutes.
  let phase: StreamPhase = 'loading model';
  try {
    // The live page and the broker come up before the sources open: a port in use fails at once,
    // and the page is there while the cameras connect. The page comes up before the model loads,
    // so that /healthz answers "building engine" during a TensorRT build instead of refusing.
    const metrics = new StreamMetrics();
    let server: StreamHttpServer | undefined;
    let httpAddress: ListenAddress | undefined;
    if (httpRequested !== undefined) {
      const make = (a: ListenAddress) => new StreamHttpServer({
        address: a, token: o.token, metrics, log, title: `ssd stream: ${readModelMetadata(modelPath).spec.name}`, phase: () => phase,
        sources: () => sources.map((s) => ({ id: s.id, uri: s.display, stats: s.stats })),
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
    const detector = await Detector.load(modelPath, {
      device: profile, log, onPhase: (p) => { phase = p === 'building-engine' ? 'building engine' : 'running'; },
    });
    phase = 'running';
    cleanup.push(() => detector.dispose());
    const spec = detector.metadata.spec;
    const format = detector.metadata.inputLayout === 'uint8-nhwc' ? 'rgb' : spec.input.channelOrder;
    const scaleInPipeline = detector.resize === 'warp';
    if (mqtt !== undefined) {
      await mqtt.connect();
      cleanup.push(() => mqtt.close());
    }
    if (demo) {
      sources.push(new DemoSource('src0'));
    } else {
      parsed.forEach((p, i) => sources.push(new GstFrameSource(`src${i}`, p, {
        gst: profile.gst, format,
        width: scaleInPipeline ? detector.inputSize : undefined, height: scaleInPipeline ? detector.inputSize : undefined,
        loop: o.loop, codec: o.codec, rtspLatencyMs: o.rtspLatencyMs, backoff: o.backoff,
        connectTimeoutMs: o.connectTimeoutMs, stallTimeoutMs: o.stallTimeoutMs, log,
      })));
    }
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
    o.onReady?.({ http: httpAddress, sources });

    const byId = new Map(sources.map((s) => [s.id, s]));
    const summary = await runScheduler({
      sources, detector, detect: { threshold: tracking?.detectThreshold ?? threshold }, maxFrames: o.maxFrames, signal: stopAll.signal,
      onRun: (inferMs) => metrics.run(inferMs),
      onResult: (r) => {
        const src = byId.get(r.frame.sourceId)!;
        let record;
        if (tracking === undefined) {
          record = toRecord(r, src.display);
        } else {
          const t = tracking.apply(src.id, r.detections);
          record = toRecord({ ...r, detections: t.detections }, src.display, t.trackIds);
        }
        jsonl?.write(record);
        metrics.frame(src.id, r.latencyMs, record.detections.length, performance.now());
        server?.publish(record, r.frame);
        mqtt?.publish(record);
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

/**
 * Typed access to the gstreamer-superficial addon (npm `gstreamer-superficial`, a NAN addon built
 * against Debian's libgstreamer1.0-dev). Its package `main` is a `.node` file, which ESM cannot import,
 * so it is loaded with createRequire, once, and only by code that actually opens a GStreamer source:
 * `ssd detect` and the built-in demo run without it.
 *
 * Thread budget: every pending `AppSink.pull()` and every `Pipeline.pollBus()` wait occupies one libuv
 * threadpool thread until a sample (or a bus message) arrives. `ssd stream` without UV_THREADPOOL_SIZE
 * runs itself again with the pool sized from its command line (bin/ssd.js: libuv reads the variable
 * once, before an ES module entry could set it); `maxGstSources()` says how many sources a pool has
 * room for. A camera in
 * keep-fresh mode (source.ts `ready()`, what the stream scheduler uses) has a pull pending at all
 * times, so for cameras these threads are a constant load on the pool, not a peak.
 */
import { createRequire } from 'node:module';
import { SsdError, oneLine } from '../../core/errors.js';

/** Caps of a pulled sample as the addon flattens them: the structure name plus its fields. */
export interface GstCaps {
  name?: string;
  format?: string;
  width?: number;
  height?: number;
  /** A fraction as text, e.g. "30/1". */
  framerate?: string;
  [field: string]: unknown;
}

export interface GstBusMessage {
  /** e.g. "error", "eos", "warning", "state-changed". */
  type: string;
  /** Name of the element that posted it. */
  _src_element_name?: string;
  /** Error messages: the element path and the error text. */
  name?: string;
  message?: string;
  [field: string]: unknown;
}

/** Any element found with `findChild`; GObject properties read and write as plain fields. */
export interface GstElement {
  [property: string]: unknown;
}

export interface GstAppSink extends GstElement {
  /** Calls back once with the next sample (a copy of its bytes) and its caps, or null at EOS/stop. */
  pull(callback: (buf: Buffer | null, caps: GstCaps) => void): void;
}

export interface GstAppSrc extends GstElement {
  /** Pushes one buffer; `pts` is an 8-byte big-endian nanosecond timestamp. */
  push(buf: Buffer, pts?: Buffer): void;
}

export interface GstPipeline {
  play(): void;
  pause(): void;
  stop(): void;
  sendEOS(): void;
  findChild(name: string): GstElement | undefined;
  /** Calls back for every bus message until the pipeline is stopped. */
  pollBus(callback: (msg: GstBusMessage) => void): void;
  /** Position and duration in seconds, -1 when unknown. */
  queryPosition(): number;
  queryDuration(): number;
  seek(positionSeconds: number, flags: number): boolean;
}

export interface GstBinding {
  Pipeline: new (launch: string) => GstPipeline;
}

/** libuv threads one GStreamer source holds: its pending pull() and its bus poll. */
export const THREADS_PER_SOURCE = 2;
/** One more while its display branch is pulled (live page, MJPEG, HLS: runtime/stream/video-out.ts). */
export const THREADS_PER_DISPLAY = 1;
/** One more for the bus poll of its HLS writer (--hls). */
export const THREADS_PER_HLS = 1;

/** libuv threads per GStreamer source with the given outputs. */
export function threadsPerSource(outputs: { display?: boolean; hls?: boolean } = {}): number {
  return THREADS_PER_SOURCE + (outputs.display || outputs.hls ? THREADS_PER_DISPLAY : 0) + (outputs.hls ? THREADS_PER_HLS : 0);
}
/** Threads left for onnxruntime session creation, sharp (JPEG for the live page) and file I/O. */
export const THREADS_RESERVED = 4;

/** The threadpool size in effect (libuv reads UV_THREADPOOL_SIZE once, at its first use). */
export function threadPoolSize(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number(env.UV_THREADPOOL_SIZE);
  return Number.isInteger(n) && n > 0 ? Math.min(n, 1024) : 4;
}

/** How many GStreamer sources fit in the threadpool without starving other asynchronous work. */
export function maxGstSources(poolSize = threadPoolSize(), perSource = THREADS_PER_SOURCE): number {
  return Math.max(0, Math.floor((poolSize - THREADS_RESERVED) / perSource));
}

let cached: GstBinding | undefined;

export function loadGst(): GstBinding {
  if (cached) return cached;
  try {
    const require = createRequire(import.meta.url);
    cached = require('gstreamer-superficial') as GstBinding;
    return cached;
  } catch (err) {
    throw new SsdError(
      `GStreamer binding not available (${oneLine(err)}); install libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev and run "npm rebuild gstreamer-superficial"`,
      { cause: err },
    );
  }
}

/** Whether the addon loads here (for tests and the demo's choice of source). */
export function gstAvailable(): boolean {
  try {
    loadGst();
    return true;
  } catch {
    return false;
  }
}

/** gst_parse_launch with its error as an SsdError (e.g. `no element "nvv4l2decoder"`). */
export function createPipeline(launch: string, what: string): GstPipeline {
  const { Pipeline } = loadGst();
  try {
    return new Pipeline(launch);
  } catch (err) {
    throw new SsdError(`${what}: cannot build the GStreamer pipeline (${oneLine(err)})`, { cause: err });
  }
}

/**
 * The on-device pass/fail check (`ssd devices --check`, scripts/jetson/check.sh): does this machine
 * really run the model the way its device profile says? Each row is measured, not inferred from the
 * profile: the provider onnxruntime actually opened the model with (a binding without CUDA/TensorRT
 * is reported as such), FP16 (TensorRT names engines built with FP16 `*_fp16*`), an engine cache hit on
 * a second start, the model's fps, and the GStreamer elements the profile's pipelines use.
 */
import { execFileSync } from 'node:child_process';
import { oneLine } from '../core/errors.js';
import { providersFor } from '../devices/profiles.js';
import { cachedEngines } from '../devices/trt-cache.js';
import type { DeviceProfile } from '../devices/types.js';
import { Detector } from './detector.js';
import { readModelMetadata } from './onnx-metadata.js';

export type CheckResult = 'pass' | 'fail' | 'skip';

export interface CheckRow {
  check: string;
  result: CheckResult;
  detail: string;
}

export interface DeviceCheckOptions {
  profile: DeviceProfile;
  modelPath: string;
  /** Timed inference runs for the fps row (default 20). */
  runs?: number;
  /** fps below this fails the fps row (default 0: any measured rate passes). */
  minFps?: number;
  /** Whether a GStreamer element is installed; default: gst-inspect-1.0 --exists. */
  hasElement?: (name: string) => boolean | undefined;
  /** Provider log lines (default: dropped; the table says what matters). */
  log?: (line: string) => void;
}

/** The GStreamer elements the profile's pipelines are built from (runtime/stream/pipelines.ts). */
export function gstElementsOf(profile: DeviceProfile): string[] {
  const g = profile.gst;
  const first = (text: string) => text.split('!').map((t) => t.trim().split(/\s+/)[0]!).filter(Boolean);
  const names = [
    ...first(g.h264Decoder), ...first(g.h265Decoder), ...first(g.convert), ...(g.csiSource ? [g.csiSource] : []), ...(g.mjpegDecoder ? first(g.mjpegDecoder) : []),
    'rtspsrc', 'rtph264depay', 'h264parse', 'h265parse', 'tee', 'queue', 'videoconvert', 'appsink', 'v4l2src', 'decodebin',
    ...(g.mjpegDecoder ? ['qtdemux', 'matroskademux', 'jpegparse'] : []),
  ];
  return [...new Set(names)];
}

/** gst-inspect-1.0 --exists NAME: true/false, undefined when gst-inspect-1.0 itself is missing. */
export function gstInspectHas(name: string): boolean | undefined {
  try {
    execFileSync('gst-inspect-1.0', ['--exists', name], { stdio: 'ignore', timeout: 30_000 });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return false;
  }
}

async function open(o: DeviceCheckOptions, lines: string[]): Promise<Detector> {
  return Detector.load(o.modelPath, { device: o.profile, thread: 'main', log: (l) => { lines.push(l); o.log?.(l); } });
}

export async function runDeviceCheck(o: DeviceCheckOptions): Promise<CheckRow[]> {
  const rows: CheckRow[] = [];
  const metadata = readModelMetadata(o.modelPath);
  const wanted = providersFor(o.profile, { precision: metadata.precision, postprocess: metadata.postprocess });
  const preferred = wanted[0]!.name;
  const lines: string[] = [];

  let first: Detector | undefined;
  try {
    first = await open(o, lines);
  } catch (err) {
    rows.push({ check: 'provider in use', result: 'fail', detail: `the model does not open: ${oneLine(err)}` });
    return [...rows, ...gstRows(o)];
  }
  try {
    const skipped = first.skippedProviders.map((s) => `${s.name}: ${s.reason}`).join('; ');
    rows.push({
      check: 'provider in use',
      result: first.provider === preferred ? 'pass' : 'fail',
      detail: `${first.provider}${first.provider === preferred ? '' : ` (profile ${o.profile.name} prefers ${preferred})`}${skipped ? `; skipped ${skipped}` : ''}`,
    });

    // FP16: onnxruntime-TensorRT appends "_fp16" to the names of engines it built with FP16 on.
    const trtWanted = wanted.find((p) => p.name === 'tensorrt')?.options?.trt_fp16_enable === true;
    if (first.provider !== 'tensorrt') {
      rows.push({ check: 'fp16 in effect', result: trtWanted ? 'fail' : 'skip', detail: trtWanted ? `not on TensorRT (runs on ${first.provider})` : `${o.profile.name} does not ask for FP16` });
    } else {
      const engines = first.engine ? cachedEngines(first.engine.dir) : [];
      const fp16 = engines.filter((e) => /_fp16/.test(e));
      rows.push(
        engines.length === 0
          ? { check: 'fp16 in effect', result: 'fail', detail: 'no engine file in the cache directory: this binding does not forward the TensorRT options (build it with scripts/jetson/build-onnxruntime.sh)' }
          : { check: 'fp16 in effect', result: fp16.length > 0 ? 'pass' : 'fail', detail: `${fp16.length}/${engines.length} engines built with FP16 (${first.engine!.dir})` },
      );
    }

    const runs = Math.max(1, o.runs ?? 20);
    const prepared = first.emptyPrepared();
    await first.run(prepared);
    const t0 = performance.now();
    for (let i = 0; i < runs; i++) await first.run(prepared);
    const fps = (runs * 1000) / (performance.now() - t0);
    const minFps = o.minFps ?? 0;
    rows.push({ check: 'model fps', result: fps >= minFps ? 'pass' : 'fail', detail: `${fps.toFixed(1)} fps on ${first.provider} (${runs} runs, batch 1, input ${first.inputSize}${minFps > 0 ? `, needs >= ${minFps}` : ''})` });
  } finally {
    await first.dispose();
  }

  // Second start: with a working engine cache, the engine is loaded, not built again.
  if (first.provider !== 'tensorrt' || first.engine === undefined) {
    rows.push({ check: 'engine cache hit on 2nd start', result: first.provider === 'tensorrt' || wanted.some((p) => p.name === 'tensorrt') ? 'fail' : 'skip', detail: first.provider === 'tensorrt' ? 'TensorRT runs without an engine cache' : `no TensorRT engine (runs on ${first.provider})` });
  } else {
    const second = await open(o, lines);
    try {
      const hit = (second.engine?.cachedAtStart.length ?? 0) > 0;
      rows.push({
        check: 'engine cache hit on 2nd start',
        result: hit ? 'pass' : 'fail',
        detail: hit
          ? `loaded in ${((second.engine!.createMs) / 1000).toFixed(1)} s (first start ${(first.engine.createMs / 1000).toFixed(1)} s)`
          : `no engine in ${first.engine.dir} after the first start: the engine was built again`,
      });
    } finally {
      await second.dispose();
    }
  }
  return [...rows, ...gstRows(o)];
}

function gstRows(o: DeviceCheckOptions): CheckRow[] {
  const has = o.hasElement ?? gstInspectHas;
  const names = gstElementsOf(o.profile);
  const found = names.map((n) => [n, has(n)] as const);
  if (found.every(([, v]) => v === undefined)) {
    return [{ check: 'GStreamer elements', result: 'fail', detail: 'gst-inspect-1.0 not found (sudo apt-get install gstreamer1.0-tools)' }];
  }
  const missing = found.filter(([, v]) => v !== true).map(([n]) => n);
  return [{
    check: 'GStreamer elements',
    result: missing.length === 0 ? 'pass' : 'fail',
    detail: missing.length === 0 ? `${names.length} present (${names.join(', ')})` : `missing ${missing.join(', ')} of ${names.length}`,
  }];
}

/** The table as text: one row per check, widths fitted. */
export function formatCheckTable(rows: readonly CheckRow[]): string {
  const w = Math.max(5, ...rows.map((r) => r.check.length));
  const lines = [`${'check'.padEnd(w)}  result  detail`, `${'-'.repeat(w)}  ------  ------`];
  for (const r of rows) lines.push(`${r.check.padEnd(w)}  ${r.result.toUpperCase().padEnd(6)}  ${r.detail}`);
  return lines.join('\n');
}

/**
 * Source URIs as jetson-inference (videoSource) users write them, parsed into plain descriptions that
 * pipelines.ts turns into gst-launch text:
 *   rtsp://[user:pass@]host[:port]/path   RTSP camera (H.264 unless --codec h265; TCP; rtspu:// = UDP)
 *   rtp://@:5000 | rtp://239.0.0.1:5000   an RTP/UDP stream sent to this machine (or a multicast group)
 *   file:///path/clip.mp4 | clip.mkv      a video file (mp4, mkv, avi, mov, webm, ts, h264, h265)
 *   /dev/video0 | v4l2:///dev/video0      a V4L2 (USB) camera
 *   csi://0                               a MIPI CSI camera through nvarguscamerasrc (Jetson)
 *   test:// | test://ball                 videotestsrc (pattern name optional)
 * Query parameters width, height and fps select the capture mode of csi://, test:// and v4l2://.
 */
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SsdError } from '../../core/errors.js';

export type VideoCodec = 'h264' | 'h265';

export interface CaptureMode {
  width?: number;
  height?: number;
  fps?: number;
  /** v4l2:// only: what the camera sends in this mode (MJPEG gets the hardware decoder on a Jetson). */
  format?: 'mjpeg' | 'raw';
}

export type SourceDesc =
  | { kind: 'rtsp'; url: string; transport: 'tcp' | 'udp' }
  | { kind: 'rtp'; address?: string; port: number }
  | { kind: 'file'; path: string }
  | { kind: 'v4l2'; device: string; mode: CaptureMode }
  | { kind: 'csi'; sensorId: number; mode: CaptureMode }
  | { kind: 'test'; pattern: string; mode: CaptureMode }
  | { kind: 'pipeline'; launch: string };

export interface ParsedSource {
  desc: SourceDesc;
  /** The URI as shown in logs, JSON and the live page: passwords replaced by "***". */
  display: string;
  /** Whether the source is a live camera (newest frame, reconnect) rather than a file (every frame, EOS). */
  live: boolean;
}

const VIDEO_EXTENSIONS = ['mp4', 'mkv', 'avi', 'mov', 'webm', 'ts', 'mts', 'm4v', 'h264', 'h265', '264', '265', 'flv', 'ogv'];

/** videotestsrc pattern names accepted after test:// (GStreamer's own nicks). */
export const TEST_PATTERNS = ['smpte', 'snow', 'black', 'white', 'red', 'green', 'blue', 'checkers-1', 'checkers-2', 'checkers-4', 'checkers-8', 'circular', 'blink', 'smpte75', 'zone-plate', 'gamut', 'chroma-zone-plate', 'solid-color', 'ball', 'smpte100', 'bar', 'pinwheel', 'spokes', 'gradient', 'colors'];

/** rtsp://user:secret@host/x -> rtsp://user:***@host/x */
export function redactUri(uri: string): string {
  return uri.replace(/([a-z][a-z0-9+.-]*:\/\/)([^/@:\s"]*):([^/@\s"]*)@/gi, '$1$2:***@');
}

function captureMode(params: URLSearchParams, uri: string, withFormat = false): CaptureMode {
  const mode: CaptureMode = {};
  const format = withFormat ? params.get('format') : null;
  if (format !== null) {
    if (format !== 'mjpeg' && format !== 'raw') throw new SsdError(`source ${redactUri(uri)}: format must be mjpeg or raw, got "${format}"`);
    mode.format = format;
  }
  for (const key of ['width', 'height', 'fps'] as const) {
    const v = params.get(key);
    if (v === null) continue;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > 16384) throw new SsdError(`source ${redactUri(uri)}: ${key} must be a whole number >= 1, got "${v}"`);
    mode[key] = n;
  }
  const known = withFormat ? ['width', 'height', 'fps', 'format'] : ['width', 'height', 'fps'];
  for (const key of params.keys()) {
    if (!known.includes(key)) throw new SsdError(`source ${redactUri(uri)}: unknown parameter "${key}" (known: ${known.join(', ')})`);
  }
  return mode;
}

function fileSource(path: string, shown: string): ParsedSource {
  const abs = resolve(path);
  if (!existsSync(abs)) throw new SsdError(`source ${shown}: file not found`);
  if (!statSync(abs).isFile()) throw new SsdError(`source ${shown}: not a regular file`);
  const ext = abs.toLowerCase().split('.').pop() ?? '';
  if (!VIDEO_EXTENSIONS.includes(ext)) {
    throw new SsdError(`source ${shown}: not a video file extension (.${ext}); known: ${VIDEO_EXTENSIONS.join(', ')} (use --pipeline for anything else)`);
  }
  return { desc: { kind: 'file', path: abs }, display: `file://${abs}`, live: false };
}

function v4l2Source(device: string, params: URLSearchParams, uri: string): ParsedSource {
  if (!/^\/dev\/video\d+$/.test(device)) throw new SsdError(`source ${uri}: expected a device like /dev/video0`);
  if (!existsSync(device)) throw new SsdError(`source ${uri}: ${device} does not exist (no camera plugged in?)`);
  return { desc: { kind: 'v4l2', device, mode: captureMode(params, uri, true) }, display: `v4l2://${device}`, live: true };
}

function rtpSource(uri: string, shown: string): ParsedSource {
  // jetson-inference writes rtp://@:PORT for "any local address"; URL() cannot parse "@:" alone.
  const m = /^rtp:\/\/(?:@|([^:/@]+))?:(\d+)\/?$/i.exec(uri);
  const port = Number(m?.[2]);
  if (!m || !(port >= 1 && port <= 65535)) throw new SsdError(`source ${shown}: expected rtp://@:PORT or rtp://ADDRESS:PORT`);
  return { desc: { kind: 'rtp', address: m[1], port }, display: shown, live: true };
}

/** Parses one source argument; throws an SsdError naming the URI when it cannot be used. */
export function parseSourceUri(text: string): ParsedSource {
  const uri = text.trim();
  if (!uri) throw new SsdError('source: empty URI');
  const shown = redactUri(uri);
  if (uri.startsWith('/dev/video')) return v4l2Source(uri, new URLSearchParams(), uri);
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(uri)?.[1]?.toLowerCase();
  if (scheme === undefined) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(uri) && !/^[a-z]:[\\/]/i.test(uri)) throw new SsdError(`source ${shown}: not a URI this tool knows (rtsp://, rtp://, file://, v4l2://, csi://, test://, or a path)`);
    return fileSource(uri, shown);
  }
  if (scheme === 'rtp') return rtpSource(uri, shown);
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new SsdError(`source ${shown}: malformed URI`);
  }
  switch (scheme) {
    case 'rtsp':
    case 'rtspt':
    case 'rtsps':
    case 'rtspu': {
      if (!url.hostname) throw new SsdError(`source ${shown}: no host`);
      // rtspt:// (TCP) and rtspu:// (UDP) are GStreamer's transport hints; plain rtsp:// uses TCP,
      // which survives lossy links and NAT without the UDP timeout dance.
      const transport = scheme === 'rtspu' ? 'udp' : 'tcp';
      const wire = scheme === 'rtsps' ? uri : uri.replace(/^rtsp[tu]?:/i, 'rtsp:');
      return { desc: { kind: 'rtsp', url: wire, transport }, display: shown, live: true };
    }
    case 'file':
      return fileSource(fileURLToPath(url), shown);
    case 'v4l2':
      return v4l2Source(decodeURIComponent(url.pathname), url.searchParams, uri);
    case 'csi': {
      const idText = url.hostname || url.pathname.replace(/^\/+/, '') || '0';
      const sensorId = Number(idText);
      if (!Number.isInteger(sensorId) || sensorId < 0 || sensorId > 15) throw new SsdError(`source ${shown}: sensor id must be 0..15, got "${idText}"`);
      return { desc: { kind: 'csi', sensorId, mode: captureMode(url.searchParams, uri) }, display: `csi://${sensorId}`, live: true };
    }
    case 'test': {
      const pattern = (url.hostname || url.pathname.replace(/^\/+/, '') || 'smpte').toLowerCase();
      if (!TEST_PATTERNS.includes(pattern)) throw new SsdError(`source ${shown}: unknown test pattern "${pattern}" (known: ${TEST_PATTERNS.join(', ')})`);
      return { desc: { kind: 'test', pattern, mode: captureMode(url.searchParams, uri) }, display: shown, live: true };
    }
    default:
      throw new SsdError(`source ${shown}: unknown scheme "${scheme}://" (known: rtsp, rtp, file, v4l2, csi, test; or --pipeline)`);
  }
}

/** A --pipeline text: gst-launch syntax ending in an appsink. */
export function parsePipelineSource(launch: string): ParsedSource {
  const text = launch.trim();
  if (!/\bappsink\b[^!]*$/.test(text)) throw new SsdError('--pipeline: the pipeline must end in an appsink, e.g. "videotestsrc ! videoconvert ! video/x-raw,format=RGB ! appsink"');
  return { desc: { kind: 'pipeline', launch: text }, display: `pipeline:${redactUri(text.slice(0, 60))}${text.length > 60 ? '...' : ''}`, live: true };
}

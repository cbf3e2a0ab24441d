/**
 * Buffer timestamps through a binding that has none. gstreamer-superficial's appsink pull hands over
 * a buffer's bytes and its caps, never its PTS; the pipeline position queried at the pull is the
 * newest buffer the appsink has taken in, one or two frames ahead of the one pulled (at 10 fps,
 * frame 2 reported 0.4 s). So the frame branch ends in `gdppay`: every buffer reaches the appsink
 * as one GStreamer Data Protocol packet, a 62-byte header (with the buffer's PTS) followed by the
 * frame's bytes, and the video caps travel in the packets of the appsink caps' `streamheader`.
 * Cost: one copy of the (model-sized) frame into the packet.
 *
 * GDP 1.0 header, big-endian: [0] major 1, [1] minor 0, [2] flags, [4..5] payload type (1 buffer,
 * 2 caps, 64+ events), [6..9] payload length, [10..17] PTS ns (all ones = none), [18..25] duration,
 * [26..41] offsets, [42..43] buffer flags, [44..51] DTS, then padding and two CRCs.
 */
import { loadGst, type GstCaps } from './gst.js';

export const GDP_HEADER_BYTES = 62;
export const GDP_TYPE_BUFFER = 1;
export const GDP_TYPE_CAPS = 2;
const CLOCK_TIME_NONE = 0xffffffffffffffffn;

export interface GdpPacket {
  type: number;
  payload: Buffer;
  /** Presentation timestamp in seconds, null when the buffer has none. */
  pts: number | null;
}

/** Reads one packet; undefined if `buf` is not a GDP 1.0 packet. */
export function parseGdpPacket(buf: Buffer): GdpPacket | undefined {
  if (buf.length < GDP_HEADER_BYTES || buf[0] !== 1 || buf[1] !== 0) return undefined;
  const type = buf.readUInt16BE(4);
  const length = buf.readUInt32BE(6);
  if (GDP_HEADER_BYTES + length > buf.length) return undefined;
  const ptsNs = buf.readBigUInt64BE(10);
  return {
    type,
    payload: buf.subarray(GDP_HEADER_BYTES, GDP_HEADER_BYTES + length),
    pts: ptsNs === CLOCK_TIME_NONE ? null : Number(ptsNs) / 1e9,
  };
}

/** The fields of a serialised caps string the sources use ("video/x-raw, width=(int)96, ..."). */
export function parseCapsString(text: string): GstCaps {
  const caps: GstCaps = { name: text.split(',')[0]!.trim() };
  const field = (k: string) => new RegExp(`[,\\s]${k}=\\([a-z]+\\)("?)([^,;"\\0]+)\\1`).exec(text)?.[2]?.trim();
  const width = field('width');
  const height = field('height');
  if (width !== undefined) caps.width = Number(width);
  if (height !== undefined) caps.height = Number(height);
  const format = field('format');
  if (format !== undefined) caps.format = format;
  const framerate = field('framerate');
  if (framerate !== undefined) caps.framerate = framerate;
  return caps;
}

/** The video caps carried in a GDP appsink's caps (its streamheader's caps packet), if any. */
export function videoCapsOfGdp(caps: GstCaps): GstCaps | undefined {
  const headers = (caps as { streamheader?: unknown }).streamheader;
  if (!Array.isArray(headers)) return undefined;
  for (const h of headers) {
    if (!Buffer.isBuffer(h)) continue;
    const p = parseGdpPacket(h);
    if (p?.type === GDP_TYPE_CAPS) return parseCapsString(p.payload.toString('utf8').replace(/\0+$/, ''));
  }
  return undefined;
}

/**
 * Inserts `gdppay` before the appsink named `sink` (the frame branch); the launch text is returned
 * unchanged when no `! appsink name=<sink>` is found (a --pipeline written another way keeps the
 * position-based pts).
 */
export function withGdpPayloader(launch: string, sink: string): { launch: string; gdp: boolean } {
  const esc = sink.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const re = new RegExp(`!(\\s*)appsink(\\s+(?:[^!]*\\s)?name=("?)${esc}\\3(?=\\s|$))`);
  if (!re.test(launch)) return { launch, gdp: false };
  return { launch: launch.replace(re, '! gdppay !$1appsink$2'), gdp: true };
}

let gdpChecked: boolean | undefined;

/** Whether this GStreamer has gdppay (gst-plugins-bad's gdp plugin); checked once, by parsing a pipeline. */
export function gdpPayloaderAvailable(): boolean {
  if (gdpChecked === undefined) {
    try {
      const p = new (loadGst().Pipeline)('fakesrc num-buffers=0 ! gdppay ! fakesink');
      p.stop();
      gdpChecked = true;
    } catch {
      gdpChecked = false;
    }
  }
  return gdpChecked;
}

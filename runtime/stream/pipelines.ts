/**
 * gst-launch text for each kind of source and device profile. The profile's GstElements pick the
 * decoder and converter (nvv4l2decoder + nvvidconv on a Jetson, avdec_h264 + videoconvert elsewhere);
 * everything else about the shape of a pipeline lives here, as strings that tests can read:
 *
 *   <source head> ! tee name=t ! queue ! <convert/scale to the model input> ! appsink name=sink
 *                   t. ! appsink name=probe
 *
 * - The frame reaching `sink` is already at the model's input size (the network warps anyway, and the
 *   decoder's or nvvidconv's scaler is far cheaper than JavaScript) in the channel order the network
 *   wants, so the runtime only subtracts the mean. videoscale's default 2-tap bilinear keeps the
 *   core's pixel-centre convention: within 1 of core/preprocess.ts's 8-bit picture
 *   (test/runtime/preprocess-parity.test.ts); frames at any other size get the core's resize.
 * - `probe` receives the decoded frames before scaling; one pull of it per connection gives the
 *   camera's own resolution, which boxes are reported in. It holds one buffer and never blocks.
 * - On a Jetson (profiles with `mjpegDecoder`), sources are explicit demux/parse/decoder chains as
 *   jetson-utils builds them, not decodebin, and the probe hangs off the parser, before the decoder:
 *
 *     <demux/depay> ! <parse> ! tee name=t ! nvv4l2decoder ! queue ! <convert> ! appsink name=sink
 *                               t. ! appsink name=probe
 *
 *   The parser's caps carry the coded width and height, and the buffer the probe keeps is a
 *   compressed one in system memory: an appsink after nvv4l2decoder would keep one of the decoder's
 *   few NVMM buffers and can starve its pool.
 * - Live sources end in `appsink drop=true max-buffers=1 sync=false` behind a leaky one-buffer queue:
 *   the newest frame waits there and older ones are dropped, so nothing ever accumulates. Files end
 *   in `drop=false` instead: every frame is detected, at the speed detection goes.
 */
import type { GstElements } from '../../devices/types.js';
import type { SourceDesc, VideoCodec } from './uri.js';

/** The CPU elements used where no device profile says otherwise (desktop GStreamer, libav decoders). */
export const CPU_GST: GstElements = {
  h264Decoder: 'avdec_h264',
  h265Decoder: 'avdec_h265',
  convert: 'videoconvert ! videoscale',
  nvmm: false,
};

export type PixelFormat = 'rgb' | 'bgr';

export interface PipelineOptions {
  gst: GstElements;
  format: PixelFormat;
  /** Output size (the model input); undefined keeps the source's size. */
  width?: number;
  height?: number;
  /** Process every frame with backpressure (files) instead of keeping only the newest (cameras). */
  everyFrame?: boolean;
  /** RTSP jitter-buffer latency in ms: the delay bought for smoothing out network jitter. */
  rtspLatencyMs?: number;
  codec?: VideoCodec;
  /** Adds the display branch (camera-resolution JPEGs for the live page and the video outputs). */
  display?: DisplayBranchOptions;
}

export interface BuiltPipeline {
  launch: string;
  /** Name of the appsink that yields frames at the output size. */
  sink: string;
  /** Name of the appsink that yields frames at the source size, when the pipeline scales. */
  probe?: string;
  /** Name of the recording branch's appsink (--record; see withRecordBranch). */
  record?: string;
  /** The display branch's elements, when asked for (see displayBranch). */
  display?: { sink: string; valve: string };
}

export const SINK_NAME = 'sink';
export const PROBE_NAME = 'probe';

/** A property value quoted for gst_parse_launch. */
export function quote(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

function rawCaps(memory: 'system' | 'nvmm', fields: Record<string, string | number | undefined>): string {
  const parts = [memory === 'nvmm' ? 'video/x-raw(memory:NVMM)' : 'video/x-raw'];
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) parts.push(`${k}=${v}`);
  return parts.join(',');
}

/** Containers a Jetson demuxes explicitly (file extension -> demuxer); others go through decodebin. */
export const JETSON_DEMUXERS: Readonly<Record<string, string | null>> = {
  mp4: 'qtdemux', mov: 'qtdemux', m4v: 'qtdemux',
  mkv: 'matroskademux', avi: 'avidemux', ts: 'tsdemux', mts: 'tsdemux', flv: 'flvdemux',
  // Elementary streams: no container, the parser alone.
  h264: null, '264': null, h265: null, '265': null,
};

/**
 * A source as an explicit chain: `pre` ends in a parser (or in raw caps), `decode` is the decoder;
 * undefined where the profile leaves the choice to decodebin or there is nothing to decode.
 */
export interface SourceParts {
  pre: string;
  decode?: string;
}

function explicitParts(desc: Exclude<SourceDesc, { kind: 'pipeline' }>, opts: PipelineOptions): SourceParts | undefined {
  const g = opts.gst;
  if (!g.mjpegDecoder) return undefined;
  const codecOf = (c: VideoCodec) => (c === 'h265' ? { parse: 'h265parse', decoder: g.h265Decoder, depay: 'rtph265depay' } : { parse: 'h264parse', decoder: g.h264Decoder, depay: 'rtph264depay' });
  switch (desc.kind) {
    case 'rtsp':
    case 'rtp': {
      const c = codecOf(opts.codec ?? 'h264');
      const head = sourceHead(desc, { ...opts, gst: { ...g, mjpegDecoder: undefined } });
      // The same head as elsewhere, cut between the parser and the decoder.
      const cut = head.lastIndexOf(` ! ${c.decoder}`);
      return { pre: head.slice(0, cut), decode: c.decoder };
    }
    case 'file': {
      const ext = desc.path.toLowerCase().split('.').pop() ?? '';
      if (!(ext in JETSON_DEMUXERS)) return undefined;
      const demux = JETSON_DEMUXERS[ext];
      // Elementary streams say their codec by extension; containers take --codec (default h264).
      const codec: VideoCodec = demux === null ? (/^(h265|265)$/.test(ext) ? 'h265' : 'h264') : opts.codec ?? 'h264';
      const c = codecOf(codec);
      return { pre: `filesrc location=${quote(desc.path)}${demux ? ` ! ${demux} ! queue` : ''} ! ${c.parse}`, decode: c.decoder };
    }
    case 'v4l2': {
      const m = desc.mode;
      if (m.format === undefined) return undefined;
      const f = { width: m.width, height: m.height, framerate: m.fps === undefined ? undefined : `${m.fps}/1` };
      const head = `v4l2src device=${quote(desc.device)}`;
      if (m.format === 'raw') return { pre: `${head} ! ${rawCaps('system', f)}` };
      // MJPEG: jpegparse puts the frame size in the caps (for the probe); the hardware decodes.
      return { pre: `${head} ! ${rawCaps('system', f).replace('video/x-raw', 'image/jpeg')} ! jpegparse`, decode: g.mjpegDecoder };
    }
    default:
      return undefined;
  }
}

/** The source split for an explicit chain (Jetson profiles), or undefined: see explicitParts. */
export function sourceParts(desc: Exclude<SourceDesc, { kind: 'pipeline' }>, opts: PipelineOptions): SourceParts | undefined {
  return explicitParts(desc, opts);
}

/** Everything up to decoded raw video (system memory, or NVMM on a Jetson). */
export function sourceHead(desc: Exclude<SourceDesc, { kind: 'pipeline' }>, opts: PipelineOptions): string {
  const g = opts.gst;
  const parts = explicitParts(desc, opts);
  if (parts) return parts.decode ? `${parts.pre} ! ${parts.decode}` : parts.pre;
  switch (desc.kind) {
    case 'rtsp': {
      const codec = opts.codec ?? 'h264';
      const depay = codec === 'h265' ? 'rtph265depay ! h265parse' : 'rtph264depay ! h264parse';
      const decoder = codec === 'h265' ? g.h265Decoder : g.h264Decoder;
      // drop-on-latency: a late packet is dropped rather than delaying every frame after it.
      return `rtspsrc location=${quote(desc.url)} protocols=${desc.transport} latency=${opts.rtspLatencyMs ?? 200} drop-on-latency=true ! ${depay} ! ${decoder}`;
    }
    case 'rtp': {
      const codec = opts.codec ?? 'h264';
      const enc = codec === 'h265' ? 'H265' : 'H264';
      const depay = codec === 'h265' ? 'rtph265depay ! h265parse' : 'rtph264depay ! h264parse';
      const decoder = codec === 'h265' ? g.h265Decoder : g.h264Decoder;
      const addr = desc.address ? ` address=${desc.address}` : '';
      const caps = `application/x-rtp,media=video,encoding-name=${enc},payload=96,clock-rate=90000`;
      return `udpsrc port=${desc.port}${addr} caps=${quote(caps)} ! rtpjitterbuffer latency=${opts.rtspLatencyMs ?? 200} drop-on-latency=true ! ${depay} ! ${decoder}`;
    }
    case 'file':
      // decodebin picks the demuxer and the highest-ranked decoder (nvv4l2decoder on a Jetson).
      return `filesrc location=${quote(desc.path)} ! decodebin`;
    case 'v4l2': {
      const m = desc.mode;
      const head = `v4l2src device=${quote(desc.device)}`;
      if (m.width === undefined && m.height === undefined && m.fps === undefined) return `${head} ! decodebin`;
      // Raw or MJPEG, whichever the camera offers in that mode.
      const f = { width: m.width, height: m.height, framerate: m.fps === undefined ? undefined : `${m.fps}/1` };
      const alt = rawCaps('system', f).replace('video/x-raw', 'image/jpeg');
      return `${head} ! capsfilter caps=${quote(`${rawCaps('system', f)};${alt}`)} ! decodebin`;
    }
    case 'csi': {
      if (!g.csiSource) throw new Error('csi source requested on a profile without one');
      const m = desc.mode;
      return `${g.csiSource} sensor-id=${desc.sensorId} ! ${rawCaps('nvmm', { width: m.width ?? 1280, height: m.height ?? 720, framerate: `${m.fps ?? 30}/1` })}`;
    }
    case 'test': {
      const m = desc.mode;
      return `videotestsrc is-live=true pattern=${desc.pattern} ! ${rawCaps('system', { width: m.width ?? 640, height: m.height ?? 480, framerate: `${m.fps ?? 30}/1` })}`;
    }
  }
}

/** Conversion (and scaling) from decoded video to packed 8-bit RGB/BGR in system memory. */
export function convertTail(opts: PipelineOptions): string {
  const g = opts.gst;
  const size = { width: opts.width, height: opts.height };
  const format = opts.format.toUpperCase();
  if (g.nvmm) {
    // nvvidconv scales in hardware but cannot write packed 24-bit pixels: it writes 32-bit ones, and
    // videoconvert drops the padding byte at the (small) output size.
    const wide = opts.format === 'bgr' ? 'BGRx' : 'RGBA';
    return `${g.convert} ! ${rawCaps('system', { format: wide, ...size })} ! videoconvert ! ${rawCaps('system', { format })}`;
  }
  return `${g.convert} ! ${rawCaps('system', { format, ...size })}`;
}

export function appsinkText(name: string, everyFrame: boolean): string {
  return everyFrame
    ? `appsink name=${name} drop=false max-buffers=1 sync=false`
    : `appsink name=${name} drop=true max-buffers=1 sync=false`;
}

/** Whether the head's own caps already fix the source size (then no probe branch is needed). */
function knownSourceSize(desc: SourceDesc): boolean {
  return declaredSourceSize(desc) !== undefined;
}

/** The source's size when the URI fixes it (csi://, test://), else undefined. */
export function declaredSourceSize(desc: SourceDesc): { width: number; height: number } | undefined {
  if (desc.kind === 'csi') return { width: desc.mode.width ?? 1280, height: desc.mode.height ?? 720 };
  if (desc.kind === 'test') return { width: desc.mode.width ?? 640, height: desc.mode.height ?? 480 };
  // A v4l2 mode with a format fixes the caps: the camera delivers that size or the pipeline fails.
  if (desc.kind === 'v4l2' && desc.mode.format !== undefined && desc.mode.width !== undefined && desc.mode.height !== undefined) {
    return { width: desc.mode.width, height: desc.mode.height };
  }
  return undefined;
}

/** The whole gst-launch text for a source. */
export function buildPipeline(desc: SourceDesc, opts: PipelineOptions): BuiltPipeline {
  const everyFrame = opts.everyFrame ?? false;
  if (desc.kind === 'pipeline') {
    // The user's text is used as written; an unnamed final appsink is named and made leaky here.
    const m = /\bappsink\b([^!]*)$/.exec(desc.launch);
    const props = m?.[1] ?? '';
    const named = /\bname=(\S+)/.exec(props)?.[1];
    if (named) return { launch: desc.launch, sink: named.replace(/^"|"$/g, '') };
    const extra = ['drop', 'max-buffers', 'sync'].filter((p) => !new RegExp(`\\b${p}=`).test(props));
    const defaults: Record<string, string> = { drop: 'drop=true', 'max-buffers': 'max-buffers=1', sync: 'sync=false' };
    return { launch: `${desc.launch} name=${SINK_NAME}${extra.map((p) => ` ${defaults[p]}`).join('')}`, sink: SINK_NAME };
  }
  const head = sourceHead(desc, opts);
  // The display branch hangs off its own tee on the decoded video, before any scaling (`dtee` after
  // the decoder, `dbranch` after the frame branch; both empty without opts.display).
  const { dtee, dbranch, names } = displayParts(opts);
  const tail = `${convertTail(opts)} ! ${appsinkText(SINK_NAME, everyFrame)}${dbranch}`;
  const scales = opts.width !== undefined || opts.height !== undefined;
  const queue = everyFrame ? 'queue max-size-buffers=1' : 'queue max-size-buffers=1 leaky=downstream';
  if (!scales || knownSourceSize(desc)) {
    return { launch: `${head}${dtee} ! ${queue} ! ${tail}`, sink: SINK_NAME, ...names };
  }
  // async=false: the probe never holds up preroll, so a file pipeline reaches PAUSED on `sink` alone.
  const probe = `appsink name=${PROBE_NAME} drop=true max-buffers=1 sync=false async=false`;
  const parts = sourceParts(desc, opts);
  if (parts?.decode) {
    // The probe takes the parser's caps (coded size) and keeps a compressed buffer, never an NVMM one.
    // The leaky queue stays after the decoder: dropping compressed frames would corrupt the picture.
    return { launch: `${parts.pre} ! tee name=t ! ${parts.decode}${dtee} ! ${queue} ! ${tail} t. ! ${probe}`, sink: SINK_NAME, probe: PROBE_NAME, ...names };
  }
  return { launch: `${head}${dtee} ! tee name=t ! ${queue} ! ${tail} t. ! ${probe}`, sink: SINK_NAME, probe: PROBE_NAME, ...names };
}

export interface DisplayBranchOptions {
  /** Most JPEGs per second the branch makes (videorate drops the rest before they are encoded). */
  maxFps: number;
  /** jpegenc quality, 1-100 (default 80). */
  quality?: number;
}

export const DISPLAY_TEE = 'dt';
export const DISPLAY_NAME = 'display';
export const DISPLAY_VALVE = 'displayvalve';

/**
 * The display branch: the decoded camera-resolution video, rate-limited and JPEG-encoded on
 * GStreamer's threads, into its own appsink:
 *
 *   dt. ! valve drop=true ! queue leaky ! videorate drop-only=true max-rate=N ! videoconvert ! jpegenc
 *       ! appsink name=display drop=true max-buffers=1 async=false
 *
 * The valve stays closed (drop=true: nothing converted or encoded) until someone watches; the runtime
 * opens it (runtime/stream/video-out.ts). videorate keeps the buffers' own timestamps, which is how a
 * picture is matched with the detections of the same frame. On a Jetson nvvidconv copies the frame
 * out of NVMM memory right after the valve, so that the leaky queue never holds a decoder buffer.
 */
export function displayBranch(gst: GstElements, d: DisplayBranchOptions): string {
  const copyOut = gst.nvmm ? ` ! ${gst.convert} ! ${rawCaps('system', { format: 'I420' })}` : '';
  const convert = gst.nvmm ? '' : ' ! videoconvert';
  return `valve name=${DISPLAY_VALVE} drop=true${copyOut} ! queue max-size-buffers=1 leaky=downstream ! videorate drop-only=true max-rate=${Math.max(1, Math.round(d.maxFps))}${convert} ! jpegenc quality=${d.quality ?? 80} ! appsink name=${DISPLAY_NAME} drop=true max-buffers=1 sync=false async=false`;
}

function displayParts(opts: PipelineOptions): { dtee: string; dbranch: string; names: Pick<BuiltPipeline, 'display'> } {
  if (!opts.display) return { dtee: '', dbranch: '', names: {} };
  return {
    dtee: ` ! tee name=${DISPLAY_TEE}`,
    dbranch: ` ${DISPLAY_TEE}. ! ${displayBranch(opts.gst, opts.display)}`,
    names: { display: { sink: DISPLAY_NAME, valve: DISPLAY_VALVE } },
  };
}

/** Names of the recording branch's elements (runtime/stream/record.ts); unlikely in a user's --pipeline. */
export const RECORD_TEE = 'ssdrec_t';
export const RECORD_NAME = 'ssdrec';

/** Raw video -> H.264 where a profile names no encoder: x264, one keyframe a second at 30 fps. */
export const DEFAULT_H264_ENCODER = 'videoconvert ! video/x-raw,format=I420 ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30';

/**
 * The recording branch (--record): the encoded video as GDP packets (gdp.ts: pts, dts and the
 * keyframe flag travel with every access unit) into the appsink `ssdrec`. An H.264/H.265 source is
 * tapped after its parser, with no re-encoding; a raw one (test://, v4l2, csi, desktop files behind
 * decodebin, --pipeline) is encoded with the profile's `h264Encoder` only while recording.
 *
 *   ... ! h264parse ! tee name=ssdrec_t ! <decoder...>          (encoded)
 *   ... <raw head> ! tee name=ssdrec_t ! <frame branch...>      (raw)
 *   ssdrec_t. ! queue ! [encoder !] h264parse config-interval=-1 ! video/x-h264,stream-format=byte-stream,alignment=au
 *             ! gdppay ! appsink name=ssdrec drop=false max-buffers=0 sync=false async=false
 *
 * The second parser repeats SPS/PPS before every keyframe, so a clip may start at any keyframe. The
 * queue never leaks on an encoded stream (a dropped access unit corrupts the picture up to the next
 * keyframe): the appsink is pulled continuously by the recorder. Before an encoder it does leak on a
 * camera (a dropped raw frame is only a missing frame). Returns undefined when the launch text has
 * no place for the tee (then the source records nothing and says so).
 */
export function withRecordBranch(desc: SourceDesc, opts: PipelineOptions, built: BuiltPipeline): (BuiltPipeline & { record: string; recordCodec: VideoCodec }) | undefined {
  const launch = built.launch;
  const tee = ` ! tee name=${RECORD_TEE}`;
  const out = (codec: VideoCodec, encode: boolean, at: number) => {
    const parse = codec === 'h265' ? 'h265parse' : 'h264parse';
    const leaky = encode && !opts.everyFrame ? ' leaky=downstream max-size-buffers=8' : ' max-size-buffers=0 max-size-time=0 max-size-bytes=67108864';
    const enc = encode ? `${opts.gst.h264Encoder ?? DEFAULT_H264_ENCODER} ! ` : '';
    const branch = `${RECORD_TEE}. ! queue${leaky} ! ${enc}${parse} config-interval=-1 ! video/x-${codec},stream-format=byte-stream,alignment=au ! gdppay ! appsink name=${RECORD_NAME} drop=false max-buffers=0 sync=false async=false`;
    return { ...built, launch: `${launch.slice(0, at)}${tee}${launch.slice(at)} ${branch}`, record: RECORD_NAME, recordCodec: codec };
  };
  if (desc.kind === 'pipeline') {
    // Before the user's final appsink: the frames it takes are raw.
    const m = /!\s*appsink\b[^!]*$/.exec(launch);
    if (!m) return undefined;
    const at = launch.slice(0, m.index).trimEnd().length;
    const queue = ' ! queue max-size-buffers=1 leaky=downstream';
    const r = out('h264', true, at);
    return { ...r, launch: `${r.launch.slice(0, at + tee.length)}${queue}${r.launch.slice(at + tee.length)}` };
  }
  // Encoded: right after the first parser of the stream.
  const parser = / ! (h264parse|h265parse)(?= ! )/.exec(launch);
  if (parser) return out(parser[1] === 'h265parse' ? 'h265' : 'h264', false, parser.index + parser[0].length);
  const parts = sourceParts(desc, opts);
  if (parts?.decode) {
    const i = launch.indexOf(` ! ${parts.decode} ! `);
    return i < 0 ? undefined : out('h264', true, i + parts.decode.length + 3);
  }
  const head = sourceHead(desc, opts);
  return launch.startsWith(`${head} ! `) ? out('h264', true, head.length) : undefined;
}

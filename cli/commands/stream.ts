import { EventEmitter } from 'node:events';
import { SsdError } from '../../core/errors.js';
import { runStream } from '../../runtime/stream/index.js';
import type { Qos } from '../../runtime/stream/mqtt.js';
import { choiceFlag, intFlag, numberFlag, parseFlags, type Command } from '../args.js';

const USAGE = `Usage: ssd stream [URI...] [options]

Detects objects in camera, RTSP and file streams and prints one JSON line per processed frame on
stdout (logs go to stderr). With no URI and no --model it runs the built-in demo: the shipped digits
model over a built-in moving-digits source, with the live page on http://127.0.0.1:8080/.

Sources (as jetson-inference's videoSource):
  rtsp://[user:pass@]host[:port]/path   RTSP camera, H.264 (see --codec), over TCP (rtspu:// = UDP)
  rtp://@:5000 | rtp://239.1.1.1:5004   RTP/UDP H.264 stream sent to this machine (or a multicast group)
  file:///path/clip.mp4 | clip.mkv      video file (every frame is detected; ends at EOS, see --loop)
  /dev/video0 | v4l2:///dev/video0      V4L2 (USB) camera; ?width=&height=&fps= pick a mode
  csi://0                               MIPI CSI camera on a Jetson (nvarguscamerasrc); ?width=&height=&fps=
  test:// | test://ball                 GStreamer test pattern; ?width=&height=&fps=
  --pipeline 'gst-launch text ! appsink' anything else (frames must be RGB or BGR)

Options:
  --model PATH        ONNX model from "ssd export-onnx" (required with a source)
  --device auto|NAME  device profile (see "ssd devices"); picks providers and GStreamer elements (default auto)
  --require-gpu       fail instead of falling back to the CPU when no GPU provider loads
  --threshold X       minimum score of a reported detection (default 0.5)
  --track             track objects (ByteTrack): every detection gets a "track_id" (null until confirmed)
  --track-low X       weakest detection the tracker uses to keep a track (default 0.1, <= --threshold)
  --track-min-hits N  consecutive detections before a track gets its id (default 2)
  --track-max-misses N frames a track outlives its last detection (default 30)
  --zones FILE        zones and directed lines per source (JSON or YAML, see docs/stream.md "Zones,
                      lines and events"): enter/leave/loiter/cross events as JSON lines with an
                      "event" field, on MQTT (<topic>/events) and webhooks; turns --track on
  --webhook URL       POST every event as JSON to URL (repeatable; retried with backoff, never
                      blocks the stream; needs --zones)
  --max-frames N      stop after N processed frames in all
  --loop              start files over at their end
  --codec h264|h265   codec of RTSP streams (default h264)
  --rtsp-latency MS   RTSP/RTP jitter buffer (default 200)
  --connect-timeout S seconds the first frame of a source may take (default 10)
  --pipeline TEXT     a gst-launch pipeline ending in appsink, as one more source (repeatable)
  --http HOST:PORT    live page, /events (SSE), /metrics (Prometheus), /healthz; loopback unless told
  --token T           required token for the HTTP server (needed to bind a non-loopback address;
                      default: the SSD_TOKEN environment variable, which keeps it out of \`ps\`)
                      the server also has /mjpeg/<source> (MJPEG with the boxes drawn, for VLC,
                      ffmpeg, Home Assistant) and, with --hls, /hls/<source>/playlist.m3u8
  --hls DIR           write the annotated video of every source as HLS (H.264, 2 s segments) to
                      DIR/<source>/playlist.m3u8 (RTSP out is not available, see docs/stream.md)
  --display-fps N     most camera-resolution pictures a second per source for the live page,
                      MJPEG and HLS (default 15)
  --mqtt URL          publish each frame's JSON to an MQTT broker (mqtt://host:1883)
  --topic T           MQTT topic (default ssd/{host}/{source}; {source} and {host} are replaced)
  --qos 0|1|2         MQTT QoS (default 0)
  --record DIR        write an MP4 clip per event into DIR/<source>/ (pre-roll + post-roll; see docs/stream.md "Clips")
  --pre-roll S        seconds of video kept before the event (default 5)
  --post-roll S       seconds recorded after the last triggering detection (default 5)
  --record-classes a,b only detections of these labels trigger a clip (default any, at --threshold)
  --record-max-mb N   disk quota for the clips in DIR: the oldest are deleted first
  --no-json           do not print JSON lines on stdout
  --quiet             no log lines on stderr except errors

Model reload: SIGHUP, or a new --model file (written in place or renamed over it), swaps the model
between frames; a model that does not load or does not fit the running pipelines is refused with one
line and the old one keeps running.

Exit status: 0 when the sources ended or --max-frames was reached, non-zero with a one-line error for
a bad flag or URI, an unreachable camera or an unusable model.`;

const command: Command = {
  name: 'stream',
  summary: 'detect on camera/RTSP/file streams (the main job; no args = built-in demo)',
  usage: USAGE,
  async run(argv) {
    const { values, positionals } = parseFlags('stream', argv, {
      model: { type: 'string' },
      device: { type: 'string' },
      'require-gpu': { type: 'boolean' },
      threshold: { type: 'string' },
      track: { type: 'boolean' },
      'track-low': { type: 'string' },
      'track-min-hits': { type: 'string' },
      'track-max-misses': { type: 'string' },
      zones: { type: 'string' },
      webhook: { type: 'string', multiple: true },
      'max-frames': { type: 'string' },
      loop: { type: 'boolean' },
      codec: { type: 'string' },
      'rtsp-latency': { type: 'string' },
      'connect-timeout': { type: 'string' },
      http: { type: 'string' },
      token: { type: 'string' },
      hls: { type: 'string' },
      'display-fps': { type: 'string' },
      mqtt: { type: 'string' },
      topic: { type: 'string' },
      qos: { type: 'string' },
      pipeline: { type: 'string', multiple: true },
      record: { type: 'string' },
      'pre-roll': { type: 'string' },
      'post-roll': { type: 'string' },
      'record-classes': { type: 'string' },
      'record-max-mb': { type: 'string' },
      'no-json': { type: 'boolean' },
      quiet: { type: 'boolean' },
    });
    if (values.topic !== undefined && values.mqtt === undefined) throw new SsdError('--topic needs --mqtt');
    if (values.qos !== undefined && values.mqtt === undefined) throw new SsdError('--qos needs --mqtt');
    if (values.token !== undefined && values.http === undefined && (positionals.length > 0 || values.pipeline)) throw new SsdError('--token needs --http');
    const qos = intFlag('qos', values.qos, 0, 0, 2) as Qos;
    const threshold = numberFlag('threshold', values.threshold, 0.5, 0, 1);
    const trackFlags = (['track-low', 'track-min-hits', 'track-max-misses'] as const).filter((k) => values[k] !== undefined);
    // --zones tracks too (with the defaults unless --track-* says otherwise).
    if (trackFlags.length > 0 && values.track !== true && values.zones === undefined) throw new SsdError(`--${trackFlags[0]} needs --track`);
    const track = values.track === true || trackFlags.length > 0 ? {
      lowThreshold: numberFlag('track-low', values['track-low'], 0.1, 0, threshold),
      minHits: intFlag('track-min-hits', values['track-min-hits'], 2, 1, 1000),
      maxMisses: intFlag('track-max-misses', values['track-max-misses'], 30, 0, 100_000),
    } : undefined;
    const maxFrames = values['max-frames'] === undefined ? undefined : intFlag('max-frames', values['max-frames'], 0, 1);
    const codec = choiceFlag('codec', values.codec, ['h264', 'h265'] as const, 'h264');
    const rtspLatencyMs = intFlag('rtsp-latency', values['rtsp-latency'], 200, 0, 10_000);
    const connectTimeoutMs = numberFlag('connect-timeout', values['connect-timeout'], 10, 0.1, 600) * 1000;
    const recordFlags = (['pre-roll', 'post-roll', 'record-classes', 'record-max-mb'] as const).filter((k) => values[k] !== undefined);
    if (recordFlags.length > 0 && values.record === undefined) throw new SsdError(`--${recordFlags[0]} needs --record`);
    if (values.record === '') throw new SsdError('--record needs a directory');
    const record = values.record === undefined ? undefined : {
      dir: values.record,
      preRollS: numberFlag('pre-roll', values['pre-roll'], 5, 0, 600),
      postRollS: numberFlag('post-roll', values['post-roll'], 5, 0, 3600),
      maxBytes: values['record-max-mb'] === undefined ? undefined : numberFlag('record-max-mb', values['record-max-mb'], 0, 0.001, 1e9) * 1e6,
      classes: values['record-classes']?.split(',').map((c) => c.trim()).filter((c) => c !== ''),
    };
    const quiet = values.quiet === true;
    if (values.hls !== undefined && values.hls.trim() === '') throw new SsdError('--hls needs a directory');
    const displayFps = numberFlag('display-fps', values['display-fps'], 15, 1, 120);
    // Detector.load reads SSD_REQUIRE_GPU (as a deployed service's ssd.env sets it).
    if (values['require-gpu']) process.env.SSD_REQUIRE_GPU = '1';
    const ac = new AbortController();
    const stop = () => ac.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    // SIGHUP reloads the model (runtime/stream/reload.ts) instead of ending the process.
    const reloadRequests = new EventEmitter();
    const hup = () => reloadRequests.emit('reload');
    process.on('SIGHUP', hup);
    try {
      const summary = await runStream({
        uris: positionals, pipelines: values.pipeline, model: values.model, device: values.device, threshold, track, maxFrames,
        zones: values.zones, webhooks: values.webhook,
        // SSD_TOKEN: how a deployed service passes it (ssd.env), so that it does not show in `ps`.
        http: values.http, hls: values.hls, displayFps, token: values.token ?? (process.env.SSD_TOKEN || undefined), mqtt: values.mqtt, topic: values.topic, qos,
        loop: values.loop === true, codec, rtspLatencyMs, connectTimeoutMs, record,
        out: values['no-json'] ? null : process.stdout,
        log: quiet ? () => {} : (line) => process.stderr.write(`${line}\n`),
        signal: ac.signal, reloadRequests,
      });
      if (!quiet) process.stderr.write(`stream: ${summary.frames} frames in ${(summary.elapsedMs / 1000).toFixed(1)} s (${summary.fps.toFixed(2)} fps), ${summary.reason}\n`);
      return 0;
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      process.off('SIGHUP', hup);
    }
  },
};
export default command;

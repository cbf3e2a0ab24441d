/**
 * Clips (`ssd stream --record DIR`): the last seconds of encoded video per source are kept in memory,
 * and an event (a detection, or `trigger()` from other code: zones, lines) writes an MP4 that starts
 * with that pre-roll and runs until the post-roll after the last trigger.
 *
 * Where the video comes from: each source pipeline has a recording branch (pipelines.ts
 * withRecordBranch) that ends in `gdppay ! appsink name=ssdrec`. GDP packets carry what the binding
 * would otherwise lose: PTS, DTS, duration and the keyframe flag. The ring keeps the packets as they
 * came, from a keyframe; a clip is those packets pushed back through
 *
 *   appsrc ! gdpdepay ! h264parse ! mp4mux fragment-duration=1000 ! filesink location=<clip>.mp4.part
 *
 * after the source's own stream-start, caps and segment packets, so every timestamp, flag and the
 * segment are exactly the source's: nothing is re-encoded or re-timed here. The MP4 is fragmented (a
 * fragment a second), so a file cut short by a kill or a power loss still plays up to its last
 * fragment; a normal end (post-roll reached, Ctrl-C, camera drop, end of file) sends EOS, waits for it
 * (bounded), and renames `.part` to `.mp4`.
 *
 * Time is the media time of the packets (the same buffer timestamps as the frames' `pts`), so a file
 * processed slower than real time still gets clips of the right length.
 *
 * Threads: the pull of the recording appsink holds one libuv pool thread per source for as long as the
 * source runs; a clip's bus poll holds one while it finalises (RECORD_THREADS_PER_SOURCE).
 */
import { mkdirSync, readdirSync, renameSync, statSync, unlinkSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { SsdError, oneLine } from '../../core/errors.js';
import type { LogFn } from './frame.js';
import { GDP_HEADER_BYTES, GDP_TYPE_BUFFER, GDP_TYPE_CAPS } from './gdp.js';
import { createPipeline, type GstAppSink, type GstAppSrc, type GstPipeline } from './gst.js';
import { quote } from './pipelines.js';

/** Extra libuv threads a recording source may hold: the recording appsink's pull and a finalising clip's bus poll. */
export const RECORD_THREADS_PER_SOURCE = 2;

export interface RecorderOptions {
  dir: string;
  /** Seconds of video kept before the first trigger (default 5). */
  preRollS?: number;
  /** Seconds recorded after the last trigger (default 5). */
  postRollS?: number;
  /** Disk quota for the clips under `dir` in bytes; the oldest are deleted first. */
  maxBytes?: number;
  /** Detections that trigger a clip: at or above this score (default 0.5) ... */
  threshold?: number;
  /** ... and of these labels (default all). */
  classes?: string[];
  /** Longest wait for a clip's EOS before it is stopped as it is (default 10 s). */
  finalizeTimeoutMs?: number;
  log?: LogFn;
  /** Called once per finished clip. */
  onClip?: (clip: ClipRecord) => void;
}

/** One finished clip, as printed on stdout and published over MQTT (`"type": "clip"`). */
export interface ClipRecord {
  type: 'clip';
  source: string;
  uri: string;
  path: string;
  reason: string;
  /** Wall clock (ms since the epoch) of the clip's first frame, and when it was finished. */
  start: number;
  end: number;
  /** Media time covered, from the first frame's timestamp to the end of the last one (s). */
  duration_s: number;
  frames: number;
  bytes: number;
  /** false when the clip had to be stopped without its EOS (it still plays up to its last fragment). */
  complete: boolean;
}

/** One access unit as its GDP packet, with what the ring needs to know about it. */
interface Packet {
  buf: Buffer;
  /** Seconds; the DTS when the buffer has no PTS. */
  t: number;
  /** Seconds: the end of its display time (t + duration, t when the duration is unknown). */
  end: number;
  key: boolean;
}

interface Clip {
  writer: GstPipeline;
  src: GstAppSrc;
  part: string;
  path: string;
  reason: string;
  endT: number;
  firstT: number;
  lastT: number;
  frames: number;
  startWall: number;
}

interface Track {
  id: string;
  uri: string;
  gen: number;
  /** stream-start, caps, segment: the sticky events a clip replays before its first packet. */
  streamStart?: Buffer;
  caps?: Buffer;
  segment?: Buffer;
  codec: 'h264' | 'h265';
  ring: Packet[];
  ringBytes: number;
  clip?: Clip;
  /** A trigger that came before any keyframe: the clip starts at the first one. */
  waiting?: { reason: string; endT: number };
}

const CLOCK_TIME_NONE = 0xffffffffffffffffn;
const DELTA_UNIT = 0x2000;
/** GstEventType values (major number << 8) of the events a clip replays; GDP types are 64 + the event type. */
const EVENT_STREAM_START = 40;
const EVENT_SEGMENT = 70;
/** The ring never holds more than this, whatever the bitrate. */
const RING_MAX_BYTES = 256 * 1024 * 1024;
/** Extra seconds kept beyond the pre-roll: detections lag the newest packet by a few frames. */
const RING_SLACK_S = 2;

function timeOf(buf: Buffer, offset: number): number | null {
  const ns = buf.readBigUInt64BE(offset);
  return ns === CLOCK_TIME_NONE ? null : Number(ns) / 1e9;
}

/**
 * The source's segment event packet, moved to start at `startNs`. mp4mux counts a file's duration
 * in running time (timestamp - segment start): with the source's own segment a clip that starts
 * minutes into a stream would claim those minutes (the samples are right, the header's duration is
 * not). The packet is rebuilt without CRCs (GDP header flags 0), which gdpdepay then does not check.
 */
export function segmentStartingAt(packet: Buffer, startNs: bigint): Buffer {
  const text = packet.subarray(GDP_HEADER_BYTES, GDP_HEADER_BYTES + packet.readUInt32BE(6)).toString('utf8').replace(/\0+$/, '');
  const moved = text
    .replace(/\b(start|position)=\(guint64\)\d+/g, `$1=(guint64)${startNs}`)
    .replace(/\bbase=\(guint64\)\d+/, 'base=(guint64)0');
  const payload = Buffer.from(`${moved}\0`, 'utf8');
  const header = Buffer.from(packet.subarray(0, GDP_HEADER_BYTES));
  header[2] = 0;
  header.writeUInt32BE(payload.length, 6);
  header.writeUInt32BE(0, 58);
  return Buffer.concat([header, payload]);
}

/** File name part of a reason: letters, digits, '-' and '_' only. */
function safeReason(reason: string): string {
  return reason.replace(/[^A-Za-z0-9_-]+/g, '_').slice(0, 60) || 'event';
}

/** ISO time usable in a file name everywhere (no ':'). */
function fileTime(ms: number): string {
  return new Date(ms).toISOString().replace(/:/g, '-');
}

/**
 * Creates `dir` if needed and proves that a clip can be written there: one line naming the flag
 * otherwise (a file in the way, no permission, a read-only disk).
 */
export function prepareRecordDir(dir: string): void {
  try {
    if (existsSync(dir) && !statSync(dir).isDirectory()) throw new Error('not a directory');
    mkdirSync(dir, { recursive: true });
    const probe = join(dir, `.ssd-write-test-${process.pid}`);
    writeFileSync(probe, '');
    unlinkSync(probe);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'EACCES' || code === 'EPERM' ? 'not writable' : code === 'EROFS' ? 'on a read-only file system' : code === 'ENOTDIR' || code === 'EEXIST' ? 'not a directory' : oneLine(err);
    throw new SsdError(`--record ${dir}: ${why}`, { cause: err });
  }
}

/** Finished clips under `dir` (`<dir>/<source>/*.mp4`), oldest first. */
export function listClips(dir: string): Array<{ path: string; bytes: number; mtimeMs: number }> {
  const out: Array<{ path: string; bytes: number; mtimeMs: number }> = [];
  let subdirs: string[];
  try {
    subdirs = readdirSync(dir);
  } catch {
    return out;
  }
  for (const s of subdirs) {
    const sub = join(dir, s);
    let names: string[];
    try {
      if (!statSync(sub).isDirectory()) continue;
      names = readdirSync(sub);
    } catch {
      continue;
    }
    for (const n of names) {
      if (!n.endsWith('.mp4')) continue;
      try {
        const st = statSync(join(sub, n));
        if (st.isFile()) out.push({ path: join(sub, n), bytes: st.size, mtimeMs: st.mtimeMs });
      } catch {
        // Deleted meanwhile.
      }
    }
  }
  // File names start with the clip's ISO time: a tie on mtime is broken by name.
  return out.sort((a, b) => a.mtimeMs - b.mtimeMs || (a.path < b.path ? -1 : 1));
}

/** Deletes the oldest clips until the rest fit in `maxBytes`; `keep` (the newest clip) is never deleted. Returns the deleted paths. */
export function enforceQuota(dir: string, maxBytes: number, keep?: string): string[] {
  const clips = listClips(dir);
  let total = clips.reduce((a, c) => a + c.bytes, 0);
  const deleted: string[] = [];
  for (const c of clips) {
    if (total <= maxBytes) break;
    if (c.path === keep) continue;
    try {
      unlinkSync(c.path);
      total -= c.bytes;
      deleted.push(c.path);
    } catch {
      // Gone already, or not ours to delete: leave it.
    }
  }
  return deleted;
}

export class Recorder {
  readonly dir: string;
  private readonly preRollS: number;
  private readonly postRollS: number;
  private readonly threshold: number;
  private readonly classes: Set<string> | undefined;
  private readonly log: LogFn;
  private readonly tracks = new Map<string, Track>();
  private readonly finishing = new Set<Promise<void>>();
  private closed = false;

  constructor(private readonly opts: RecorderOptions) {
    this.dir = opts.dir;
    this.preRollS = opts.preRollS ?? 5;
    this.postRollS = opts.postRollS ?? 5;
    this.threshold = opts.threshold ?? 0.5;
    this.classes = opts.classes && opts.classes.length > 0 ? new Set(opts.classes) : undefined;
    this.log = opts.log ?? ((l) => process.stderr.write(`${l}\n`));
    if (opts.maxBytes !== undefined) this.applyQuota();
  }

  /** Names a source (its id is the clip folder; `uri`, already redacted, goes into the clip records). */
  register(sourceId: string, uri: string): void {
    if (!this.tracks.has(sourceId)) this.tracks.set(sourceId, { id: sourceId, uri, gen: 0, codec: 'h264', ring: [], ringBytes: 0 });
  }

  /** A source pipeline (re)started with its recording appsink: pull it until it ends or is detached. */
  attach(sourceId: string, sink: GstAppSink, codec: 'h264' | 'h265'): void {
    const t = this.track(sourceId);
    this.finishClip(t, 'restart');
    t.gen++;
    t.codec = codec;
    t.ring = [];
    t.ringBytes = 0;
    t.streamStart = t.caps = t.segment = undefined;
    const gen = t.gen;
    const pull = () => sink.pull((buf) => {
      if (gen !== t.gen || this.closed) return;
      // Nothing: the appsink is not started yet, or at its end (then detach() follows and ends this).
      if (buf === null) return void setTimeout(pull, 100);
      this.onPacket(t, buf);
      pull();
    });
    pull();
  }

  /** The source's pipeline is going away (camera drop, end of file, stop): the open clip is finished. */
  detach(sourceId: string): void {
    const t = this.tracks.get(sourceId);
    if (!t) return;
    t.gen++;
    t.waiting = undefined;
    this.finishClip(t, 'source stopped');
    t.ring = [];
    t.ringBytes = 0;
  }

  /** Detections of one frame: those at or above the threshold (of the chosen classes) trigger a clip. */
  onDetections(sourceId: string, detections: ReadonlyArray<{ label: string; score: number }>): void {
    let best: { label: string; score: number } | undefined;
    for (const d of detections) {
      if (d.score < this.threshold || (this.classes && !this.classes.has(d.label))) continue;
      if (!best || d.score > best.score) best = d;
    }
    if (best) this.trigger(sourceId, best.label);
  }

  /**
   * Starts a clip for `sourceId` (or extends the open one) for an event now: it runs from pre-roll
   * seconds before the newest recorded video to post-roll seconds after it. `reason` names the clip
   * file (`<ISO time>-<reason>.mp4`) and goes into its record. Unknown sources are ignored.
   *
   * The newest recorded video stands for "now" rather than the triggering frame's pts: an encoder
   * shifts its timestamps (x264enc adds 1000 hours so that DTS never goes negative), so the frame
   * branch and the recording branch are not on one timeline. The difference is the detection's own
   * delay (about one inference on a camera, a few queued frames on a file), well inside the pre-roll.
   */
  trigger(sourceId: string, reason: string): void {
    const t = this.tracks.get(sourceId);
    if (!t || this.closed) return;
    const at = t.ring.length > 0 ? t.ring[t.ring.length - 1]!.t : undefined;
    if (t.clip) {
      if (at !== undefined) t.clip.endT = Math.max(t.clip.endT, at + this.postRollS);
      return;
    }
    if (at === undefined || !t.ring.some((p) => p.key)) {
      // No keyframe yet: the clip starts at the first one.
      if (!t.waiting) t.waiting = { reason, endT: at === undefined ? Number.NaN : at + this.postRollS };
      return;
    }
    this.startClip(t, reason, at);
  }

  /** Seconds of video in the source's ring (newest minus oldest timestamp): how much pre-roll a trigger now gets. */
  bufferedSeconds(sourceId: string): number {
    const r = this.tracks.get(sourceId)?.ring;
    return r && r.length > 1 ? r[r.length - 1]!.t - r[0]!.t : 0;
  }

  /** Whether a clip of the source is being recorded. */
  recording(sourceId: string): boolean {
    return this.tracks.get(sourceId)?.clip !== undefined;
  }

  /** Finishes every open clip (EOS, bounded) and stops recording. */
  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.tracks.values()) {
      t.gen++;
      this.finishClip(t, 'stopped');
    }
    while (this.finishing.size > 0) await Promise.all([...this.finishing]);
  }

  private track(sourceId: string): Track {
    let t = this.tracks.get(sourceId);
    if (!t) {
      this.register(sourceId, sourceId);
      t = this.tracks.get(sourceId)!;
    }
    return t;
  }

  private onPacket(t: Track, buf: Buffer): void {
    if (buf.length < GDP_HEADER_BYTES || buf[0] !== 1) return;
    const type = buf.readUInt16BE(4);
    if (type === GDP_TYPE_CAPS) {
      t.caps = buf;
      return;
    }
    if (type >= 64) {
      const event = (type - 64) >> 8;
      if (event === EVENT_STREAM_START) t.streamStart = buf;
      else if (event === EVENT_SEGMENT) t.segment = buf;
      return;
    }
    if (type !== GDP_TYPE_BUFFER) return;
    // GDP 1.0: PTS at 10, duration at 18, buffer flags at 42, DTS at 44.
    const time = timeOf(buf, 10) ?? timeOf(buf, 44);
    if (time === null) return;
    const p: Packet = { buf, t: time, end: time + (timeOf(buf, 18) ?? 0), key: (buf.readUInt16BE(42) & DELTA_UNIT) === 0 };
    t.ring.push(p);
    t.ringBytes += buf.length;
    if (t.waiting && p.key) {
      const w = t.waiting;
      t.waiting = undefined;
      this.startClip(t, w.reason, p.t, Number.isNaN(w.endT) ? p.t + this.postRollS : w.endT);
    } else if (t.clip) {
      this.write(t.clip, p);
      if (p.t >= t.clip.endT) this.finishClip(t, 'post-roll');
    }
    this.trim(t);
  }

  /** Drops what is older than the pre-roll (plus slack) needs: the ring starts at a keyframe. */
  private trim(t: Track): void {
    const newest = t.ring[t.ring.length - 1]!.t;
    const keepFrom = newest - this.preRollS - RING_SLACK_S;
    let cut = 0;
    for (let i = 1; i < t.ring.length; i++) {
      const p = t.ring[i]!;
      if (!p.key) continue;
      if (p.t <= keepFrom || t.ringBytes > RING_MAX_BYTES) cut = i;
      else break;
    }
    if (cut === 0 && !t.ring[0]!.key) {
      // Nothing before the first keyframe is any use.
      const k = t.ring.findIndex((p) => p.key);
      cut = k < 0 ? t.ring.length : k;
    }
    if (cut > 0) {
      for (let i = 0; i < cut; i++) t.ringBytes -= t.ring[i]!.buf.length;
      t.ring.splice(0, cut);
    }
  }

  private startClip(t: Track, reason: string, at: number, endT = at + this.postRollS): void {
    // The clip starts at the last keyframe at least pre-roll before the event (or the oldest one kept).
    const want = at - this.preRollS;
    let start = -1;
    for (let i = 0; i < t.ring.length; i++) {
      const p = t.ring[i]!;
      if (!p.key) continue;
      if (start < 0 || p.t <= want) start = i;
      if (p.t > want) break;
    }
    if (start < 0 || !t.caps) return;
    const newest = t.ring[t.ring.length - 1]!.t;
    const startWall = Date.now() - Math.max(0, newest - t.ring[start]!.t) * 1000;
    const folder = join(this.dir, t.id);
    const path = join(folder, `${fileTime(startWall)}-${safeReason(reason)}.mp4`);
    const part = `${path}.part`;
    let writer: GstPipeline;
    try {
      mkdirSync(folder, { recursive: true });
      const parse = t.codec === 'h265' ? 'h265parse' : 'h264parse';
      writer = createPipeline(`appsrc name=src format=bytes max-bytes=0 ! gdpdepay ! ${parse} ! mp4mux fragment-duration=1000 ! filesink location=${quote(part)}`, `clip ${path}`);
    } catch (err) {
      this.log(`[${t.id}] clip: ${oneLine(err)}`);
      return;
    }
    const src = writer.findChild('src') as GstAppSrc;
    writer.play();
    const first = t.ring[start]!.buf;
    const firstNs = [first.readBigUInt64BE(10), first.readBigUInt64BE(44)].filter((v) => v !== CLOCK_TIME_NONE).reduce((a, b) => (b < a ? b : a));
    for (const b of [t.streamStart, t.caps, t.segment && segmentStartingAt(t.segment, firstNs)]) if (b) src.push(b);
    const clip: Clip = { writer, src, part, path, reason, endT, firstT: t.ring[start]!.t, lastT: t.ring[start]!.t, frames: 0, startWall };
    t.clip = clip;
    for (let i = start; i < t.ring.length; i++) this.write(clip, t.ring[i]!);
    this.log(`[${t.id}] clip ${path}: ${reason}`);
  }

  private write(clip: Clip, p: Packet): void {
    clip.src.push(p.buf);
    clip.frames++;
    if (p.end > clip.lastT) clip.lastT = p.end;
  }

  private finishClip(t: Track, why: string): void {
    const clip = t.clip;
    if (!clip) return;
    t.clip = undefined;
    const uri = t.uri;
    const done = this.finalize(clip, why).then((complete) => {
      let bytes = 0;
      try {
        renameSync(clip.part, clip.path);
        bytes = statSync(clip.path).size;
      } catch (err) {
        this.log(`[${t.id}] clip ${clip.path}: ${oneLine(err)}`);
        return;
      }
      const record: ClipRecord = {
        type: 'clip', source: t.id, uri, path: clip.path, reason: clip.reason, start: clip.startWall, end: Date.now(),
        duration_s: Math.round((clip.lastT - clip.firstT) * 1000) / 1000, frames: clip.frames, bytes, complete,
      };
      this.log(`[${t.id}] clip ${clip.path}: ${record.duration_s.toFixed(1)} s, ${(bytes / 1e6).toFixed(1)} MB (${why}${complete ? '' : '; no EOS, stopped as it was'})`);
      if (this.opts.maxBytes !== undefined) this.applyQuota(clip.path);
      try {
        this.opts.onClip?.(record);
      } catch (err) {
        this.log(`[${t.id}] clip record: ${oneLine(err)}`);
      }
    });
    this.finishing.add(done);
    void done.finally(() => this.finishing.delete(done));
  }

  /**
   * EOS into the writer and wait for it at the sink (the muxer then rewrites the header with the
   * durations), at most finalizeTimeoutMs. The bus is polled only now, so a clip holds no pool thread
   * while it records; the pipeline is stopped from inside its bus callback, which ends the poll
   * (see source.ts retire()).
   */
  private finalize(clip: Clip, _why: string): Promise<boolean> {
    const p = clip.writer;
    return new Promise<boolean>((resolve) => {
      let settled = false;
      const end = (complete: boolean) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(complete);
      };
      const timer = setTimeout(() => {
        // pause() posts state changes, and the bus callback that delivers one stops the pipeline;
        // a stop() from here could strand the poll's thread (source.ts retire()).
        end(false);
        try {
          p.pause();
        } catch {
          p.stop();
        }
        setTimeout(() => p.stop(), 1000).unref();
      }, this.opts.finalizeTimeoutMs ?? 10_000);
      p.sendEOS();
      p.pollBus((msg) => {
        if (msg.type === 'eos' || msg.type === 'error') {
          if (msg.type === 'error') this.log(`clip ${clip.path}: ${String(msg.message ?? 'error')}`);
          p.stop();
          end(msg.type === 'eos');
        } else if (settled) {
          p.stop();
        }
      });
    });
  }

  private applyQuota(keep?: string): void {
    for (const d of enforceQuota(this.dir, this.opts.maxBytes!, keep)) this.log(`clip ${d}: deleted (--record-max-mb)`);
  }
}

/**
 * The record written for every processed frame: one JSON object per line on stdout, the same object
 * the live page's feed and MQTT carry. Boxes are the detector's DetectionPixelsXYXY boxes
 * (core/model-contract.ts: continuous 0-based pixels of the source frame, the camera's resolution,
 * not the model's), rounded to 0.1 px.
 */
import type { BoxXYXY, DetectionPixelsXYXY } from '../../core/model-contract.js';
import type { FrameResult } from './scheduler.js';
import type { StreamEvent } from './events.js';

/** A DetectionPixelsXYXY on the wire: snake_case, rounded. */
export interface DetectionRecord {
  label: string;
  class_id: number;
  score: number;
  /** Pixels of the source frame, [x1, y1, x2, y2]. */
  box: BoxXYXY;
  /** With --track: the object's id across frames of this source, null until its track is confirmed. */
  track_id?: number | null;
}

export function toDetectionRecord(d: DetectionPixelsXYXY): DetectionRecord {
  return { label: d.label, class_id: d.classId, score: r3(d.score), box: [r1(d.box[0]), r1(d.box[1]), r1(d.box[2]), r1(d.box[3])] };
}

export interface FrameRecord {
  source: string;
  uri: string;
  /** Frame number of this source (frames it delivered to the detector, from 1). */
  frame: number;
  /** Media timestamp in seconds (pipeline position), null when the source has none. */
  pts: number | null;
  /** Wall clock, ms since the epoch: frame out of the pipeline, and detections ready. */
  ts: number;
  wall: number;
  latency_ms: number;
  infer_ms: number;
  width: number;
  height: number;
  detections: DetectionRecord[];
}

const r1 = (v: number) => Math.round(v * 10) / 10;
const r3 = (v: number) => Math.round(v * 1000) / 1000;

/** `trackIds` (with --track): one per detection, 0 = not tracked; every detection then has `track_id`. */
export function toRecord(r: FrameResult, uri: string, trackIds?: ArrayLike<number>): FrameRecord {
  const f = r.frame;
  return {
    source: f.sourceId,
    uri,
    frame: f.seq,
    pts: f.pts === null ? null : Math.round(f.pts * 1e6) / 1e6,
    ts: f.captureMs,
    wall: r.doneMs,
    latency_ms: r1(r.latencyMs),
    infer_ms: r1(r.inferMs),
    width: f.sourceWidth,
    height: f.sourceHeight,
    detections: r.detections.map((d, i) => {
      const rec = toDetectionRecord(d);
      if (trackIds !== undefined) rec.track_id = trackIds[i]! > 0 ? trackIds[i]! : null;
      return rec;
    }),
  };
}

/** Writes JSON lines to a stream; a reader that goes away (EPIPE: `ssd stream | head`) ends the run. */
export class JsonlWriter {
  private closed = false;
  constructor(private readonly out: NodeJS.WritableStream = process.stdout, onClosed?: () => void) {
    out.on('error', (err: NodeJS.ErrnoException) => {
      if (this.closed) return;
      this.closed = true;
      if (err.code !== 'EPIPE') process.stderr.write(`stdout: ${err.message}\n`);
      onClosed?.();
    });
  }
  /** A frame's record, or a zone/line event (--zones) on the same stream, after its frame's line. */
  write(record: FrameRecord | StreamEvent): void {
    if (!this.closed) this.out.write(`${JSON.stringify(record)}\n`);
  }
}

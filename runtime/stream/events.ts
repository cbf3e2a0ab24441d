/**
 * `ssd stream --zones FILE`: the tracked detections of each frame through the zones and lines of
 * their source (core/zones/), as events on the wire. One ZoneEngine per source, made at the source's
 * first frame (normalised coordinates need its size). Events go wherever runStream sends them: JSON
 * lines, MQTT, webhooks, /metrics, and any `onEvent` listener (a clip recorder, say).
 */
import type { BoxXYXY, DetectionPixelsXYXY } from '../../core/model-contract.js';
import type { ZonesConfig } from '../../core/zones/config.js';
import { ZoneEngine, type TrackObservation, type ZoneEvent } from '../../core/zones/engine.js';
import type { Frame } from './frame.js';

interface StreamEventBase {
  source: string;
  uri: string;
  /** The frame the event was seen in (its number, media time and wall clock as in the frame's record). */
  frame: number;
  pts: number | null;
  ts: number;
  track_id: number;
  label: string;
  class_id: number;
  /** The object's box in that frame (its last box for a track that died), source pixels. */
  box: BoxXYXY;
}

/** One zone or line event, as written on stdout (a JSON line with an "event" field), MQTT and webhooks. */
export type StreamEvent =
  | (StreamEventBase & { event: 'enter'; zone: string; /** Objects of this class in the zone now. */ occupancy: number })
  | (StreamEventBase & { event: 'leave'; zone: string; reason: 'exit' | 'lost'; dwell_s: number; occupancy: number })
  | (StreamEventBase & { event: 'loiter'; zone: string; dwell_s: number })
  | (StreamEventBase & { event: 'cross'; line: string; direction: 'in' | 'out'; /** This class's totals on the line. */ count_in: number; count_out: number });

export type StreamEventType = StreamEvent['event'];

/** A listener of runStream's events (StreamOptions.onEvent). */
export type StreamEventListener = (event: StreamEvent) => void;

const r1 = (v: number) => Math.round(v * 10) / 10;
const r3 = (v: number) => Math.round(v * 1000) / 1000;

/** A core event on the wire: snake_case, boxes to 0.1 px, seconds to 1 ms. */
export function toStreamEvent(e: ZoneEvent, frame: Frame, uri: string): StreamEvent {
  const base: StreamEventBase = {
    source: frame.sourceId, uri, frame: frame.seq, pts: frame.pts === null ? null : Math.round(frame.pts * 1e6) / 1e6, ts: frame.captureMs,
    track_id: e.trackId, label: e.label, class_id: e.classId, box: [r1(e.box[0]), r1(e.box[1]), r1(e.box[2]), r1(e.box[3])],
  };
  switch (e.type) {
    case 'enter': return { event: 'enter', ...base, zone: e.zone, occupancy: e.occupancy };
    case 'leave': return { event: 'leave', ...base, zone: e.zone, reason: e.reason, dwell_s: r3(e.dwellSeconds), occupancy: e.occupancy };
    case 'loiter': return { event: 'loiter', ...base, zone: e.zone, dwell_s: r3(e.dwellSeconds) };
    case 'cross': return { event: 'cross', ...base, line: e.line, direction: e.direction, count_in: e.countIn, count_out: e.countOut };
  }
}

export class StreamZones {
  private readonly engines = new Map<string, ZoneEngine>();

  /** `maxMisses`: the tracker's, so that a track's death (a "lost" leave) is seen when the tracker drops it. */
  constructor(readonly config: ZonesConfig, private readonly maxMisses: number) {}

  /**
   * One processed frame of a source with zones: `detections` and `trackIds` as StreamTracking.apply
   * returns them (id 0 = not a confirmed track, ignored). Media time is the frame's pts, or its wall
   * clock when the source has none. Returns the frame's events in order.
   */
  apply(frame: Frame, uri: string, detections: readonly DetectionPixelsXYXY[], trackIds: ArrayLike<number>): StreamEvent[] {
    const spec = this.config.sources.get(frame.sourceId);
    if (spec === undefined) return [];
    let engine = this.engines.get(frame.sourceId);
    if (engine === undefined) {
      engine = new ZoneEngine(spec, frame.sourceWidth, frame.sourceHeight, { maxMisses: this.maxMisses });
      this.engines.set(frame.sourceId, engine);
    } else {
      engine.resize(frame.sourceWidth, frame.sourceHeight);
    }
    const obs: TrackObservation[] = [];
    detections.forEach((d, i) => {
      const id = trackIds[i]!;
      if (id > 0) obs.push({ trackId: id, classId: d.classId, label: d.label, boxXYXY: d.box });
    });
    const t = frame.pts ?? frame.captureMs / 1000;
    return engine.update(t, obs).map((e) => toStreamEvent(e, frame, uri));
  }

  /** The engine of a source (after its first frame): occupancy and line counts. */
  engine(sourceId: string): ZoneEngine | undefined {
    return this.engines.get(sourceId);
  }
}

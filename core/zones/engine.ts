/**
 * Zones and lines of one source, fed with the tracked objects of each frame: turns positions into
 * events and keeps the counts.
 *
 * - An object's position is its box's anchor (bottom-center unless told).
 * - enter: the anchor is inside a zone, more than `hysteresis` x box height from every edge (also on a
 *   track's first frame); leave ("exit"): it is outside by that much; leave ("lost"): the track died
 *   while inside (unseen for more than `maxMisses` frames, the tracker's own rule).
 * - loiter: once per visit, when the media time since its enter reaches `loiter_seconds`.
 * - cross: the anchor went from one side of a directed line to the other, more than the margin past
 *   it, and the path between the two positions meets the line segment itself (not its extension).
 *   A position within the margin changes nothing, so a box jittering on the line counts once at most.
 *
 * Everything is in source pixels; normalised coordinates are scaled by the frame size.
 */
import type { LineSpec, SourceZonesSpec, ZoneSpec } from './config.js';
import { anchorFractions, distanceToEdges, pointInPolygon, segmentsIntersect, signedDistance } from './geometry.js';

/** One tracked object in one frame. */
export interface TrackObservation {
  trackId: number;
  classId: number;
  label: string;
  /** x1, y1, x2, y2 in source pixels. */
  boxXYXY: ArrayLike<number>;
}

interface EventBase {
  trackId: number;
  classId: number;
  label: string;
  box: [number, number, number, number];
}

export type ZoneEvent =
  | (EventBase & { type: 'enter'; zone: string; /** This class's objects in the zone now. */ occupancy: number })
  | (EventBase & { type: 'leave'; zone: string; reason: 'exit' | 'lost'; dwellSeconds: number; occupancy: number })
  | (EventBase & { type: 'loiter'; zone: string; dwellSeconds: number })
  | (EventBase & { type: 'cross'; line: string; direction: 'in' | 'out'; /** This class's totals on the line. */ countIn: number; countOut: number });

export interface ZoneEngineOptions {
  /** Frames a track may go unseen and still be alive (the tracker's maxMisses). */
  maxMisses: number;
}

interface Visit {
  enterT: number;
  loitered: boolean;
}

interface TrackState {
  classId: number;
  label: string;
  box: [number, number, number, number];
  lastUpdate: number;
  lastT: number;
  /** Zone index -> the current visit. */
  visits: Map<number, Visit>;
  /** Per line: the side of the last position clearly off the line (-1, +1; 0 = none yet). */
  sides: Int8Array;
  /** Per line: that position, x and y. */
  sidePosXY: Float64Array;
}

interface PixelZone {
  spec: ZoneSpec;
  pointsXY: Float64Array;
  fx: number;
  fy: number;
}

interface PixelLine {
  spec: LineSpec;
  fromToXY: Float64Array;
  fx: number;
  fy: number;
}

export class ZoneEngine {
  private zones: PixelZone[] = [];
  private lines: PixelLine[] = [];
  private readonly tracks = new Map<number, TrackState>();
  /** Zone index -> label -> objects inside. */
  private readonly occ: Array<Map<string, number>>;
  /** Line index -> label -> [in, out]. */
  private readonly counts: Array<Map<string, [number, number]>>;
  private updates = 0;
  private width = 0;
  private height = 0;

  constructor(readonly spec: SourceZonesSpec, frameWidth: number, frameHeight: number, private readonly o: ZoneEngineOptions) {
    this.occ = spec.zones.map(() => new Map());
    this.counts = spec.lines.map(() => new Map());
    this.resize(frameWidth, frameHeight);
  }

  /** Sets the frame size normalised coordinates are scaled by (a camera may come back at another size). */
  resize(width: number, height: number): void {
    if (width === this.width && height === this.height) return;
    this.width = width;
    this.height = height;
    const scale = (xy: Float64Array, normalized: boolean) => (normalized ? xy.map((v, i) => v * (i % 2 === 0 ? width : height)) : xy);
    this.zones = this.spec.zones.map((z) => ({ spec: z, pointsXY: scale(z.pointsXY, z.units === 'normalized'), ...anchorFractions(z.anchor) }));
    this.lines = this.spec.lines.map((l) => ({ spec: l, fromToXY: scale(l.fromToXY, l.units === 'normalized'), ...anchorFractions(l.anchor) }));
  }

  /**
   * One frame: `timeSeconds` is its media time (pts), `tracks` the confirmed tracks seen in it.
   * Returns the events in order: per object zones then lines, then the leaves of tracks that died.
   */
  update(timeSeconds: number, tracks: readonly TrackObservation[]): ZoneEvent[] {
    const now = ++this.updates;
    const events: ZoneEvent[] = [];
    for (const ob of tracks) {
      let st = this.tracks.get(ob.trackId);
      const b = ob.boxXYXY;
      const box: [number, number, number, number] = [b[0]!, b[1]!, b[2]!, b[3]!];
      if (st === undefined) {
        st = {
          classId: ob.classId, label: ob.label, box, lastUpdate: now, lastT: timeSeconds, visits: new Map(),
          sides: new Int8Array(this.lines.length), sidePosXY: new Float64Array(this.lines.length * 2),
        };
        this.tracks.set(ob.trackId, st);
      }
      st.box = box;
      st.lastUpdate = now;
      st.lastT = timeSeconds;
      const base = (): EventBase => ({ trackId: ob.trackId, classId: st!.classId, label: st!.label, box: [...box] });
      const h = Math.max(0, box[3] - box[1]);
      this.zones.forEach((z, zi) => {
        if (z.spec.classes !== undefined && !z.spec.classes.includes(st!.label)) return;
        const x = box[0] + z.fx * (box[2] - box[0]);
        const y = box[1] + z.fy * (box[3] - box[1]);
        const margin = z.spec.hysteresis * h;
        const inside = pointInPolygon(z.pointsXY, x, y);
        const clear = distanceToEdges(z.pointsXY, x, y) > margin;
        const visit = st!.visits.get(zi);
        if (visit === undefined) {
          if (!inside || !clear) return;
          st!.visits.set(zi, { enterT: timeSeconds, loitered: false });
          events.push({ ...base(), type: 'enter', zone: z.spec.name, occupancy: this.addOcc(zi, st!.label, 1) });
          return;
        }
        if (!inside && clear) {
          st!.visits.delete(zi);
          events.push({ ...base(), type: 'leave', zone: z.spec.name, reason: 'exit', dwellSeconds: Math.max(0, timeSeconds - visit.enterT), occupancy: this.addOcc(zi, st!.label, -1) });
          return;
        }
        // A media clock that went back (a camera's stream restarted) restarts the visit's clock.
        if (timeSeconds < visit.enterT) visit.enterT = timeSeconds;
        const loiter = z.spec.loiterSeconds;
        if (loiter !== undefined && !visit.loitered && timeSeconds - visit.enterT >= loiter) {
          visit.loitered = true;
          events.push({ ...base(), type: 'loiter', zone: z.spec.name, dwellSeconds: timeSeconds - visit.enterT });
        }
      });
      this.lines.forEach((l, li) => {
        if (l.spec.classes !== undefined && !l.spec.classes.includes(st!.label)) return;
        const x = box[0] + l.fx * (box[2] - box[0]);
        const y = box[1] + l.fy * (box[3] - box[1]);
        const [ax, ay, bx, by] = l.fromToXY as unknown as [number, number, number, number];
        const s = signedDistance(ax, ay, bx, by, x, y);
        const margin = l.spec.hysteresis * h;
        // Strictly beyond the margin; on the line or within the margin: no side, nothing changes.
        const side = s > margin ? 1 : s < -margin ? -1 : 0;
        if (side === 0) return;
        const prev = st!.sides[li]!;
        if (prev !== 0 && prev !== side) {
          const px = st!.sidePosXY[2 * li]!, py = st!.sidePosXY[2 * li + 1]!;
          if (segmentsIntersect(px, py, x, y, ax, ay, bx, by)) {
            const c = this.counts[li]!.get(st!.label) ?? [0, 0];
            c[side > 0 ? 0 : 1]++;
            this.counts[li]!.set(st!.label, c);
            events.push({ ...base(), type: 'cross', line: l.spec.name, direction: side > 0 ? 'in' : 'out', countIn: c[0], countOut: c[1] });
          }
        }
        st!.sides[li] = side;
        st!.sidePosXY[2 * li] = x;
        st!.sidePosXY[2 * li + 1] = y;
      });
    }
    // Deaths: the tracker removes a track after more than maxMisses frames without a match.
    const dead = [...this.tracks.entries()].filter(([, st]) => now - st.lastUpdate > this.o.maxMisses).sort((a, b) => a[0] - b[0]);
    for (const [id, st] of dead) {
      for (const [zi, visit] of [...st.visits.entries()].sort((a, b) => a[0] - b[0])) {
        events.push({
          trackId: id, classId: st.classId, label: st.label, box: [...st.box], type: 'leave', zone: this.zones[zi]!.spec.name,
          reason: 'lost', dwellSeconds: Math.max(0, st.lastT - visit.enterT), occupancy: this.addOcc(zi, st.label, -1),
        });
      }
      this.tracks.delete(id);
    }
    return events;
  }

  /** Objects inside each zone per class (every zone and class seen so far, zeros included). */
  occupancy(): Array<{ zone: string; label: string; count: number }> {
    return this.spec.zones.flatMap((z, zi) => [...this.occ[zi]!.entries()].map(([label, count]) => ({ zone: z.name, label, count })));
  }

  /** Crossings of each line per class and direction so far. */
  lineCounts(): Array<{ line: string; label: string; in: number; out: number }> {
    return this.spec.lines.flatMap((l, li) => [...this.counts[li]!.entries()].map(([label, [i, o]]) => ({ line: l.name, label, in: i, out: o })));
  }

  /** Tracks being followed (seen within maxMisses frames). */
  get trackCount(): number {
    return this.tracks.size;
  }

  private addOcc(zi: number, label: string, by: number): number {
    const m = this.occ[zi]!;
    const v = Math.max(0, (m.get(label) ?? 0) + by);
    m.set(label, v);
    return v;
  }
}

/**
 * Multi-object tracker after ByteTrack (Zhang et al. 2022): one constant-velocity Kalman filter per
 * track (core/tracking/kalman.ts), IoU association solved optimally (core/tracking/assignment.ts) in
 * ByteTrack's stages:
 *   1. high-score detections against every confirmed track, tracked or lost (lost ones come back);
 *   2. low-score detections against the confirmed tracks still unmatched that were tracked last
 *      frame (an occluded object's weak detection keeps its identity instead of becoming a miss);
 *   3. the remaining high-score detections against tentative tracks.
 * A tentative track is confirmed (and gets its id) after `minHits` consecutive hits and dropped at
 * its first miss; a confirmed track is kept through `maxMisses` frames without a match (predicted
 * meanwhile), then removed. Unmatched high-score detections of at least `newTrackThreshold` start
 * tentative tracks. Associations never pair different classes unless `perClass` is false.
 */
import { assignWithLimit } from './assignment.js';
import { kalmanInitiate, kalmanPredict, kalmanUpdate, xyahToXyxy, xyxyToXyah } from './kalman.js';

export interface TrackerOptions {
  /** Detections at or above it are "high" (stage 1 and births); ByteTrack's track_thresh. */
  highThreshold: number;
  /** Detections below it are ignored; between it and highThreshold they are "low" (stage 2). */
  lowThreshold: number;
  /** Minimum score of a detection that starts a track (ByteTrack: track_thresh + 0.1). */
  newTrackThreshold: number;
  /** Minimum IoU of a pair in stage 1 (ByteTrack's match_thresh 0.8 on 1 - IoU). */
  matchIou: number;
  /** Minimum IoU in stage 2 (ByteTrack: 0.5). */
  lowMatchIou: number;
  /** Minimum IoU between a tentative track and a detection (ByteTrack: 0.3). */
  tentativeMatchIou: number;
  /** Consecutive hits before a track is confirmed and reported (birth). */
  minHits: number;
  /** Frames a confirmed track survives without a match (death after more). */
  maxMisses: number;
  /** Only pair detections and tracks of the same class. */
  perClass: boolean;
}

export const DEFAULT_TRACKER_OPTIONS: Readonly<TrackerOptions> = {
  highThreshold: 0.5,
  lowThreshold: 0.1,
  newTrackThreshold: 0.6,
  matchIou: 0.2,
  lowMatchIou: 0.5,
  tentativeMatchIou: 0.3,
  minHits: 2,
  maxMisses: 30,
  perClass: true,
};

/** Checks options; returns a message naming the first bad field, or undefined. */
export function checkTrackerOptions(o: TrackerOptions): string | undefined {
  const unit: Array<keyof TrackerOptions> = ['highThreshold', 'lowThreshold', 'newTrackThreshold', 'matchIou', 'lowMatchIou', 'tentativeMatchIou'];
  for (const k of unit) {
    const v = o[k] as number;
    if (!(Number.isFinite(v) && v >= 0 && v <= 1)) return `${k} must be a number in [0, 1], got ${String(v)}`;
  }
  if (o.lowThreshold > o.highThreshold) return `lowThreshold (${o.lowThreshold}) must not exceed highThreshold (${o.highThreshold})`;
  if (!(Number.isInteger(o.minHits) && o.minHits >= 1)) return `minHits must be an integer >= 1, got ${String(o.minHits)}`;
  if (!(Number.isInteger(o.maxMisses) && o.maxMisses >= 0)) return `maxMisses must be an integer >= 0, got ${String(o.maxMisses)}`;
  return undefined;
}

type TrackState = 'tentative' | 'tracked' | 'lost';

interface Track {
  /** 0 while tentative; from 1 once confirmed. */
  id: number;
  state: TrackState;
  classId: number;
  score: number;
  hits: number;
  misses: number;
  mean: Float64Array;
  cov: Float64Array;
}

/** A track as reported after an update. */
export interface TrackInfo {
  id: number;
  classId: number;
  score: number;
  /** Current (updated or predicted) box, xyxy. */
  box: [number, number, number, number];
  /** Frames since its last match (0 = matched this frame). */
  misses: number;
}

export class Tracker {
  readonly options: Readonly<TrackerOptions>;
  private tracks: Track[] = [];
  private nextId = 1;
  private readonly z = new Float64Array(4);

  constructor(options: Partial<TrackerOptions> = {}) {
    const o = { ...DEFAULT_TRACKER_OPTIONS, ...options };
    const bad = checkTrackerOptions(o);
    if (bad !== undefined) throw new RangeError(`tracker: ${bad}`);
    this.options = o;
  }

  /**
   * Advances one frame. boxesXYXY holds 4 numbers per detection; returns each detection's track id
   * (0 = none: below lowThreshold, unmatched low score, or a track not confirmed yet).
   */
  update(boxesXYXY: ArrayLike<number>, scores: ArrayLike<number>, classIds: ArrayLike<number>): Int32Array {
    const o = this.options;
    const n = scores.length;
    if (boxesXYXY.length !== n * 4 || classIds.length !== n) {
      throw new RangeError(`tracker: ${boxesXYXY.length / 4} boxes, ${n} scores, ${classIds.length} classes`);
    }
    const trackOfDet: Array<Track | undefined> = new Array(n);
    for (const t of this.tracks) {
      // ByteTrack freezes the height velocity of a track it cannot see, so a lost box keeps its size.
      if (t.state === 'lost') t.mean[7] = 0;
      kalmanPredict(t.mean, t.cov);
    }
    const high: number[] = [];
    const low: number[] = [];
    for (let i = 0; i < n; i++) {
      const s = scores[i]!;
      if (s >= o.highThreshold) high.push(i);
      else if (s >= o.lowThreshold) low.push(i);
    }
    const confirmed = this.tracks.filter((t) => t.state !== 'tentative');
    const tentative = this.tracks.filter((t) => t.state === 'tentative');
    const matched = new Set<Track>();

    // Stage 1: high-score detections against every confirmed track.
    const rest1 = this.associate(confirmed, high, boxesXYXY, classIds, o.matchIou, trackOfDet, matched);
    // Stage 2: low-score detections against the tracks seen last frame that stage 1 left.
    const stillTracked = confirmed.filter((t) => !matched.has(t) && t.state === 'tracked');
    this.associate(stillTracked, low, boxesXYXY, classIds, o.lowMatchIou, trackOfDet, matched);
    // Stage 3: tentative tracks take what is left of the high-score detections.
    const rest3 = this.associate(tentative, rest1, boxesXYXY, classIds, o.tentativeMatchIou, trackOfDet, matched);

    for (const [i, t] of trackOfDet.entries()) {
      if (t === undefined) continue;
      xyxyToXyah(boxesXYXY[i * 4]!, boxesXYXY[i * 4 + 1]!, boxesXYXY[i * 4 + 2]!, boxesXYXY[i * 4 + 3]!, this.z);
      kalmanUpdate(t.mean, t.cov, this.z);
      t.score = scores[i]!;
      t.hits++;
      t.misses = 0;
      if (t.state === 'tentative') {
        if (t.hits >= o.minHits) this.confirm(t);
      } else {
        t.state = 'tracked';
      }
    }
    const survivors: Track[] = [];
    for (const t of this.tracks) {
      if (matched.has(t)) {
        survivors.push(t);
        continue;
      }
      if (t.state === 'tentative') continue;
      t.misses++;
      t.state = 'lost';
      if (t.misses <= o.maxMisses) survivors.push(t);
    }
    for (const i of rest3) {
      if (scores[i]! < o.newTrackThreshold) continue;
      const t: Track = {
        id: 0, state: 'tentative', classId: classIds[i]!, score: scores[i]!, hits: 1, misses: 0,
        mean: new Float64Array(8), cov: new Float64Array(64),
      };
      xyxyToXyah(boxesXYXY[i * 4]!, boxesXYXY[i * 4 + 1]!, boxesXYXY[i * 4 + 2]!, boxesXYXY[i * 4 + 3]!, this.z);
      kalmanInitiate(this.z, t.mean, t.cov);
      if (o.minHits <= 1) this.confirm(t);
      survivors.push(t);
      trackOfDet[i] = t;
    }
    this.tracks = survivors;
    const ids = new Int32Array(n);
    for (let i = 0; i < n; i++) ids[i] = trackOfDet[i]?.id ?? 0;
    return ids;
  }

  /** Confirmed tracks (tracked this frame or lost and still kept), with their current boxes. */
  confirmedTracks(): TrackInfo[] {
    const out: TrackInfo[] = [];
    const box = new Float64Array(4);
    for (const t of this.tracks) {
      if (t.state === 'tentative') continue;
      xyahToXyxy(t.mean, box);
      out.push({ id: t.id, classId: t.classId, score: t.score, box: [box[0]!, box[1]!, box[2]!, box[3]!], misses: t.misses });
    }
    return out;
  }

  /** Forgets every track (ids keep counting up). */
  reset(): void {
    this.tracks = [];
  }

  private confirm(t: Track): void {
    t.state = 'tracked';
    t.id = this.nextId++;
  }

  /**
   * Optimal IoU matching of `dets` (indices) to `tracks` with pairs below `minIou` forbidden;
   * records matches and returns the unmatched detection indices.
   */
  private associate(tracks: Track[], dets: number[], boxesXYXY: ArrayLike<number>, classIds: ArrayLike<number>,
    minIou: number, trackOfDet: Array<Track | undefined>, matched: Set<Track>): number[] {
    if (tracks.length === 0 || dets.length === 0) return dets;
    const nt = tracks.length;
    const nd = dets.length;
    const cost = new Float64Array(nt * nd);
    const tb = new Float64Array(4);
    for (let a = 0; a < nt; a++) {
      const t = tracks[a]!;
      xyahToXyxy(t.mean, tb);
      const areaT = Math.max(0, tb[2]! - tb[0]!) * Math.max(0, tb[3]! - tb[1]!);
      for (let b = 0; b < nd; b++) {
        const i = dets[b]!;
        let iou = 0;
        if (!this.options.perClass || classIds[i] === t.classId) {
          const x1 = boxesXYXY[i * 4]!, y1 = boxesXYXY[i * 4 + 1]!, x2 = boxesXYXY[i * 4 + 2]!, y2 = boxesXYXY[i * 4 + 3]!;
          const iw = Math.min(tb[2]!, x2) - Math.max(tb[0]!, x1);
          const ih = Math.min(tb[3]!, y2) - Math.max(tb[1]!, y1);
          if (iw > 0 && ih > 0) {
            const inter = iw * ih;
            const union = areaT + Math.max(0, x2 - x1) * Math.max(0, y2 - y1) - inter;
            iou = union > 0 ? inter / union : 0;
          }
        }
        cost[a * nd + b] = 1 - iou;
      }
    }
    // A pair is allowed when 1 - IoU < 1 - minIou, i.e. IoU > minIou (ByteTrack's strict limit).
    const rowToCol = assignWithLimit(cost, nt, nd, 1 - minIou);
    const taken = new Uint8Array(nd);
    for (let a = 0; a < nt; a++) {
      const b = rowToCol[a]!;
      if (b < 0) continue;
      taken[b] = 1;
      trackOfDet[dets[b]!] = tracks[a];
      matched.add(tracks[a]!);
    }
    return dets.filter((_, b) => taken[b] === 0);
  }
}

/**
 * CLEAR-MOT and identity metrics computed as py-motmetrics (cheind/py-motmetrics, mot.py and
 * metrics.py) computes them, so numbers here compare with published ones:
 *  - per frame, ground-truth objects and hypotheses are paired where their distance is finite
 *    (distance = 1 - IoU, not pairable when IoU < 0.5: mm.distances.iou_matrix(max_iou=0.5));
 *  - a pair matched before (the object's last hypothesis) is kept if it is still pairable, even if
 *    a closer hypothesis exists; the rest are paired by an optimal assignment (most pairs, then
 *    least distance); a pair whose object was last matched to another hypothesis is a SWITCH;
 *  - unpaired objects are misses, unpaired hypotheses false positives;
 *  - MOTA = 1 - (misses + false positives + switches) / objects; MOTP = mean distance of pairs;
 *  - IDF1 (Ristani et al. 2016): one global one-to-one mapping of object ids to hypothesis ids that
 *    maximises the frames in which mapped pairs are pairable (IDTP); IDF1 = 2 IDTP / (objects +
 *    hypotheses), summed over frames.
 */
import { assignFinite, solveAssignment } from './assignment.js';

/** 1 - IoU for every (object, hypothesis) pair, row-major, NaN where IoU < minIou (default 0.5). */
export function iouDistances(objectsXYXY: ArrayLike<number>, hypothesesXYXY: ArrayLike<number>, minIou = 0.5): Float64Array {
  const no = objectsXYXY.length >> 2;
  const nh = hypothesesXYXY.length >> 2;
  const out = new Float64Array(no * nh);
  for (let i = 0; i < no; i++) {
    const a0 = objectsXYXY[i * 4]!, a1 = objectsXYXY[i * 4 + 1]!, a2 = objectsXYXY[i * 4 + 2]!, a3 = objectsXYXY[i * 4 + 3]!;
    const areaA = Math.max(0, a2 - a0) * Math.max(0, a3 - a1);
    for (let j = 0; j < nh; j++) {
      const b0 = hypothesesXYXY[j * 4]!, b1 = hypothesesXYXY[j * 4 + 1]!, b2 = hypothesesXYXY[j * 4 + 2]!, b3 = hypothesesXYXY[j * 4 + 3]!;
      const iw = Math.min(a2, b2) - Math.max(a0, b0);
      const ih = Math.min(a3, b3) - Math.max(a1, b1);
      const inter = iw > 0 && ih > 0 ? iw * ih : 0;
      const union = areaA + Math.max(0, b2 - b0) * Math.max(0, b3 - b1) - inter;
      const d = 1 - (union > 0 ? inter / union : 0);
      out[i * nh + j] = d > 1 - minIou ? NaN : d;
    }
  }
  return out;
}

export type MotEventType = 'MATCH' | 'SWITCH' | 'MISS' | 'FP';

export interface MotEvent {
  frame: number;
  type: MotEventType;
  object?: number;
  hypothesis?: number;
  distance?: number;
}

export interface MotSummary {
  frames: number;
  /** Ground-truth object occurrences (num_objects). */
  objects: number;
  /** Hypothesis occurrences (num_predictions). */
  hypotheses: number;
  matches: number;
  switches: number;
  falsePositives: number;
  misses: number;
  mota: number;
  motp: number;
  idtp: number;
  idfp: number;
  idfn: number;
  idf1: number;
  /** Distinct ground-truth ids and hypothesis ids. */
  uniqueObjects: number;
  uniqueHypotheses: number;
}

/** py-motmetrics' MOTAccumulator (max_switch_time = infinity). */
export class MotAccumulator {
  readonly events: MotEvent[] = [];
  private frames = 0;
  /** Object id -> the hypothesis it was last paired with (self.m). */
  private readonly last = new Map<number, number>();
  /** Frames each (object, hypothesis) pair was pairable, for IDF1; key `${o} ${h}`. */
  private readonly pairable = new Map<string, number>();
  private readonly objectFrames = new Map<number, number>();
  private readonly hypothesisFrames = new Map<number, number>();

  /** One frame: object ids, hypothesis ids and their distances (row-major, NaN = not pairable). */
  update(objectIds: ArrayLike<number>, hypothesisIds: ArrayLike<number>, distOH: ArrayLike<number>): void {
    const no = objectIds.length;
    const nh = hypothesisIds.length;
    if (distOH.length !== no * nh) throw new RangeError(`MotAccumulator.update: ${distOH.length} distances for ${no} x ${nh}`);
    const frame = this.frames++;
    for (let i = 0; i < no; i++) inc(this.objectFrames, objectIds[i]!);
    for (let j = 0; j < nh; j++) inc(this.hypothesisFrames, hypothesisIds[j]!);
    for (let i = 0; i < no; i++) {
      for (let j = 0; j < nh; j++) {
        if (Number.isFinite(distOH[i * nh + j]!)) inc(this.pairable, `${objectIds[i]!} ${hypothesisIds[j]!}`);
      }
    }
    const oDone = new Uint8Array(no);
    const hDone = new Uint8Array(nh);
    if (no > 0 && nh > 0) {
      // 1. Pairs carried over from earlier frames.
      for (let i = 0; i < no; i++) {
        const o = objectIds[i]!;
        const hPrev = this.last.get(o);
        if (hPrev === undefined) continue;
        let j = -1;
        for (let k = 0; k < nh; k++) {
          if (!hDone[k] && hypothesisIds[k] === hPrev) {
            j = k;
            break;
          }
        }
        if (j < 0 || !Number.isFinite(distOH[i * nh + j]!)) continue;
        oDone[i] = 1;
        hDone[j] = 1;
        this.events.push({ frame, type: 'MATCH', object: o, hypothesis: hPrev, distance: distOH[i * nh + j]! });
      }
      // 2. Optimal assignment of the rest.
      const rest = new Float64Array(no * nh);
      for (let i = 0; i < no; i++) {
        for (let j = 0; j < nh; j++) rest[i * nh + j] = oDone[i] || hDone[j] ? NaN : distOH[i * nh + j]!;
      }
      const rowToCol = assignFinite(rest, no, nh);
      for (let i = 0; i < no; i++) {
        const j = rowToCol[i]!;
        if (j < 0) continue;
        const o = objectIds[i]!;
        const h = hypothesisIds[j]!;
        const prev = this.last.get(o);
        this.events.push({ frame, type: prev !== undefined && prev !== h ? 'SWITCH' : 'MATCH', object: o, hypothesis: h, distance: rest[i * nh + j]! });
        oDone[i] = 1;
        hDone[j] = 1;
        this.last.set(o, h);
      }
    }
    for (let i = 0; i < no; i++) if (!oDone[i]) this.events.push({ frame, type: 'MISS', object: objectIds[i]! });
    for (let j = 0; j < nh; j++) if (!hDone[j]) this.events.push({ frame, type: 'FP', hypothesis: hypothesisIds[j]! });
  }

  summary(): MotSummary {
    let matches = 0, switches = 0, falsePositives = 0, misses = 0, dist = 0;
    for (const e of this.events) {
      if (e.type === 'MATCH') matches++;
      else if (e.type === 'SWITCH') switches++;
      else if (e.type === 'FP') falsePositives++;
      else misses++;
      if (e.distance !== undefined) dist += e.distance;
    }
    const objects = sum(this.objectFrames);
    const hypotheses = sum(this.hypothesisFrames);
    const idtp = this.identityTruePositives();
    return {
      frames: this.frames, objects, hypotheses, matches, switches, falsePositives, misses,
      mota: objects > 0 ? 1 - (misses + falsePositives + switches) / objects : NaN,
      motp: matches + switches > 0 ? dist / (matches + switches) : NaN,
      idtp, idfp: hypotheses - idtp, idfn: objects - idtp,
      idf1: objects + hypotheses > 0 ? (2 * idtp) / (objects + hypotheses) : NaN,
      uniqueObjects: this.objectFrames.size, uniqueHypotheses: this.hypothesisFrames.size,
    };
  }

  /** The best one-to-one id mapping's pairable frames (maximum-weight bipartite matching). */
  private identityTruePositives(): number {
    const oids = [...this.objectFrames.keys()];
    const hids = [...this.hypothesisFrames.keys()];
    if (oids.length === 0 || hids.length === 0) return 0;
    const cost = new Float64Array(oids.length * hids.length);
    for (const [a, o] of oids.entries()) {
      for (const [b, h] of hids.entries()) cost[a * hids.length + b] = -(this.pairable.get(`${o} ${h}`) ?? 0);
    }
    const rowToCol = solveAssignment(cost, oids.length, hids.length);
    let idtp = 0;
    for (let a = 0; a < oids.length; a++) if (rowToCol[a]! >= 0) idtp -= cost[a * hids.length + rowToCol[a]!]!;
    return idtp;
  }
}

function inc<K>(m: Map<K, number>, k: K): void {
  m.set(k, (m.get(k) ?? 0) + 1);
}

function sum(m: Map<unknown, number>): number {
  let s = 0;
  for (const v of m.values()) s += v;
  return s;
}

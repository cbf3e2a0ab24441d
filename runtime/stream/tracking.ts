/**
 * `ssd stream --track`: one core Tracker per source (core/tracking/tracker.ts) between the detector
 * and the sinks. The detector is asked for everything down to the tracker's low threshold (ByteTrack
 * uses the weak detections to keep occluded objects), and what reaches the output is every detection
 * at or above --threshold, tracked or not, plus the weak ones that continued a confirmed track.
 */
import type { DetectionPixelsXYXY } from '../../core/model-contract.js';
import { Tracker, checkTrackerOptions, DEFAULT_TRACKER_OPTIONS, type TrackerOptions } from '../../core/tracking/tracker.js';
import { SsdError } from '../../core/errors.js';

export interface StreamTrackOptions {
  /** Lowest detection score the tracker looks at (default 0.1); at most the stream's threshold. */
  lowThreshold?: number;
  /** Consecutive hits before a track gets an id (default 2). */
  minHits?: number;
  /** Frames a track outlives its last match (default 30). */
  maxMisses?: number;
}

export interface TrackedDetections {
  detections: DetectionPixelsXYXY[];
  /** Per detection: its track id, 0 = none (tentative track or unmatched). */
  trackIds: Int32Array;
}

export class StreamTracking {
  private readonly trackers = new Map<string, Tracker>();
  private readonly options: TrackerOptions;

  /** `threshold` is the stream's --threshold: the tracker's high threshold. */
  constructor(readonly threshold: number, o: StreamTrackOptions = {}) {
    this.options = {
      ...DEFAULT_TRACKER_OPTIONS,
      highThreshold: threshold,
      lowThreshold: Math.min(o.lowThreshold ?? DEFAULT_TRACKER_OPTIONS.lowThreshold, threshold),
      // ByteTrack's det_thresh: a track starts only from a detection clearly above the high threshold.
      newTrackThreshold: Math.min(1, threshold + 0.1),
      minHits: o.minHits ?? DEFAULT_TRACKER_OPTIONS.minHits,
      maxMisses: o.maxMisses ?? DEFAULT_TRACKER_OPTIONS.maxMisses,
    };
    if (o.lowThreshold !== undefined && o.lowThreshold > threshold) {
      throw new SsdError(`--track-low ${o.lowThreshold} must not exceed --threshold ${threshold}`);
    }
    const bad = checkTrackerOptions(this.options);
    if (bad !== undefined) throw new SsdError(`--track: ${bad}`);
  }

  /** The score the detector must report down to. */
  get detectThreshold(): number {
    return this.options.lowThreshold;
  }

  /** Tracks one frame of `sourceId`; returns what to report and the ids. */
  apply(sourceId: string, dets: readonly DetectionPixelsXYXY[]): TrackedDetections {
    let tracker = this.trackers.get(sourceId);
    if (tracker === undefined) {
      tracker = new Tracker(this.options);
      this.trackers.set(sourceId, tracker);
    }
    const n = dets.length;
    const boxes = new Float64Array(n * 4);
    const scores = new Float64Array(n);
    const classes = new Int32Array(n);
    dets.forEach((d, i) => {
      boxes.set(d.box, i * 4);
      scores[i] = d.score;
      classes[i] = d.classId;
    });
    const ids = tracker.update(boxes, scores, classes);
    const keep: number[] = [];
    for (let i = 0; i < n; i++) if (dets[i]!.score >= this.threshold || ids[i]! > 0) keep.push(i);
    return { detections: keep.map((i) => dets[i]!), trackIds: Int32Array.from(keep, (i) => ids[i]!) };
  }
}

/** What every frame source yields and reports, GStreamer-backed or not. */
import type { RawFrame } from '../preprocess.js';

export interface Frame extends RawFrame {
  sourceId: string;
  /** Frames delivered by this source so far, from 1. */
  seq: number;
  /** Media timestamp in seconds (the pipeline position when the frame was taken), null when unknown. */
  pts: number | null;
  /** Wall-clock time (ms since the epoch) when the frame left the pipeline. */
  captureMs: number;
  /** The same instant on the monotonic clock (performance.now()), for latency arithmetic. */
  captureMono: number;
  sourceWidth: number;
  sourceHeight: number;
}

export type SourceState = 'connecting' | 'playing' | 'reconnecting' | 'ended' | 'failed' | 'closed';

export interface SourceStats {
  state: SourceState;
  /** Frames handed to the detector. */
  frames: number;
  /** Frames the source produced that were never detected (newest-frame policy), from timestamps. */
  dropped: number;
  /** Successful reconnections after the stream went down. */
  reconnects: number;
  /** Last error text, if any. */
  lastError?: string;
}

export interface FrameSource {
  readonly id: string;
  /** URI for logs and output, passwords redacted. */
  readonly display: string;
  /** A camera (newest frame wins, reconnects) rather than a file (every frame, ends at EOS). */
  readonly live: boolean;
  readonly stats: SourceStats;
  /** Opens the source; resolves once it is producing frames, throws an SsdError if it cannot. */
  start(): Promise<void>;
  /** The newest frame not yet returned (waits for one), or null once the source has ended. */
  next(): Promise<Frame | null>;
  /** Starts fetching the next frame now (files: decode overlaps inference). No-op for cameras. */
  prefetch(): void;
  /**
   * Optional, cameras that keep their newest frame in hand (GstFrameSource): resolves once `poll()`
   * has a frame or the source has ended or failed; takes nothing. A scheduler waits on this instead of
   * holding a frame of its own, which would go stale while other sources are served.
   */
  ready?(): Promise<void>;
  /** With `ready`: the newest frame not taken yet, at once; undefined = none right now, null = ended. Throws if the source failed. */
  poll?(): Frame | null | undefined;
  close(): void;
}

/** Logger for one-line progress and warnings (stderr in the CLI). */
export type LogFn = (line: string) => void;

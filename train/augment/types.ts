/**
 * The sample every augmentation step takes and returns: an RGB image as float32 HWC (0..255 before
 * Normalize) and its ground-truth boxes in pixels, corners (x1, y1, x2, y2) on the continuous pixel
 * grid (a box covering pixel columns 3..5 is x1 = 3, x2 = 6).
 */
export interface AugImage {
  /** H * W * 3, row-major, channels last. */
  dataHWC: Float32Array;
  width: number;
  height: number;
}

export interface AugSample {
  image: AugImage;
  /** N * 4, pixels. */
  boxesXYXY: Float32Array;
  /** N class ids (background = 0 is never a ground truth). */
  labels: Int32Array;
  /** N flags, 1 = VOC "difficult" (trained on, ignored by evaluation). */
  difficult: Uint8Array;
}

/** The part of core/rng's generator the steps use; seeded, so one seed replays one augmentation. */
export interface AugRng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number;
}

/** A named step with its parameters: pipelines are data (see pipeline.ts). */
export interface AugStep {
  readonly name: string;
  apply(sample: AugSample, rng: AugRng): AugSample;
}

export const numBoxes = (s: AugSample): number => s.labels.length;

/** A copy of the sample keeping only boxes whose index passes `keep`. */
export function filterBoxes(s: AugSample, keep: (i: number) => boolean, boxesXYXY = s.boxesXYXY): AugSample {
  const idx: number[] = [];
  for (let i = 0; i < s.labels.length; i++) if (keep(i)) idx.push(i);
  const boxes = new Float32Array(idx.length * 4);
  idx.forEach((j, k) => boxes.set(boxesXYXY.subarray(j * 4, j * 4 + 4), k * 4));
  return {
    image: s.image,
    boxesXYXY: boxes,
    labels: Int32Array.from(idx, (j) => s.labels[j]!),
    difficult: Uint8Array.from(idx, (j) => s.difficult[j]!),
  };
}

export function checkProbability(step: string, p: number): number {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`${step}: probability must be in [0, 1], got ${p}`);
  return p;
}

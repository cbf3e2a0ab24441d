/**
 * Training batches from a Dataset: decode (imageio/decode.ts, the runtime's decode; EXIF orientation
 * applied), augment (augment/pipeline.ts, whose final Resize + Normalize are the core's
 * preprocessing, core/preprocess.ts), match to the default boxes (core/matching.ts), batch. Batches
 * are prepared `prefetch` ahead as promises, so decoding of the next batches runs while the current
 * step computes.
 *
 * Everything random is a pure function of (seed, position in the sample stream): epoch e visits the
 * samples in a permutation drawn from seed and e, and the k-th sample of the stream is augmented with
 * its own generator seeded from (seed, k). Prefetching therefore never changes what a batch holds, and
 * resuming needs only the stream position.
 *
 * A sample that cannot be read (missing, corrupt, not an image) is dropped from its batch with one
 * warning naming the file and the reason, and skipped from then on; training never stops mid-epoch.
 */
import { createRng } from '../core/rng.js';
import { cxcywhToXYXY } from '../core/box-coding.js';
import { matchDefaultBoxes } from '../core/matching.js';
import { SsdError, oneLine } from '../core/errors.js';
import { PictureError, decodePicture } from '../imageio/decode.js';
import type { Dataset, Sample } from '../core/datasets/types.js';
import type { SsdSpec } from '../core/specs.js';
import { runPipeline } from './augment/pipeline.js';
import type { AugSample, AugStep } from './augment/types.js';

/** One decoded RGB image, 0..255, HWC, upright (EXIF orientation applied; annotations are read in these pixels). */
export interface DecodedImage { dataHWC: Uint8Array; width: number; height: number }

export interface TrainBatch {
  /** Number of images actually in the batch (malformed samples dropped). */
  size: number;
  /** size * S * S * 3, network input (mean-subtracted, spec channel order). */
  imagesNHWC: Float32Array;
  /** size * P * 4 encoded offsets. */
  locTargets: Float32Array;
  /** size * P class per default box. */
  labels: Int32Array;
  numPositive: number;
  ids: string[];
}

/**
 * Boxes of a sample in continuous pixel coordinates (x2 - x1 = width in pixels). VOC annotations are
 * 1-based inclusive, so x1 - 1; COCO boxes already are continuous.
 */
export function sampleBoxesXYXY(sample: Sample, vocStyle: boolean): Float32Array {
  const out = new Float32Array(sample.objects.length * 4);
  sample.objects.forEach((o, i) => {
    const [x1, y1, x2, y2] = o.box;
    out.set(vocStyle ? [x1 - 1, y1 - 1, x2, y2] : [x1, y1, x2, y2], i * 4);
  });
  return out;
}

/** Back to the dataset's convention (for detections handed to the evaluator). */
export function toDatasetBox(x1: number, y1: number, x2: number, y2: number, vocStyle: boolean): [number, number, number, number] {
  return vocStyle ? [x1 + 1, y1 + 1, x2, y2] : [x1, y1, x2, y2];
}

export const isVocStyle = (ds: Dataset): boolean => ds.cocoCategoryIds === undefined;

/** Mixes two integers into a seed (a cheap, well-spread hash; splitmix-style finaliser). */
export function mixSeed(a: number, b: number): number {
  let h = (Math.imul(a >>> 0, 0x9e3779b1) ^ Math.imul((b >>> 0) + 0x7f4a7c15, 0x85ebca6b)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Reads and caches decoded images; remembers files that failed. */
export class ImageSource {
  private readonly cache = new Map<string, DecodedImage>();
  private cachedBytes = 0;
  readonly failed = new Map<string, string>();

  constructor(private readonly cacheLimitBytes = 512 * 1024 * 1024, private readonly warn: (line: string) => void = () => {}) {}

  /** The image, or undefined after a warning naming the file and the reason. */
  private readonly inFlight = new Map<string, Promise<DecodedImage | undefined>>();

  load(path: string): Promise<DecodedImage | undefined> {
    const hit = this.cache.get(path);
    if (hit) return Promise.resolve(hit);
    if (this.failed.has(path)) return Promise.resolve(undefined);
    // Prefetched batches may ask for the same file at once (small datasets): decode it once.
    let p = this.inFlight.get(path);
    if (!p) {
      p = this.decode(path).finally(() => this.inFlight.delete(path));
      this.inFlight.set(path, p);
    }
    return p;
  }

  private async decode(path: string): Promise<DecodedImage | undefined> {
    try {
      // The same decode as `ssd detect` and export verification (imageio/decode.ts), so that all give
      // the model the same pixels for the same file.
      const pic = await decodePicture(path);
      const img: DecodedImage = { dataHWC: pic.data, width: pic.width, height: pic.height };
      if (this.cachedBytes + pic.data.byteLength <= this.cacheLimitBytes) {
        this.cache.set(path, img);
        this.cachedBytes += pic.data.byteLength;
      }
      return img;
    } catch (err) {
      // A setting that no file can fix (SSD_JPEG_DECODER=typo) stops training instead of skipping all.
      if (err instanceof SsdError && !(err instanceof PictureError)) throw err;
      const why = err instanceof PictureError ? err.reason : oneLine(err);
      this.failed.set(path, why);
      this.warn(`skipping ${path}: ${why}`);
      return undefined;
    }
  }
}

export interface DataLoaderOptions {
  dataset: Dataset;
  spec: SsdSpec;
  /** Augmentation steps; the last ones must bring the image to the input size and normalise it. */
  steps: readonly AugStep[];
  batchSize: number;
  seed: number;
  /** Micro-batches prepared ahead of the one being consumed. */
  prefetch?: number;
  shuffle?: boolean;
  images?: ImageSource;
  warn?: (line: string) => void;
  /** Matching threshold (SSD-SPEC: 0.5). */
  matchThreshold?: number;
}

export class DataLoader {
  readonly spec: SsdSpec;
  readonly batchSize: number;
  private readonly priorsCXCYWH: Float32Array;
  private readonly priorsXYXY: Float32Array;
  private readonly pending = new Map<number, Promise<TrainBatch>>();
  private readonly images: ImageSource;
  private readonly vocStyle: boolean;
  private permutation: { epoch: number; order: Uint32Array } | undefined;

  constructor(readonly opts: DataLoaderOptions, priorsCXCYWH: Float32Array) {
    if (opts.dataset.samples.length === 0) throw new Error(`dataset ${opts.dataset.name} has no samples`);
    this.spec = opts.spec;
    this.batchSize = opts.batchSize;
    this.priorsCXCYWH = priorsCXCYWH;
    this.priorsXYXY = cxcywhToXYXY(priorsCXCYWH);
    this.images = opts.images ?? new ImageSource(undefined, opts.warn);
    this.vocStyle = isVocStyle(opts.dataset);
  }

  get numSamples(): number { return this.opts.dataset.samples.length; }

  /** Dataset index of the k-th sample of the stream. */
  sampleIndex(k: number): number {
    const n = this.numSamples;
    const epoch = Math.floor(k / n);
    if (this.opts.shuffle === false) return k % n;
    if (!this.permutation || this.permutation.epoch !== epoch) {
      const rng = createRng(mixSeed(this.opts.seed, 0x5eed0000 + epoch));
      const order = new Uint32Array(n);
      for (let i = 0; i < n; i++) order[i] = i;
      for (let i = n - 1; i > 0; i--) {
        const j = rng.int(i + 1);
        const t = order[i]!; order[i] = order[j]!; order[j] = t;
      }
      this.permutation = { epoch, order };
    }
    return this.permutation.order[k % n]!;
  }

  /** Micro-batch m: stream positions [m * B, (m + 1) * B). Also starts preparing the next ones. */
  batch(m: number): Promise<TrainBatch> {
    const ahead = this.opts.prefetch ?? 2;
    for (const key of [...this.pending.keys()]) if (key < m) this.pending.delete(key);
    for (let j = m; j <= m + ahead; j++) if (!this.pending.has(j)) this.pending.set(j, this.build(j));
    const p = this.pending.get(m)!;
    this.pending.delete(m);
    return p;
  }

  private async build(m: number): Promise<TrainBatch> {
    const B = this.batchSize;
    // Resolve the sample indices synchronously: the permutation cache is shared between builds.
    const positions = Array.from({ length: B }, (_, i) => m * B + i);
    const indices = positions.map((k) => this.sampleIndex(k));
    const decoded = await Promise.all(indices.map((i) => this.images.load(this.opts.dataset.samples[i]!.imagePath)));
    const S = this.spec.inputSize;
    const P = this.priorsCXCYWH.length / 4;
    const parts: { image: Float32Array; loc: Float32Array; labels: Int32Array; pos: number; id: string }[] = [];
    decoded.forEach((img, b) => {
      if (!img) return;
      const sample = this.opts.dataset.samples[indices[b]!]!;
      const out = this.augment(sample, img, positions[b]!);
      if (out.image.width !== S || out.image.height !== S) throw new Error(`augmentation pipeline must end at ${S}x${S} (Resize), got ${out.image.width}x${out.image.height}`);
      const t = this.targets(out);
      parts.push({ image: out.image.dataHWC, loc: t.locTargets, labels: t.labels, pos: t.numPositive, id: sample.id });
    });
    const n = parts.length;
    const batch: TrainBatch = {
      size: n,
      imagesNHWC: new Float32Array(n * S * S * 3),
      locTargets: new Float32Array(n * P * 4),
      labels: new Int32Array(n * P),
      numPositive: 0,
      ids: [],
    };
    parts.forEach((p, i) => {
      batch.imagesNHWC.set(p.image, i * S * S * 3);
      batch.locTargets.set(p.loc, i * P * 4);
      batch.labels.set(p.labels, i * P);
      batch.numPositive += p.pos;
      batch.ids.push(p.id);
    });
    return batch;
  }

  /** Augments one decoded sample with the generator of stream position k. */
  augment(sample: Sample, img: DecodedImage, k: number): AugSample {
    const boxes = sampleBoxesXYXY(sample, this.vocStyle);
    const aug: AugSample = {
      image: { dataHWC: Float32Array.from(img.dataHWC), width: img.width, height: img.height },
      boxesXYXY: boxes,
      labels: Int32Array.from(sample.objects, (o) => o.classId),
      difficult: Uint8Array.from(sample.objects, (o) => (o.difficult ? 1 : 0)),
    };
    return runPipeline(this.opts.steps, aug, createRng(mixSeed(this.opts.seed, k)));
  }

  /** Matching of the (augmented, input-sized) sample's boxes to the default boxes. */
  targets(s: AugSample): { locTargets: Float32Array; labels: Int32Array; numPositive: number } {
    const S = s.image.width;
    const n = s.labels.length;
    const gt: number[] = [];
    const labels: number[] = [];
    for (let i = 0; i < n; i++) {
      const x1 = Math.max(0, s.boxesXYXY[i * 4]! / S), y1 = Math.max(0, s.boxesXYXY[i * 4 + 1]! / s.image.height);
      const x2 = Math.min(1, s.boxesXYXY[i * 4 + 2]! / S), y2 = Math.min(1, s.boxesXYXY[i * 4 + 3]! / s.image.height);
      if (!(x2 > x1 && y2 > y1)) continue;
      gt.push(x1, y1, x2, y2);
      labels.push(s.labels[i]!);
    }
    return matchDefaultBoxes(Float32Array.from(gt), Int32Array.from(labels), this.priorsCXCYWH, {
      threshold: this.opts.matchThreshold ?? 0.5, variances: this.spec.variances, priorsXYXY: this.priorsXYXY,
    });
  }
}

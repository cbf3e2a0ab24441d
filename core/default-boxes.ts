/**
 * Default (prior) boxes of an SSD (SSD-SPEC "Default boxes"), in the order the heads emit their
 * predictions: maps in source order, then row y, then column x, then the k boxes of a location:
 * square of side min, square of side sqrt(min * max), then for each ratio r: min*sqrt(r) x min/sqrt(r)
 * and its flip. Centres at ((x + 0.5) * step, (y + 0.5) * step) / inputSize. Coordinates in [0, 1]
 * of the input image, as (cx, cy, w, h); clipped only when spec.clipBoxes (the reference does not);
 * clamped as (cx, cy, w, h) when spec.clampPriors (the PyTorch ports).
 */
import type { FeatureMapSpec, SsdSpec } from './specs.js';
import { boxesPerLocation } from './specs.js';
import { cxcywhToXYXY } from './box-coding.js';

const cache = new Map<string, Float32Array>();

/** What the boxes depend on; two specs with the same key have the same boxes. */
function cacheKey(spec: SsdSpec): string {
  return JSON.stringify([spec.inputSize, spec.clipBoxes, spec.clampPriors ?? '', spec.maps.map((m) => [m.size, m.step, m.minSize, m.maxSize, m.aspectRatios])]);
}

/** Width/height pairs (fractions of the input) of the k boxes of one location, in head order. */
export function boxShapes(map: FeatureMapSpec, inputSize: number): Array<[number, number]> {
  const min = map.minSize / inputSize;
  const max = map.maxSize / inputSize;
  const shapes: Array<[number, number]> = [[min, min]];
  const big = Math.sqrt(min * max);
  shapes.push([big, big]);
  for (const r of map.aspectRatios) {
    const s = Math.sqrt(r);
    shapes.push([min * s, min / s], [min / s, min * s]);
  }
  return shapes;
}

function compute(spec: SsdSpec): Float32Array {
  let total = 0;
  for (const m of spec.maps) total += m.size * m.size * boxesPerLocation(m);
  const out = new Float32Array(total * 4);
  let o = 0;
  for (const m of spec.maps) {
    // The PyTorch ports (spec.clampPriors): w and h at most 1 (SSD300's last map: 0.87 * sqrt(2) -> 1).
    const shapes = boxShapes(m, spec.inputSize).map(([w, h]): [number, number] => (spec.clampPriors ? [Math.min(1, w), Math.min(1, h)] : [w, h]));
    // ssd.pytorch / lufficc clamp the centres too (SSD300's 10x10 map at step 32 reaches 1.013).
    const clampCentre = (v: number): number => (spec.clampPriors === 'cxcywh' ? Math.min(1, Math.max(0, v)) : v);
    for (let y = 0; y < m.size; y++) {
      const cy = clampCentre(((y + 0.5) * m.step) / spec.inputSize);
      for (let x = 0; x < m.size; x++) {
        const cx = clampCentre(((x + 0.5) * m.step) / spec.inputSize);
        for (const [w, h] of shapes) {
          if (spec.clipBoxes) {
            // Clip the corners (as Caffe's PriorBox does), then go back to centre-size.
            const x1 = Math.max(0, cx - w / 2), y1 = Math.max(0, cy - h / 2);
            const x2 = Math.min(1, cx + w / 2), y2 = Math.min(1, cy + h / 2);
            out[o++] = (x1 + x2) / 2;
            out[o++] = (y1 + y2) / 2;
            out[o++] = x2 - x1;
            out[o++] = y2 - y1;
          } else {
            out[o++] = cx;
            out[o++] = cy;
            out[o++] = w;
            out[o++] = h;
          }
        }
      }
    }
  }
  return out;
}

/** The default boxes as (cx, cy, w, h) in [0, 1], P * 4 floats. A fresh copy each call (callers may write to it). */
export function defaultBoxes(spec: SsdSpec): Float32Array {
  const key = cacheKey(spec);
  let boxes = cache.get(key);
  if (!boxes) {
    boxes = compute(spec);
    cache.set(key, boxes);
  }
  return boxes.slice();
}

/** The same boxes as (x1, y1, x2, y2). */
export function defaultBoxesXYXY(spec: SsdSpec): Float32Array {
  return cxcywhToXYXY(defaultBoxes(spec));
}

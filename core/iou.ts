/**
 * Jaccard overlap of boxes in continuous [0, 1] (or pixel) coordinates: area = (x2 - x1) * (y2 - y1),
 * no "+1 pixel" (that convention belongs to the VOC devkit and lives in core/eval).
 */

/** IoU of box `ai` of `a` and box `bi` of `b` (xyxy, 4 numbers per box). Degenerate boxes give 0. */
export function iou(a: ArrayLike<number>, b: ArrayLike<number>, ai = 0, bi = 0): number {
  const a0 = a[ai * 4]!, a1 = a[ai * 4 + 1]!, a2 = a[ai * 4 + 2]!, a3 = a[ai * 4 + 3]!;
  const b0 = b[bi * 4]!, b1 = b[bi * 4 + 1]!, b2 = b[bi * 4 + 2]!, b3 = b[bi * 4 + 3]!;
  const iw = Math.min(a2, b2) - Math.max(a0, b0);
  if (iw <= 0) return 0;
  const ih = Math.min(a3, b3) - Math.max(a1, b1);
  if (ih <= 0) return 0;
  const inter = iw * ih;
  const union = Math.max(0, a2 - a0) * Math.max(0, a3 - a1) + Math.max(0, b2 - b0) * Math.max(0, b3 - b1) - inter;
  return union > 0 ? inter / union : 0;
}

/** Pairwise IoU, row-major [na * nb]: out[i * nb + j] = iou(a_i, b_j). */
export function iouMatrix(aXYXY: Float32Array, bXYXY: Float32Array, out?: Float32Array): Float32Array {
  const na = aXYXY.length >> 2;
  const nb = bXYXY.length >> 2;
  const res = out ?? new Float32Array(na * nb);
  if (res.length < na * nb) throw new RangeError(`iouMatrix: out has ${res.length} entries, needs ${na * nb}`);
  const areaB = new Float64Array(nb);
  for (let j = 0; j < nb; j++) {
    areaB[j] = Math.max(0, bXYXY[j * 4 + 2]! - bXYXY[j * 4]!) * Math.max(0, bXYXY[j * 4 + 3]! - bXYXY[j * 4 + 1]!);
  }
  for (let i = 0; i < na; i++) {
    const a0 = aXYXY[i * 4]!, a1 = aXYXY[i * 4 + 1]!, a2 = aXYXY[i * 4 + 2]!, a3 = aXYXY[i * 4 + 3]!;
    const areaA = Math.max(0, a2 - a0) * Math.max(0, a3 - a1);
    const row = i * nb;
    for (let j = 0; j < nb; j++) {
      const iw = Math.min(a2, bXYXY[j * 4 + 2]!) - Math.max(a0, bXYXY[j * 4]!);
      const ih = Math.min(a3, bXYXY[j * 4 + 3]!) - Math.max(a1, bXYXY[j * 4 + 1]!);
      if (iw <= 0 || ih <= 0) {
        res[row + j] = 0;
        continue;
      }
      const inter = iw * ih;
      const union = areaA + areaB[j]! - inter;
      res[row + j] = union > 0 ? inter / union : 0;
    }
  }
  return res;
}

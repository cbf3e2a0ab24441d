/**
 * Centre-size box coding with variances (SSD-SPEC "Box coding"):
 *   tx = (gcx - dcx) / (v0 dw), ty = (gcy - dcy) / (v1 dh), tw = log(gw / dw) / v2, th = log(gh / dh) / v3.
 * Ground truth and decoded boxes are xyxy; default boxes (priors) are cxcywh, as defaultBoxes() gives them.
 */

export type Variances = readonly [number, number, number, number];

/**
 * Largest log-scale a decoded box may take, log(1000 / 16) as torchvision's BoxCoder: an untrained or
 * corrupt network can emit huge tw/th, and exp() of them would give Infinity boxes that poison IoU/NMS.
 * No trained SSD comes near it (a box 62x its default box).
 */
export const MAX_LOG_SCALE = Math.log(1000 / 16);

/**
 * Encodes one ground-truth box per prior: gtXYXY[i] against priorsCXCYWH[i] (same count), written to
 * out (length P*4). Used for the matched priors of an image; rows of priors that matched nothing are
 * simply not read by the loss.
 */
export function encodeBoxes(gtXYXY: Float32Array, priorsCXCYWH: Float32Array, variances: Variances, out?: Float32Array): Float32Array {
  const n = priorsCXCYWH.length >> 2;
  if (gtXYXY.length !== priorsCXCYWH.length) {
    throw new RangeError(`encodeBoxes: ${gtXYXY.length / 4} ground-truth boxes for ${n} priors (need one per prior)`);
  }
  const res = out ?? new Float32Array(n * 4);
  encodeInto(gtXYXY, 0, priorsCXCYWH, 0, variances, res, 0, n);
  return res;
}

/** Encodes `count` boxes starting at box offsets gtAt / priorAt / outAt (in boxes, not floats). */
export function encodeInto(
  gtXYXY: ArrayLike<number>, gtAt: number, priorsCXCYWH: ArrayLike<number>, priorAt: number,
  variances: Variances, out: Float32Array, outAt: number, count: number,
): void {
  const [v0, v1, v2, v3] = variances;
  for (let i = 0; i < count; i++) {
    const g = (gtAt + i) * 4, d = (priorAt + i) * 4, o = (outAt + i) * 4;
    const gw = gtXYXY[g + 2]! - gtXYXY[g]!;
    const gh = gtXYXY[g + 3]! - gtXYXY[g + 1]!;
    const gcx = gtXYXY[g]! + gw / 2;
    const gcy = gtXYXY[g + 1]! + gh / 2;
    const dcx = priorsCXCYWH[d]!, dcy = priorsCXCYWH[d + 1]!, dw = priorsCXCYWH[d + 2]!, dh = priorsCXCYWH[d + 3]!;
    out[o] = (gcx - dcx) / (v0 * dw);
    out[o + 1] = (gcy - dcy) / (v1 * dh);
    out[o + 2] = Math.log(gw / dw) / v2;
    out[o + 3] = Math.log(gh / dh) / v3;
  }
}

/** Decodes P regressions (locP4) against P priors into xyxy boxes. The inverse of encodeBoxes. */
export function decodeBoxes(locP4: Float32Array, priorsCXCYWH: Float32Array, variances: Variances, out?: Float32Array): Float32Array {
  const n = priorsCXCYWH.length >> 2;
  if (locP4.length < n * 4) throw new RangeError(`decodeBoxes: ${locP4.length / 4} regressions for ${n} priors`);
  const res = out ?? new Float32Array(n * 4);
  decodeInto(locP4, 0, priorsCXCYWH, 0, variances, res, 0, n);
  return res;
}

/** Decodes `count` boxes starting at box offsets locAt / priorAt / outAt (batch rows share the priors). */
export function decodeInto(
  locP4: ArrayLike<number>, locAt: number, priorsCXCYWH: ArrayLike<number>, priorAt: number,
  variances: Variances, out: Float32Array, outAt: number, count: number,
): void {
  const [v0, v1, v2, v3] = variances;
  for (let i = 0; i < count; i++) {
    const l = (locAt + i) * 4, d = (priorAt + i) * 4, o = (outAt + i) * 4;
    const dw = priorsCXCYWH[d + 2]!, dh = priorsCXCYWH[d + 3]!;
    const cx = priorsCXCYWH[d]! + locP4[l]! * v0 * dw;
    const cy = priorsCXCYWH[d + 1]! + locP4[l + 1]! * v1 * dh;
    const hw = (Math.exp(Math.min(locP4[l + 2]! * v2, MAX_LOG_SCALE)) * dw) / 2;
    const hh = (Math.exp(Math.min(locP4[l + 3]! * v3, MAX_LOG_SCALE)) * dh) / 2;
    out[o] = cx - hw;
    out[o + 1] = cy - hh;
    out[o + 2] = cx + hw;
    out[o + 3] = cy + hh;
  }
}

/** cxcywh -> xyxy. */
export function cxcywhToXYXY(boxesCXCYWH: Float32Array, out?: Float32Array): Float32Array {
  const res = out ?? new Float32Array(boxesCXCYWH.length);
  for (let i = 0; i < boxesCXCYWH.length; i += 4) {
    const cx = boxesCXCYWH[i]!, cy = boxesCXCYWH[i + 1]!, hw = boxesCXCYWH[i + 2]! / 2, hh = boxesCXCYWH[i + 3]! / 2;
    res[i] = cx - hw;
    res[i + 1] = cy - hh;
    res[i + 2] = cx + hw;
    res[i + 3] = cy + hh;
  }
  return res;
}

/** xyxy -> cxcywh. */
export function xyxyToCXCYWH(boxesXYXY: Float32Array, out?: Float32Array): Float32Array {
  const res = out ?? new Float32Array(boxesXYXY.length);
  for (let i = 0; i < boxesXYXY.length; i += 4) {
    const w = boxesXYXY[i + 2]! - boxesXYXY[i]!, h = boxesXYXY[i + 3]! - boxesXYXY[i + 1]!;
    res[i] = boxesXYXY[i]! + w / 2;
    res[i + 1] = boxesXYXY[i + 1]! + h / 2;
    res[i + 2] = w;
    res[i + 3] = h;
  }
  return res;
}

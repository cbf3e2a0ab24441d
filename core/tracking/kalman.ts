/**
 * Constant-velocity Kalman filter of a box, as ByteTrack (and DeepSORT before it) keeps one: state
 * [cx, cy, a, h, vcx, vcy, va, vh] (centre, aspect ratio w/h, height, and their velocities per
 * frame), measurement [cx, cy, a, h]. Noise scales with the box height so that the same filter suits
 * near and far objects. State and covariance live in the caller's typed arrays (8 and 8x8 row-major)
 * so that a tracker's boxes are plain numbers, no objects per frame.
 */

const STD_POSITION = 1 / 20;
const STD_VELOCITY = 1 / 160;

/** Writes [cx, cy, a, h] of an xyxy box into out[0..3]. */
export function xyxyToXyah(x1: number, y1: number, x2: number, y2: number, out: Float64Array): void {
  const w = x2 - x1;
  const h = y2 - y1;
  out[0] = x1 + w / 2;
  out[1] = y1 + h / 2;
  out[2] = h > 0 ? w / h : 0;
  out[3] = h;
}

/** Writes the xyxy box of state mean[0..3] into out[o..o+3]. */
export function xyahToXyxy(mean: Float64Array, out: Float32Array | Float64Array, o = 0): void {
  const h = mean[3]!;
  const w = mean[2]! * h;
  out[o] = mean[0]! - w / 2;
  out[o + 1] = mean[1]! - h / 2;
  out[o + 2] = mean[0]! + w / 2;
  out[o + 3] = mean[1]! + h / 2;
}

/** A fresh track from measurement z = [cx, cy, a, h]: zero velocity, wide velocity uncertainty. */
export function kalmanInitiate(z: Float64Array, mean: Float64Array, cov: Float64Array): void {
  const h = z[3]!;
  mean.fill(0);
  for (let k = 0; k < 4; k++) mean[k] = z[k]!;
  const std = [2 * STD_POSITION * h, 2 * STD_POSITION * h, 1e-2, 2 * STD_POSITION * h,
    10 * STD_VELOCITY * h, 10 * STD_VELOCITY * h, 1e-5, 10 * STD_VELOCITY * h];
  cov.fill(0);
  for (let k = 0; k < 8; k++) cov[k * 9] = std[k]! * std[k]!;
}

/**
 * One step ahead (dt frames, 1 by default): x += v * dt, P = F P F^T + Q. With P = [[A, B], [B^T, C]]
 * in 4x4 blocks and F = [[I, dt I], [0, I]], F P F^T = [[A + dt(B + B^T) + dt^2 C, B + dt C],
 * [B^T + dt C, C]], computed in place without a general 8x8 product.
 */
export function kalmanPredict(mean: Float64Array, cov: Float64Array, dt = 1): void {
  const h = mean[3]!;
  for (let k = 0; k < 4; k++) mean[k] += dt * mean[k + 4]!;
  // Upper-left block first (it reads B and C, which the next loops change only through B).
  for (let r = 0; r < 4; r++) {
    for (let c = 0; c < 4; c++) {
      const a = cov[r * 8 + c]!;
      const b = cov[r * 8 + c + 4]!;
      const bt = cov[(r + 4) * 8 + c]!;
      const cc = cov[(r + 4) * 8 + c + 4]!;
      cov[r * 8 + c] = a + dt * (b + bt) + dt * dt * cc;
    }
  }
  for (let r = 0; r < 4; r++) {
    for (let c = 0; c < 4; c++) {
      const cc = cov[(r + 4) * 8 + c + 4]!;
      cov[r * 8 + c + 4] += dt * cc;
      cov[(r + 4) * 8 + c] += dt * cc;
    }
  }
  const sp = [STD_POSITION * h, STD_POSITION * h, 1e-2, STD_POSITION * h];
  const sv = [STD_VELOCITY * h, STD_VELOCITY * h, 1e-5, STD_VELOCITY * h];
  for (let k = 0; k < 4; k++) {
    cov[k * 9] += sp[k]! * sp[k]!;
    cov[(k + 4) * 9] += sv[k]! * sv[k]!;
  }
}

/** Corrects the state with measurement z = [cx, cy, a, h] (H = [I 0], R scaled by the height). */
export function kalmanUpdate(mean: Float64Array, cov: Float64Array, z: Float64Array): void {
  const h = mean[3]!;
  const r = [STD_POSITION * h, STD_POSITION * h, 1e-1, STD_POSITION * h];
  // S = P[0:4, 0:4] + R, then its inverse.
  const s = new Float64Array(16);
  for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) s[i * 4 + j] = cov[i * 8 + j]!;
  for (let k = 0; k < 4; k++) s[k * 5] += r[k]! * r[k]!;
  const sInv = invert4(s);
  // K = P[:, 0:4] S^-1 (8x4).
  const gain = new Float64Array(32);
  for (let i = 0; i < 8; i++) {
    for (let j = 0; j < 4; j++) {
      let acc = 0;
      for (let k = 0; k < 4; k++) acc += cov[i * 8 + k]! * sInv[k * 4 + j]!;
      gain[i * 4 + j] = acc;
    }
  }
  const innov = [z[0]! - mean[0]!, z[1]! - mean[1]!, z[2]! - mean[2]!, z[3]! - mean[3]!];
  for (let i = 0; i < 8; i++) {
    mean[i] += gain[i * 4]! * innov[0]! + gain[i * 4 + 1]! * innov[1]! + gain[i * 4 + 2]! * innov[2]! + gain[i * 4 + 3]! * innov[3]!;
  }
  // P -= K S K^T = K (H P) since K S = P H^T: P_ij -= sum_k K_ik P_kj (k < 4).
  const top = cov.slice(0, 32);
  for (let i = 0; i < 8; i++) {
    for (let j = 0; j < 8; j++) {
      let acc = 0;
      for (let k = 0; k < 4; k++) acc += gain[i * 4 + k]! * top[k * 8 + j]!;
      cov[i * 8 + j] -= acc;
    }
  }
}

/** Inverse of a 4x4 matrix by Gauss-Jordan with partial pivoting (S is symmetric positive definite). */
function invert4(m: Float64Array): Float64Array {
  const a = Float64Array.from(m);
  const inv = new Float64Array(16);
  for (let k = 0; k < 4; k++) inv[k * 5] = 1;
  for (let col = 0; col < 4; col++) {
    let piv = col;
    for (let r = col + 1; r < 4; r++) if (Math.abs(a[r * 4 + col]!) > Math.abs(a[piv * 4 + col]!)) piv = r;
    if (piv !== col) {
      for (let c = 0; c < 4; c++) {
        [a[col * 4 + c], a[piv * 4 + c]] = [a[piv * 4 + c]!, a[col * 4 + c]!];
        [inv[col * 4 + c], inv[piv * 4 + c]] = [inv[piv * 4 + c]!, inv[col * 4 + c]!];
      }
    }
    const d = a[col * 4 + col]!;
    for (let c = 0; c < 4; c++) {
      a[col * 4 + c] /= d;
      inv[col * 4 + c] /= d;
    }
    for (let r = 0; r < 4; r++) {
      if (r === col) continue;
      const f = a[r * 4 + col]!;
      if (f === 0) continue;
      for (let c = 0; c < 4; c++) {
        a[r * 4 + c] -= f * a[col * 4 + c]!;
        inv[r * 4 + c] -= f * inv[col * 4 + c]!;
      }
    }
  }
  return inv;
}

/**
 * A small seedable PRNG (sfc32, 128-bit state) whose whole state is four integers, so a trainer can
 * save it in a checkpoint and resume the exact same random stream. Not for cryptography.
 */
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  /** Uniform in [a, b). */
  uniform(a: number, b: number): number;
  /** Standard normal (Box-Muller; draws two uniforms per call so the state stays four integers). */
  normal(): number;
  /** The four 32-bit state words (unsigned). */
  getState(): number[];
  setState(state: readonly number[]): void;
}

const TWO_POW_32 = 4294967296;

/** splitmix32: spreads a small or sequential seed over all state bits. */
function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

export function createRng(seed: number): Rng {
  if (!Number.isFinite(seed)) throw new RangeError(`createRng: seed must be a finite number, got ${seed}`);
  // Seeds beyond 32 bits (e.g. Date.now()) fold their high part in rather than being truncated away.
  const mix = splitmix32((Math.floor(seed) ^ Math.floor(seed / TWO_POW_32)) >>> 0);
  let a = mix();
  let b = mix();
  let c = mix();
  let d = mix();
  const nextU32 = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
  // Discard the first outputs: sfc32 mixes its state in a few rounds.
  for (let i = 0; i < 12; i++) nextU32();
  const next = (): number => nextU32() / TWO_POW_32;
  return {
    next,
    int(n: number): number {
      if (!(n >= 1)) throw new RangeError(`rng.int: n must be >= 1, got ${n}`);
      return Math.floor(next() * Math.floor(n));
    },
    uniform(lo: number, hi: number): number {
      return lo + (hi - lo) * next();
    },
    normal(): number {
      const u = 1 - next(); // (0, 1]: log stays finite
      const v = next();
      return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    },
    getState(): number[] {
      return [a >>> 0, b >>> 0, c >>> 0, d >>> 0];
    },
    setState(state: readonly number[]): void {
      if (!Array.isArray(state) || state.length !== 4 || !state.every((x) => Number.isInteger(x) && x >= 0 && x < TWO_POW_32)) {
        throw new RangeError('rng.setState: expected four unsigned 32-bit integers');
      }
      a = state[0]! | 0;
      b = state[1]! | 0;
      c = state[2]! | 0;
      d = state[3]! | 0;
    },
  };
}

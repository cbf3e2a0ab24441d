/**
 * "Did you mean ...?" for a mistyped name (a config key, a flag, a step parameter): the known names the
 * typed one most likely meant. Case differences count as nothing (`batchnorm` -> `batchNorm`); beyond
 * that, an abbreviation (`nmsThresh` -> `nmsThreshold`) or a couple of edits (`stpes` -> `steps`).
 */

/** Edit distance with adjacent transpositions (optimal string alignment). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The known names closest to `typed` (closest first, at most three when several are equally close);
 * none when nothing is close: at most about one edit in three characters, or a prefix of two or more.
 */
export function nearestNames(typed: string, known: readonly string[]): string[] {
  const t = typed.replace(/^-+/, '').toLowerCase();
  if (t === '') return [];
  const scored = known.map((k) => {
    const dist = editDistance(t, k.toLowerCase());
    const prefix = k.toLowerCase().startsWith(t) && t.length >= 2;
    return { k, score: prefix && dist > 0 ? 0.5 : dist, close: prefix || dist <= Math.max(1, Math.floor(Math.max(t.length, k.length) / 3)) };
  }).filter((s) => s.close);
  if (scored.length === 0) return [];
  const best = Math.min(...scored.map((s) => s.score));
  return scored.filter((s) => s.score === best).map((s) => s.k).slice(0, 3);
}

/** " (did you mean x?)", " (did you mean x or y?)", or "" when nothing is close. */
export function didYouMean(typed: string, known: readonly string[]): string {
  const near = nearestNames(typed, known);
  return near.length ? ` (did you mean ${near.join(' or ')}?)` : '';
}

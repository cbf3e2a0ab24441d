// The core benchmark (core/postprocess-bench.ts, ssd bench --core) at a few iterations: it must run, agree with its
// reference implementation and print its table. The timing goal itself is checked by `npm run bench`.
import { describe, expect, it } from 'vitest';
import { formatCoreBench, referencePostprocess, runCoreBench, syntheticHeadOutputs } from '../../core/postprocess-bench.js';
import { defaultBoxes } from '../../core/default-boxes.js';
import { postprocess } from '../../core/postprocess.js';
import { createRng } from '../../core/rng.js';
import { specByName } from '../../core/specs.js';

describe('bench-core', () => {
  it('runs SSD300 (8732 x 21) and both implementations give the same detections', async () => {
    const r = await runCoreBench({ iterations: 3, warmup: 1, images: 2, seed: 4 });
    expect([r.boxes, r.classes, r.iterations]).toEqual([8732, 21, 3]);
    expect(r.sameDetections).toBe(true);
    expect(r.detectionsPerImage).toBeGreaterThan(0);
    expect(r.candidatesPerImage).toBeGreaterThan(r.detectionsPerImage);
    for (const s of [r.optimized, r.reference]) {
      expect(s.minMs).toBeGreaterThan(0);
      expect(s.p50Ms).toBeGreaterThanOrEqual(s.minMs);
      expect(s.p95Ms).toBeGreaterThanOrEqual(s.p50Ms);
    }
    const text = formatCoreBench(r);
    expect(text).toMatch(/\| core\/postprocess\.ts \(typed arrays\) \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \|/);
    expect(text).toMatch(/same detections: yes/);
  });

  it('the synthetic scores look like a trained SSD: mostly background, clusters of confident boxes, a tail around 0.01', () => {
    const spec = specByName('ssd300');
    const { loc, logits } = syntheticHeadOutputs(spec, createRng(2));
    const priors = defaultBoxes(spec);
    const det = postprocess(loc, logits, priors, spec);
    const ref = referencePostprocess(loc, logits, priors, spec);
    expect(det.count).toBe(ref.length);
    expect(det.scores[0]).toBeGreaterThan(0.5);
    expect(det.scores[det.count - 1]).toBeLessThan(0.05);
    const strong = Array.from(det.scores).filter((s) => s > 0.5).length;
    expect(strong).toBeGreaterThan(1);
    expect(strong).toBeLessThan(60);
  });
});

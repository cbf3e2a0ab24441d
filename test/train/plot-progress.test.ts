import { describe, expect, it } from 'vitest';
import { downsample, renderCurveSvg } from '../../train/plot.js';
import { formatDuration, formatProgress, ProgressBar } from '../../train/progress.js';

describe('progress line', () => {
  it('shows loss parts, lr, img/s and ETA', () => {
    expect(formatDuration(59)).toBe('59s');
    expect(formatDuration(61)).toBe('1m01s');
    expect(formatDuration(3 * 3600 + 120)).toBe('3h02m');
    const line = formatProgress({ iteration: 50, loss: 3.25, loc: 1, conf: 2.25, lr: 1e-3, imagesPerSecond: 12.5 }, 100, 10);
    expect(line).toBe('iter 50/100 [====>     ] loss 3.250 (loc 1.000 conf 2.250) lr 1.00e-3 12.5 img/s');
    const chunks: string[] = [];
    const stream = { isTTY: false, write: (s: string) => { chunks.push(s); return true; } } as unknown as NodeJS.WritableStream;
    const bar = new ProgressBar({ total: 100, stream, logEverySeconds: 3600 });
    bar.update({ iteration: 1, loss: 1, loc: 0.5, conf: 0.5, lr: 1e-3, imagesPerSecond: 2 }, 0.5);
    bar.update({ iteration: 2, loss: 1, loc: 0.5, conf: 0.5, lr: 1e-3, imagesPerSecond: 2 }, 0.5);
    expect(chunks).toHaveLength(1);
    expect(chunks[0]).toContain('ETA 50s');
  });
});

describe('training curve SVG', () => {
  it('draws loss parts and mAP; long histories are averaged down', () => {
    const n = 5000;
    const its = Array.from({ length: n }, (_, i) => i);
    const [xs, ys] = downsample(its, its.map((i) => (i % 2 ? 2 : 0)), 500);
    expect(xs.length).toBeLessThanOrEqual(500);
    for (const y of ys) expect(y).toBeCloseTo(1, 5);
    const svg = renderCurveSvg({ iterations: its, loss: its.map((i) => 10 / (1 + i / 100)), loc: its.map(() => 1), conf: its.map(() => 2), map: [{ iteration: 2500, map: 0.5 }, { iteration: 4999, map: 0.91 }], title: 'a <b>' });
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.trim().endsWith('</svg>')).toBe(true);
    expect(svg.match(/<polyline/g)).toHaveLength(4);
    expect(svg).toContain('a &lt;b&gt;');
    expect(svg).toContain('last 0.910');
  });
});

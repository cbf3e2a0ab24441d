// The soak benchmark's library (runtime/stream/soak.ts), kept working: the verdict and table on
// hand-made samples, and a real `ssd stream` child sampled a few times at a short interval (the run
// ends after a number of samples, not after a time; every wait is for an event).
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CHROMIUM, formatSoak, parseMetrics, runSoak, soakVerdict, type SoakSample } from '../../runtime/stream/soak.js';
import { tempDir } from '../helpers/temp-dir.js';
import { WAIT_MS } from '../helpers/wait.js';
import { SSD_BIN, tinyModel } from './helpers.js';

const sample = (minute: number, rssMb: number): SoakSample => ({ t: minute * 60, rssMb, anonMb: rssMb / 2, fileMb: rssMb / 2, threads: 30, sseRate: 30, sseMessages: 0 });

describe('soak verdict', () => {
  it('measures growth from the first sample at or after the baseline, and the slope carried to 2 hours', () => {
    // Start-up growth before minute 10 is not counted; 200 -> 204 MB over 50 minutes: +2%, 0.08 MB/min.
    const samples = [sample(0, 150), sample(5, 190), ...Array.from({ length: 11 }, (_, i) => sample(10 + 5 * i, 200 + 0.4 * i))];
    const v = soakVerdict(samples, 600)!;
    expect(v.baselineT).toBe(600);
    expect(v.baselineRssMb).toBe(200);
    expect(v.endRssMb).toBeCloseTo(204, 9);
    expect(v.growthPct).toBeCloseTo(2, 9);
    expect(v.slopeMbPerMin).toBeCloseTo(0.08, 9);
    // 0.08 MB/min over the 110 minutes from minute 10 to 120: 8.8 MB, 4.4% of 200 MB.
    expect(v.projected2hPct).toBeCloseTo(4.4, 9);
    expect(v.met).toBe(true);
    // Too few samples after the baseline: no verdict.
    expect(soakVerdict(samples.slice(0, 3), 600)).toBeUndefined();
    const text = formatSoak({ samples, verdict: v, reason: 'done', page: 'client', source: 'test://', model: 'm.onnx', env: {}, cpu: 'cpu', cores: 2, loadAverage: [1, 1], startedAt: 'now' }, 600);
    expect(text).toContain('| 10.0 | 200.0 |');
    expect(text).toContain('+2.00%');
    expect(text).toContain(': met');
  });

  it('reads Prometheus text, summing the per-source series', () => {
    const m = parseMetrics('# HELP x y\nssd_frames_total{source="src0"} 3\nssd_frames_total{source="src1"} 4\nnodejs_heap_size_used_bytes 1048576\nssd_latency_seconds_bucket{le="0.1"} 9\n');
    expect(m.get('ssd_frames_total')).toBe(7);
    expect(m.get('nodejs_heap_size_used_bytes')).toBe(1048576);
    expect(m.has('ssd_latency_seconds_bucket')).toBe(false);
  });
});

describe('soak run', () => {
  const pages = existsSync(DEFAULT_CHROMIUM) ? ['client', 'chromium'] as const : ['client'] as const;
  for (const page of pages) {
    it(`samples the ssd stream process with the page as ${page} and stops it cleanly`, { timeout: 4 * WAIT_MS }, async () => {
      const dir = tempDir('ssd-soak-');
      const seen: SoakSample[] = [];
      const r = await runSoak({
        ssdBin: SSD_BIN, model: tinyModel(dir), source: 'test://ball?width=160&height=120&fps=30', page,
        durationMs: 2 * WAIT_MS, maxSamples: 3, sampleMs: 200, metricsMs: 100, baselineMs: 0,
        onSample: (s) => seen.push(s), log: () => {},
      });
      expect(r.reason, r.stderrTail).toBe('done');
      expect(r.samples).toHaveLength(3);
      expect(seen).toHaveLength(3);
      for (const s of r.samples) {
        // The pool child's RSS (a Node process with onnxruntime, sharp and GStreamer: far above 20 MB),
        // and the process memory that /metrics exposes.
        expect(s.rssMb).toBeGreaterThan(20);
        expect(s.anonMb + s.fileMb).toBeCloseTo(s.rssMb, 0);
        expect(s.heapMb).toBeGreaterThan(1);
        expect(s.externalMb).toBeGreaterThan(0);
        expect(s.frames).toBeGreaterThanOrEqual(1);
        // The clock starts once the feed and the page have had a message.
        expect(s.sseMessages).toBeGreaterThanOrEqual(1);
        expect(s.pageMessages).toBeGreaterThanOrEqual(1);
      }
      expect(r.samples[2]!.t).toBeGreaterThan(r.samples[0]!.t);
      expect(r.verdict).toBeDefined();
    });
  }
});

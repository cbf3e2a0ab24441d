import { describe, expect, it } from 'vitest';
import { Counter, Histogram, Registry, StreamMetrics, formatLabels } from '../../runtime/stream/metrics.js';

describe('Prometheus text format', () => {
  it('histogram buckets are cumulative, with +Inf, _sum and _count (hand-computed)', () => {
    const r = new Registry();
    const h = r.add(new Histogram('x_seconds', 'help text', [0.1, 0.5, 1]));
    for (const v of [0.05, 0.1, 0.3, 0.7, 2]) h.observe({ source: 'src0' }, v);
    expect(r.render()).toBe([
      '# HELP x_seconds help text',
      '# TYPE x_seconds histogram',
      'x_seconds_bucket{source="src0",le="0.1"} 2',
      'x_seconds_bucket{source="src0",le="0.5"} 3',
      'x_seconds_bucket{source="src0",le="1"} 4',
      'x_seconds_bucket{source="src0",le="+Inf"} 5',
      'x_seconds_sum{source="src0"} 3.15',
      'x_seconds_count{source="src0"} 5',
      '',
    ].join('\n'));
  });

  it('counters per label set; label values escaped', () => {
    const c = new Counter('n_total', 'h');
    c.inc({ source: 'a' });
    c.inc({ source: 'a' }, 2);
    c.inc({ source: 'b"\\\n' });
    expect(c.render()).toEqual(['n_total{source="a"} 3', 'n_total{source="b\\"\\\\\\n"} 1']);
    expect(formatLabels({})).toBe('');
  });

  it('stream metrics: fps over the window, reconnects and dropped frames per source', () => {
    const m = new StreamMetrics();
    for (let i = 0; i <= 10; i++) m.frame('src0', 40, 2, 1000 + i * 100); // 10 intervals of 100 ms: 10 fps
    m.run(25);
    m.sourceStats('src0', { dropped: 7, reconnects: 2, state: 'playing' });
    const text = m.registry.render();
    expect(text).toContain('ssd_frames_total{source="src0"} 11');
    expect(text).toContain('ssd_detections_total{source="src0"} 22');
    expect(text).toContain('ssd_fps{source="src0"} 10');
    expect(text).toContain('ssd_dropped_frames_total{source="src0"} 7');
    expect(text).toContain('ssd_reconnects_total{source="src0"} 2');
    expect(text).toContain('ssd_source_up{source="src0"} 1');
    expect(text).toContain('ssd_latency_seconds_bucket{source="src0",le="0.05"} 11');
    expect(text).toContain('ssd_latency_seconds_bucket{source="src0",le="0.025"} 0');
    expect(text).toContain('ssd_inference_seconds_count 1');
  });
});

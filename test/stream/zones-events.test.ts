// runtime/stream/events.ts in-process: tracked detections of frames -> event records (the wire shape),
// one engine per source, media time from pts (the wall clock without), and the metrics they feed.
import { describe, expect, it } from 'vitest';
import type { DetectionPixelsXYXY } from '../../core/model-contract.js';
import { parseZonesText } from '../../core/zones/config.js';
import { StreamZones } from '../../runtime/stream/events.js';
import type { Frame } from '../../runtime/stream/frame.js';
import { StreamMetrics } from '../../runtime/stream/metrics.js';

const ZONES = `units: pixels
sources:
  src0:
    zones: [{name: pen, points: [[0, 0], [100, 0], [100, 100], [0, 100]], loiter_seconds: 1}]
    lines: [{name: fence, from: [100, 0], to: [100, 200]}]
  src1:
    lines: [{name: fence, from: [0, 50], to: [200, 50]}]
`;

const frame = (sourceId: string, seq: number, pts: number | null, captureMs = 1_000_000 + seq * 100): Frame =>
  ({ sourceId, seq, pts, captureMs, captureMono: 0, sourceWidth: 200, sourceHeight: 200, data: Buffer.alloc(0), width: 1, height: 1, format: 'rgb', stride: 3 }) as Frame;
/** A 20x40 box whose bottom-center is (x, y). */
const det = (x: number, y: number, label = 'cat', classId = 3): DetectionPixelsXYXY => ({ label, classId, score: 0.9, box: [x - 10.04, y - 40, x + 10.04, y] });

describe('StreamZones', () => {
  it('events with the documented fields, after a frame of the right source; untracked detections ignored', () => {
    const z = new StreamZones(parseZonesText(ZONES, 'z.yaml'), 2);
    const m = new StreamMetrics();
    const uri = 'file:///x.mp4';
    const all = [
      z.apply(frame('src0', 1, 0), uri, [det(120, 50), det(50, 50)], [4, 0]),
      z.apply(frame('src0', 2, 0.5), uri, [det(60, 50)], [4]),
      z.apply(frame('src0', 3, 1.5), uri, [det(60, 50)], [4]),
      // No pts: the frame's wall clock is the media time.
      z.apply(frame('src1', 1, null), uri, [det(20, 40)], [1]),
      z.apply(frame('src1', 2, null), uri, [det(20, 70)], [1]),
    ].flat();
    for (const e of all) m.event(e);
    // Per object: zones first, then lines. Right to left across a top-to-bottom line is "in".
    const cat = { label: 'cat', class_id: 3 };
    expect(all).toEqual([
      { event: 'enter', source: 'src0', uri, frame: 2, pts: 0.5, ts: 1_000_200, track_id: 4, ...cat, box: [50, 10, 70, 50], zone: 'pen', occupancy: 1 },
      { event: 'cross', source: 'src0', uri, frame: 2, pts: 0.5, ts: 1_000_200, track_id: 4, ...cat, box: [50, 10, 70, 50], line: 'fence', direction: 'in', count_in: 1, count_out: 0 },
      { event: 'loiter', source: 'src0', uri, frame: 3, pts: 1.5, ts: 1_000_300, track_id: 4, ...cat, box: [50, 10, 70, 50], zone: 'pen', dwell_s: 1 },
      { event: 'cross', source: 'src1', uri, frame: 2, pts: null, ts: 1_000_200, track_id: 1, ...cat, box: [10, 30, 30, 70], line: 'fence', direction: 'in', count_in: 1, count_out: 0 },
    ]);
    // The track dies after 2 unseen frames (maxMisses 2): a "lost" leave with its last box.
    expect(z.apply(frame('src0', 4, 2), uri, [], [])).toEqual([]);
    expect(z.apply(frame('src0', 5, 2.5), uri, [], [])).toEqual([]);
    const lost = z.apply(frame('src0', 6, 3), uri, [], []);
    expect(lost).toEqual([{ event: 'leave', source: 'src0', uri, frame: 6, pts: 3, ts: 1_000_600, track_id: 4, label: 'cat', class_id: 3, box: [50, 10, 70, 50], zone: 'pen', reason: 'lost', dwell_s: 1, occupancy: 0 }]);
    m.event(lost[0]!);
    const text = m.registry.render();
    expect(text).toContain('ssd_line_crossings_total{source="src0",line="fence",class="cat",direction="in"} 1');
    expect(text).toContain('ssd_line_crossings_total{source="src1",line="fence",class="cat",direction="in"} 1');
    expect(text).toContain('ssd_zone_occupancy{source="src0",zone="pen",class="cat"} 0');
    expect(text).toContain('ssd_events_total{source="src0",type="loiter"} 1');
    expect(text).toContain('ssd_events_total{source="src0",type="leave"} 1');
    expect(z.engine('src1')!.lineCounts()).toEqual([{ line: 'fence', label: 'cat', in: 1, out: 0 }]);
  });
});

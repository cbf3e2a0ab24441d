// Zones and lines (core/zones/): the YAML subset, the file checks, the geometry and the per-track
// state machine, on hand-computed cases.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SsdError } from '../../core/errors.js';
import { loadZonesFile, parseZonesText, type SourceZonesSpec } from '../../core/zones/config.js';
import { ZoneEngine, type ZoneEvent } from '../../core/zones/engine.js';
import { anchorFractions, distanceToEdges, pointInPolygon, segmentsIntersect, selfIntersection, signedDistance } from '../../core/zones/geometry.js';
import { parseYaml } from '../../core/zones/yaml.js';

describe('YAML subset', () => {
  it('block mappings and sequences, "- key:" items, flow collections over lines, scalars, comments', () => {
    const text = [
      '--- # a zones file',
      'units: normalized',
      'sources:',
      '  src0:',
      '    zones:',
      '      - name: "door #1"   # quoted: the # is text',
      '        points: [[0.1, 0.5], [0.4, 0.5],',
      '                 [0.4, 1]]',
      '        loiter_seconds: 2.5',
      '        classes: [person, \'car\']',
      '    lines:',
      '    - name: gate',
      '      from: [0, .6]',
      '      to: {x: 1, y: -1e-1}',
      '      on: true',
      '      off: ~',
      '      empty:',
      '      text: it\'s fine',
    ].join('\n');
    expect(parseYaml(text)).toEqual({
      units: 'normalized',
      sources: {
        src0: {
          zones: [{ name: 'door #1', points: [[0.1, 0.5], [0.4, 0.5], [0.4, 1]], loiter_seconds: 2.5, classes: ['person', 'car'] }],
          lines: [{ name: 'gate', from: [0, 0.6], to: { x: 1, y: -0.1 }, on: true, off: null, empty: null, text: "it's fine" }],
        },
      },
    });
    expect(parseYaml('- - 1\n  - 2\n- "a\\"b\\u0041"')).toEqual([[1, 2], 'a"bA']);
    expect(parseYaml('')).toBeNull();
  });

  it('what it does not read is refused with the line number', () => {
    for (const [text, re] of [
      ['a: 1\n\tb: 2', /^line 2: tab in indentation/],
      ['a: &x 1', /^line 1: anchors and aliases/],
      ['a: |\n  text', /^line 1: block scalars/],
      ['a: 1\na: 2', /^line 2: duplicate key "a"/],
      ['a:\n  b: 1\n   c: 2', /^line 3: unexpected indentation/],
      ['a: [1, 2', /^line 1: unclosed "\["/],
      ['a: "open', /^line 1: unterminated double-quoted string/],
      ['a: b: c', /^line 1: unexpected ": "/],
      ['a: 1\n---\nb: 2', /^line 2: several YAML documents/],
    ] as const) {
      expect(() => parseYaml(text), text).toThrow(re);
    }
  });
});

const FILE = 'zones.yaml';
function err(text: string, o = { sourceIds: ['src0', 'src1'], labels: ['person', 'car'] }): string {
  try {
    parseZonesText(text, FILE, o);
  } catch (e) {
    expect(e).toBeInstanceOf(SsdError);
    return (e as Error).message;
  }
  throw new Error('no error');
}

describe('zones file checks', () => {
  const good = `units: pixels
anchor: center
sources:
  src0:
    hysteresis: 0.2
    zones:
      - name: door
        points: [[0, 0], [10, 0], [10, 10]]
        classes: [person]
        loiter_seconds: 3
    lines:
      - name: gate
        units: normalized
        anchor: bottom-center
        from: [0, 0.5]
        to: [1, 0.5]
`;

  it('reads a good file; settings fall back from line to source to top', () => {
    const z = parseZonesText(good, FILE, { sourceIds: ['src0'], labels: ['person', 'car'] });
    const s = z.sources.get('src0')!;
    expect(s.zones[0]).toMatchObject({ name: 'door', units: 'pixels', anchor: 'center', hysteresis: 0.2, classes: ['person'], loiterSeconds: 3 });
    expect([...s.zones[0]!.pointsXY]).toEqual([0, 0, 10, 0, 10, 10]);
    expect(s.lines[0]).toMatchObject({ name: 'gate', units: 'normalized', anchor: 'bottom-center', hysteresis: 0.2 });
    expect(s.lines[0]!.classes).toBeUndefined();
    expect([...s.lines[0]!.fromToXY]).toEqual([0, 0.5, 1, 0.5]);
    // JSON reads the same.
    const json = JSON.stringify({ units: 'pixels', sources: { src1: { lines: [{ name: 'l', from: [0, 0], to: [5, 5] }] } } });
    expect(parseZonesText(json, 'z.json').sources.get('src1')!.lines[0]!.name).toBe('l');
    // Digit labels written as numbers are taken as the label text.
    const digits = parseZonesText('units: pixels\nsources:\n  src0:\n    lines: [{name: l, from: [0, 0], to: [1, 1], classes: [5, "7"]}]', FILE, { labels: ['5', '7'] });
    expect(digits.sources.get('src0')!.lines[0]!.classes).toEqual(['5', '7']);
  });

  it('one line naming the file and the field', () => {
    const two = 'units: pixels\nsources:\n  src0:\n    zones:\n      - {name: a, points: [[0, 0], [1, 0], [0, 1]]}\n      - {name: b, points: [[0, 0], [1, 1]]}\n';
    expect(err(two)).toBe('zones.yaml: sources.src0.zones[1].points: needs at least 3 points, got 2');
    expect(err('units: pixels\nsources:\n  src7:\n    lines: [{name: l, from: [0, 0], to: [1, 1]}]'))
      .toBe('zones.yaml: sources.src7: no such source in this run (sources are named src0, src1... in the order given: src0, src1)');
    expect(err('units: pixels\nsources:\n  src0:\n    zone: []')).toMatch(/^zones\.yaml: sources\.src0\.zone: unknown field \(did you mean zones\?\)/);
    expect(err('units: normalized\nsources:\n  src0:\n    lines: [{name: l, from: [0, 0], to: [640, 1]}]'))
      .toBe('zones.yaml: sources.src0.lines[0].to[0]: 640 is outside 0..1 (units: normalized; write units: pixels for pixel coordinates)');
    expect(err('sources:\n  src0:\n    lines: [{name: l, from: [0, 0], to: [1, 1]}]')).toMatch(/^zones\.yaml: sources\.src0\.lines\[0\]: no units/);
    expect(err('units: pixels\nsources:\n  src0:\n    lines: [{name: l, from: [0, 0], to: [1, 1], classes: [preson]}]'))
      .toBe('zones.yaml: sources.src0.lines[0].classes[0]: the model has no class "preson" (did you mean person?)');
    expect(err('units: pixels\nsources:\n  src0:\n    zones: [{name: bow, points: [[0, 0], [10, 10], [10, 0], [0, 10]]}]'))
      .toMatch(/^zones\.yaml: sources\.src0\.zones\[0\]\.points: edges 0 and 2 cross/);
    expect(err('units: pixels\nsources:\n  src0:\n    zones: [{name: flat, points: [[0, 0], [1, 1], [2, 2]]}]')).toMatch(/points: the polygon has no area/);
    expect(err('units: pixels\nsources:\n  src0:\n    lines: [{name: l, from: [3, 3], to: [3, 3]}]')).toMatch(/lines\[0\]\.to: is the same point as from/);
    expect(err('units: pixels\nsources:\n  src0:\n    lines: [{name: x, from: [0, 0], to: [1, 1]}]\n    zones: [{name: x, points: [[0, 0], [1, 0], [0, 1]]}]'))
      .toMatch(/sources\.src0\.lines\[0\]\.name: "x" is already the name of sources\.src0\.zones\[0\]/);
    expect(err('units: pixels\nanchor: bottom-centre\nsources: {src0: {lines: [{name: l, from: [0, 0], to: [1, 1]}]}}'))
      .toMatch(/^zones\.yaml: anchor: must be one of .* \(did you mean bottom-center\?\)/);
    expect(err('units: pixels\nsources:\n  src0:\n    zones: [{name: z, points: [[0, 0], [1, 0], [0, 1]], loiter_seconds: -1}]')).toMatch(/loiter_seconds: must be seconds >= 0, got -1/);
    expect(err('units: pixels\nsources:\n  src0: {}')).toBe('zones.yaml: sources.src0: has neither zones nor lines');
    expect(err('units: pixels\nsources:\n  src0:\n\tzones: []')).toBe('zones.yaml:4: tab in indentation (indent with spaces)');
    expect(parseZonesText.bind(null, '{"units": "pixels",\n "sources": {,}}', 'z.json')).toThrow(/^z\.json:2: not valid JSON/);
  });

  it('a missing file is one line too', () => {
    const dir = mkdtempSync(join(tmpdir(), 'zones-'));
    try {
      expect(() => loadZonesFile(join(dir, 'none.yaml'))).toThrow(/^--zones .*none\.yaml: file not found$/);
      writeFileSync(join(dir, 'z.yml'), good);
      expect(loadZonesFile(join(dir, 'z.yml')).sources.size).toBe(1);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});

describe('geometry', () => {
  // A U: the notch (100..200 x 100..300) is outside.
  const U = Float64Array.of(0, 0, 300, 0, 300, 300, 200, 300, 200, 100, 100, 100, 100, 300, 0, 300);

  it('point in a concave polygon; distance to its edges', () => {
    expect(pointInPolygon(U, 50, 200)).toBe(true);
    expect(pointInPolygon(U, 150, 200)).toBe(false);
    expect(pointInPolygon(U, 250, 200)).toBe(true);
    expect(pointInPolygon(U, 150, 50)).toBe(true);
    expect(pointInPolygon(U, 350, 50)).toBe(false);
    expect(distanceToEdges(U, 150, 200)).toBe(50);
    expect(distanceToEdges(U, 150, 90)).toBe(10);
    expect(selfIntersection(U)).toBeUndefined();
  });

  it('side of a directed line, segments meeting at an endpoint, anchors', () => {
    // Horizontal, left to right: "in" (positive) is below on the screen.
    expect(signedDistance(0, 100, 200, 100, 50, 130)).toBe(30);
    expect(signedDistance(0, 100, 200, 100, 50, 70)).toBe(-30);
    // Vertical, top to bottom: positive is the screen's left.
    expect(signedDistance(100, 0, 100, 200, 60, 50)).toBe(40);
    expect(segmentsIntersect(200, 90, 200, 110, 0, 100, 200, 100)).toBe(true);
    expect(segmentsIntersect(201, 90, 201, 110, 0, 100, 200, 100)).toBe(false);
    expect(segmentsIntersect(0, 0, 10, 10, 10, 10, 20, 0)).toBe(true);
    expect(anchorFractions('bottom-center')).toEqual({ fx: 0.5, fy: 1 });
    expect(anchorFractions('center')).toEqual({ fx: 0.5, fy: 0.5 });
    expect(anchorFractions('top-right')).toEqual({ fx: 1, fy: 0 });
  });
});

/** A box 10 wide and 20 high whose bottom-center is (x, y): with hysteresis 0.1 the margin is 2 px. */
const at = (x: number, y: number) => [x - 5, y - 20, x + 5, y];
const person = (id: number, x: number, y: number) => ({ trackId: id, classId: 1, label: 'person', boxXYXY: at(x, y) });
const car = (id: number, x: number, y: number) => ({ trackId: id, classId: 2, label: 'car', boxXYXY: at(x, y) });
const brief = (evs: ZoneEvent[]) => evs.map((e) => (e.type === 'cross' ? `cross ${e.line} ${e.direction} #${e.trackId} ${e.countIn}/${e.countOut}`
  : e.type === 'leave' ? `leave ${e.zone} ${e.reason} #${e.trackId} ${e.dwellSeconds} occ ${e.occupancy}`
    : e.type === 'enter' ? `enter ${e.zone} #${e.trackId} occ ${e.occupancy}` : `loiter ${e.zone} #${e.trackId} ${e.dwellSeconds}`));

function spec(text: string): SourceZonesSpec {
  return parseZonesText(text, FILE).sources.get('src0')!;
}
const gate = (extra = '') => spec(`units: pixels\nsources:\n  src0:\n    lines: [{name: gate, from: [0, 100], to: [200, 100]${extra}}]`);

describe('zone engine: lines', () => {
  it('a track crossing both ways: in (down the picture), then out; counts per class', () => {
    const e = new ZoneEngine(gate(), 640, 480, { maxMisses: 30 });
    expect(brief(e.update(0, [person(1, 50, 90)]))).toEqual([]);
    expect(brief(e.update(0.1, [person(1, 50, 110)]))).toEqual(['cross gate in #1 1/0']);
    expect(brief(e.update(0.2, [person(1, 60, 130)]))).toEqual([]);
    expect(brief(e.update(0.3, [person(1, 60, 80)]))).toEqual(['cross gate out #1 1/1']);
    // Another class keeps its own count.
    e.update(0.4, [car(2, 10, 95)]);
    expect(brief(e.update(0.5, [car(2, 10, 105)]))).toEqual(['cross gate in #2 1/0']);
    expect(e.lineCounts()).toEqual([{ line: 'gate', label: 'person', in: 1, out: 1 }, { line: 'gate', label: 'car', in: 1, out: 0 }]);
  });

  it('a box jittering on the line (within the margin, or exactly on it) never counts', () => {
    const e = new ZoneEngine(gate(), 640, 480, { maxMisses: 30 });
    // Margin 2 px: 99 and 101 are within it.
    const ys = [90, 99, 101, 99, 101, 100, 101.9, 98.1];
    expect(ys.flatMap((y, i) => brief(e.update(i, [person(1, 50, y)])))).toEqual([]);
    // It goes on down: one crossing, counted from where it was last clearly above.
    expect(brief(e.update(9, [person(1, 50, 102.5)]))).toEqual(['cross gate in #1 1/0']);
    // Hysteresis 0: the anchor must be strictly on the other side; on the line is neither side.
    const z = new ZoneEngine(gate(', hysteresis: 0'), 640, 480, { maxMisses: 30 });
    expect([101, 100, 101, 100, 101].flatMap((y, i) => brief(z.update(i, [person(1, 50, y)])))).toEqual([]);
    expect(brief(z.update(9, [person(1, 50, 99.5)]))).toEqual(['cross gate out #1 0/1']);
  });

  it('the segment, not the infinite line: through the endpoint counts, beside it does not', () => {
    const e = new ZoneEngine(gate(), 640, 480, { maxMisses: 30 });
    e.update(0, [person(1, 200, 90), person(2, 201, 90)]);
    // Both move straight down; #1 passes exactly through the endpoint (200, 100), #2 one pixel beside it.
    expect(brief(e.update(1, [person(1, 200, 110), person(2, 201, 110)]))).toEqual(['cross gate in #1 1/0']);
    // #2 is now below; coming back up through the segment counts as out.
    expect(brief(e.update(2, [person(2, 150, 90)]))).toEqual(['cross gate out #2 1/1']);
  });

  it('normalised coordinates are scaled by the frame size', () => {
    const s = spec('units: normalized\nsources:\n  src0:\n    lines: [{name: mid, from: [0.5, 0], to: [0.5, 1]}]');
    const e = new ZoneEngine(s, 200, 100, { maxMisses: 30 });
    e.update(0, [person(1, 110, 50)]);
    // Top to bottom at x = 100: "in" is the screen's left.
    expect(brief(e.update(1, [person(1, 90, 50)]))).toEqual(['cross mid in #1 1/0']);
    e.resize(400, 100);
    expect(brief(e.update(2, [person(1, 210, 50)]))).toEqual(['cross mid out #1 1/1']);
  });
});

describe('zone engine: zones', () => {
  const U = '[[0, 0], [300, 0], [300, 300], [200, 300], [200, 100], [100, 100], [100, 300], [0, 300]]';

  it('a polygon with a concave part: through the notch is leave then enter; occupancy per class', () => {
    const e = new ZoneEngine(spec(`units: pixels\nsources:\n  src0:\n    zones: [{name: u, points: ${U}}]`), 640, 480, { maxMisses: 30 });
    expect(brief(e.update(0, [person(1, 50, 200)]))).toEqual(['enter u #1 occ 1']);
    expect(brief(e.update(1, [person(1, 150, 200), person(2, 250, 250)]))).toEqual(['leave u exit #1 1 occ 0', 'enter u #2 occ 1']);
    expect(brief(e.update(2, [person(1, 250, 200), person(2, 250, 250), car(3, 20, 20)]))).toEqual(['enter u #1 occ 2', 'enter u #3 occ 1']);
    expect(e.occupancy()).toEqual([{ zone: 'u', label: 'person', count: 2 }, { zone: 'u', label: 'car', count: 1 }]);
    // Within the margin (2 px) of the edge x = 200 from outside (the notch): still inside.
    expect(brief(e.update(3, [person(1, 199, 200), person(2, 250, 250), car(3, 20, 20)]))).toEqual([]);
    expect(brief(e.update(4, [person(1, 197, 200), person(2, 250, 250), car(3, 20, 20)]))).toEqual(['leave u exit #1 2 occ 1']);
  });

  it('loiter once per visit after N seconds of media time; leave also when the track dies', () => {
    const e = new ZoneEngine(spec('units: pixels\nsources:\n  src0:\n    zones: [{name: z, points: [[0, 0], [100, 0], [100, 100], [0, 100]], loiter_seconds: 2, classes: [person]}]'),
      640, 480, { maxMisses: 2 });
    const t = (s: number, ...obs: Array<ReturnType<typeof person>>) => brief(e.update(s, obs));
    expect(t(10, person(1, 50, 50), car(9, 50, 50))).toEqual(['enter z #1 occ 1']);
    expect(t(10.5, person(1, 50, 50))).toEqual([]);
    expect(t(11.9, person(1, 50, 50))).toEqual([]);
    expect(t(12, person(1, 50, 50))).toEqual(['loiter z #1 2']);
    expect(t(12.5, person(1, 50, 50))).toEqual([]);
    expect(t(13, person(1, 150, 50))).toEqual(['leave z exit #1 3 occ 0']);
    expect(t(14, person(1, 50, 50))).toEqual(['enter z #1 occ 1']);
    expect(t(15, person(1, 50, 50))).toEqual([]);
    expect(t(16, person(1, 50, 50))).toEqual(['loiter z #1 2']);
    // Unseen for 1 and 2 frames: alive (the tracker keeps it through maxMisses = 2); at 3 it is gone.
    expect(t(17)).toEqual([]);
    expect(t(18)).toEqual([]);
    expect(t(19)).toEqual(['leave z lost #1 2 occ 0']);
    expect(e.trackCount).toBe(0);
    // The car never counted (class filter), and it died silently.
    expect(e.occupancy()).toEqual([{ zone: 'z', label: 'person', count: 0 }]);
  });
});

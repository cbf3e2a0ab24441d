/**
 * The zones file of `ssd stream --zones FILE` (JSON, or YAML of the subset in core/zones/yaml.ts):
 * per source, polygons (zones) and directed lines, read and checked in full before anything starts.
 * Every mistake is one SsdError line naming the file and the field path, e.g.
 * `zones.yaml: sources.src0.zones[1].points: needs at least 3 points, got 2`.
 *
 * ```yaml
 * units: normalized          # or pixels (of the source frame); here or per source
 * sources:
 *   src0:
 *     zones:
 *       - name: door
 *         points: [[0.1, 0.5], [0.4, 0.5], [0.4, 1], [0.1, 1]]
 *         classes: [person]    # optional; default every class
 *         loiter_seconds: 10   # optional: a "loiter" event after 10 s inside
 *     lines:
 *       - name: gate
 *         from: [0, 0.6]       # "in" = crossing to the right-hand side of from -> to as seen on
 *         to: [1, 0.6]         # the screen: here, moving down the picture
 * ```
 * `anchor` (default bottom-center) and `hysteresis` (default 0.1) may be set at the top, per source
 * or per zone/line; the nearest setting wins.
 */
import { readFileSync } from 'node:fs';
import { SsdError } from '../errors.js';
import { didYouMean } from '../nearest-names.js';
import { ANCHORS, polygonArea2, selfIntersection, type Anchor } from './geometry.js';
import { parseYaml, YamlSyntaxError, type YamlValue } from './yaml.js';

export type ZoneUnits = 'pixels' | 'normalized';

interface Placement {
  units: ZoneUnits;
  anchor: Anchor;
  /**
   * How far (as a fraction of the object's box height) the anchor must be past a line or a zone's
   * edge before it counts as on the other side: a box jittering on the boundary does not flap.
   */
  hysteresis: number;
  /** Labels this zone/line counts; undefined = every class. */
  classes?: readonly string[];
}

export interface ZoneSpec extends Placement {
  name: string;
  /** Polygon corners x0, y0, x1, y1, ... in `units`. */
  pointsXY: Float64Array;
  /** Seconds inside (media time) before one "loiter" event per visit; undefined = none. */
  loiterSeconds?: number;
}

export interface LineSpec extends Placement {
  name: string;
  /** from x, from y, to x, to y in `units`. */
  fromToXY: Float64Array;
}

export interface SourceZonesSpec {
  zones: ZoneSpec[];
  lines: LineSpec[];
}

export interface ZonesConfig {
  /** The file as the user named it (for messages). */
  file: string;
  /** Per source id (src0, src1... in argument order). */
  sources: Map<string, SourceZonesSpec>;
}

export const DEFAULT_ANCHOR: Anchor = 'bottom-center';
export const DEFAULT_HYSTERESIS = 0.1;

export interface ZonesCheckOptions {
  /** The run's source ids; a source in the file that is not one of them is refused. */
  sourceIds?: readonly string[];
  /** The model's class labels (no background); a class filter naming another is refused. */
  labels?: readonly string[];
}

type Obj = { [key: string]: YamlValue };

class Checker {
  constructor(private readonly file: string) {}

  fail(path: string, reason: string): never {
    throw new SsdError(`${this.file}: ${path}: ${reason}`);
  }

  obj(v: YamlValue | undefined, path: string, known: readonly string[]): Obj {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) this.fail(path, `must be a mapping, got ${describe(v)}`);
    for (const k of Object.keys(v)) {
      if (!known.includes(k)) this.fail(`${path}${path ? '.' : ''}${k}`, `unknown field${didYouMean(k, known)} (known: ${known.join(', ')})`);
    }
    return v;
  }

  num(v: YamlValue | undefined, path: string, min: number, max: number, what = 'a number'): number {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
      const range = max === Infinity ? `>= ${min}` : `in [${min}, ${max}]`;
      this.fail(path, `must be ${what} ${range}, got ${describe(v)}`);
    }
    return v;
  }

  str(v: YamlValue | undefined, path: string): string {
    if (typeof v !== 'string' || v.trim() === '') this.fail(path, `must be a non-empty string, got ${describe(v)}`);
    return v;
  }

  point(v: YamlValue | undefined, path: string, units: ZoneUnits): [number, number] {
    if (!Array.isArray(v) || v.length !== 2) this.fail(path, `must be a point [x, y], got ${describe(v)}`);
    return [this.coord(v[0], `${path}[0]`, units), this.coord(v[1], `${path}[1]`, units)];
  }

  coord(v: YamlValue | undefined, path: string, units: ZoneUnits): number {
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(path, `must be a number, got ${describe(v)}`);
    if (units === 'normalized' && (v < 0 || v > 1)) this.fail(path, `${v} is outside 0..1 (units: normalized; write units: pixels for pixel coordinates)`);
    return v;
  }
}

function describe(v: YamlValue | undefined): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return `a list of ${v.length}`;
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `"${v}"`;
  return String(v);
}

/** Placement settings at one level, falling back to the level above. */
function placement(c: Checker, o: Obj, path: string, up: Partial<Placement>, labels: readonly string[] | undefined): Partial<Placement> {
  const p: Partial<Placement> = { ...up };
  const at = (k: string) => `${path}${path ? '.' : ''}${k}`;
  if (o.units !== undefined) {
    const u = o.units;
    if (u === 'pixels') p.units = 'pixels';
    // Both spellings: the docs are written in British English, most tools in American.
    else if (u === 'normalized' || u === 'normalised') p.units = 'normalized';
    else c.fail(at('units'), `must be "pixels" or "normalized", got ${describe(u)}`);
  }
  if (o.anchor !== undefined) {
    const a = o.anchor;
    if (typeof a !== 'string' || !(ANCHORS as readonly string[]).includes(a)) c.fail(at('anchor'), `must be one of ${ANCHORS.join(', ')}, got ${describe(a)}${typeof a === 'string' ? didYouMean(a, ANCHORS) : ''}`);
    p.anchor = a as Anchor;
  }
  if (o.hysteresis !== undefined) p.hysteresis = c.num(o.hysteresis, at('hysteresis'), 0, 1, 'a fraction of the box height');
  if (o.classes !== undefined) {
    const list = o.classes;
    if (!Array.isArray(list) || list.length === 0) c.fail(at('classes'), `must be a non-empty list of class labels, got ${describe(list)}`);
    p.classes = list.map((x, i) => {
      // Labels are text, but YAML reads `classes: [5]` (digit labels) as a number: take it as written.
      const name = typeof x === 'number' ? String(x) : c.str(x, `${at('classes')}[${i}]`);
      if (labels !== undefined && !labels.includes(name)) c.fail(`${at('classes')}[${i}]`, `the model has no class "${name}"${didYouMean(name, labels)}`);
      return name;
    });
  }
  return p;
}

function complete(c: Checker, p: Partial<Placement>, path: string): Placement {
  if (p.units === undefined) c.fail(path, 'no units: say "units: pixels" or "units: normalized" (at the top, per source or here)');
  return { units: p.units, anchor: p.anchor ?? DEFAULT_ANCHOR, hysteresis: p.hysteresis ?? DEFAULT_HYSTERESIS, ...(p.classes ? { classes: p.classes } : {}) };
}

const TOP_KEYS = ['units', 'anchor', 'hysteresis', 'classes', 'sources'] as const;
const SOURCE_KEYS = ['units', 'anchor', 'hysteresis', 'classes', 'zones', 'lines'] as const;
const ZONE_KEYS = ['name', 'points', 'units', 'anchor', 'hysteresis', 'classes', 'loiter_seconds'] as const;
const LINE_KEYS = ['name', 'from', 'to', 'units', 'anchor', 'hysteresis', 'classes'] as const;

/** Checks the parsed document; `file` names it in messages. */
export function checkZonesConfig(doc: YamlValue, file: string, o: ZonesCheckOptions = {}): ZonesConfig {
  const c: Checker = new Checker(file);
  if (doc === null) c.fail('sources', 'the file is empty');
  const top = c.obj(doc, '', TOP_KEYS);
  const base = placement(c, top, '', {}, o.labels);
  if (top.sources === undefined) c.fail('sources', 'missing: the zones and lines of each source, e.g. sources: {src0: {zones: [...]}}');
  const srcs = c.obj(top.sources, 'sources', Object.keys(top.sources ?? {}));
  const ids = Object.keys(srcs);
  if (ids.length === 0) c.fail('sources', 'no source');
  const sources = new Map<string, SourceZonesSpec>();
  for (const id of ids) {
    const sp = `sources.${id}`;
    if (o.sourceIds !== undefined && !o.sourceIds.includes(id)) {
      c.fail(sp, `no such source in this run (sources are named src0, src1... in the order given: ${o.sourceIds.join(', ') || 'none'})`);
    }
    const so = c.obj(srcs[id], sp, SOURCE_KEYS);
    const sPlace = placement(c, so, sp, base, o.labels);
    const names = new Map<string, string>();
    const unique = (name: string, path: string) => {
      const prev = names.get(name);
      if (prev !== undefined) c.fail(`${path}.name`, `"${name}" is already the name of ${prev} (names are unique per source)`);
      names.set(name, path);
    };
    const zones: ZoneSpec[] = [];
    const lines: LineSpec[] = [];
    if (so.zones !== undefined && so.zones !== null) {
      if (!Array.isArray(so.zones)) c.fail(`${sp}.zones`, `must be a list, got ${describe(so.zones)}`);
      so.zones.forEach((z, i) => {
        const zp = `${sp}.zones[${i}]`;
        const zo = c.obj(z, zp, ZONE_KEYS);
        const name = c.str(zo.name, `${zp}.name`);
        unique(name, zp);
        const place = complete(c, placement(c, zo, zp, sPlace, o.labels), zp);
        const pts = zo.points;
        if (!Array.isArray(pts)) c.fail(`${zp}.points`, `must be a list of points [[x, y], ...], got ${describe(pts)}`);
        if (pts.length < 3) c.fail(`${zp}.points`, `needs at least 3 points, got ${pts.length}`);
        const pointsXY = new Float64Array(pts.length * 2);
        pts.forEach((p, k) => pointsXY.set(c.point(p, `${zp}.points[${k}]`, place.units), 2 * k));
        const cross = selfIntersection(pointsXY);
        if (cross !== undefined) c.fail(`${zp}.points`, `edges ${cross[0]} and ${cross[1]} cross or touch (edge k joins points k and k+1): the polygon must not intersect itself`);
        if (polygonArea2(pointsXY) === 0) c.fail(`${zp}.points`, 'the polygon has no area (all points on one line)');
        const spec: ZoneSpec = { name, pointsXY, ...place };
        if (zo.loiter_seconds !== undefined) spec.loiterSeconds = c.num(zo.loiter_seconds, `${zp}.loiter_seconds`, 0, Infinity, 'seconds');
        if (spec.loiterSeconds === 0) c.fail(`${zp}.loiter_seconds`, 'must be more than 0');
        zones.push(spec);
      });
    }
    if (so.lines !== undefined && so.lines !== null) {
      if (!Array.isArray(so.lines)) c.fail(`${sp}.lines`, `must be a list, got ${describe(so.lines)}`);
      so.lines.forEach((l, i) => {
        const lp = `${sp}.lines[${i}]`;
        const lo = c.obj(l, lp, LINE_KEYS);
        const name = c.str(lo.name, `${lp}.name`);
        unique(name, lp);
        const place = complete(c, placement(c, lo, lp, sPlace, o.labels), lp);
        if (lo.from === undefined) c.fail(`${lp}.from`, 'missing: the point [x, y] the line starts at');
        if (lo.to === undefined) c.fail(`${lp}.to`, 'missing: the point [x, y] the line ends at');
        const from = c.point(lo.from, `${lp}.from`, place.units);
        const to = c.point(lo.to, `${lp}.to`, place.units);
        if (from[0] === to[0] && from[1] === to[1]) c.fail(`${lp}.to`, 'is the same point as from: a line needs two different points');
        lines.push({ name, fromToXY: Float64Array.of(from[0], from[1], to[0], to[1]), ...place });
      });
    }
    if (zones.length === 0 && lines.length === 0) c.fail(sp, 'has neither zones nor lines');
    sources.set(id, { zones, lines });
  }
  return { file, sources };
}

/** Byte offset -> 1-based line number, for JSON.parse's "at position N". */
function lineOf(text: string, message: string): string {
  const m = /position (\d+)/.exec(message);
  if (!m) return '';
  return `:${text.slice(0, Number(m[1])).split('\n').length}`;
}

/** Parses and checks zones file text (JSON when `file` ends in .json or the text starts with "{"). */
export function parseZonesText(text: string, file: string, o: ZonesCheckOptions = {}): ZonesConfig {
  let doc: YamlValue;
  if (/\.json$/i.test(file) || /^\s*\{/.test(text)) {
    try {
      doc = JSON.parse(text) as YamlValue;
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      throw new SsdError(`${file}${lineOf(text, msg)}: not valid JSON: ${msg}`, { cause: err });
    }
  } else {
    try {
      doc = parseYaml(text);
    } catch (err) {
      if (err instanceof YamlSyntaxError) throw new SsdError(`${file}:${err.line}: ${err.reason}`, { cause: err });
      throw err;
    }
  }
  return checkZonesConfig(doc, file, o);
}

/** Reads and checks a zones file; a missing or unreadable file is one SsdError line too. */
export function loadZonesFile(path: string, o: ZonesCheckOptions = {}): ZonesConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new SsdError(`--zones ${path}: ${code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? 'is a directory' : (err as Error).message}`, { cause: err });
  }
  return parseZonesText(text, path, o);
}

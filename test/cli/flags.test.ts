// The CLI's flags and errors: one meaning per flag, the old spellings of renamed flags still working
// (with one notice), unknown flags answered with the nearest known one, ranges without "Infinity",
// each error line prefixed once, and Node's own error kept as the cause.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { editDistance, intFlag, nearestNames, numberFlag, parseFlags, rangeText } from '../../cli/args.js';
import { main } from '../../cli/main.js';
import { SsdError } from '../../core/errors.js';
import { tempDir } from '../helpers/temp-dir.js';
import { writeTinyModel } from '../runtime/helpers.js';

/** Runs `ssd ...args` in this process; what it prints to stdout and stderr, line by line. */
async function run(args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.join(' ')));
  vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    const code = await main(args);
    return { code, out: out.join('\n').split('\n'), err: err.join('\n').split('\n').filter((l) => l !== '') };
  } finally {
    vi.restoreAllMocks();
  }
}

const dir = tempDir('ssd-flags-');

describe('flag parsing', () => {
  afterEach(() => vi.restoreAllMocks());

  it('suggests the flag a typo most likely meant', () => {
    expect(editDistance('treshold', 'threshold')).toBe(1);
    expect(editDistance('thershold', 'threshold')).toBe(1);
    const known = ['threshold', 'threads', 'json', 'out', 'val-split', 'val-data', 'device'];
    expect(nearestNames('--thresh', known)).toEqual(['threshold']);
    expect(nearestNames('--treshold', known)).toEqual(['threshold']);
    expect(nearestNames('--devise', known)).toEqual(['device']);
    expect(nearestNames('--val', known)).toEqual(['val-split', 'val-data']);
    expect(nearestNames('--bogus', known)).toEqual([]);
  });

  it('an unknown flag, a missing value, a stray argument: one line in the CLI\'s words, Node\'s error as the cause', () => {
    const options = { threshold: { type: 'string' }, json: { type: 'boolean' }, frames: { type: 'string' } } as const;
    const fail = (argv: string[], positionals = false): SsdError => {
      try {
        parseFlags('detect', argv, options, positionals);
      } catch (err) {
        return err as SsdError;
      }
      throw new Error('no error');
    };
    let e = fail(['--thresh', '0.3']);
    expect(e).toBeInstanceOf(SsdError);
    expect(e.message).toBe('unknown flag --thresh (did you mean --threshold?)');
    expect((e.cause as { code?: string }).code).toBe('ERR_PARSE_ARGS_UNKNOWN_OPTION');
    expect(fail(['--zzz']).message).toBe('unknown flag --zzz (see "ssd detect --help")');
    expect(fail(['--threshold']).message).toBe('--threshold needs a value (see "ssd detect --help")');
    expect(fail(['--json=yes']).message).toBe('--json takes no value (see "ssd detect --help")');
    expect(fail(['--frames', '-3']).message).toBe('--frames -3: write a value that starts with "-" as --frames=-3');
    expect(fail(['--threshold', '--json']).message).toBe('--threshold needs a value, got the flag --json (see "ssd detect --help")');
    e = fail(['extra']);
    expect(e.message).toBe('unexpected argument "extra": this command takes flags only (see "ssd detect --help")');
    expect((e.cause as { code?: string }).code).toBe('ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL');
  });

  it('ranges are written without Infinity', () => {
    expect(rangeText(0, 1)).toBe(' in [0, 1]');
    expect(rangeText(0, Infinity)).toBe(' >= 0');
    expect(rangeText(-Infinity, 5)).toBe(' <= 5');
    expect(rangeText(-Infinity, Infinity)).toBe('');
    const msg = (f: () => unknown) => {
      try {
        f();
      } catch (err) {
        return (err as Error).message;
      }
      return '';
    };
    expect(msg(() => intFlag('seed', '-1', 0, 0))).toBe('--seed must be a whole number >= 0, got "-1"');
    expect(msg(() => intFlag('batch', '2.5', 8, 1, 256))).toBe('--batch must be a whole number in [1, 256], got "2.5"');
    expect(msg(() => numberFlag('lr', 'fast', 0.01, 0))).toBe('--lr must be a number >= 0, got "fast"');
    expect(msg(() => numberFlag('x', 'nope', 0))).toBe('--x must be a number, got "nope"');
    expect(intFlag('seed', undefined, 7, 0)).toBe(7);
  });

  it('every command answers an unknown flag with the nearest known one, its name written once', async () => {
    const cases: Array<[string[], string]> = [
      [['detect', 'm.onnx', 'x.jpg', '--thresh', '0.3'], 'ssd detect: unknown flag --thresh (did you mean --threshold?)'],
      [['stream', '--max-frame', '3'], 'ssd stream: unknown flag --max-frame (did you mean --max-frames?)'],
      [['eval', '--metirc', 'voc07'], 'ssd eval: unknown flag --metirc (did you mean --metric?)'],
      [['train', '--iteration', '5'], 'ssd train: unknown flag --iteration (did you mean --iterations?)'],
      [['export-onnx', '--postproces', 'nms'], 'ssd export-onnx: unknown flag --postproces (did you mean --postprocess?)'],
      [['bench', '--frame', '3'], 'ssd bench: unknown flag --frame (did you mean --frames?)'],
      [['deploy', '--hots', 'a@b'], 'ssd deploy: unknown flag --hots (did you mean --host?)'],
      [['devices', '--jsn'], 'ssd devices: unknown flag --jsn (did you mean --json?)'],
    ];
    for (const [args, line] of cases) {
      const r = await run(args);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.err, args.join(' ')).toEqual([line]);
    }
    const typo = await run(['detetc']);
    expect(typo.err[0]).toBe('ssd: unknown command "detetc" (did you mean detect?)');
  });

  it('no error line repeats the command name', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['train', '--data', 'digits'], /^ssd train: --out DIR is required/],
      [['eval', '--dt', 'x.json'], /^ssd eval: --gt is required/],
      [['export-onnx', '--init', 'random'], /^ssd export-onnx: --out FILE is required/],
      [['deploy', '--model', 'm.onnx'], /^ssd deploy: --device NAME is required/],
      [['stream', '--topic', 't'], /^ssd stream: --topic needs --mqtt$/],
      [['detect'], /^ssd detect: missing MODEL\.onnx/],
      [['bench'], /^ssd bench: missing MODEL\.onnx or --core/],
    ];
    for (const [args, re] of cases) {
      const r = await run(args);
      expect(r.code).not.toBe(0);
      expect(r.err).toHaveLength(1);
      expect(r.err[0]).toMatch(re);
      expect(r.err[0]).not.toMatch(/^ssd ([\w-]+): \1: /);
    }
  });

  it('--help ends with what each flag means in every command', async () => {
    for (const c of ['train', 'export-onnx', 'detect', 'stream', 'eval', 'bench', 'deploy', 'devices']) {
      const r = await run([c, '--help']);
      expect(r.code).toBe(0);
      const text = r.out.join('\n');
      expect(text, c).toContain('Flags mean the same in every ssd command:');
      expect(text, c).toMatch(/--out PATH +the one thing the command makes/);
    }
  });
});

describe('old spellings of renamed flags: still working until 0.3, with one notice', () => {
  it('deploy --profile is --device', async () => {
    const model = join(dir, 'm.onnx');
    writeFileSync(model, 'any bytes: the bundle ships the model as it is');
    const bundle = join(dir, 'bundle');
    const r = await run(['deploy', '--to-dir', bundle, '--profile', 'xavier-nx', '--model', model]);
    expect(r.code).toBe(0);
    expect(r.err).toEqual(['ssd deploy: --profile is now --device; the old spelling goes in 0.3']);
    expect(r.out.join('\n')).toMatch(/^bundle for xavier-nx written to /m);
    // The value reaches --device: a bad one is refused as a device name.
    const bad = await run(['deploy', '--to-dir', join(dir, 'b2'), '--profile', 'jetson-nano-3', '--model', model]);
    expect(bad.err).toEqual(['ssd deploy: --profile is now --device; the old spelling goes in 0.3', expect.stringMatching(/^ssd deploy: unknown device profile "jetson-nano-3"/)]);
    const both = await run(['deploy', '--to-dir', join(dir, 'b3'), '--profile', 'cpu', '--device', 'cpu', '--model', model]);
    expect(both.err).toEqual(['ssd deploy: --profile is the old spelling of --device: give one of them']);
  });

  it('export-onnx --batch is --batch-dim', async () => {
    const out = join(dir, 'b2.onnx');
    const r = await run(['export-onnx', '--init', 'random', '--config', 'ssd-tiny', '--out', out, '--batch', '2', '--no-verify']);
    expect(r.code).toBe(0);
    expect(r.err).toEqual(['ssd export-onnx: --batch is now --batch-dim; the old spelling goes in 0.3']);
    expect(r.out.join('\n')).toMatch(/outputs: boxes float\[2,828,4\]/);
    const bad = await run(['export-onnx', '--init', 'random', '--config', 'ssd-tiny', '--out', out, '--batch', '0']);
    expect(bad.err[1]).toBe('ssd export-onnx: --batch-dim must be a whole number in [1, 4096], got "0"');
  });

  it('detect --out is --annotated and --json FILE is --coco-results FILE (parsing; test/runtime/cli.test.ts runs them)', async () => {
    const model = writeTinyModel(dir);
    const r = await run(['detect', model, join(dir, 'none.jpg'), '--out', join(dir, 'a'), '--json', join(dir, 'r.json')]);
    expect(r.err).toEqual([
      'ssd detect: --out is now --annotated; the old spelling goes in 0.3',
      'ssd detect: --json is now --coco-results; the old spelling goes in 0.3',
      expect.stringMatching(/^ssd detect: image .*none\.jpg: file not found$/),
    ]);
  });
});

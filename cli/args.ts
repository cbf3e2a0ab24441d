import { parseArgs, type ParseArgsConfig } from 'node:util';
import { SsdError, oneLine } from '../core/errors.js';
import { nearestNames } from '../core/nearest-names.js';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

/** A subcommand of `ssd`. The module of each command default-exports one of these. */
export interface Command {
  name: string;
  summary: string;
  /** Full help text, printed for `ssd <name> --help`. */
  usage: string;
  run(argv: string[]): Promise<number>;
}

/**
 * The release in which the old spellings of renamed flags stop working. One release of overlap: the
 * renames came in 0.2 (see the README's command table).
 */
export const OLD_SPELLINGS_REMOVED_IN = '0.3';

/**
 * What a flag means, the same in every command (printed under each command's --help; the README's
 * command table says it too). Renamed in 0.2 so that no flag means two things: detect's --out and
 * --json (now --annotated and --coco-results), export-onnx's --batch (now --batch-dim), deploy's
 * --profile (now --device).
 */
export const FLAG_CONVENTIONS = `Flags mean the same in every ssd command:
  --out PATH     the one thing the command makes: train's run directory, export-onnx's .onnx file
                 (commands that write several things name each: detect --annotated/--coco-results/--voc-results)
  --json         print JSON on stdout instead of text: a switch, never a file name (eval, bench, devices)
  --batch N      images per forward pass (train: per micro-batch; detect: per session.run)
  --device NAME  a device profile of "ssd devices" (auto: the one detected)
  --gt PATH      ground truth: a VOC directory or a COCO instances JSON; --split NAME its VOC split
Renamed in 0.2 (the old spellings work, with a notice, until ${OLD_SPELLINGS_REMOVED_IN}): detect --out is --annotated,
detect --json FILE is --coco-results FILE, export-onnx --batch is --batch-dim, deploy --profile is --device.`;

/**
 * A flag renamed in this release: the old spelling still parses (with the option spec of the new
 * one) and prints one notice on stderr.
 */
export interface RenamedFlag {
  old: string;
  now: string;
}

// One home for "did you mean": core/nearest-names.ts (config keys use it too).
export { editDistance, nearestNames } from '../core/nearest-names.js';

/** Node's parseArgs errors in the CLI's words (parseArgs' own text mentions positionals and '--'). */
function flagError(command: string, err: unknown, options: OptionSpec, argv: readonly string[]): SsdError {
  const code = (err as { code?: unknown }).code;
  const msg = oneLine(err);
  const help = `(see "ssd ${command} --help")`;
  const quoted = /'(-{1,2}[^' ]+)/.exec(msg)?.[1];
  let text: string;
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && quoted) {
    const names = [...Object.keys(options), 'help'];
    const near = quoted.startsWith('--') ? nearestNames(quoted, names) : [];
    text = near.length > 0
      ? `unknown flag ${quoted} (did you mean ${near.map((n) => `--${n}`).join(' or ')}?)`
      : `unknown flag ${quoted} ${help}`;
  } else if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && quoted) {
    // "Option '-o, --ssh-option <value>' argument missing": name the long spelling.
    const flag = /--[\w-]+/.exec(msg)?.[0] ?? quoted.replace(/,$/, '');
    if (/does not take an argument/.test(msg)) text = `${flag} takes no value ${help}`;
    else if (/ambiguous/.test(msg)) {
      // parseArgs will not take a value that starts with "-" after a space: a negative number, or a
      // forgotten value followed by the next flag.
      const next = argv[argv.indexOf(flag) + 1] ?? '';
      text = /^-\d|^-\.\d/.test(next)
        ? `${flag} ${next}: write a value that starts with "-" as ${flag}=${next}`
        : `${flag} needs a value, got the flag ${next} ${help}`;
    }
    else text = `${flag} needs a value ${help}`;
  } else if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
    const arg = /'([^']*)'/.exec(msg)?.[1];
    text = `unexpected argument${arg === undefined ? '' : ` "${arg}"`}: this command takes flags only ${help}`;
  } else {
    text = `${msg} ${help}`;
  }
  return new SsdError(text, { cause: err });
}

/**
 * Strict flag parsing with the one-line errors the CLI promises: an unknown flag (with the nearest
 * known one), a missing value or a stray argument becomes an SsdError naming the flag, keeping Node's
 * error as its cause. `renamed` flags parse under their old spelling too: the value moves to the new
 * name and one notice goes to stderr; giving both spellings is an error.
 */
export function parseFlags<O extends OptionSpec>(command: string, argv: string[], options: O, allowPositionals = true, renamed: readonly RenamedFlag[] = []) {
  const all: OptionSpec = { ...options };
  for (const r of renamed) {
    const spec = options[r.now];
    if (spec === undefined) throw new Error(`parseFlags: renamed flag --${r.old} points at unknown --${r.now}`);
    all[r.old] = spec;
  }
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: all, allowPositionals, strict: true });
  } catch (err) {
    throw flagError(command, err, options, argv);
  }
  const values = parsed.values as Record<string, unknown>;
  for (const r of renamed) {
    if (values[r.old] === undefined) continue;
    if (values[r.now] !== undefined) throw new SsdError(`--${r.old} is the old spelling of --${r.now}: give one of them`);
    console.error(`ssd ${command}: --${r.old} is now --${r.now}; the old spelling goes in ${OLD_SPELLINGS_REMOVED_IN}`);
    values[r.now] = values[r.old];
    delete values[r.old];
  }
  return parsed as ReturnType<typeof parseArgs<{ args: string[]; options: O; allowPositionals: boolean; strict: true }>>;
}

/** "in [0, 1]", ">= 0", "<= 5" or "" for a range; never "Infinity". */
export function rangeText(min: number, max: number): string {
  const lo = Number.isFinite(min);
  const hi = Number.isFinite(max);
  if (lo && hi) return ` in [${min}, ${max}]`;
  if (lo) return ` >= ${min}`;
  if (hi) return ` <= ${max}`;
  return '';
}

/** A flag that must parse as a finite number within [min, max]. */
export function numberFlag(flag: string, value: string | undefined, fallback: number, min = -Infinity, max = Infinity): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
    throw new SsdError(`--${flag} must be a number${rangeText(min, max)}, got "${value}"`);
  }
  return n;
}

/** Like numberFlag, for whole numbers. */
export function intFlag(flag: string, value: string | undefined, fallback: number, min = -Infinity, max = Infinity): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < min || n > max) {
    throw new SsdError(`--${flag} must be a whole number${rangeText(min, max)}, got "${value}"`);
  }
  return n;
}

/** One of a fixed set of words. */
export function choiceFlag<T extends string>(flag: string, value: string | undefined, choices: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!(choices as readonly string[]).includes(value)) {
    throw new SsdError(`--${flag} must be one of ${choices.join(', ')}, got "${value}"`);
  }
  return value as T;
}

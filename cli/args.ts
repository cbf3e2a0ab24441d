import { parseArgs, type ParseArgsConfig } from 'node:util';
import { SsdError, oneLine } from '../core/errors.js';

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
 * Strict flag parsing with the one-line errors the CLI promises: an unknown flag or a missing value
 * becomes an SsdError naming the flag.
 */
export function parseFlags<O extends OptionSpec>(command: string, argv: string[], options: O, allowPositionals = true) {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true });
  } catch (err) {
    throw new SsdError(`${command}: ${oneLine(err)} (see "ssd ${command} --help")`);
  }
}

/** A flag that must parse as a finite number within [min, max]. */
export function numberFlag(command: string, flag: string, value: string | undefined, fallback: number, min = -Infinity, max = Infinity): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
    throw new SsdError(`${command}: --${flag} must be a number in [${min}, ${max}], got "${value}"`);
  }
  return n;
}

/** Like numberFlag, for whole numbers. */
export function intFlag(command: string, flag: string, value: string | undefined, fallback: number, min = -Infinity, max = Infinity): number {
  const n = numberFlag(command, flag, value, fallback, min, max);
  if (!Number.isInteger(n)) throw new SsdError(`${command}: --${flag} must be a whole number, got "${value}"`);
  return n;
}

/** One of a fixed set of words. */
export function choiceFlag<T extends string>(command: string, flag: string, value: string | undefined, choices: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!(choices as readonly string[]).includes(value)) {
    throw new SsdError(`${command}: --${flag} must be one of ${choices.join(', ')}, got "${value}"`);
  }
  return value as T;
}

/**
 * An error meant for the person at the terminal: the CLI prints its message as one line and exits
 * non-zero, with no stack trace. Throw it for bad input (files, flags, models, cameras); let real bugs
 * stay ordinary Errors so that they keep their stack.
 *
 * When it rewords an error caught from below (fs, JSON.parse, onnxruntime, parseArgs), pass that error
 * as `cause`: the one line says what went wrong in the user's terms, and `SSD_DEBUG=1` (which prints
 * the error with its chain of causes) still shows where. Messages never start with the command's
 * name: the CLI prefixes "ssd <command>: " once.
 */
export class SsdError extends Error {
  readonly exitCode: number;
  constructor(message: string, options: { cause?: unknown; exitCode?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SsdError';
    this.exitCode = options.exitCode ?? 1;
  }
}

/** The message of anything thrown, on one line. */
export function oneLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.replace(/\s*\n\s*/g, ' ').trim();
}

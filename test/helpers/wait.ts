/**
 * Waiting in tests: wait for an event (a line, a file, a state), never for an amount of time. The
 * bound only turns a hang into a failure that names what never happened; it is generous (minutes)
 * because the suite must pass on a loaded 2-core machine, and no test asserts how long a wait took.
 */

/** The default bound of a wait: long enough for a machine at load 13, short enough to end a hang. */
export const WAIT_MS = 180_000;

/**
 * Polls `check` (every `everyMs`) until it returns something other than undefined/false/null and
 * returns that; throws `timed out waiting for <what>` (plus `detail()`, e.g. a child's stderr) after
 * `timeoutMs`.
 */
export async function waitFor<T>(
  check: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  what: string,
  opts: { timeoutMs?: number; everyMs?: number; detail?: () => string } = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? WAIT_MS;
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== null && v !== false) return v;
    if (performance.now() > deadline) {
      const detail = opts.detail?.();
      throw new Error(`timed out waiting for ${what} (${timeoutMs / 1000} s)${detail ? `:\n${detail}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, opts.everyMs ?? 50));
  }
}

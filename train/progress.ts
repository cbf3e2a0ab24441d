/**
 * The training progress line on stderr: iteration, loss parts, learning rate, img/s and ETA. On a
 * terminal it redraws one line; in a log file (not a TTY) it prints a line every `logEverySeconds`.
 */
export interface ProgressStats {
  iteration: number;
  loss: number;
  loc: number;
  conf: number;
  lr: number;
  imagesPerSecond: number;
}

export interface ProgressOptions {
  total: number;
  stream?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  logEverySeconds?: number;
  /** False: print nothing (library use, tests). */
  enabled?: boolean;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export function formatProgress(st: ProgressStats, total: number, width = 20): string {
  const frac = Math.min(1, st.iteration / Math.max(1, total));
  const filled = Math.round(frac * width);
  const bar = '='.repeat(Math.max(0, filled - 1)) + (filled > 0 ? '>' : '') + ' '.repeat(width - filled);
  return `iter ${st.iteration}/${total} [${bar}] loss ${st.loss.toFixed(3)} (loc ${st.loc.toFixed(3)} conf ${st.conf.toFixed(3)}) lr ${st.lr.toExponential(2)} ${st.imagesPerSecond.toFixed(1)} img/s`;
}

export class ProgressBar {
  private lastPrint = 0;
  private readonly started = Date.now();
  private drawn = false;

  constructor(private readonly opts: ProgressOptions) {}

  /** `secondsPerIteration` drives the ETA (smoothed by the caller). */
  update(st: ProgressStats, secondsPerIteration: number, force = false): void {
    if (this.opts.enabled === false) return;
    const stream = this.opts.stream ?? process.stderr;
    const eta = formatDuration((this.opts.total - st.iteration) * secondsPerIteration);
    const line = `${formatProgress(st, this.opts.total)} ETA ${eta}`;
    const now = Date.now();
    if (stream.isTTY) {
      const cols = stream.columns ?? 120;
      stream.write(`\r${line.slice(0, cols - 1).padEnd(Math.min(cols - 1, line.length + 2))}`);
      this.drawn = true;
    } else if (force || now - this.lastPrint >= (this.opts.logEverySeconds ?? 30) * 1000) {
      stream.write(`${line} (elapsed ${formatDuration((now - this.started) / 1000)})\n`);
      this.lastPrint = now;
    }
  }

  /** A message that must not be overwritten by the bar (validation results, checkpoints, warnings). */
  log(line: string): void {
    if (this.opts.enabled === false) return;
    const stream = this.opts.stream ?? process.stderr;
    stream.write(`${this.drawn ? '\n' : ''}${line}\n`);
    this.drawn = false;
  }

  done(): void {
    const stream = this.opts.stream ?? process.stderr;
    if (this.drawn && this.opts.enabled !== false) stream.write('\n');
    this.drawn = false;
  }
}

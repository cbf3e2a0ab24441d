/** gst-discoverer-1.0 (gstreamer1.0-plugins-base-apps) as a check that a video file is complete and playable. */
import { spawnSync } from 'node:child_process';

export const discovererAvailable = spawnSync('gst-discoverer-1.0', ['--help'], { encoding: 'utf8' }).status === 0;

/** gst-discoverer-1.0's view of a file: its duration (s) and video codec, or the error it reported. */
export function discover(path: string): { duration: number; codec: string; error?: string } {
  const r = spawnSync('gst-discoverer-1.0', [path], { encoding: 'utf8', timeout: 120_000 });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  const d = /Duration: (\d+):(\d+):([\d.]+)/.exec(out);
  const codec = /video #\d+: ([^\n]+)/.exec(out)?.[1]?.trim() ?? '';
  const error = /error was encountered[^\n]*\n([^\n]*)/i.exec(out)?.[1]?.trim();
  return { duration: d ? Number(d[1]) * 3600 + Number(d[2]) * 60 + Number(d[3]) : Number.NaN, codec, error: r.status !== 0 ? out : error };
}

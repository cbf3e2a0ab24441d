/** The producer string written into every model: package name and version from package.json. */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: { name: string; version: string } | undefined;

export function producerInfo(): { name: string; version: string } {
  if (cached) return cached;
  // Walk up: export/ in a checkout, dist/export/ in a build.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++, dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
    if (pkg.name && pkg.version) return (cached = { name: pkg.name, version: pkg.version });
  }
  return (cached = { name: 'ssd-jetson', version: 'unknown' });
}

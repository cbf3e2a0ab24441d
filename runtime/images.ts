/** The image files named on a command line: files as given, directories searched for images. */
import { readdirSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { SsdError } from '../core/errors.js';

/** Extensions picked up when a directory is given (files named explicitly may have any). */
export const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp', '.tif', '.tiff', '.gif', '.avif', '.heic', '.heif']);

/** Image files under `paths`, directories walked recursively, each directory's files in name order. */
export function listImages(paths: readonly string[]): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    const entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && IMAGE_EXTENSIONS.has(extname(e.name).toLowerCase())) out.push(p);
    }
  };
  for (const p of paths) {
    let st;
    try {
      st = statSync(p);
    } catch {
      throw new SsdError(`image ${p}: file not found`);
    }
    if (st.isDirectory()) walk(p);
    else out.push(p);
  }
  return out;
}

/** The file name without directory and extension: VOC's image id ("000005"). */
export function imageStem(path: string): string {
  return basename(path, extname(path));
}

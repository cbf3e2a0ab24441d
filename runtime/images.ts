/** The image files named on a command line: files as given, directories searched for images. */
import { readdirSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { SsdError, oneLine } from '../core/errors.js';

/** Extensions picked up when a directory is given (files named explicitly may have any). */
export const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp', '.tif', '.tiff', '.gif', '.avif', '.heic', '.heif']);

/**
 * Image files under `paths`, directories walked recursively, each directory's files in name order.
 * Inside a directory a symlink to a file counts as that file, but a symlink to a directory is not
 * followed: a link back up the tree (a loop) or across to a big tree must not make the walk endless or
 * list files twice. A directory named on the command line is walked even when it is a symlink.
 */
export function listImages(paths: readonly string[]): string[] {
  const out: string[] = [];
  const isImage = (name: string) => IMAGE_EXTENSIONS.has(extname(name).toLowerCase());
  // A dangling link, or one that loops on itself (ELOOP), is no image file: skipped like a text file.
  const linksToFile = (p: string) => {
    try {
      return statSync(p).isFile();
    } catch {
      return false;
    }
  };
  const walk = (dir: string) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch (err) {
      throw new SsdError(`image directory ${dir}: cannot read (${(err as NodeJS.ErrnoException).code ?? oneLine(err)})`, { cause: err });
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && isImage(e.name)) out.push(p);
      else if (e.isSymbolicLink() && isImage(e.name) && linksToFile(p)) out.push(p);
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

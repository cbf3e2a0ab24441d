// `ssd detect`'s inputs: hundreds of image paths on the command line (onnxruntime's environment
// creation recurses over /proc/self/cmdline and needs a stack to match, see inference-thread.ts), and
// directory scans that meet symlinks (files are taken, directories and loops are not followed).
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { listImages } from '../../runtime/images.js';
import { runNodeArgs, type SsdRun } from '../cli/helpers.js';
import { tempDir } from '../helpers/temp-dir.js';
import { WAIT_MS } from '../helpers/wait.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const MODEL = join(ROOT, 'models', 'digits-ssd.onnx');
// 500 images through the digits model is seconds on an idle machine; the bound only ends a hang.
const RUN_BOUND_MS = 3 * WAIT_MS;

type Ran = SsdRun;
const run = (args: string[]): Promise<Ran> => runNodeArgs(args, { hangMs: RUN_BOUND_MS });

async function png(path: string, shade: number): Promise<void> {
  const size = 40;
  const rgb = new Uint8Array(size * size * 3);
  for (let i = 0; i < rgb.length; i++) rgb[i] = (shade + (i % 97) * 3) & 255;
  writeFileSync(path, await sharp(rgb, { raw: { width: size, height: size, channels: 3 } }).png().toBuffer());
}

describe('ssd detect with a long command line', () => {
  const tmp = tempDir('ssd-detect-many-');
  const paths: string[] = [];
  beforeAll(async () => {
    const originals = join(tmp, 'originals');
    mkdirSync(originals);
    for (let k = 0; k < 4; k++) await png(join(originals, `${k}.png`), 40 * k);
    const many = join(tmp, 'many');
    mkdirSync(many);
    for (let i = 0; i < 500; i++) {
      const p = join(many, `scene-${String(i).padStart(4, '0')}-with-a-name-long-enough.png`);
      symlinkSync(join(originals, `${i % 4}.png`), p);
      paths.push(p);
    }
  });

  it('runs the real CLI on 500 image paths (the worker used to die with SIGSEGV from ~300)', async () => {
    const args = [join(ROOT, 'bin', 'ssd.js'), 'detect', MODEL, ...paths];
    // The command line is well past the ~14-16 KB that crashed onnxruntime on a 4 MB worker stack.
    expect(args.join(' ').length).toBeGreaterThan(20 * 1024);
    const r = await run(args);
    expect({ code: r.code, signal: r.signal, stderr: r.stderr }).toEqual({ code: 0, signal: null, stderr: '' });
    const reported = r.stdout.split('\n').filter((l) => l.startsWith(join(tmp, 'many')));
    expect(reported).toHaveLength(500);
    expect(reported.map((l) => l.slice(0, l.indexOf(': ')))).toEqual(paths);
  }, RUN_BOUND_MS + 60_000);

  it('a main-thread session in a process with that command line works too', async () => {
    // The main thread's stack is fixed (8 MB) and too small from ~28 KB of command line: the
    // environment is created on a worker with a large enough stack first.
    // One line: onnxruntime's match stops at the first newline of the command line, so a script
    // with line breaks ahead of the paths would hide the problem.
    const script = [
      `const { Detector } = await import(${JSON.stringify(pathToFileURL(join(ROOT, 'runtime', 'detector.ts')).href)});`,
      `const d = await Detector.load(${JSON.stringify(MODEL)}, { thread: 'main', providers: ['cpu'], log: () => {} });`,
      `const dets = await d.detect(${JSON.stringify(paths[0])});`,
      'await d.dispose();',
      "console.log('ran on the ' + d.thread + ' thread: ' + dets.length + ' detections');",
    ].join(' ');
    const padding = [...paths, ...paths];
    const args = ['--import', 'tsx', '--input-type=module', '-e', script, ...padding];
    expect(args.join(' ').length).toBeGreaterThan(40 * 1024);
    const r = await run(args);
    expect({ code: r.code, signal: r.signal, stderr: r.stderr }).toEqual({ code: 0, signal: null, stderr: '' });
    expect(r.stdout).toMatch(/^ran on the main thread: \d+ detections$/m);
  }, RUN_BOUND_MS + 60_000);
});

describe('directory scans and symlinks', () => {
  const tmp = tempDir('ssd-detect-links-');
  let dir: string;
  let other: string;
  beforeAll(async () => {
    dir = join(tmp, 'images');
    other = join(tmp, 'elsewhere');
    mkdirSync(join(dir, 'sub'), { recursive: true });
    mkdirSync(other);
    await png(join(dir, 'a.png'), 10);
    await png(join(dir, 'sub', 'b.png'), 20);
    await png(join(other, 'c.png'), 30);
    writeFileSync(join(dir, 'notes.txt'), 'not an image');
    symlinkSync('..', join(dir, 'sub', 'up')); // a loop: sub/up/sub/up/...
    symlinkSync('.', join(dir, 'self')); // another: self/self/...
    symlinkSync(other, join(dir, 'elsewhere')); // a directory across the tree: not followed
    symlinkSync(join(dir, 'a.png'), join(dir, 'link.png')); // a file: taken
    symlinkSync(join(tmp, 'gone.png'), join(dir, 'dangling.png'));
    symlinkSync('selfloop.png', join(dir, 'selfloop.png')); // ELOOP when followed
  });

  it('takes symlinked files, follows no symlinked directory, and ends on loops', () => {
    expect(listImages([dir])).toEqual([join(dir, 'a.png'), join(dir, 'link.png'), join(dir, 'sub', 'b.png')]);
    // A symlinked directory named on the command line is what the user asked for: walked.
    expect(listImages([join(dir, 'elsewhere')])).toEqual([join(dir, 'elsewhere', 'c.png')]);
  });

  it('ssd detect on a directory with symlink loops finishes with its three images', async () => {
    const r = await run([join(ROOT, 'bin', 'ssd.js'), 'detect', MODEL, dir]);
    expect({ code: r.code, signal: r.signal, stderr: r.stderr }).toEqual({ code: 0, signal: null, stderr: '' });
    const reported = r.stdout.split('\n').filter((l) => l.startsWith(dir)).map((l) => l.slice(0, l.indexOf(': ')));
    expect(reported).toEqual([join(dir, 'a.png'), join(dir, 'link.png'), join(dir, 'sub', 'b.png')]);
  }, RUN_BOUND_MS + 60_000);
});

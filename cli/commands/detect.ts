import { mkdirSync } from 'node:fs';
import { extname, join } from 'node:path';
import { writeFileAtomic } from '../../core/atomic-write.js';
import { SsdError, oneLine } from '../../core/errors.js';
import { Detector, type Detection } from '../../runtime/detector.js';
import { drawDetections, type AnnotatedFormat } from '../../runtime/draw.js';
import { imageStem, listImages } from '../../runtime/images.js';
import { cocoResults } from '../../runtime/results.js';
import { intFlag, numberFlag, parseFlags, type Command } from '../args.js';
import { GRAPH_OPTIMIZATION_LEVELS, type GraphOptimizationLevel } from '../../runtime/session.js';

const USAGE = `Usage: ssd detect MODEL.onnx IMAGE|DIR... [options]

Runs an SSD exported by "ssd export-onnx" on images. Everything about the model (input size, layout,
mean, labels, default boxes, postprocessing) comes from its metadata: no other flag is needed.

Options:
  --out DIR            write each image with its detections drawn (same format; other formats as JPEG)
  --json FILE          write all detections as COCO results JSON
                       ([{image_id, category_id, bbox: [x, y, w, h], score}]; image_id = file stem)
  --threshold T        minimum score (default 0.5)
  --device NAME        device profile whose providers/threads to use (see "ssd devices"; default: detected)
  --threads N          onnxruntime intra-op threads (default: the profile's, else one per core)
  --graph-opt LEVEL    onnxruntime graph optimization: ${GRAPH_OPTIMIZATION_LEVELS.join(', ')} (default all)
  --letterbox          keep the aspect ratio and pad with the mean (default: warp, as SSD trains)
  --batch N            images per run for models with a dynamic batch (default 8)
  -h, --help           this help

Directories are searched recursively for .jpg/.jpeg/.png/.webp/.tif/.gif/.avif/.heic files.
An image that cannot be read is reported on stderr, the others are still processed, and the exit
code is 1.`;

const OPTIONS = {
  out: { type: 'string' },
  json: { type: 'string' },
  threshold: { type: 'string' },
  device: { type: 'string' },
  threads: { type: 'string' },
  'graph-opt': { type: 'string' },
  letterbox: { type: 'boolean' },
  batch: { type: 'string' },
} as const;

function annotatedName(path: string): { ext: string; format: AnnotatedFormat } {
  const ext = extname(path).toLowerCase();
  if (ext === '.png') return { ext, format: 'png' };
  if (ext === '.webp') return { ext, format: 'webp' };
  return { ext: ext === '.jpeg' ? '.jpeg' : '.jpg', format: 'jpeg' };
}

function summary(dets: readonly Detection[]): string {
  if (dets.length === 0) return 'no detections';
  const shown = dets.slice(0, 5).map((d) => `${d.label} ${d.score.toFixed(2)} [${d.box.map((v) => Math.round(v)).join(',')}]`);
  return `${dets.length} detection${dets.length === 1 ? '' : 's'}: ${shown.join('; ')}${dets.length > 5 ? '; ...' : ''}`;
}

const command: Command = {
  name: 'detect',
  summary: 'run a model on images, write annotated images and COCO JSON',
  usage: USAGE,
  async run(argv) {
    const { values, positionals } = parseFlags('detect', argv, OPTIONS);
    const [model, ...inputs] = positionals;
    if (!model) throw new SsdError('missing MODEL.onnx (see "ssd detect --help")');
    if (inputs.length === 0) throw new SsdError('no images given (see "ssd detect --help")');
    const threshold = numberFlag('detect', 'threshold', values.threshold, 0.5, 0, 1);
    const threads = values.threads === undefined ? undefined : intFlag('detect', 'threads', values.threads, 0, 1, 1024);
    const maxBatch = intFlag('detect', 'batch', values.batch, 8, 1, 256);
    const graphOpt = values['graph-opt'];
    if (graphOpt !== undefined && !(GRAPH_OPTIMIZATION_LEVELS as readonly string[]).includes(graphOpt)) {
      throw new SsdError(`--graph-opt must be one of ${GRAPH_OPTIMIZATION_LEVELS.join(', ')}, got "${graphOpt}"`);
    }
    const images = listImages(inputs);
    if (images.length === 0) throw new SsdError(`no images found in ${inputs.join(', ')}`);
    if (values.out) {
      try {
        mkdirSync(values.out, { recursive: true });
      } catch (err) {
        throw new SsdError(`--out ${values.out}: cannot create (${oneLine(err)})`);
      }
    }

    const detector = await Detector.load(model, {
      device: values.device, threads, maxBatch, graphOptimization: graphOpt as GraphOptimizationLevel | undefined,
      resize: values.letterbox ? 'letterbox' : 'warp',
      // stdout: stderr is kept for errors, one line each.
      log: (line) => console.log(line),
    });
    const allResults: Array<{ path: string; detections: Detection[] }> = [];
    let failures = 0;
    const usedNames = new Set<string>();
    const progress = process.stderr.isTTY && images.length > 1;
    try {
      const chunk = Math.max(detector.runBatch * 4, 16);
      for (let start = 0; start < images.length; start += chunk) {
        const paths = images.slice(start, start + chunk);
        const results = await detector.detectBatch(paths, { threshold });
        for (const [j, r] of results.entries()) {
          const path = paths[j]!;
          if (!r.ok) {
            failures++;
            if (progress) process.stderr.write('\r\x1b[K');
            console.error(`ssd detect: ${r.error}`);
            continue;
          }
          allResults.push({ path, detections: r.detections });
          console.log(`${path}: ${summary(r.detections)}`);
          if (values.out) {
            const { ext, format } = annotatedName(path);
            let name = `${imageStem(path)}${ext}`;
            for (let k = 2; usedNames.has(name); k++) name = `${imageStem(path)}_${k}${ext}`;
            usedNames.add(name);
            try {
              writeFileAtomic(join(values.out, name), await drawDetections(path, r.detections, format));
            } catch (err) {
              failures++;
              console.error(`ssd detect: ${oneLine(err)}`);
            }
          }
        }
        if (progress) process.stderr.write(`\r\x1b[K[${Math.min(start + chunk, images.length)}/${images.length}] images`);
      }
      if (progress) process.stderr.write('\r\x1b[K');
    } finally {
      await detector.dispose();
    }
    if (values.json) {
      const json = cocoResults(allResults.map((r) => ({ imageId: imageStem(r.path), detections: r.detections })), detector.labels);
      writeFileAtomic(values.json, `${JSON.stringify(json)}\n`);
      console.log(`wrote ${json.length} detections of ${allResults.length} images to ${values.json}`);
    }
    if (values.out) console.log(`annotated images in ${values.out}`);
    return failures > 0 ? 1 : 0;
  },
};
export default command;

import { extname, join } from 'node:path';
import { writeFileAtomic } from '../../core/atomic-write.js';
import { SsdError, oneLine } from '../../core/errors.js';
import { writeVocComp4 } from '../../core/datasets/results.js';
import {
  cocoResultsWithIds, groundTruthImageIds, isCocoPath, mappingJson, mappingPathFor, numberedResultsIds, readGroundTruthIds,
  resultsIdsFromGroundTruth, vocDetectionsWithIds, type GroundTruthIds, type NumberedIds, type ResultsIds,
} from '../../core/datasets/results-ids.js';
import type { DetectionPixelsXYXY } from '../../core/model-contract.js';
import { Detector } from '../../runtime/detector.js';
import { drawDetections, type AnnotatedFormat } from '../../runtime/draw.js';
import { imageStem, listImages } from '../../runtime/images.js';
import { GRAPH_OPTIMIZATION_LEVELS, type GraphOptimizationLevel } from '../../runtime/session.js';
import { choiceFlag, intFlag, numberFlag, parseFlags, type Command } from '../args.js';
import { CreatedDirs, checkOutputDir, checkOutputFile } from '../outputs.js';

const USAGE = `Usage: ssd detect MODEL.onnx IMAGE|DIR... [options]

Runs an SSD exported by "ssd export-onnx" on images. Everything about the model (input size, layout,
mean, labels, default boxes, postprocessing) comes from its metadata: no other flag is needed.

Outputs (each flag names what it writes):
  --annotated DIR      each image with its detections drawn (same format; other formats as JPEG)
                       (was --out, which still works until 0.3)
  --coco-results FILE  all detections as COCO results JSON ([{image_id, category_id, bbox: [x, y, w, h],
                       score}], pixels of the original image); without --gt, image ids are 1..N in the
                       order listed and FILE's ids file (results.ids.json) maps them to the image files
                       and the category ids to class names (was --json, which still works until 0.3)
  --voc-results DIR    VOC comp4 files, comp4_det_<split>_<class>.txt: "<image id> <score> <x1> <y1>
                       <x2> <y2>" in the devkit's 1-based pixels (image id: the file stem without --gt)

Ground truth (makes the results score with "ssd eval" on it):
  --gt PATH            a COCO instances JSON or a VOC directory: image ids and category ids come from it
                       (images matched by file name, classes by name); images it does not hold are
                       skipped, classes it does not have are left out of the results
  --split NAME         with a VOC --gt: only the images of ImageSets/Main/NAME.txt (default test)

Options:
  --threshold T        minimum score (default 0.5)
  --device NAME        device profile whose providers/threads to use (see "ssd devices"; default: detected)
  --threads N          onnxruntime intra-op threads (default: the profile's, else one per core)
  --require-gpu        fail instead of falling back to the CPU when no GPU provider loads
  --graph-opt LEVEL    onnxruntime graph optimization: ${GRAPH_OPTIMIZATION_LEVELS.join(', ')} (default all)
  --letterbox          keep the aspect ratio and pad with the mean (default: warp, as SSD trains)
  --batch N            images per run for models with a dynamic batch (default 8)
  --shrink-on-load     decode JPEGs >= 2x/4x/8x the model input at 1/2, 1/4, 1/8 size (faster on
                       big photos; pixels differ slightly from training's full decode)
  -h, --help           this help

Example (the digits test split, scored as the trainer scores it):
  ssd detect models/digits-ssd.onnx data/digits/VOC2007/JPEGImages --gt data/digits/VOC2007 --split test \\
    --threshold 0.01 --coco-results dt.json
  ssd eval --gt data/digits/VOC2007 --split test --dt dt.json

Directories are searched recursively for .jpg/.jpeg/.png/.webp/.tif/.gif/.avif/.heic files.
Every input and output path is checked before the model loads. An image that cannot be read is
reported on stderr, the others are still processed, and the exit code is 1; any other failure
removes the output directories this run created.`;

const OPTIONS = {
  annotated: { type: 'string' },
  'coco-results': { type: 'string' },
  'voc-results': { type: 'string' },
  gt: { type: 'string' },
  split: { type: 'string' },
  threshold: { type: 'string' },
  device: { type: 'string' },
  'require-gpu': { type: 'boolean' },
  threads: { type: 'string' },
  'graph-opt': { type: 'string' },
  letterbox: { type: 'boolean' },
  batch: { type: 'string' },
  'shrink-on-load': { type: 'boolean' },
} as const;

const RENAMED = [{ old: 'out', now: 'annotated' }, { old: 'json', now: 'coco-results' }];

function annotatedName(path: string): { ext: string; format: AnnotatedFormat } {
  const ext = extname(path).toLowerCase();
  if (ext === '.png') return { ext, format: 'png' };
  if (ext === '.webp') return { ext, format: 'webp' };
  return { ext: ext === '.jpeg' ? '.jpeg' : '.jpg', format: 'jpeg' };
}

function summary(dets: readonly DetectionPixelsXYXY[]): string {
  if (dets.length === 0) return 'no detections';
  const shown = dets.slice(0, 5).map((d) => `${d.label} ${d.score.toFixed(2)} [${d.box.map((v) => Math.round(v)).join(',')}]`);
  return `${dets.length} detection${dets.length === 1 ? '' : 's'}: ${shown.join('; ')}${dets.length > 5 ? '; ...' : ''}`;
}

/** Writes a finished output; a failure (disk full, permissions changed meanwhile) names the flag. */
function writeOutput(flag: string, path: string, write: () => void): void {
  try {
    write();
  } catch (err) {
    if (err instanceof SsdError) throw err;
    throw new SsdError(`${flag} ${path}: cannot write (${oneLine(err)})`, { cause: err });
  }
}

const command: Command = {
  name: 'detect',
  summary: 'run a model on images: annotated images, COCO results JSON, VOC comp4 files',
  usage: USAGE,
  async run(argv) {
    // Everything the user gave is checked first; the model loads only once all of it is good.
    const { values, positionals } = parseFlags('detect', argv, OPTIONS, true, RENAMED);
    const [model, ...inputs] = positionals;
    if (!model) throw new SsdError('missing MODEL.onnx (see "ssd detect --help")');
    if (inputs.length === 0) throw new SsdError('no images given (see "ssd detect --help")');
    const threshold = numberFlag('threshold', values.threshold, 0.5, 0, 1);
    const threads = values.threads === undefined ? undefined : intFlag('threads', values.threads, 0, 1, 1024);
    const maxBatch = intFlag('batch', values.batch, 8, 1, 256);
    const graphOpt = values['graph-opt'] === undefined ? undefined : choiceFlag<GraphOptimizationLevel>('graph-opt', values['graph-opt'], GRAPH_OPTIMIZATION_LEVELS, 'all');
    const annotatedDir = values.annotated;
    const cocoPath = values['coco-results'];
    const vocDir = values['voc-results'];
    if (values.split !== undefined && values.gt === undefined) throw new SsdError('--split selects the images of a VOC --gt: give --gt too');
    if (values.split !== undefined && isCocoPath(values.gt!)) throw new SsdError(`--split applies to a VOC --gt; ${values.gt} is a COCO JSON`);
    const split = values.split ?? 'test';
    if (annotatedDir !== undefined) checkOutputDir('--annotated', annotatedDir);
    if (vocDir !== undefined) checkOutputDir('--voc-results', vocDir);
    if (cocoPath !== undefined) {
      checkOutputFile('--coco-results', cocoPath);
      if (values.gt === undefined) checkOutputFile('--coco-results', mappingPathFor(cocoPath));
    }

    const listed = listImages(inputs);
    if (listed.length === 0) throw new SsdError(`no images found in ${inputs.join(', ')}`);
    let gt: GroundTruthIds | undefined;
    let images = listed;
    if (values.gt !== undefined) {
      gt = readGroundTruthIds(values.gt, split);
      const inGt = groundTruthImageIds(gt);
      images = listed.filter((p) => inGt(p) !== undefined);
      if (images.length === 0) throw new SsdError(`--gt ${gt.name}: none of the ${listed.length} images is in it (images are matched by file name)`);
    }

    const detector = await Detector.load(model, {
      device: values.device, threads, maxBatch, graphOptimization: graphOpt,
      ...(values['require-gpu'] ? { requireGpu: true } : {}),
      resize: values.letterbox ? 'letterbox' : 'warp',
      shrinkOnLoad: values['shrink-on-load'] ?? false,
      // stdout: stderr is kept for errors, one line each.
      log: (line) => console.log(line),
    });
    const dirs = new CreatedDirs();
    try {
      let ids: ResultsIds;
      let numbered: NumberedIds | undefined;
      if (gt) {
        ids = resultsIdsFromGroundTruth(gt, detector.labels);
        if (images.length < listed.length) console.log(`--gt ${gt.name}: ${images.length} of the ${listed.length} images are in it; the others are skipped`);
        if (ids.missingClasses.length) console.log(`--gt ${gt.name}: has no class ${ids.missingClasses.join(', ')}; those detections are left out of the results`);
      } else {
        numbered = numberedResultsIds(images, detector.labels);
        ids = numbered.ids;
      }
      if (annotatedDir !== undefined) dirs.make('--annotated', annotatedDir);
      const found = await detectAll(detector, images, threshold, annotatedDir);

      if (cocoPath !== undefined) {
        const entries = cocoResultsWithIds(found.results, ids);
        writeOutput('--coco-results', cocoPath, () => writeFileAtomic(cocoPath, `${JSON.stringify(entries)}\n`));
        let idsNote = '';
        if (numbered) {
          const mappingPath = mappingPathFor(cocoPath);
          writeOutput('--coco-results', mappingPath, () => writeFileAtomic(mappingPath, mappingJson(numbered.mapping)));
          idsNote = ` (image and category ids: ${mappingPath})`;
        }
        console.log(`wrote ${entries.length} detections of ${found.results.length} images to ${cocoPath}${idsNote}`);
      }
      if (vocDir !== undefined) {
        // comp4 files name images as the devkit does: the ground truth's ids, else the file stems.
        const vocImageId = gt ? (p: string) => { const id = ids.imageId(p); return id === undefined ? undefined : String(id); } : imageStem;
        const dets = vocDetectionsWithIds(found.results, ids, vocImageId);
        dirs.make('--voc-results', vocDir);
        let files: string[] = [];
        writeOutput('--voc-results', vocDir, () => { files = writeVocComp4(vocDir, dets, ids.labels, { split }); });
        console.log(`wrote ${dets.length} detections to ${files.length} comp4 files in ${vocDir}`);
      }
      if (annotatedDir !== undefined) console.log(`annotated images in ${annotatedDir}`);
      return found.failures > 0 ? 1 : 0;
    } catch (err) {
      dirs.removeAll();
      throw err;
    } finally {
      await detector.dispose();
    }
  },
};

/**
 * Runs the detector over every image (annotating as it goes); a bad image is reported and counted.
 * detectEach keeps the pipeline full over the whole list: while an image's result is printed and
 * drawn here, the next batch is inferred and the one after it decoded.
 */
async function detectAll(detector: Detector, images: readonly string[], threshold: number, annotatedDir: string | undefined) {
  const results: Array<{ path: string; detections: DetectionPixelsXYXY[] }> = [];
  let failures = 0;
  const usedNames = new Set<string>();
  const progress = process.stderr.isTTY && images.length > 1;
  let done = 0;
  let shown = 0;
  for await (const r of detector.detectEach(images, { threshold })) {
    const path = images[done++]!;
    if (!r.ok) {
      failures++;
      if (progress) process.stderr.write('\r\x1b[K');
      console.error(`ssd detect: ${r.error}`);
    } else {
      results.push({ path, detections: r.detections });
      console.log(`${path}: ${summary(r.detections)}`);
      if (annotatedDir !== undefined) {
        const { ext, format } = annotatedName(path);
        let name = `${imageStem(path)}${ext}`;
        for (let k = 2; usedNames.has(name); k++) name = `${imageStem(path)}_${k}${ext}`;
        usedNames.add(name);
        try {
          writeFileAtomic(join(annotatedDir, name), await drawDetections(path, r.detections, format));
        } catch (err) {
          failures++;
          console.error(`ssd detect: ${oneLine(err)}`);
        }
      }
    }
    // The bar is redrawn once per run batch (or 16 images), not per line of output.
    if (progress && (done - shown >= Math.max(detector.runBatch, 16) || done === images.length)) {
      shown = done;
      process.stderr.write(`\r\x1b[K[${done}/${images.length}] images`);
    }
  }
  if (progress) process.stderr.write('\r\x1b[K');
  return { results, failures };
}

export default command;

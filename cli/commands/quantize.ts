/**
 * `ssd quantize`: an fp32/fp16 SSD -> an INT8 QDQ model, calibrated on real pictures through the
 * runtime's own preprocessing (the Detector's prepare path: sharp decode + core/preprocess.ts), and
 * guarded by mAP: with --val the float and the int8 model are both evaluated and the int8 one is
 * written only when it loses at most --max-drop. The graph work is export/quantize.ts.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { writeFileAtomic } from '../../core/atomic-write.js';
import { loadCocoDataset } from '../../core/datasets/coco.js';
import { usesVocPixels } from '../../core/datasets/results.js';
import type { Dataset } from '../../core/datasets/types.js';
import { loadVocDataset, resolveVocRoots } from '../../core/datasets/voc.js';
import { SsdError } from '../../core/errors.js';
import { evaluate, type EvalMetric } from '../../core/eval/index.js';
import { pixelsToVoc, type DetectionAnnotationXYXY } from '../../core/model-contract.js';
import {
  CALIBRATION_METHODS, RangeCollector, calibrationModel, planQuantization, quantizeModel,
  type ActivationType, type CalibrationMethod,
} from '../../export/quantize.js';
import { Detector } from '../../runtime/detector.js';
import { listImages } from '../../runtime/images.js';
import { choiceFlag, intFlag, numberFlag, parseFlags, type Command } from '../args.js';
import { checkOutputFile } from '../outputs.js';

const USAGE = `Usage: ssd quantize MODEL.onnx --calibrate DATA --out MODEL-int8.onnx [options]

Post-training INT8 quantization as a QDQ graph (uint8 activations, per-channel symmetric int8
weights; Conv, Relu and MaxPool in int8; L2Norm, the heads' outputs, softmax, decode and NMS in
float). Calibration runs the float model on real pictures with the runtime's own preprocessing.
With --val both models are evaluated and the int8 one is written only if its mAP drops by at most
--max-drop. Works on every export mode (postprocess none/decode/nms, float-nchw or uint8-nhwc
input, fp32 or fp16). See docs/quantize.md.

Options:
  --calibrate DATA   pictures to calibrate on: a directory of images, a VOC directory (its trainval
                     split, else train, else every image), a COCO instances JSON (images beside it
                     or --coco-images DIR), or "digits" (the generated digits set's train split)
  --coco-images DIR  where the images of a COCO JSON (--calibrate or --val) are
  --images N         calibration pictures, spread evenly over DATA (default 100)
  --method M         minmax (default), percentile (99.999) or entropy (KL, as TensorRT)
  --activations T    uint8 (default: onnxruntime CPU, the VNNI path) or int8 (symmetric, for
                     TensorRT and DLA, which take signed int8 only)
  --heads H          int8 (default): the prediction heads' convs run in int8 too, their outputs
                     dequantized at once; float: those convs stay float (~10% slower, more exact)
  --out FILE         where the int8 model goes (written only when the gate passes)
  --val DATA         evaluate fp32 and int8 on a VOC directory (--split, default test: VOC07 mAP),
                     a COCO instances JSON (COCO mAP) or "digits" (its test split)
  --val-images N     evaluate on at most N images of --val (default: all)
  --max-drop D       largest mAP loss accepted (default 0.01); the gate refuses with exit 1
                     (a negative D, written --max-drop=-1, always refuses)
  --split NAME       split of a VOC --val (default test)
  --threads N        onnxruntime intra-op threads (default: one per core)
  --json             print one JSON object with the figures
  -h, --help         this text

Examples:
  ssd quantize models/digits-ssd.onnx --calibrate digits --val digits --out runs/digits-int8.onnx
  ssd quantize ssd300.onnx --calibrate VOCdevkit/VOC2007 --images 200 --method percentile \\
    --val VOCdevkit/VOC2007 --max-drop 0.01 --out ssd300-int8.onnx`;

/** A picture list for calibration, and what to say about it in the metadata. */
interface Pictures { paths: string[]; description: string }

function isVocDir(p: string): boolean {
  try {
    resolveVocRoots([p]);
    return true;
  } catch {
    return false;
  }
}

function loadVoc(p: string, splits: readonly string[]): Dataset | undefined {
  const roots = resolveVocRoots(p.split(',').filter(Boolean));
  for (const split of splits) {
    if (roots.some((r) => existsSync(join(r, 'ImageSets', 'Main', `${split}.txt`)))) return loadVocDataset(roots, split, { onWarning: () => {} });
  }
  return undefined;
}

/** The generated digits set (made on first use); train/ is loaded only then: it pulls in TensorFlow.js. */
async function digitsRoot(log: (l: string) => void): Promise<string> {
  const { DIGITS_DIR, ensureDigitsDataset } = await import('../../train/index.js');
  return ensureDigitsDataset(resolve(DIGITS_DIR), log);
}

async function calibrationPictures(data: string, cocoImages: string | undefined, log: (l: string) => void): Promise<Pictures> {
  if (data === 'digits') {
    const root = await digitsRoot(log);
    return { paths: loadVocDataset(root, 'train', { onWarning: () => {} }).samples.map((s) => s.imagePath), description: 'digits train' };
  }
  if (!existsSync(data)) throw new SsdError(`--calibrate ${data}: no such file or directory`);
  if (data.endsWith('.json')) {
    const ds = loadCocoDataset(data, cocoImages, { onWarning: () => {} });
    return { paths: ds.samples.map((s) => s.imagePath), description: `COCO ${basename(data)}` };
  }
  if (isVocDir(data)) {
    const ds = loadVoc(data, ['trainval', 'train']);
    if (ds) return { paths: ds.samples.map((s) => s.imagePath), description: `${ds.name}` };
    const dirs = resolveVocRoots(data.split(',').filter(Boolean)).map((r) => join(r, 'JPEGImages')).filter((d) => existsSync(d));
    return { paths: listImages(dirs), description: `images ${data}` };
  }
  if (!statSync(data).isDirectory()) throw new SsdError(`--calibrate ${data}: not a directory, a VOC directory, a COCO JSON or "digits"`);
  const paths = listImages([data]);
  return { paths, description: `images ${data}` };
}

/** N of the list, evenly spread (the first ones of a dataset are often alike). */
function spread<T>(list: readonly T[], n: number): T[] {
  if (list.length <= n) return [...list];
  return Array.from({ length: n }, (_, i) => list[Math.floor((i * list.length) / n)]!);
}

async function validationSet(data: string, split: string, cocoImages: string | undefined, log: (l: string) => void): Promise<{ ds: Dataset; metric: EvalMetric }> {
  if (data === 'digits') {
    const root = await digitsRoot(log);
    return { ds: loadVocDataset(root, 'test', { onWarning: () => {} }), metric: 'voc07' };
  }
  if (!existsSync(data)) throw new SsdError(`--val ${data}: no such file or directory`);
  if (data.endsWith('.json')) return { ds: loadCocoDataset(data, cocoImages, { onWarning: () => {} }), metric: 'coco' };
  const ds = loadVoc(data, [split]);
  if (!ds) throw new SsdError(`--val ${data}: no split ${split} (ImageSets/Main/${split}.txt)`);
  return { ds, metric: 'voc07' };
}

class Progress {
  private last = -1;
  private readonly tty = process.stderr.isTTY === true;
  constructor(private readonly what: string, private readonly total: number) {}
  tick(done: number): void {
    const pct = Math.floor((100 * done) / this.total);
    if (this.tty) {
      const w = 24, fill = Math.round((w * done) / this.total);
      process.stderr.write(`\r\x1b[K${this.what} [${'#'.repeat(fill)}${'.'.repeat(w - fill)}] ${done}/${this.total}`);
      if (done === this.total) process.stderr.write('\n');
    } else if (pct >= this.last + 25 || done === this.total) {
      // Logs and CI: a line every quarter, not one per picture.
      this.last = pct;
      process.stderr.write(`${this.what}: ${done}/${this.total}\n`);
    }
  }
}

/** mAP of a model on a dataset, through the runtime (the Detector) as `ssd detect` runs it. */
export async function modelMap(modelPath: string, ds: Dataset, metric: EvalMetric, opts: { threads?: number; label: string; log: (l: string) => void }): Promise<number> {
  const det = await Detector.load(modelPath, { providers: ['cpu'], threads: opts.threads, log: opts.log });
  try {
    const dets: DetectionAnnotationXYXY[] = [];
    const classOf = new Map(ds.labels.map((l, i) => [l, i]));
    const vocPixels = usesVocPixels(ds);
    const bar = new Progress(`evaluating ${opts.label}`, ds.samples.length);
    const chunk = 16;
    for (let s = 0; s < ds.samples.length; s += chunk) {
      const part = ds.samples.slice(s, s + chunk);
      const results = await det.detectBatch(part.map((x) => x.imagePath), { threshold: 0.01 });
      results.forEach((r, j) => {
        if (!r.ok) throw new SsdError(`--val: ${r.error}`);
        for (const d of r.detections) {
          const classId = classOf.get(d.label);
          if (classId === undefined || classId === 0) continue;
          dets.push({ imageId: part[j]!.id, classId, score: d.score, box: vocPixels ? pixelsToVoc(d.box) : d.box });
        }
      });
      bar.tick(Math.min(s + chunk, ds.samples.length));
    }
    return evaluate(ds, dets, metric).map;
  } finally {
    await det.dispose();
  }
}

const command: Command = {
  name: 'quantize',
  summary: 'INT8 (QDQ) quantization calibrated on real pictures, guarded by mAP',
  usage: USAGE,
  async run(argv: string[]): Promise<number> {
    const { values, positionals } = parseFlags('quantize', argv, {
      calibrate: { type: 'string' },
      images: { type: 'string' },
      method: { type: 'string' },
      activations: { type: 'string' },
      heads: { type: 'string' },
      out: { type: 'string' },
      val: { type: 'string' },
      'val-images': { type: 'string' },
      'max-drop': { type: 'string' },
      split: { type: 'string' },
      'coco-images': { type: 'string' },
      threads: { type: 'string' },
      json: { type: 'boolean' },
    });
    if (positionals.length !== 1) throw new SsdError(`quantize takes one model, got ${positionals.length} (see "ssd quantize --help")`);
    const modelPath = positionals[0]!;
    if (!existsSync(modelPath)) throw new SsdError(`model ${modelPath}: file not found`);
    if (!values.calibrate) throw new SsdError('--calibrate is required (see "ssd quantize --help")');
    if (!values.out) throw new SsdError('--out is required (see "ssd quantize --help")');
    const out = values.out;
    if (resolve(out) === resolve(modelPath)) throw new SsdError(`--out ${out}: is the input model; choose another file`);
    checkOutputFile('--out', out);
    const nImages = intFlag('images', values.images, 100, 1, 100000);
    const method = choiceFlag<CalibrationMethod>('method', values.method, CALIBRATION_METHODS, 'minmax');
    const activations = choiceFlag<ActivationType>('activations', values.activations, ['uint8', 'int8'], 'uint8');
    const heads = choiceFlag('heads', values.heads, ['int8', 'float'] as const, 'int8');
    const maxDrop = numberFlag('max-drop', values['max-drop'], 0.01, -1, 1);
    const valImages = values['val-images'] === undefined ? undefined : intFlag('val-images', values['val-images'], 0, 1, 10000000);
    const threads = values.threads === undefined ? undefined : intFlag('threads', values.threads, 0, 1, 1024);
    const split = values.split ?? 'test';
    const log = (l: string) => process.stderr.write(`${l}\n`);
    const quiet = () => {};

    const plan = planQuantization(readFileSync(modelPath), `model ${modelPath}`, { heads: heads === 'int8' });
    const pics = await calibrationPictures(values.calibrate, values['coco-images'], log);
    if (pics.paths.length === 0) throw new SsdError(`--calibrate ${values.calibrate}: no images found`);
    const chosen = spread(pics.paths, nImages);
    // Validation data is read before the long calibration, so that a bad --val fails at once.
    const val = values.val ? await validationSet(values.val, split, values['coco-images'], log) : undefined;
    if (val && valImages !== undefined) val.ds.samples = spread(val.ds.samples, valImages);

    const tmp = mkdtempSync(join(tmpdir(), 'ssd-quantize-'));
    try {
      const probePath = join(tmp, 'calibration.onnx');
      writeFileSync(probePath, calibrationModel(plan));
      const collector = new RangeCollector(method, undefined, activations === 'uint8' ? 256 : 128);
      const det = await Detector.load(probePath, { providers: ['cpu'], threads, warmup: false, log: quiet });
      try {
        const bar = new Progress(`calibrating (${method}) on ${chosen.length} pictures of ${pics.description}`, chosen.length);
        for (let i = 0; i < chosen.length; i++) {
          // One picture per run: the same tensor `ssd detect` gives the model for that file.
          const prepared = await det.prepare(chosen[i]!);
          const raw = await det.run(prepared);
          for (const t of plan.tensors) {
            const v = raw.values[t];
            if (!v || !(v.data instanceof Float32Array)) throw new SsdError(`calibration: the model gave no float tensor ${t}`);
            collector.add(t, v.data);
          }
          bar.tick(i + 1);
        }
      } finally {
        await det.dispose();
      }
      const q = quantizeModel(plan, collector.ranges(), { activations, method, calibration: pics.description, images: chosen.length });
      const summary = `int8: ${q.quantizedConvs} convs and ${q.quantizedMaxPools} max-pools quantized (${activations} activations, ${method}, ${chosen.length} pictures of ${pics.description}); ${q.floatConvs ? `${q.floatConvs} head convs, ` : 'head outputs, '}L2Norm and postprocessing float`;
      let gate: { metric: EvalMetric; images: number; fp32: number; int8: number; drop: number; maxDrop: number; passed: boolean } | undefined;
      if (val) {
        const int8Path = join(tmp, 'int8.onnx');
        writeFileSync(int8Path, q.bytes);
        const fp = await modelMap(modelPath, val.ds, val.metric, { threads, label: 'float', log: quiet });
        const i8 = await modelMap(int8Path, val.ds, val.metric, { threads, label: 'int8', log: quiet });
        gate = { metric: val.metric, images: val.ds.samples.length, fp32: fp, int8: i8, drop: fp - i8, maxDrop, passed: fp - i8 <= maxDrop };
      }
      const figures = gate ? `${gate.metric} mAP on ${gate.images} images of ${val!.ds.name}: ${plan.source} ${gate.fp32.toFixed(4)}, int8 ${gate.int8.toFixed(4)} (drop ${gate.drop.toFixed(4)}, max ${maxDrop})` : undefined;
      if (gate && !gate.passed) {
        if (values.json) console.log(JSON.stringify({ written: false, ...gate }));
        throw new SsdError(`refused: ${figures}; nothing written to ${out}`);
      }
      writeFileAtomic(out, q.bytes);
      if (values.json) {
        console.log(JSON.stringify({ written: true, out, bytes: q.bytes.length, method, activations, calibrationImages: chosen.length, ...(gate ?? {}) }));
      } else {
        console.log(summary);
        if (figures) console.log(figures);
        console.log(`wrote ${out} (${(q.bytes.length / 1e6).toFixed(2)} MB, was ${(statSync(modelPath).size / 1e6).toFixed(2)} MB)`);
      }
      return 0;
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  },
};
export default command;

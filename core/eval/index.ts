import { existsSync, statSync } from 'node:fs';
import { loadCocoDataset } from '../datasets/coco.js';
import { readCocoResults, readVocComp4Dir } from '../datasets/results.js';
import type { Dataset } from '../datasets/types.js';
import type { DetectionAnnotationXYXY } from '../model-contract.js';
import { loadVocDataset } from '../datasets/voc.js';
import { SsdError } from '../errors.js';
import { evalCoco, COCO_STAT_NAMES, type CocoEvalResult } from './coco.js';
import { evalVoc, type VocEvalResult, type VocMetric } from './voc.js';

export type EvalMetric = VocMetric | 'coco';
export const EVAL_METRICS: readonly EvalMetric[] = ['voc07', 'voc12', 'coco'];

export { evalVoc, evalCoco, COCO_STAT_NAMES };
export type { VocEvalResult, CocoEvalResult };

/** A COCO annotations file (a .json file) or VOC year/devkit directories. */
export function isCocoGroundTruth(paths: readonly string[]): boolean {
  return paths.length === 1 && existsSync(paths[0]!) && statSync(paths[0]!).isFile();
}

/**
 * Ground truth for evaluation: strict, because a silently skipped object would change the score;
 * images need not be present.
 */
export function loadGroundTruth(paths: readonly string[], split: string): Dataset {
  if (paths.length === 0) throw new SsdError('no ground truth given');
  for (const p of paths) if (!existsSync(p)) throw new SsdError(`${p}: no such file or directory`);
  if (isCocoGroundTruth(paths)) return loadCocoDataset(paths[0]!, undefined, { strict: true });
  return loadVocDataset(paths, split, { strict: true, checkImages: false });
}

/** Detections from a COCO results JSON or a directory of VOC comp4 files. */
export function loadDetections(path: string, gt: Dataset, split: string): DetectionAnnotationXYXY[] {
  if (!existsSync(path)) throw new SsdError(`${path}: no such file or directory`);
  if (statSync(path).isDirectory()) {
    try {
      return readVocComp4Dir(path, gt, { split });
    } catch (err) {
      // Files for another split name only: take them all rather than fail on a naming detail.
      if (err instanceof SsdError && /no comp4_det_/.test(err.message)) return readVocComp4Dir(path, gt);
      throw err;
    }
  }
  return readCocoResults(path, gt);
}

export type EvalResult = VocEvalResult | CocoEvalResult;

export function evaluate(gt: Dataset, dets: readonly DetectionAnnotationXYXY[], metric: EvalMetric, iouThreshold?: number): EvalResult {
  if (metric === 'coco') return evalCoco(gt, dets);
  return evalVoc(gt, dets, { metric, ...(iouThreshold !== undefined ? { iouThreshold } : {}) });
}

/** The machine-readable summary `ssd eval --json` prints. */
export function evalSummary(r: EvalResult): { metric: EvalMetric; map: number; ap: Record<string, number>; stats?: number[] } {
  return r.metric === 'coco' ? { metric: r.metric, map: r.map, ap: r.ap, stats: r.stats } : { metric: r.metric, map: r.map, ap: r.ap };
}

function fmt(v: number): string {
  return v < 0 ? '   n/a' : v.toFixed(4);
}

/** A readable per-class table. */
export function formatEvalTable(r: EvalResult, title = ''): string {
  const names = Object.keys(r.ap);
  const w = Math.max(5, ...names.map((n) => n.length));
  const lines: string[] = [];
  if (title) lines.push(title);
  if (r.metric === 'coco') {
    lines.push(`${'class'.padEnd(w)}  AP@[.5:.95]    AP@.5`);
    for (const n of names) lines.push(`${n.padEnd(w)}  ${fmt(r.ap[n]!).padStart(11)}  ${fmt(r.ap50[n]!).padStart(7)}`);
    lines.push('');
    const desc = [
      'AP  @[IoU=0.50:0.95 | area=   all | maxDets=100]',
      'AP  @[IoU=0.50      | area=   all | maxDets=100]',
      'AP  @[IoU=0.75      | area=   all | maxDets=100]',
      'AP  @[IoU=0.50:0.95 | area= small | maxDets=100]',
      'AP  @[IoU=0.50:0.95 | area=medium | maxDets=100]',
      'AP  @[IoU=0.50:0.95 | area= large | maxDets=100]',
      'AR  @[IoU=0.50:0.95 | area=   all | maxDets=  1]',
      'AR  @[IoU=0.50:0.95 | area=   all | maxDets= 10]',
      'AR  @[IoU=0.50:0.95 | area=   all | maxDets=100]',
      'AR  @[IoU=0.50:0.95 | area= small | maxDets=100]',
      'AR  @[IoU=0.50:0.95 | area=medium | maxDets=100]',
      'AR  @[IoU=0.50:0.95 | area= large | maxDets=100]',
    ];
    r.stats.forEach((v, i) => lines.push(`${COCO_STAT_NAMES[i]!.padEnd(5)} ${desc[i]} = ${v.toFixed(3)}`));
    lines.push(`mAP (COCO AP@[.5:.95]) = ${fmt(r.map)}`);
  } else {
    lines.push(`${'class'.padEnd(w)}      AP      gt    dets      tp      fp`);
    for (const n of names) {
      const c = r.perClass[n]!;
      lines.push(`${n.padEnd(w)}  ${fmt(c.ap)}  ${String(c.gt).padStart(6)}  ${String(c.dets).padStart(6)}  ${String(c.tp).padStart(6)}  ${String(c.fp).padStart(6)}`);
    }
    lines.push(`mAP (${r.metric === 'voc07' ? 'VOC07 11-point' : 'VOC2010+ all-point'}) = ${fmt(r.map)}`);
  }
  return lines.join('\n');
}

/**
 * Export: checkpoint (or a seeded random init) -> ONNX file, verified against the tfjs model before it
 * is written, written atomically. `buildOnnxModel` is the in-memory part that tests and other areas use
 * to make small models; `exportOnnx` is what `ssd export-onnx` calls.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { writeFileAtomic } from '../core/atomic-write.js';
import { loadCheckpoint, type TrainingRecord, type WeightMap } from '../core/checkpoint.js';
import { SsdError } from '../core/errors.js';
import type { OutputTensor } from '../core/model-contract.js';
import type { TrainingInfo } from '../core/model-metadata.js';
import { validateSpec, type SsdSpec } from '../core/specs.js';
import { buildOnnxModelInfo, type BuildOptions } from './build.js';
import { randomWeights } from './random-init.js';
import type { VerificationReport } from './verify.js';

export { buildOnnxModel, buildOnnxModelInfo, DEFAULT_OPSET, MIN_OPSET, MAX_OPSET, type BuildOptions, type BuiltModel } from './build.js';
export { randomWeights } from './random-init.js';
export { inspectModel } from './onnx-builder.js';
export type { VerificationReport } from './verify.js';

export interface ExportOptions extends Omit<BuildOptions, 'spec' | 'weights' | 'training' | 'foldBatchNorm'> {
  /** Checkpoint file or training directory. */
  checkpoint?: string;
  /** The model config: required with init 'random'; with a checkpoint it must agree with the checkpoint's. */
  spec?: SsdSpec;
  /** 'random': no checkpoint, seeded random weights (benchmarks, tests). */
  init?: 'random';
  out: string;
  /** Default true: compare with the tfjs model before writing; a mismatch fails the export. */
  verify?: boolean;
  /** A photo for verification (default: a synthetic scene). */
  image?: string;
  /** Progress and backend lines (default: stderr). */
  log?: (line: string) => void;
}

export interface ExportResult {
  path: string;
  bytes: number;
  spec: string;
  numPriors: number;
  outputs: OutputTensor[];
  /** Op type -> count. */
  ops: Record<string, number>;
  training?: TrainingInfo;
  verification?: VerificationReport;
}

/**
 * What a checkpoint's training record (core/checkpoint.ts, written by the trainer) says about training,
 * for the model's metadata: the data, the iterations done, and the last validation with its metric.
 */
export function trainingInfo(record: TrainingRecord | undefined): TrainingInfo | undefined {
  if (!record) return undefined;
  const info: TrainingInfo = { data: record.data, iterations: record.iteration };
  const last = record.validations.at(-1);
  if (last) {
    info.map = last.map;
    const where = `on ${last.images} validation images${record.valData ? ` of ${record.valData}` : ''} at iteration ${last.iteration}`;
    info.metric = last.metric === 'coco'
      ? `COCO AP@[.50:.95] ${where}${last.stats ? ` (AP50 ${last.stats[1]!.toFixed(4)}, AP75 ${last.stats[2]!.toFixed(4)})` : ''}`
      : `VOC07 11-point mAP ${where}`;
  }
  return info;
}

function resolveModel(opts: ExportOptions): { spec: SsdSpec; weights: WeightMap; training?: TrainingInfo } {
  if (opts.checkpoint !== undefined && opts.init !== undefined) throw new SsdError('give either --checkpoint or --init random, not both');
  if (opts.checkpoint !== undefined) {
    const ckpt = loadCheckpoint(opts.checkpoint);
    if (opts.spec && opts.spec.name !== ckpt.spec.name) {
      throw new SsdError(`--config ${opts.spec.name} does not match checkpoint ${opts.checkpoint}, which holds a ${ckpt.spec.name} model`);
    }
    return { spec: ckpt.spec, weights: ckpt.weights, training: trainingInfo(ckpt.training) };
  }
  if (opts.init === 'random') {
    if (!opts.spec) throw new SsdError('--init random needs a model config (--config NAME)');
    const spec = validateSpec(opts.spec);
    return { spec, weights: randomWeights(spec, opts.seed ?? 1) };
  }
  throw new SsdError('nothing to export: give --checkpoint DIR or --init random');
}

export async function exportOnnx(opts: ExportOptions): Promise<ExportResult> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  if (!opts.out) throw new SsdError('--out is required');
  const out = resolve(opts.out);
  if (!existsSync(dirname(out)) || !statSync(dirname(out)).isDirectory()) throw new SsdError(`--out ${opts.out}: directory ${dirname(out)} does not exist`);
  if (existsSync(out) && statSync(out).isDirectory()) throw new SsdError(`--out ${opts.out}: is a directory`);
  if (opts.image !== undefined && !existsSync(opts.image)) throw new SsdError(`--image ${opts.image}: no such file`);

  const t0 = performance.now();
  const secs = () => `${((performance.now() - t0) / 1000).toFixed(1)} s`;
  const doVerify = opts.verify ?? true;
  const steps = doVerify ? 3 : 2;
  const { spec, weights, training } = resolveModel(opts);
  log(`export [1/${steps}]: ${spec.name} from ${opts.checkpoint ?? `random init (seed ${opts.seed ?? 1})`}: building the graph`);
  const built = buildOnnxModelInfo({ ...opts, spec, weights, training });
  let verification: VerificationReport | undefined;
  if (doVerify) {
    log(`export [2/${steps}]: graph built (${(built.bytes.length / 1e6).toFixed(2)} MB, ${secs()}); verifying against the tfjs model`);
    const { verifyExport } = await import('./verify.js');
    verification = await verifyExport({
      spec, weights, bytes: built.bytes, input: opts.input ?? 'float-nchw', postprocess: opts.postprocess ?? 'decode',
      batch: opts.batch ?? 1, opset: built.opset, fp16: opts.fp16 ?? false, keepTopK: opts.keepTopK, image: opts.image, seed: opts.seed, log,
    });
    if (!verification.passed) throw new SsdError(`verification failed, nothing written: ${verification.failures.join('; ')}`);
  }
  // Verified bytes only reach `out`, and atomically: a failed or interrupted export leaves no partial file.
  log(`export [${steps}/${steps}]: writing ${out} (${secs()})`);
  writeFileAtomic(out, built.bytes);
  return {
    path: out, bytes: built.bytes.length, spec: spec.name, numPriors: built.numPriors, outputs: built.outputs,
    ops: Object.fromEntries([...built.ops].sort((a, b) => b[1] - a[1])), training, verification,
  };
}

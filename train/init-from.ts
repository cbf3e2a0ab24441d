/**
 * Fine-tuning: `ssd train --init-from DIR|FILE` starts a new run from the weights of a checkpoint (one
 * that `ssd import` wrote from published weights, or any a run wrote). Unlike --resume, the optimizer
 * state, the schedule and the sample stream start afresh; only the weights are taken.
 *
 * The checkpoint's architecture must be the config's (trunk layers, batch norm, sources, boxes per
 * location); the first layer that differs is named. The checkpoint's conventions are kept: its input
 * normalisation, default boxes, L2Norm, prior clamping and postprocess are what its weights were
 * trained with (an imported torchvision model wants RGB and its own box sizes), so the run's spec is
 * the checkpoint's with the class list replaced by the data's. With the same classes every weight is
 * taken; with other classes the conf heads (whose width is boxes x classes) are re-initialised and the
 * rest is kept.
 */
import type { Checkpoint, WeightMap } from '../core/checkpoint.js';
import { SsdError } from '../core/errors.js';
import { boxesPerLocation, type LayerSpec, type SsdSpec } from '../core/specs.js';
import type { FreezeGroup, TrainConfig } from './config.js';
import { baseLayerNames } from './model.js';

/** A checkpoint to start from, as loaded (core/checkpoint.ts loadCheckpoint), and where it came from. */
export interface InitFrom {
  /** The file, for messages. */
  source: string;
  checkpoint: Checkpoint;
}

export interface InitPlan {
  /** The run's spec: the checkpoint's, with the config's (the data's) classes. */
  spec: SsdSpec;
  /** The weights taken from the checkpoint (all but the re-initialised ones). */
  weights: WeightMap;
  /** Weight names initialised afresh (the conf heads when the classes differ). */
  reinitialised: string[];
  /** Whether the class lists differ. */
  classesChanged: boolean;
}

function describeLayer(l: LayerSpec): string {
  return l.kind === 'conv'
    ? `conv ${l.out} ${l.kernel}x${l.kernel} stride ${l.stride} pad ${l.pad} dilation ${l.dilation}${l.relu ? '' : ' no relu'}`
    : `maxpool ${l.kernel}x${l.kernel} stride ${l.stride} pad ${l.pad}${l.ceil ? ' ceil' : ''}`;
}

/**
 * Why the checkpoint's network is not the config's, naming the first layer that differs (trunk order,
 * then the heads); undefined when the weights fit. Conventions (input mean, box sizes, thresholds,
 * class list) are not architecture and are not compared.
 */
export function architectureMismatch(ckpt: SsdSpec, config: SsdSpec): string | undefined {
  if (ckpt.inputSize !== config.inputSize) return `input size ${ckpt.inputSize} in the checkpoint, ${config.inputSize} in the config`;
  const n = Math.max(ckpt.layers.length, config.layers.length);
  for (let i = 0; i < n; i++) {
    const a = ckpt.layers[i];
    const b = config.layers[i];
    if (!a) return `layer ${b!.name} (${describeLayer(b!)}) is in the config, not in the checkpoint`;
    if (!b) return `layer ${a.name} (${describeLayer(a)}) is in the checkpoint, not in the config`;
    if (a.name !== b.name) return `layer ${i + 1} is ${a.name} in the checkpoint, ${b.name} in the config`;
    if (describeLayer(a) !== describeLayer(b)) return `layer ${a.name} is ${describeLayer(a)} in the checkpoint, ${describeLayer(b)} in the config`;
    if (a.kind === 'conv' && Boolean(ckpt.batchNorm) !== Boolean(config.batchNorm)) {
      return `layer ${a.name} has ${ckpt.batchNorm ? 'batch norm' : 'no batch norm'} in the checkpoint, ${config.batchNorm ? 'batch norm' : 'none'} in the config`;
    }
  }
  const m = Math.max(ckpt.sources.length, config.sources.length);
  for (let i = 0; i < m; i++) {
    const a = ckpt.sources[i];
    const b = config.sources[i];
    if (!a || !b) return `head ${i} (on ${(a ?? b)!.layer}) is in the ${a ? 'checkpoint' : 'config'} only (${ckpt.sources.length} heads in the checkpoint, ${config.sources.length} in the config)`;
    if (a.layer !== b.layer) return `head ${i} is on ${a.layer} in the checkpoint, on ${b.layer} in the config`;
    if ((a.l2NormScale === undefined) !== (b.l2NormScale === undefined)) return `layer ${a.layer}_norm (L2Norm) is ${a.l2NormScale === undefined ? 'not ' : ''}in the checkpoint, ${b.l2NormScale === undefined ? 'not ' : ''}in the config`;
    const ka = boxesPerLocation(ckpt.maps[i]!);
    const kb = boxesPerLocation(config.maps[i]!);
    if (ka !== kb) return `head loc${i}/conf${i} (on ${a.layer}) has ${ka} boxes per location in the checkpoint, ${kb} in the config`;
  }
  return undefined;
}

/**
 * The spec and starting weights of a run that starts from `from` with `config` (whose labels are the
 * data's). Throws one line naming the first mismatching layer when the architectures differ.
 */
export function planInitFrom(from: InitFrom, config: TrainConfig): InitPlan {
  const ck = from.checkpoint;
  const why = architectureMismatch(ck.spec, config.spec);
  if (why) throw new SsdError(`--init-from ${from.source}: does not fit config ${config.name}: ${why}`);
  const labels = config.spec.labels;
  const classesChanged = ck.spec.labels.join('\n') !== labels.join('\n');
  const spec: SsdSpec = { ...structuredClone(ck.spec), labels: [...labels] };
  const weights: WeightMap = new Map();
  const reinitialised: string[] = [];
  for (const [name, t] of ck.weights) {
    if (classesChanged && /^conf\d+\//.test(name)) reinitialised.push(name);
    else weights.set(name, t);
  }
  return { spec, weights, reinitialised, classesChanged };
}

/** The trunk layers `freeze` holds fixed (model.ts createSsdModel `frozen`). */
export function frozenLayers(spec: SsdSpec, freeze: FreezeGroup | undefined): Set<string> {
  if (freeze === undefined) return new Set();
  if (freeze === 'base') {
    if (!spec.layers.some((l) => l.name === 'fc7')) throw new SsdError(`--freeze base: ${spec.name} has no fc7 layer (the end of the VGG16 base)`);
    return new Set(baseLayerNames(spec));
  }
  throw new SsdError(`--freeze ${String(freeze)}: unknown part (known: base)`);
}

/** Compresses conf0/kernel, conf0/bias, conf1/... into "conf0-5". */
export function headRange(names: string[]): string {
  const ids = [...new Set(names.map((n) => Number(/^conf(\d+)\//.exec(n)?.[1])).filter(Number.isInteger))].sort((a, b) => a - b);
  if (ids.length === 0) return 'nothing';
  return ids.length === 1 ? `conf${ids[0]}` : `conf${ids[0]}-${ids[ids.length - 1]}`;
}

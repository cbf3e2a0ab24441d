import { resolve } from 'node:path';
import { SsdError } from '../../core/errors.js';
import type { RunLength } from '../../train/config.js';
import type { Command } from '../args.js';
import { choiceFlag, intFlag, numberFlag, parseFlags } from '../args.js';

const USAGE = `Usage: ssd train --config <name|file.json> --data <digits | VOC dir(s) | COCO json> --out DIR [options]

Trains an SSD with TensorFlow.js. Checkpoints (DIR/checkpoint.ssdckpt), the training curve
(DIR/training-curve.svg) and validation (VOC07 mAP; COCO AP for COCO data) are written as it goes;
Ctrl-C saves and exits 130.

Data:
  --data digits            the MNIST digit scenes (generated into data/digits on first use); validates on its test split
  --data DIR[,DIR...]      VOC year directories or a VOCdevkit (07+12 = VOC2007,VOC2012); --split trainval, validation on 'test'
  --data file.json         a COCO instances JSON; --images DIR (default: beside the JSON)
  --split NAME             training split of VOC data (default trainval; digits: train)
  --val-split NAME         validation split (default test)
  --val-data DIR|json      validation data elsewhere (VOC directory or COCO JSON; --val-images DIR)
  --labels FILE            the classes, one a line (default: COCO categories, a VOC labels.txt, else the
                           class names the annotations use, sorted); written to DIR/labels.txt

Model and recipe (defaults come from the config; SSD-SPEC "Training recipe"):
  --config NAME|FILE       built-in: digits, ssd300, ssd512, ssd300-coco, ssd512-coco, ssd-tiny, ssd-digits; or a JSON file
                           holding a spec or {"base": "ssd300", ...overrides, "train": {...}, "augment": [...]}
  --backbone-weights FILE  ImageNet VGG16 weights: an ONNX file or a TensorFlow.js model.json
  --init-from DIR|FILE     fine-tune: start from a checkpoint (an "ssd import" output or any run) with a
                           fresh optimizer and schedule; its input, default boxes and L2Norm are kept;
                           other classes than the checkpoint's re-initialise the conf heads. Without
                           --config, the checkpoint's own config (imports: the default SSD recipe)
  --freeze base            hold the VGG16 trunk (up to fc7) fixed: no gradient, no weight decay
  --batch-norm             add batch norm after every conv (folded away at export)
  --iterations N | --epochs N   run length; the config's decay steps keep their fraction of the run
  --batch N                images per micro-batch        --accumulate N   micro-batches per step
  --lr X                   base learning rate            --warmup N       linear warmup iterations
  --steps a,b              multistep decay x0.1 at these iterations
  --val-every N            quick validation every N iterations (0 = only at the end); --val-limit N images
  --checkpoint-every N     checkpoint every N iterations
  --seed N                 data order, augmentation and initialisation

Run:
  --out DIR                run directory (required)
  --resume                 continue the run in --out from its checkpoint (same losses as an uninterrupted run)
  --backend tensorflow|wasm|cpu   default: the fastest available (tensorflow -> wasm -> cpu); tensorflow
                           needs @tensorflow/tfjs-node(-gpu): npm run setup -- --tensorflow (docs/train-model.md)
  --threads N|auto         split every batch over N threads, each with a copy of the model (data-parallel,
                           gradients summed every step: the same losses as one thread); default auto =
                           one per core on the CPU (at most the batch), 1 on a GPU
  --quiet                  no progress bar`;

const command: Command = {
  name: 'train',
  summary: 'train an SSD with TensorFlow.js (VOC, COCO or digits data)',
  usage: USAGE,
  async run(argv) {
    const { values } = parseFlags('train', argv, {
      config: { type: 'string' }, data: { type: 'string' }, out: { type: 'string' },
      split: { type: 'string' }, 'val-split': { type: 'string' }, 'val-data': { type: 'string' },
      images: { type: 'string' }, 'val-images': { type: 'string' },
      backend: { type: 'string' }, resume: { type: 'boolean' }, 'backbone-weights': { type: 'string' },
      iterations: { type: 'string' }, epochs: { type: 'string' }, batch: { type: 'string' }, accumulate: { type: 'string' },
      lr: { type: 'string' }, warmup: { type: 'string' }, steps: { type: 'string' }, 'val-every': { type: 'string' },
      'val-limit': { type: 'string' }, 'checkpoint-every': { type: 'string' }, seed: { type: 'string' },
      'batch-norm': { type: 'boolean' }, 'init-from': { type: 'string' }, freeze: { type: 'string' }, threads: { type: 'string' }, quiet: { type: 'boolean' }, labels: { type: 'string' },
    }, false);
    if (!values.out) throw new SsdError('--out DIR is required (see "ssd train --help")');
    if (!values.data) throw new SsdError('--data is required: digits, VOC directories or a COCO JSON (see "ssd train --help")');
    const outDir = resolve(values.out);
    const backend = values.backend === undefined ? undefined : choiceFlag('backend', values.backend, ['tensorflow', 'wasm', 'cpu'] as const, 'wasm');
    if (values.iterations !== undefined && values.epochs !== undefined) throw new SsdError('give --iterations or --epochs, not both');
    const lib = await import('../../train/index.js');
    const log = (line: string) => process.stderr.write(`${line}\n`);

    if (values['init-from'] !== undefined && values['backbone-weights'] !== undefined) throw new SsdError('give --init-from or --backbone-weights, not both (--init-from already holds the backbone)');
    const freeze = values.freeze === undefined ? undefined : choiceFlag('freeze', values.freeze, lib.FREEZE_GROUPS, 'base');
    let config = values.resume ? lib.savedConfig(outDir) : undefined;
    const initFrom = values['init-from'] !== undefined && !config ? lib.loadInitFrom(values['init-from']) : undefined;
    if (values['init-from'] !== undefined && config) log(`resume: the run in ${outDir} continues from its own checkpoint; --init-from is ignored`);
    if (!config) {
      if (initFrom && !values.config) config = lib.configFromInit(initFrom);
      else if (!values.config) throw new SsdError(`--config is required (known: ${lib.knownConfigs().join(', ')}, or a .json file)`);
      else config = lib.resolveConfig(values.config);
    } else if (values.config) {
      log(`resume: the run in ${outDir} keeps its own config (${config.name}); --config ${values.config} is ignored`);
    }
    const r = { ...config.train };
    // Run length and decay steps are resolved with the data (runTraining): the steps scale with the run.
    const runLength: RunLength = {};
    if (values.iterations !== undefined) runLength.iterations = intFlag('iterations', values.iterations, r.iterations, 1);
    if (values.epochs !== undefined) runLength.epochs = numberFlag('epochs', values.epochs, 1, 1e-6);
    r.batchSize = intFlag('batch', values.batch, r.batchSize, 1);
    r.accumulate = intFlag('accumulate', values.accumulate, r.accumulate, 1);
    r.lr = numberFlag('lr', values.lr, r.lr, 0);
    r.warmup = intFlag('warmup', values.warmup, r.warmup, 0);
    if (values.steps !== undefined) {
      const steps = values.steps.split(',').filter((s) => s.trim() !== '').map((s) => Number(s));
      if (!steps.every((s) => Number.isInteger(s) && s > 0)) throw new SsdError(`--steps must be whole numbers separated by commas, got "${values.steps}"`);
      runLength.steps = steps;
    }
    r.valEvery = intFlag('val-every', values['val-every'], r.valEvery, 0);
    r.valLimit = intFlag('val-limit', values['val-limit'], r.valLimit, 0);
    r.checkpointEvery = intFlag('checkpoint-every', values['checkpoint-every'], r.checkpointEvery, 0);
    r.seed = intFlag('seed', values.seed, r.seed, 0, 2 ** 32 - 1);
    if (freeze) r.freeze = freeze;
    config = { ...config, train: r, spec: values['batch-norm'] ? { ...config.spec, batchNorm: true } : config.spec };
    const threads = values.threads === undefined || values.threads === 'auto' ? 'auto' as const : intFlag('threads', values.threads, 1, 1, 256);

    let initialWeights;
    if (values['backbone-weights'] && !values.resume) {
      const { importBackboneWeights } = await import('../../train/backbone-import.js');
      const imported = await importBackboneWeights(values['backbone-weights'], config.spec);
      initialWeights = imported.weights;
      log(`backbone: ${imported.source}`);
    }
    const data = await lib.loadTrainingData(values.data, {
      ...(values.split ? { split: values.split } : {}), ...(values['val-split'] ? { valSplit: values['val-split'] } : {}),
      ...(values.images ? { images: values.images } : {}), ...(values['val-data'] ? { valData: values['val-data'] } : {}),
      ...(values['val-images'] ? { valImages: values['val-images'] } : {}), ...(values.labels ? { labelsFile: values.labels } : {}), log,
    });
    const result = await lib.runTraining({
      config, data, outDir, ...(backend ? { backend } : {}), ...(values.resume ? { resume: true } : {}),
      ...(initialWeights ? { initialWeights } : {}), ...(initFrom ? { initFrom } : {}), runLength, log, progress: !values.quiet, threads,
    });
    const final = result.finalValidation;
    if (final) console.log(`${final.metric === 'coco' ? 'COCO AP' : 'VOC07 mAP'} ${final.map.toFixed(4)} after ${result.iteration} iterations (${result.seconds.toFixed(0)} s, ${result.imagesPerSecond.toFixed(1)} img/s, backend ${result.backend})`);
    return result.interrupted ? 130 : 0;
  },
};
export default command;

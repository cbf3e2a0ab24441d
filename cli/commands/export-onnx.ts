import { SsdError } from '../../core/errors.js';
import { INPUT_LAYOUTS, POSTPROCESS_MODES } from '../../core/model-contract.js';
import { SPECS } from '../../core/specs.js';
import { choiceFlag, intFlag, parseFlags, type Command } from '../args.js';

const USAGE = `Usage: ssd export-onnx (--checkpoint DIR | --init random --config NAME) --out model.onnx [options]

Writes an ONNX model (IR 8) that onnxruntime (CPU, CUDA, TensorRT) and TensorRT's ONNX parser accept,
verified against the TensorFlow.js model before it is written (atomically).

  --checkpoint DIR      training directory or .ssdckpt file
  --init random         no checkpoint: seeded random weights (benchmarks, tests)
  --seed S              seed for --init random (default 1)
  --config NAME         model config: a built-in spec (${Object.keys(SPECS).join(', ')}), a training
                        config of train/configs (digits, ...) or a config .json; required with --init random
  --out FILE            the .onnx file to write (required)
  --opset N             ONNX opset, 13..18 (default 17)
  --fp16                float16 weights and compute, float32 inputs/outputs
  --batch-dim B         the model's batch dimension: 1 (default), a fixed N, or "dynamic"
                        (was --batch, which still works until 0.3)
  --postprocess MODE    none | decode (default) | nms
  --input LAYOUT        float-nchw (default; mean-subtracted, spec channel order) | uint8-nhwc (RGB pixels)
  --keep-top-k K        detections per image in nms mode (default 200)
  --no-verify           skip the tfjs comparison
  --image FILE          photo to verify on (default: a synthetic scene)

Examples:
  ssd export-onnx --checkpoint runs/voc300 --out ssd300.onnx
  ssd export-onnx --init random --config ssd300 --out ssd300-nms-fp16.onnx --postprocess nms --input uint8-nhwc --fp16`;

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(2)} MB`;
}

const command: Command = {
  name: 'export-onnx',
  summary: 'export a checkpoint (or a random init) to ONNX',
  usage: USAGE,
  async run(argv) {
    const { values } = parseFlags('export-onnx', argv, {
      checkpoint: { type: 'string' },
      init: { type: 'string' },
      seed: { type: 'string' },
      config: { type: 'string' },
      out: { type: 'string' },
      opset: { type: 'string' },
      fp16: { type: 'boolean' },
      'batch-dim': { type: 'string' },
      postprocess: { type: 'string' },
      input: { type: 'string' },
      'keep-top-k': { type: 'string' },
      'no-verify': { type: 'boolean' },
      image: { type: 'string' },
    }, false, [{ old: 'batch', now: 'batch-dim' }]);
    if (!values.out) throw new SsdError('--out FILE is required (see "ssd export-onnx --help")');
    const init = values.init === undefined ? undefined : choiceFlag('init', values.init, ['random'] as const, 'random');
    const batchText = values['batch-dim'] ?? '1';
    const batch = batchText === 'dynamic' ? 'dynamic' as const : intFlag('batch-dim', batchText, 1, 1, 4096);
    const { exportOnnx, MIN_OPSET, MAX_OPSET, DEFAULT_OPSET } = await import('../../export/index.js');
    const result = await exportOnnx({
      checkpoint: values.checkpoint,
      init,
      seed: intFlag('seed', values.seed, 1, 0, 2 ** 32 - 1),
      spec: values.config === undefined ? undefined : (await import('../../train/config.js')).resolveConfig(values.config).spec,
      out: values.out,
      opset: intFlag('opset', values.opset, DEFAULT_OPSET, MIN_OPSET, MAX_OPSET),
      fp16: values.fp16 ?? false,
      batch,
      postprocess: choiceFlag('postprocess', values.postprocess, POSTPROCESS_MODES, 'decode'),
      input: choiceFlag('input', values.input, INPUT_LAYOUTS, 'float-nchw'),
      keepTopK: values['keep-top-k'] === undefined ? undefined : intFlag('keep-top-k', values['keep-top-k'], 200, 1, 100_000),
      verify: !values['no-verify'],
      image: values.image,
    });
    const lines = [
      `wrote ${result.path} (${mb(result.bytes)}): ${result.spec}, ${result.numPriors} default boxes`,
      `  outputs: ${result.outputs.map((o) => `${o.name} ${o.dtype}[${o.dims.join(',')}]`).join(', ')}`,
      `  ops: ${Object.entries(result.ops).map(([op, n]) => `${op} x${n}`).join(', ')}`,
    ];
    const v = result.verification;
    if (v) {
      for (const c of v.checks) {
        const extra = c.nmsMatchRate !== undefined
          ? `, detections ${c.detections!.onnx} vs core ${c.detections!.core}, ${(100 * c.nmsMatchRate).toFixed(1)}% matched`
          : c.outputMaxAbsDiff !== undefined ? `, outputs vs core ${c.outputMaxAbsDiff.toExponential(2)}` : '';
        lines.push(`  verified (${v.precision}, tfjs ${v.backend} vs onnxruntime cpu, batch ${v.batch}) on ${c.input}: loc max |diff| ${c.locMaxAbsDiff.toExponential(2)}, conf ${c.confMaxAbsDiff.toExponential(2)} (<= ${v.tolerance})${extra}`);
      }
      if (v.fp16) {
        lines.push(`  fp16: ${(100 * v.fp16.sizeRatio).toFixed(1)}% of the fp32 size; vs fp32 loc ${v.fp16.locMaxAbsDiff.toExponential(2)}, conf ${v.fp16.confMaxAbsDiff.toExponential(2)}, scores ${v.fp16.scoreMaxAbsDiff.toExponential(2)}`);
      }
    } else {
      lines.push('  not verified (--no-verify)');
    }
    console.log(lines.join('\n'));
    return 0;
  },
};
export default command;

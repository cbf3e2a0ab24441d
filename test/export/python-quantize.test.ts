/**
 * An independent quantizer takes our export: python onnxruntime's `quantize_static` (QDQ, per-channel)
 * on every postprocess mode of ssd-tiny, which has an L2Norm. Until the L2Norm weight was renamed
 * (`<norm>_scale` -> `<norm>_gamma`, issue 13) it crashed on the name clash with its own
 * `<tensor>_scale`. Needs python onnxruntime: `npm run setup -- --python-onnxruntime` puts it in a
 * venv under node_modules/.cache/ssd-python (or set SSD_PYTHON to a python that has it); skipped
 * with a message otherwise.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildOnnxModel } from '../../export/index.js';
import { ROOT } from '../cli/helpers.js';
import { tempDir } from '../helpers/temp-dir.js';
import { tiny } from './helpers.js';

const PY = process.env.SSD_PYTHON ?? join(ROOT, 'node_modules', '.cache', 'ssd-python', 'bin', 'python');
const hasOrt = spawnSync(PY, ['-c', 'import onnxruntime.quantization'], { stdio: 'ignore' }).status === 0;
if (!hasOrt) console.warn(`python-quantize: skipped, ${PY} has no onnxruntime (npm run setup -- --python-onnxruntime installs it)`);

const SCRIPT = `
import sys, numpy as np, onnxruntime as ort
from onnxruntime.quantization import quantize_static, QuantFormat, QuantType, CalibrationDataReader
class Reader(CalibrationDataReader):
    def __init__(self, shape, dtype):
        rng = np.random.default_rng(0)
        self.items = iter([{'images': (rng.integers(0, 256, shape).astype(dtype) if dtype == np.uint8 else rng.normal(0, 60, shape).astype(dtype))} for _ in range(2)])
    def get_next(self):
        return next(self.items, None)
for src in sys.argv[1:]:
    s = ort.InferenceSession(src, providers=['CPUExecutionProvider'])
    i = s.get_inputs()[0]
    dtype = np.uint8 if 'uint8' in i.type else np.float32
    shape = [d if isinstance(d, int) else 1 for d in i.shape]
    dst = src.replace('.onnx', '-int8.onnx')
    quantize_static(src, dst, Reader(shape, dtype), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    q = ort.InferenceSession(dst, providers=['CPUExecutionProvider'])
    out = q.run(None, {'images': Reader(shape, dtype).get_next()['images']})
    print(src, 'ok', len(out))
`;

describe.skipIf(!hasOrt)('python onnxruntime quantize_static', () => {
  it('quantizes every postprocess mode of our export and the result runs', () => {
    const dir = tempDir('ssd-pyquant-');
    const paths = (['none', 'decode', 'nms'] as const).map((postprocess, k) => {
      const p = join(dir, `${postprocess}.onnx`);
      writeFileSync(p, buildOnnxModel({ spec: tiny(), postprocess, input: k === 1 ? 'uint8-nhwc' : 'float-nchw' }));
      return p;
    });
    const out = execFileSync(PY, ['-c', SCRIPT, ...paths], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(out.trim().split('\n').filter((l) => / ok \d+$/.test(l))).toHaveLength(3);
  }, 300_000);
});

/**
 * An independent check of the graphs: the reference ONNX checker (python3-onnx, Debian package; listed in
 * scripts/apt-packages.txt) with full_check, which also runs strict shape inference. Skipped when
 * /usr/bin/python3 has no onnx module.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildOnnxModel } from '../../export/index.js';
import { tiny } from './helpers.js';
import { tempDir } from '../helpers/temp-dir.js';

const PY = '/usr/bin/python3';
const hasOnnx = spawnSync(PY, ['-c', 'import onnx'], { stdio: 'ignore' }).status === 0;
const dir = tempDir('ssd-onnx-check-');

const SCRIPT = `
import sys, onnx
for path in sys.argv[1:]:
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    outs = [(o.name, [d.dim_value or d.dim_param for d in o.type.tensor_type.shape.dim]) for o in m.graph.output]
    print(path, m.ir_version, m.opset_import[0].version, outs)
`;

describe.skipIf(!hasOnnx)('onnx.checker.check_model (python3-onnx, full check)', () => {
  it('accepts every postprocess / input / precision / batch combination', () => {
    const spec = tiny();
    const paths: string[] = [];
    // python3-onnx 1.12 (Debian bookworm) knows opsets up to 17.
    for (const postprocess of ['none', 'decode', 'nms'] as const) {
      for (const [input, fp16, batch, opset] of [['float-nchw', false, 1, 17], ['uint8-nhwc', true, 'dynamic', 13]] as const) {
        const p = join(dir, `${postprocess}-${input}-${fp16}-${batch}-${opset}.onnx`);
        writeFileSync(p, buildOnnxModel({ spec, postprocess, input, fp16, batch, opset }));
        paths.push(p);
      }
    }
    const out = execFileSync(PY, ['-c', SCRIPT, ...paths], { encoding: 'utf8' });
    const lines = out.trim().split('\n');
    expect(lines).toHaveLength(paths.length);
    expect(lines.every((l) => / 8 (13|17) /.test(l))).toBe(true);
    expect(out).toContain("('detection_boxes', ['N', 200, 4])");
    expect(out).toContain("('scores', [1, 828, 11])");
  });
});

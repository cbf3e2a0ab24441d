/**
 * Opt-in (SSD_SLOW=1): full-size SSD300 exports, verified against the tfjs model like `ssd export-onnx`
 * does, in every postprocess mode and in fp16. About 30-40 s and 1.5 GB per export on two shared cores
 * (134 s for the four).
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { specByName } from '../../core/specs.js';
import { exportOnnx } from '../../export/index.js';
import { tempDir } from '../helpers/temp-dir.js';

const dir = tempDir('ssd-export-slow-');

describe('SSD300 export (slow)', () => {
  for (const [postprocess, fp16] of [['none', false], ['decode', false], ['nms', false], ['nms', true]] as const) {
    it(`${postprocess}${fp16 ? ' fp16' : ''}: verified against tfjs`, async () => {
      const r = await exportOnnx({ spec: specByName('ssd300'), init: 'random', seed: 5, out: join(dir, `${postprocess}-${fp16}.onnx`), postprocess, fp16, input: 'uint8-nhwc', log: () => {} });
      // SSD-SPEC: 8732 default boxes, 21 VOC classes.
      expect(r.numPriors).toBe(8732);
      if (postprocess !== 'nms') expect(r.outputs.map((o) => o.dims)).toEqual([[1, 8732, 4], [1, 8732, 21]]);
      expect(r.verification!.passed).toBe(true);
      for (const c of r.verification!.checks) expect(Math.max(c.locMaxAbsDiff, c.confMaxAbsDiff)).toBeLessThanOrEqual(fp16 ? 0.05 : 1e-4);
      if (fp16) expect(r.verification!.fp16!.sizeRatio).toBeLessThan(0.52);
    }, 300_000);
  }
});

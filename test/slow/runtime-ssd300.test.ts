// Opt-in (SSD_SLOW=1): a random-init SSD300 through the runtime. The full pipeline (JPEG decode,
// resize, tensor, run, decode/NMS, boxes in pixels) must keep pace with the bare session.run
// (issue #4's goal: ratio >= 0.95 on this CPU; asserted at 0.9 because the machine is shared).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { specByName } from '../../core/specs.js';
import { buildOnnxModel } from '../../export/index.js';
import { benchModel, formatModelBench } from '../../runtime/bench.js';
import { Detector } from '../../runtime/detector.js';
import { tempDir } from '../helpers/temp-dir.js';

const tmp = tempDir('ssd-slow-runtime-');

describe('SSD300 in the runtime', () => {
  const path = join(tmp, 'ssd300.onnx');
  writeFileSync(path, buildOnnxModel({ spec: specByName('ssd300'), seed: 1, postprocess: 'decode' }));

  it('loads from its metadata alone (8732 boxes, 21 VOC classes) and detects on a synthetic image', async () => {
    const d = await Detector.load(path, { log: () => {} });
    expect(d.inputSize).toBe(300);
    expect(d.labels).toHaveLength(21);
    const dets = await d.detect({ data: new Uint8Array(640 * 480 * 3).fill(90), width: 640, height: 480, format: 'rgb' }, { threshold: 0.01 });
    await d.dispose();
    expect(dets.length).toBeGreaterThan(0);
    expect(dets.length).toBeLessThanOrEqual(200);
    expect(dets.every((x) => x.box[2] <= 640 && x.box[3] <= 480)).toBe(true);
  }, 300_000);

  it('pipeline throughput >= 0.9 x bare session.run throughput', async () => {
    const r = await benchModel(path, { frames: 20, threads: 2, log: () => {} });
    console.log(formatModelBench(r));
    expect(r.ratio).toBeGreaterThanOrEqual(0.9);
  }, 600_000);
});

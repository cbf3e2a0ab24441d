// ssd.pytorch (amdegroot) and lufficc/SSD parity of `ssd import` (issue 12). The state dicts are built in
// python from the published key names (vgg.N, extras.N, L2Norm.weight, loc.N, conf.N; backbone.vgg.N,
// backbone.extras.N, backbone.l2_norm.weight, box_head.predictor.{cls,reg}_headers.N) with random,
// seeded values and saved with torch.save the way those projects published them (ssd.pytorch's 2017
// file and lufficc's SSD512 in the legacy container, lufficc's SSD300 as a zip under "model"). The
// reference is a small torch forward written here from the published architecture (their
// build_ssd / VGG + extras + L2Norm + heads and PriorBox code), independent of our exporter: imported ->
// `ssd export-onnx --postprocess none` -> onnxruntime must give its raw heads (<= 1e-4 abs), our
// default boxes and preprocessing must equal theirs, and our postprocess must give ssd.pytorch's Detect
// and lufficc's PostProcessor detections. Skipped where /usr/bin/python3 has no torch.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../../core/checkpoint.js';
import { defaultBoxes } from '../../core/default-boxes.js';
import { postprocess } from '../../core/postprocess.js';
import { nhwcToNchw, preprocessNHWC } from '../../export/input-graph.js';
import { importWeights } from '../../train/import/index.js';
import { ssd } from '../cli/helpers.js';
import { tempDir } from '../helpers/temp-dir.js';
import { REFERENCE_SCRIPT } from './reference.js';

const PY = '/usr/bin/python3';
const hasTorch = spawnSync(PY, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
if (!hasTorch) console.warn('test/import/ports.test.ts skipped: /usr/bin/python3 has no torch (apt-get install python3-torchvision)');


const f32 = (path: string): Float32Array => { const b = readFileSync(path); return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)); };
const maxAbsDiff = (a: Float32Array, b: Float32Array): number => { expect(a.length).toBe(b.length); let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!)); return m; };

const CASES = [
  { name: 'ssd-pytorch-300', format: 'ssd-pytorch', size: 300, spec: 'ssd300-ssd-pytorch', container: 'legacy', order: 'bgr', mean: [104, 117, 123], priors: 8732 },
  { name: 'lufficc-300', format: 'lufficc', size: 300, spec: 'ssd300-lufficc', container: 'zip', order: 'rgb', mean: [123, 117, 104], priors: 8732 },
  { name: 'lufficc-512', format: 'lufficc', size: 512, spec: 'ssd512-lufficc', container: 'legacy', order: 'rgb', mean: [123, 117, 104], priors: 24564 },
] as const;

describe.skipIf(!hasTorch)('ssd import: ssd.pytorch and lufficc/SSD layouts', () => {
  const dir = tempDir('ssd-import-ports-');

  beforeAll(() => {
    writeFileSync(join(dir, 'make.py'), REFERENCE_SCRIPT);
    const py = spawnSync(PY, [join(dir, 'make.py'), dir, 'ssd-pytorch-300,lufficc-300,lufficc-512'], { encoding: 'utf8', timeout: 900_000 });
    if (py.status !== 0) throw new Error(`python failed: ${py.stderr}`);
  }, 1_200_000);

  for (const c of CASES) {
    it(`${c.name}: detected, conventions in the spec, default boxes, preprocessing and raw heads (<= 1e-4) equal the reference`, async () => {
      const ckpt = join(dir, `${c.name}-ckpt`);
      const imp = await ssd(['import', join(dir, `${c.name}.pth`), '--out', ckpt, '--json']);
      expect(imp.code, imp.stderr).toBe(0);
      const info = JSON.parse(imp.stdout) as { format: string; container: string; spec: string; priors: number; unused: string[] };
      expect(info).toMatchObject({ format: c.format, container: c.container, spec: c.spec, priors: c.priors, unused: [] });

      const { spec } = loadCheckpoint(ckpt);
      expect(spec.input).toEqual({ channelOrder: c.order, mean: c.mean });
      expect(spec.clampPriors).toBe('cxcywh');
      expect(spec.labels.length).toBe(21);
      expect(maxAbsDiff(defaultBoxes(spec), f32(join(dir, `${c.name}.priors.f32`)))).toBeLessThan(1e-6);
      const input = f32(join(dir, `${c.name}.input.f32`));
      const ours = nhwcToNchw(preprocessNHWC(spec, readFileSync(join(dir, `${c.name}.u8`))), 1, c.size, c.size, 3);
      expect(maxAbsDiff(ours, input)).toBe(0);

      const onnx = join(dir, `${c.name}.onnx`);
      const exp = await ssd(['export-onnx', '--checkpoint', ckpt, '--out', onnx, '--postprocess', 'none', '--no-verify']);
      expect(exp.code, exp.stderr).toBe(0);
      const session = await ort.InferenceSession.create(onnx, { executionProviders: ['cpu'] });
      const out = await session.run({ images: new ort.Tensor('float32', input, [1, 3, c.size, c.size]) });
      const loc = f32(join(dir, `${c.name}.loc.f32`));
      const conf = f32(join(dir, `${c.name}.conf.f32`));
      const scale = conf.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      console.log(`${c.name}: max |conf| ${scale.toFixed(2)}, loc diff ${maxAbsDiff(out.loc!.data as Float32Array, loc).toExponential(2)}, conf diff ${maxAbsDiff(out.conf!.data as Float32Array, conf).toExponential(2)}`);
      expect(maxAbsDiff(out.loc!.data as Float32Array, loc)).toBeLessThanOrEqual(1e-4);
      expect(maxAbsDiff(out.conf!.data as Float32Array, conf)).toBeLessThanOrEqual(1e-4);
    }, 600_000);
  }

  const DETECT = [
    { name: 'ssd-pytorch-300', what: "ssd.pytorch's Detect (200 per class, NMS 0.45, no overall cap)" },
    { name: 'lufficc-300', what: "lufficc's PostProcessor (batched NMS 0.45, 100 per image)" },
  ];
  for (const d of DETECT) {
    it(`${d.name}: our postprocess gives ${d.what}`, () => {
      const { spec } = importWeights(join(dir, `${d.name}.pth`));
      const ours = postprocess(f32(join(dir, `${d.name}.loc.f32`)), f32(join(dir, `${d.name}.conf.f32`)), defaultBoxes(spec), spec);
      const theirs = JSON.parse(readFileSync(join(dir, `${d.name}.dets.json`), 'utf8')) as number[][];
      expect(theirs.length).toBeGreaterThan(50);
      // Same class, score within 1e-6, box within 1e-5; neither clips its output boxes, we do (to [0, 1]).
      let matched = 0;
      for (const [c, s, ...box] of theirs) {
        for (let j = 0; j < ours.count; j++) {
          if (ours.classIds[j] !== c || Math.abs(ours.scores[j]! - s!) > 1e-6) continue;
          if (box.every((v, k) => Math.abs(Math.min(1, Math.max(0, v)) - ours.boxesXYXY[j * 4 + k]!) < 1e-5)) { matched++; break; }
        }
      }
      console.log(`${d.name} detection parity: ${matched} of ${theirs.length} matched (${ours.count} ours)`);
      expect(ours.count).toBe(theirs.length);
      expect(matched).toBe(theirs.length);
    });
  }
});

// torchvision parity of `ssd import` (issue 12): a state dict written by torch.save from Debian's
// python3-torchvision (0.14) `ssd300_vgg16(weights=None, weights_backbone=None)` (seeded), imported,
// exported with `ssd export-onnx --postprocess none` and run in onnxruntime, gives torchvision's own raw
// heads on the same input tensor, its default boxes, its input normalisation and (nearly) its detections
// (SSD.postprocess_detections). Skipped, with a message, where python3-torchvision is absent (scripts/
// apt-packages.txt lists it for the tests).
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../../core/checkpoint.js';
import { defaultBoxes } from '../../core/default-boxes.js';
import { postprocess } from '../../core/postprocess.js';
import { preprocessNHWC, nhwcToNchw } from '../../export/input-graph.js';
import { torchvisionCocoLabels } from '../../train/import/index.js';
import { ssd } from '../cli/helpers.js';
import { tempDir } from '../helpers/temp-dir.js';

const PY = '/usr/bin/python3';
const hasTorchvision = spawnSync(PY, ['-c', 'import torchvision'], { stdio: 'ignore' }).status === 0;
if (!hasTorchvision) console.warn('test/import/torchvision.test.ts skipped: /usr/bin/python3 has no torchvision (apt-get install python3-torchvision)');

const SCRIPT = `
import json, os, sys
import numpy as np
import torch, torchvision
out = sys.argv[1]
torch.manual_seed(0)
torch.set_num_threads(2)
m = torchvision.models.detection.ssd300_vgg16(weights=None, weights_backbone=None).eval()
with torch.no_grad():
    # A trained model's background wins almost everywhere; without this bias random heads put every
    # class of every box near 1/91, a pile of ties at the 0.01 threshold.
    for conv in m.head.classification_head.module_list:
        conv.bias.view(-1, 91)[:, 0] += 3.0
    m.backbone.scale_weight.uniform_(10, 30)
torch.save(m.state_dict(), os.path.join(out, 'model.pth'))
rng = np.random.default_rng(0)
img = rng.integers(0, 256, size=(300, 300, 3), dtype=np.uint8)
img[100:200, 50:250] = (200, 30, 60)
img.tofile(os.path.join(out, 'image.u8'))
x = torch.from_numpy(img).permute(2, 0, 1).float() / 255
with torch.no_grad():
    images, _ = m.transform([x])
    t = images.tensors
    feats = list(m.backbone(t).values())
    head = m.head(feats)
    anchors = m.anchor_generator(images, feats)
    dets = m.postprocess_detections(head, anchors, images.image_sizes)[0]
t.numpy().astype(np.float32).tofile(os.path.join(out, 'input.f32'))
head['bbox_regression'][0].numpy().astype(np.float32).tofile(os.path.join(out, 'loc.f32'))
head['cls_logits'][0].numpy().astype(np.float32).tofile(os.path.join(out, 'conf.f32'))
anchors[0].numpy().astype(np.float32).tofile(os.path.join(out, 'anchors.f32'))
json.dump({'size': list(t.shape), 'boxes': dets['boxes'].flatten().tolist(), 'scores': dets['scores'].tolist(), 'labels': dets['labels'].tolist()}, open(os.path.join(out, 'dets.json'), 'w'))
`;

const f32 = (path: string): Float32Array => { const b = readFileSync(path); return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)); };
const maxAbsDiff = (a: Float32Array, b: Float32Array): number => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!)); return m; };

interface TvDets { boxes: number[]; scores: number[]; labels: number[] }
interface OurDets { count: number; boxesXYXY: Float32Array; scores: Float32Array; classIds: Int32Array }

/** How many torchvision detections ours has: same class, score within 1e-5, box within 0.01 px. */
function matchDetections(ours: OurDets, tv: TvDets): number {
  let matched = 0;
  for (let i = 0; i < tv.scores.length; i++) {
    for (let j = 0; j < ours.count; j++) {
      if (ours.classIds[j] !== tv.labels[i] || Math.abs(ours.scores[j]! - tv.scores[i]!) > 1e-5) continue;
      let d = 0;
      for (let k = 0; k < 4; k++) d = Math.max(d, Math.abs(ours.boxesXYXY[j * 4 + k]! * 300 - tv.boxes[i * 4 + k]!));
      if (d < 1e-2) { matched++; break; }
    }
  }
  return matched;
}

describe.skipIf(!hasTorchvision)('ssd import: torchvision ssd300_vgg16', () => {
  const dir = tempDir('ssd-import-tv-');
  let ckptDir: string;
  let onnxPath: string;
  const tvDets = (): TvDets => JSON.parse(readFileSync(join(dir, 'dets.json'), 'utf8')) as TvDets;

  beforeAll(async () => {
    writeFileSync(join(dir, 'make.py'), SCRIPT);
    const py = spawnSync(PY, [join(dir, 'make.py'), dir], { encoding: 'utf8', timeout: 900_000 });
    if (py.status !== 0) throw new Error(`python failed: ${py.stderr}`);
    ckptDir = join(dir, 'ckpt');
    const imp = await ssd(['import', join(dir, 'model.pth'), '--out', ckptDir, '--json']);
    if (imp.code !== 0) throw new Error(`ssd import failed: ${imp.stderr}`);
    onnxPath = join(dir, 'model.onnx');
    // --no-verify: the tfjs comparison of a full SSD300 takes minutes on a shared CPU; the check that
    // matters here is against torchvision itself, below.
    const exp = await ssd(['export-onnx', '--checkpoint', ckptDir, '--out', onnxPath, '--postprocess', 'none', '--no-verify']);
    if (exp.code !== 0) throw new Error(`ssd export-onnx failed: ${exp.stderr}`);
  }, 1_200_000);

  it('detects the format and writes torchvision conventions into the spec', () => {
    const { spec } = loadCheckpoint(ckptDir);
    expect(spec.name).toBe('ssd300-torchvision');
    expect(spec.labels).toEqual(torchvisionCocoLabels());
    expect(spec.labels.length).toBe(91);
    expect(spec.labels[12]).toBe('N/A');
    expect(spec.labels[1]).toBe('person');
    expect(spec.labels[90]).toBe('toothbrush');
    expect(spec.input.channelOrder).toBe('rgb');
    expect(spec.clampPriors).toBe('wh');
    expect(spec.postprocess).toEqual({ confidenceThreshold: 0.01, nmsThreshold: 0.45, topKPerClass: 400, keepTopK: 200, clipBeforeNms: true });
    expect(spec.sources[0]!.l2NormScale).toBeGreaterThan(10);
  });

  it("our preprocessing of the image equals torchvision's transform (RGB, mean 0.48235/0.45882/0.40784, std 1/255)", () => {
    const { spec } = loadCheckpoint(ckptDir);
    const ours = nhwcToNchw(preprocessNHWC(spec, readFileSync(join(dir, 'image.u8'))), 1, 300, 300, 3);
    expect(maxAbsDiff(ours, f32(join(dir, 'input.f32')))).toBeLessThan(1e-4);
  });

  it("default boxes equal torchvision's DefaultBoxGenerator (clip=True)", () => {
    const { spec } = loadCheckpoint(ckptDir);
    const ours = defaultBoxes(spec);
    const tv = f32(join(dir, 'anchors.f32'));
    expect(ours.length).toBe(tv.length);
    let worst = 0;
    for (let i = 0; i < ours.length; i += 4) {
      const [cx, cy, w, h] = [ours[i]!, ours[i + 1]!, ours[i + 2]!, ours[i + 3]!];
      const xyxy = [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2].map((v) => v * 300);
      for (let j = 0; j < 4; j++) worst = Math.max(worst, Math.abs(xyxy[j]! - tv[i + j]!));
    }
    expect(worst).toBeLessThan(1e-3); // pixels
  });

  it('onnxruntime on the exported model gives torchvision raw heads (<= 1e-4 abs) and its detections', async () => {
    const session = await ort.InferenceSession.create(onnxPath, { executionProviders: ['cpu'] });
    const input = f32(join(dir, 'input.f32'));
    const out = await session.run({ images: new ort.Tensor('float32', input, [1, 3, 300, 300]) });
    const loc = out.loc!.data as Float32Array;
    const conf = out.conf!.data as Float32Array;
    const tvLoc = f32(join(dir, 'loc.f32'));
    const tvConf = f32(join(dir, 'conf.f32'));
    expect(out.loc!.dims).toEqual([1, 8732, 4]);
    expect(out.conf!.dims).toEqual([1, 8732, 91]);
    expect(maxAbsDiff(loc, tvLoc)).toBeLessThanOrEqual(1e-4);
    expect(maxAbsDiff(conf, tvConf)).toBeLessThanOrEqual(1e-4);

    // Detections: ours (core/postprocess on our heads, boxes in [0, 1]) against SSD.postprocess_detections
    // (pixels of the 300x300 input), with torchvision's clip-before-NMS carried in the spec.
    const { spec } = loadCheckpoint(ckptDir);
    const ours = postprocess(loc, conf, defaultBoxes(spec), spec);
    expect(matchDetections(ours, tvDets())).toBe(tvDets().scores.length);
    expect(ours.count).toBe(tvDets().scores.length);
  }, 300_000);

  it('the NMS in the exported graph (--postprocess nms) gives the same detections', async () => {
    const nmsPath = join(dir, 'model-nms.onnx');
    const exp = await ssd(['export-onnx', '--checkpoint', ckptDir, '--out', nmsPath, '--postprocess', 'nms', '--no-verify']);
    expect(exp.code, exp.stderr).toBe(0);
    const session = await ort.InferenceSession.create(nmsPath, { executionProviders: ['cpu'] });
    const out = await session.run({ images: new ort.Tensor('float32', f32(join(dir, 'input.f32')), [1, 3, 300, 300]) });
    const n = Number((out.num_detections!.data as Int32Array)[0]);
    const det = {
      count: n,
      boxesXYXY: (out.detection_boxes!.data as Float32Array).slice(0, n * 4),
      scores: (out.detection_scores!.data as Float32Array).slice(0, n),
      classIds: Int32Array.from((out.detection_classes!.data as Int32Array).slice(0, n)),
    };
    const tv = tvDets();
    expect(n).toBe(tv.scores.length);
    expect(matchDetections(det, tv)).toBe(tv.scores.length);
  }, 300_000);

  it('end to end on the CPU: export --fp16 --input uint8-nhwc, ssd detect on a PNG, ssd deploy --to-dir, detect --gt + eval, stream', async () => {
    const model = join(dir, 'model-fp16.onnx');
    const exp = await ssd(['export-onnx', '--checkpoint', ckptDir, '--out', model, '--fp16', '--input', 'uint8-nhwc', '--postprocess', 'nms', '--no-verify']);
    expect(exp.code, exp.stderr).toBe(0);
    const png = join(dir, 'scene.png');
    await sharp(readFileSync(join(dir, 'image.u8')), { raw: { width: 300, height: 300, channels: 3 } }).png().toFile(png);
    const results = join(dir, 'dets-fp16.json');
    const det = await ssd(['detect', model, png, '--coco-results', results, '--threshold', '0.5']);
    expect(det.code, det.stderr).toBe(0);
    const ours = JSON.parse(readFileSync(results, 'utf8')) as Array<{ category_id: number; bbox: number[]; score: number }>;
    // The best detection is torchvision's best (same category id: class index = COCO id), box within 2 px.
    const tv = tvDets();
    const best = ours.reduce((a, b) => (b.score > a.score ? b : a));
    expect(best.category_id).toBe(tv.labels[0]);
    const [x, y, w, h] = best.bbox as [number, number, number, number];
    [x, y, x + w, y + h].forEach((v, k) => expect(Math.abs(v - tv.boxes[k]!)).toBeLessThan(2));
    const bundle = join(dir, 'bundle');
    const dep = await ssd(['deploy', '--to-dir', bundle, '--device', 'orin-nano', '--model', model]);
    expect(dep.code, dep.stderr).toBe(0);
    expect(existsSync(bundle)).toBe(true);

    // ssd detect --gt + ssd eval: COCO ground truth holding torchvision's best detection (its numeric
    // category id, a numeric image id) scores AP50 = 1 for our results.
    const gt = join(dir, 'gt.json');
    const [bx1, by1, bx2, by2] = tv.boxes.slice(0, 4) as [number, number, number, number];
    writeFileSync(gt, JSON.stringify({
      images: [{ id: 7, file_name: 'scene.png', width: 300, height: 300 }],
      annotations: [{ id: 1, image_id: 7, category_id: tv.labels[0], bbox: [bx1, by1, bx2 - bx1, by2 - by1], area: (bx2 - bx1) * (by2 - by1), iscrowd: 0 }],
      categories: torchvisionCocoLabels().flatMap((name, id) => (id > 0 && name !== 'N/A' ? [{ id, name }] : [])),
    }));
    const withIds = join(dir, 'dets-gt.json');
    const det2 = await ssd(['detect', model, png, '--gt', gt, '--coco-results', withIds, '--threshold', '0.5']);
    expect(det2.code, det2.stderr).toBe(0);
    const ev = await ssd(['eval', '--gt', gt, '--dt', withIds, '--metric', 'coco', '--json']);
    expect(ev.code, ev.stderr).toBe(0);
    const stats = (JSON.parse(ev.stdout) as { stats: number[] }).stats;
    expect(stats[1]).toBeCloseTo(1, 6);

    // ssd stream on a GStreamer test source with the imported model.
    const st = await ssd(['stream', 'test://', '--model', model, '--max-frames', '2', '--threshold', '0.5']);
    expect(st.code, st.stderr).toBe(0);
    expect(st.stdout.trim().split('\n').filter((l) => l.startsWith('{'))).toHaveLength(2);
  }, 600_000);

  it('a bad file is one line and a non-zero exit, and --out is not created', async () => {
    const bad = join(dir, 'bad.pth');
    writeFileSync(bad, readFileSync(join(dir, 'model.pth')).subarray(0, 5000));
    const res = await ssd(['import', bad, '--out', join(dir, 'never')]);
    expect(res.code).not.toBe(0);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stderr).toMatch(/^ssd import: .*bad\.pth: .*(truncated|not a zip)/);
    expect(existsSync(join(dir, 'never'))).toBe(false);
  });

  it('--format that does not fit the keys names the missing tensor', async () => {
    const res = await ssd(['import', join(dir, 'model.pth'), '--out', join(dir, 'never2'), '--format', 'lufficc']);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/missing box_head\.predictor\.cls_headers\.0\.weight/);
  });
});

/** Small models and images for the runtime tests, made on the fly (no fixtures to go stale). */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import sharp from 'sharp';
import type { InputLayout, PostprocessMode } from '../../core/model-contract.js';
import { specByName, type SsdSpec } from '../../core/specs.js';
import { buildOnnxModel } from '../../export/index.js';

export const tinySpec = (): SsdSpec => specByName('ssd-tiny');

export interface TinyModelOptions {
  postprocess?: PostprocessMode;
  input?: InputLayout;
  batch?: number | 'dynamic';
  seed?: number;
}

/** Writes an ssd-tiny model (random weights, seed 7 unless given) and returns its path. */
export function writeTinyModel(dir: string, o: TinyModelOptions = {}): string {
  const pp = o.postprocess ?? 'decode';
  const input = o.input ?? 'float-nchw';
  const batch = o.batch ?? 1;
  const path = join(dir, `tiny-${pp}-${input}-b${batch}-s${o.seed ?? 7}.onnx`);
  writeFileSync(path, buildOnnxModel({ spec: tinySpec(), seed: o.seed ?? 7, postprocess: pp, input, batch }));
  return path;
}

/** A smooth, structured RGB picture (random-weight SSDs give varied scores on it). */
export function patternRgb(width: number, height: number, phase = 0): Uint8Array {
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      rgb[i] = 128 + 100 * Math.sin(phase + x / 9);
      rgb[i + 1] = 128 + 100 * Math.sin(phase + y / 7);
      rgb[i + 2] = (x * 3 + y * 5) & 255;
    }
  }
  return rgb;
}

export async function encode(rgb: Uint8Array, width: number, height: number, format: 'png' | 'jpeg' = 'png'): Promise<Buffer> {
  const img = sharp(rgb, { raw: { width, height, channels: 3 } });
  return format === 'png' ? img.png().toBuffer() : img.jpeg({ quality: 95 }).toBuffer();
}

/**
 * A non-SSD model: one Relu, float32 [1, 3] -> [1, 3], optionally carrying `props` as metadata_props
 * (e.g. a real SSD's, to check that the graph itself is checked, not only the metadata).
 */
export function writeReluModel(path: string, props: Record<string, string> = {}): string {
  const { onnx } = onnxProto;
  const vi = (name: string) => ({ name, type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 1 }, { dimValue: 3 }] } } } });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: { name: 'g', node: [{ opType: 'Relu', input: ['x'], output: ['y'] }], input: [vi('x')], output: [vi('y')] },
    metadataProps: Object.entries(props).map(([key, value]) => ({ key, value })),
  });
  writeFileSync(path, onnx.ModelProto.encode(model).finish());
  return path;
}

// The minimal ModelProto reader (runtime/onnx-metadata.ts) against protobufjs' full decoder (onnx-proto),
// and its one-line errors for files that are not ONNX models.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import { describe, expect, it } from 'vitest';
import { SsdError } from '../../core/errors.js';
import { META } from '../../core/model-contract.js';
import { readModelMetadata, readOnnxHeader } from '../../runtime/onnx-metadata.js';
import { tinySpec, writeTinyModel } from './helpers.js';
import { tempDir } from '../helpers/temp-dir.js';

const { onnx } = onnxProto;
const tmp = tempDir('ssd-runtime-');

/** protobuf varint and length-delimited field encoders, to hand-craft files. */
function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 128) {
    out.push((n % 128) | 128);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}
const lenField = (field: number, bytes: Uint8Array | number[]) => [...varint(field * 8 + 2), ...varint(bytes.length), ...bytes];
const str = (s: string) => [...Buffer.from(s, 'utf8')];
const entry = (k: string, v: string) => lenField(14, [...lenField(1, str(k)), ...lenField(2, str(v))]);

describe('readOnnxHeader', () => {
  it('reads the same metadata_props as a full protobuf decode of an exported model', () => {
    const path = writeTinyModel(tmp, { postprocess: 'nms', input: 'uint8-nhwc' });
    const header = readOnnxHeader(path);
    const decoded = onnx.ModelProto.decode(readFileSync(path));
    const expected = Object.fromEntries(decoded.metadataProps.map((p) => [p.key, p.value]));
    expect(Object.keys(expected).length).toBeGreaterThanOrEqual(6);
    expect(header.props).toEqual(expected);
    expect(header.irVersion).toBe(Number(decoded.irVersion));
    const meta = readModelMetadata(path);
    expect(meta.spec).toEqual(tinySpec());
    expect(meta.inputLayout).toBe('uint8-nhwc');
    expect(meta.postprocess).toBe('nms');
  });

  it('skips fields of every wire type and reads entries wherever they sit, UTF-8 included', () => {
    const bytes = Uint8Array.from([
      ...entry('first', 'before the graph'),
      ...varint(1 * 8 + 0), ...varint(8), // ir_version 8
      ...varint(99 * 8 + 1), 1, 2, 3, 4, 5, 6, 7, 8, // unknown fixed64
      ...varint(98 * 8 + 5), 1, 2, 3, 4, // unknown fixed32
      ...lenField(7, new Uint8Array(300_000).fill(0xff)), // a "graph" of garbage bytes: must be skipped, not parsed
      ...varint(97 * 8 + 0), ...varint(2 ** 40), // unknown large varint
      ...entry('ключ', 'wert 😀'),
    ]);
    const path = join(tmp, 'handmade.onnx');
    writeFileSync(path, bytes);
    expect(readOnnxHeader(path)).toEqual({ irVersion: 8, props: { first: 'before the graph', 'ключ': 'wert 😀' } });
  });

  it('a model without SSD metadata is named as such', () => {
    const path = join(tmp, 'plain.onnx');
    writeFileSync(path, Uint8Array.from([...varint(8), 8, ...entry('author', 'someone')]));
    expect(() => readModelMetadata(path)).toThrow(/plain\.onnx: no SSD metadata/);
  });

  it('corrupt SSD metadata is a one-line SsdError', () => {
    const path = join(tmp, 'corrupt-meta.onnx');
    writeFileSync(path, Uint8Array.from([...varint(8), 8, ...entry(META.version, '1'), ...entry(META.spec, '{not json')]));
    expect(() => readModelMetadata(path)).toThrow(/corrupt SSD metadata/);
  });

  it('a directory is not a model', () => {
    expect(() => readOnnxHeader(tmp)).toThrow(`model ${tmp}: not a file`);
  });

  it.each([
    ['missing', null, /file not found/],
    ['empty', new Uint8Array(0), /file is empty/],
    ['truncated', 'truncate', /not a valid ONNX file/],
    ['text', Buffer.from('this is not a model at all, just some words\n'), /not a valid ONNX file/],
    ['jpeg', Uint8Array.from([0xff, 0xd8, 0xff, 0xe0, 0, 16, 74, 70, 73, 70]), /not a valid ONNX file/],
  ] as const)('%s file -> SsdError naming the file', (name, content, message) => {
    const path = join(tmp, `${name}.onnx`);
    if (content === 'truncate') {
      const full = readFileSync(writeTinyModel(tmp, { seed: 11 }));
      writeFileSync(path, full.subarray(0, Math.floor(full.length / 2)));
    } else if (content !== null) {
      writeFileSync(path, content);
    }
    let err: unknown;
    try {
      readOnnxHeader(path);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SsdError);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).toContain(path);
    expect((err as Error).message).not.toContain('\n');
  });
});

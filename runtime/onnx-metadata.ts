/**
 * Reads the metadata_props of an .onnx file without decoding the graph.
 *
 * onnxruntime-node's JS API exposes input/output names, types and shapes but not the model's custom
 * metadata, and decoding the whole ModelProto with a protobuf library would pull hundreds of megabytes
 * of weights through JavaScript objects. ModelProto is a flat sequence of tagged fields at the top
 * level, so this walks those tags, seeks over every length-delimited field it does not need (the graph
 * above all) and decodes only field 14, `repeated StringStringEntryProto metadata_props`.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { SsdError } from '../core/errors.js';
import { metadataFromProps, type ModelMetadata } from '../core/model-metadata.js';

/** ModelProto field numbers (onnx.proto3). */
const MODEL_IR_VERSION = 1;
const MODEL_METADATA_PROPS = 14;
/** StringStringEntryProto field numbers. */
const ENTRY_KEY = 1;
const ENTRY_VALUE = 2;

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

/** Sequential reader over a file with a small buffer; `skip` seeks instead of reading. */
class FileCursor {
  private buf = Buffer.alloc(64 * 1024);
  private bufStart = 0;
  private bufEnd = 0;
  pos = 0;
  constructor(private readonly fd: number, readonly size: number) {}

  get atEnd(): boolean {
    return this.pos >= this.size;
  }

  byte(): number {
    if (this.pos >= this.size) throw new RangeError('unexpected end of file');
    if (this.pos < this.bufStart || this.pos >= this.bufEnd) this.fill(this.pos);
    return this.buf[this.pos++ - this.bufStart]!;
  }

  /** A base-128 varint as a JS number (exact up to 2^53, plenty for lengths and tags). */
  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      const b = this.byte();
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return result;
      mul *= 128;
    }
    throw new RangeError('varint longer than 10 bytes');
  }

  bytes(n: number): Buffer {
    if (n > this.size - this.pos) throw new RangeError('length runs past the end of the file');
    const out = Buffer.alloc(n);
    let done = 0;
    while (done < n) {
      const r = readSync(this.fd, out, done, n - done, this.pos + done);
      if (r <= 0) throw new RangeError('short read');
      done += r;
    }
    this.pos += n;
    return out;
  }

  skip(n: number): void {
    if (n > this.size - this.pos) throw new RangeError('length runs past the end of the file');
    this.pos += n;
  }

  private fill(at: number): void {
    const r = readSync(this.fd, this.buf, 0, this.buf.length, at);
    this.bufStart = at;
    this.bufEnd = at + r;
    if (r <= 0) throw new RangeError('short read');
  }
}

function skipField(cur: { varint(): number; skip(n: number): void }, wire: number): void {
  switch (wire) {
    case WIRE_VARINT: cur.varint(); return;
    case WIRE_I64: cur.skip(8); return;
    case WIRE_LEN: cur.skip(cur.varint()); return;
    case WIRE_I32: cur.skip(4); return;
    default: throw new RangeError(`wire type ${wire} is not valid protobuf`);
  }
}

/** Decodes one StringStringEntryProto from its bytes. */
function decodeEntry(bytes: Buffer): [string, string] {
  let pos = 0;
  const cur = {
    varint(): number {
      let result = 0;
      let mul = 1;
      for (let i = 0; i < 10; i++) {
        if (pos >= bytes.length) throw new RangeError('truncated metadata entry');
        const b = bytes[pos++]!;
        result += (b & 0x7f) * mul;
        if ((b & 0x80) === 0) return result;
        mul *= 128;
      }
      throw new RangeError('varint longer than 10 bytes');
    },
    skip(n: number): void {
      if (pos + n > bytes.length) throw new RangeError('truncated metadata entry');
      pos += n;
    },
  };
  let key = '';
  let value = '';
  while (pos < bytes.length) {
    const tag = cur.varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if ((field === ENTRY_KEY || field === ENTRY_VALUE) && wire === WIRE_LEN) {
      const n = cur.varint();
      const start = pos;
      cur.skip(n);
      const s = bytes.toString('utf8', start, start + n);
      if (field === ENTRY_KEY) key = s;
      else value = s;
    } else {
      skipField(cur, wire);
    }
  }
  return [key, value];
}

export interface OnnxHeader {
  irVersion: number;
  props: Record<string, string>;
}

/**
 * The IR version and metadata_props of an .onnx file. Throws an SsdError naming the file when it is
 * missing, unreadable or not a protobuf ModelProto.
 */
export function readOnnxHeader(path: string): OnnxHeader {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new SsdError(code === 'ENOENT' ? `model ${path}: file not found` : `model ${path}: cannot open (${code ?? (err as Error).message})`, { cause: err });
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new SsdError(`model ${path}: not a file`);
    const size = st.size;
    if (size === 0) throw new SsdError(`model ${path}: file is empty`);
    const cur = new FileCursor(fd, size);
    const props: Record<string, string> = {};
    let irVersion = 0;
    let sawField = false;
    try {
      while (!cur.atEnd) {
        const tag = cur.varint();
        const field = Math.floor(tag / 8);
        const wire = tag & 7;
        if (field === 0) throw new RangeError('field number 0');
        if (field === MODEL_IR_VERSION && wire === WIRE_VARINT) irVersion = cur.varint();
        else if (field === MODEL_METADATA_PROPS && wire === WIRE_LEN) {
          const [k, v] = decodeEntry(cur.bytes(cur.varint()));
          props[k] = v;
        } else skipField(cur, wire);
        sawField = true;
      }
    } catch (err) {
      if (err instanceof RangeError) throw new SsdError(`model ${path}: not a valid ONNX file (${err.message} at byte ${cur.pos})`, { cause: err });
      throw err;
    }
    if (!sawField || irVersion === 0) throw new SsdError(`model ${path}: not a valid ONNX file (no ir_version)`);
    return { irVersion, props };
  } finally {
    closeSync(fd);
  }
}

/** The SSD metadata of an exported model (keys: core/model-contract.ts META; record: core/model-metadata.ts). */
export function readModelMetadata(path: string): ModelMetadata {
  return metadataFromProps(readOnnxHeader(path).props, `model ${path}`);
}

/**
 * Just enough protobuf to read Caffe files: the binary wire format (for .caffemodel NetParameter) and
 * the text format (for deploy.prototxt). Both readers are schema-less and bounds-checked; callers name
 * the fields they want by number (binary) or name (text). Written here rather than through protobufjs,
 * which is only a transitive dependency of onnx-proto: the wire format is five cases, and the tests
 * encode their files with protobufjs, so reader and writer stay independent.
 */
import { SsdError } from '../../core/errors.js';

/** One field occurrence: wire type 0 (varint, as bigint), 1 / 5 (fixed64 / fixed32 raw bytes) or 2 (bytes). */
export interface WireField { field: number; wire: 0 | 1 | 2 | 5; varint: bigint; bytes: Uint8Array }

/** All fields of one message, in order. Throws a one-line SsdError on truncation or a bad wire type. */
export function wireFields(buf: Uint8Array, where: string): WireField[] {
  const out: WireField[] = [];
  let p = 0;
  const fail = (why: string): never => { throw new SsdError(`${where}: ${why}`); };
  const varint = (): bigint => {
    let v = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (p >= buf.length) fail('truncated protobuf (varint runs past the end)');
      if (shift > 63n) fail('corrupt protobuf (varint longer than 10 bytes)');
      const b = buf[p++]!;
      v |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
  };
  const empty = new Uint8Array(0);
  while (p < buf.length) {
    const key = varint();
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (field === 0) fail('corrupt protobuf (field number 0)');
    if (wire === 0) out.push({ field, wire, varint: varint(), bytes: empty });
    else if (wire === 1 || wire === 5) {
      const n = wire === 1 ? 8 : 4;
      if (p + n > buf.length) fail('truncated protobuf (fixed field runs past the end)');
      out.push({ field, wire, varint: 0n, bytes: buf.subarray(p, p + n) });
      p += n;
    } else if (wire === 2) {
      const n = varint();
      if (BigInt(p) + n > BigInt(buf.length)) fail('truncated protobuf (length-delimited field runs past the end)');
      out.push({ field, wire, varint: 0n, bytes: buf.subarray(p, p + Number(n)) });
      p += Number(n);
    } else {
      fail(`corrupt protobuf (wire type ${wire} of field ${field})`);
    }
  }
  return out;
}

export const fieldsOf = (fields: WireField[], n: number): WireField[] => fields.filter((f) => f.field === n);

export function stringField(fields: WireField[], n: number): string | undefined {
  const f = fields.filter((x) => x.field === n && x.wire === 2).at(-1);
  return f ? Buffer.from(f.bytes).toString('utf8') : undefined;
}

export function intField(fields: WireField[], n: number): number | undefined {
  const f = fields.filter((x) => x.field === n && x.wire === 0).at(-1);
  return f ? Number(BigInt.asIntN(64, f.varint)) : undefined;
}

/** A repeated float field, packed (wire 2) or not (wire 5), in order. */
export function floatsField(fields: WireField[], n: number, where: string): Float32Array {
  const parts: Float32Array[] = [];
  let total = 0;
  for (const f of fields) {
    if (f.field !== n) continue;
    if (f.wire !== 2 && f.wire !== 5) throw new SsdError(`${where}: corrupt protobuf (float field ${n} has wire type ${f.wire})`);
    if (f.bytes.length % 4) throw new SsdError(`${where}: corrupt protobuf (packed floats of ${f.bytes.length} bytes)`);
    const a = new Float32Array(f.bytes.length / 4);
    const dv = new DataView(f.bytes.buffer, f.bytes.byteOffset, f.bytes.byteLength);
    for (let i = 0; i < a.length; i++) a[i] = dv.getFloat32(i * 4, true);
    parts.push(a);
    total += a.length;
  }
  if (parts.length === 1) return parts[0]!;
  const out = new Float32Array(total);
  let o = 0;
  for (const a of parts) { out.set(a, o); o += a.length; }
  return out;
}

/** A repeated double field (Caffe's double_data), as float32. */
export function doublesField(fields: WireField[], n: number, where: string): Float32Array {
  const vals: number[] = [];
  for (const f of fields) {
    if (f.field !== n) continue;
    if ((f.wire !== 2 && f.wire !== 1) || f.bytes.length % 8) throw new SsdError(`${where}: corrupt protobuf (double field ${n})`);
    const dv = new DataView(f.bytes.buffer, f.bytes.byteOffset, f.bytes.byteLength);
    for (let i = 0; i < f.bytes.length; i += 8) vals.push(dv.getFloat64(i, true));
  }
  return Float32Array.from(vals);
}

/** A repeated integer field, packed (wire 2) or not (wire 0). */
export function intsField(fields: WireField[], n: number, where: string): number[] {
  const out: number[] = [];
  for (const f of fields) {
    if (f.field !== n) continue;
    if (f.wire === 0) out.push(Number(BigInt.asIntN(64, f.varint)));
    else if (f.wire === 2) {
      // Packed varints: the same reader over the payload, one pseudo-field per value.
      let p = 0;
      while (p < f.bytes.length) {
        let v = 0n;
        for (let shift = 0n; ; shift += 7n) {
          if (p >= f.bytes.length || shift > 63n) throw new SsdError(`${where}: corrupt protobuf (packed varints of field ${n})`);
          const b = f.bytes[p++]!;
          v |= BigInt(b & 0x7f) << shift;
          if (!(b & 0x80)) break;
        }
        out.push(Number(BigInt.asIntN(64, v)));
      }
    } else throw new SsdError(`${where}: corrupt protobuf (integer field ${n} has wire type ${f.wire})`);
  }
  return out;
}

/** A text-format message: field name -> values in order (scalars as strings/numbers, messages nested). */
export interface TextMessage { [field: string]: TextValue[] }
export type TextValue = string | number | boolean | TextMessage;

/**
 * Protobuf text format (as Caffe's prototxt files use it): `name: value`, `name { ... }` and
 * `name: { ... }`, `#` comments, quoted strings, numbers, enum identifiers. Every field is kept as a
 * list, since any may repeat.
 */
export function parseTextProto(text: string, where: string): TextMessage {
  let p = 0;
  let line = 1;
  const fail = (why: string): never => { throw new SsdError(`${where}:${line}: ${why}`); };
  const skip = (): void => {
    while (p < text.length) {
      const c = text[p]!;
      if (c === '\n') { line++; p++; } else if (c === ' ' || c === '\t' || c === '\r' || c === ',' || c === ';') p++;
      else if (c === '#') { while (p < text.length && text[p] !== '\n') p++; } else break;
    }
  };
  const ident = (): string => {
    const m = /^[A-Za-z_][A-Za-z0-9_.]*/.exec(text.slice(p, p + 256));
    if (!m) return fail(`expected a field name, found "${text.slice(p, p + 10)}"`);
    p += m[0].length;
    return m[0];
  };
  const scalar = (): TextValue => {
    const c = text[p];
    if (c === '"' || c === "'") {
      let s = '';
      p++;
      while (p < text.length && text[p] !== c) {
        if (text[p] === '\\' && p + 1 < text.length) { p++; s += text[p] === 'n' ? '\n' : text[p]; } else s += text[p];
        p++;
      }
      if (p >= text.length) fail('unterminated string');
      p++;
      return s;
    }
    const m = /^[-+]?(?:inf(?:inity)?|nan|[0-9.]+(?:[eE][-+]?[0-9]+)?f?|0x[0-9a-fA-F]+)|^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(p, p + 64));
    if (!m) return fail(`expected a value, found "${text.slice(p, p + 10)}"`);
    p += m[0].length;
    const v = m[0];
    if (v === 'true' || v === 'false') return v === 'true';
    if (/^[A-Za-z_]/.test(v) && !/^(inf|infinity|nan)$/i.test(v)) return v; // enum identifier
    const n = Number(v.replace(/f$/, ''));
    if (Number.isNaN(n) && !/nan/i.test(v)) fail(`bad number "${v}"`);
    return n;
  };
  const message = (closing: string | undefined, depth: number): TextMessage => {
    if (depth > 64) fail('nested too deeply');
    const msg: TextMessage = {};
    for (;;) {
      skip();
      if (p >= text.length) {
        if (closing) fail(`missing "${closing}"`);
        return msg;
      }
      if (closing && text[p] === closing) { p++; return msg; }
      const name = ident();
      skip();
      let value: TextValue;
      if (text[p] === ':') { p++; skip(); }
      if (text[p] === '{' || text[p] === '<') {
        const close = text[p] === '{' ? '}' : '>';
        p++;
        value = message(close, depth + 1);
      } else value = scalar();
      (msg[name] ??= []).push(value);
    }
  };
  return message(undefined, 0);
}

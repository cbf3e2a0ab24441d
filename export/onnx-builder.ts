/**
 * A thin typed layer over onnx-proto (protobufjs): a graph under construction with named values,
 * initializers stored as raw_data, nodes with typed attributes, and the ModelProto serialisation.
 * Knows nothing about SSD; graph.ts and its siblings decide what to emit.
 */
import onnxProto from 'onnx-proto';
import { toFloat16Bits } from './fp16.js';

const { onnx } = onnxProto;
type INodeProto = onnxProto.onnx.INodeProto;
type ITensorProto = onnxProto.onnx.ITensorProto;
type IValueInfoProto = onnxProto.onnx.IValueInfoProto;
type IAttributeProto = onnxProto.onnx.IAttributeProto;

/** ONNX TensorProto.DataType values used here. */
export const DType = { float: 1, uint8: 2, int32: 6, int64: 7, bool: 9, float16: 10 } as const;
export type DTypeName = keyof typeof DType;

/** Attribute values: whole numbers become INT, other numbers FLOAT; arrays likewise (INTS/FLOATS). */
export type AttrValue = number | number[] | string | { floats: number[] } | { float: number };
export type Attrs = Record<string, AttrValue>;

/** A dimension: a fixed size or a symbolic name (dynamic). */
export type Dim = number | string;

export interface NodeInfo { op: string; name: string; inputs: string[]; outputs: string[] }

const AT = onnx.AttributeProto.AttributeType;

function attribute(name: string, value: AttrValue): IAttributeProto {
  if (typeof value === 'string') return { name, type: AT.STRING, s: new TextEncoder().encode(value) };
  if (typeof value === 'number') return Number.isInteger(value) ? { name, type: AT.INT, i: value } : { name, type: AT.FLOAT, f: value };
  if (Array.isArray(value)) {
    return value.every(Number.isInteger) ? { name, type: AT.INTS, ints: value } : { name, type: AT.FLOATS, floats: value };
  }
  if ('floats' in value) return { name, type: AT.FLOATS, floats: value.floats };
  return { name, type: AT.FLOAT, f: value.float };
}

function valueInfo(name: string, dtype: DTypeName, dims: Dim[]): IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: DType[dtype],
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function bytesOf(data: ArrayBufferView): Uint8Array {
  // Copy so that the proto owns an exact, aligned buffer regardless of the caller's view.
  return new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
}

export class OnnxGraph {
  readonly nodes: INodeProto[] = [];
  readonly initializers: ITensorProto[] = [];
  readonly inputs: IValueInfoProto[] = [];
  readonly outputs: IValueInfoProto[] = [];
  private readonly used = new Set<string>();
  private counter = 0;

  constructor(readonly opset: number) {}

  /** A value name not used yet, derived from `hint`. */
  fresh(hint: string): string {
    let name = hint;
    while (this.used.has(name)) name = `${hint}_${++this.counter}`;
    this.used.add(name);
    return name;
  }

  input(name: string, dtype: DTypeName, dims: Dim[]): string {
    if (this.used.has(name)) throw new Error(`onnx graph: value ${name} already exists`);
    this.used.add(name);
    this.inputs.push(valueInfo(name, dtype, dims));
    return name;
  }

  /** Declares `value` a graph output under `name` (an Identity renames it when the names differ). */
  output(value: string, name: string, dtype: DTypeName, dims: Dim[]): string {
    if (value !== name) {
      if (this.used.has(name)) throw new Error(`onnx graph: output name ${name} already used`);
      this.used.add(name);
      this.nodes.push({ opType: 'Identity', name: `${name}_out`, input: [value], output: [name] });
    }
    this.outputs.push(valueInfo(name, dtype, dims));
    return name;
  }

  /** Adds a raw_data initializer. float16 data is given as its bit patterns (Uint16Array). */
  init(hint: string, dtype: DTypeName, dims: number[], data: Float32Array | Uint16Array | Uint8Array | Int32Array | BigInt64Array): string {
    const n = dims.reduce((a, b) => a * b, 1);
    if (n !== data.length) throw new Error(`onnx graph: initializer ${hint} has dims [${dims}] (${n} values) but ${data.length} values`);
    const name = this.fresh(hint);
    this.initializers.push({ name, dataType: DType[dtype], dims, rawData: bytesOf(data) });
    return name;
  }

  /** Float constant (float32, or float16 when `dtype` says so). */
  floats(hint: string, dims: number[], values: ArrayLike<number>, dtype: 'float' | 'float16' = 'float'): string {
    const f32 = Float32Array.from(values);
    return dtype === 'float' ? this.init(hint, 'float', dims, f32) : this.init(hint, 'float16', dims, toFloat16Bits(f32));
  }

  int64s(hint: string, values: number[], dims: number[] = [values.length]): string {
    return this.init(hint, 'int64', dims, BigInt64Array.from(values.map((v) => BigInt(v))));
  }

  /** Emits a node with one output; returns the output name. */
  op(opType: string, inputs: string[], attrs: Attrs = {}, hint = opType.toLowerCase()): string {
    return this.opN(opType, inputs, 1, attrs, hint)[0]!;
  }

  /** Emits a node with `numOutputs` outputs. Empty input names stand for omitted optional inputs. */
  opN(opType: string, inputs: string[], numOutputs: number, attrs: Attrs = {}, hint = opType.toLowerCase()): string[] {
    const outputs = Array.from({ length: numOutputs }, (_, i) => this.fresh(numOutputs === 1 ? hint : `${hint}_${i}`));
    this.nodes.push({
      opType,
      name: this.fresh(`${hint}_node`),
      input: inputs,
      output: outputs,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return outputs;
  }

  /** Op types used, with counts (for summaries and the TensorRT support table). */
  opCounts(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const n of this.nodes) counts.set(n.opType!, (counts.get(n.opType!) ?? 0) + 1);
    return counts;
  }

  /** Serialises to ModelProto bytes (IR version 8). */
  toModel(opts: { graphName: string; producerName: string; producerVersion: string; docString?: string; metadata?: Record<string, string> }): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: opts.producerName,
      producerVersion: opts.producerVersion,
      docString: opts.docString ?? '',
      opsetImport: [{ domain: '', version: this.opset }],
      metadataProps: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
      graph: {
        name: opts.graphName,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

/** Reads back a model's op types, metadata, opset and initializer types (for tests and summaries). */
export function inspectModel(bytes: Uint8Array): {
  irVersion: number; opset: number; ops: string[]; metadata: Record<string, string>;
  initializerTypes: number[]; inputs: { name: string; elemType: number; dims: Dim[] }[]; outputs: { name: string; elemType: number; dims: Dim[] }[];
} {
  const m = onnx.ModelProto.decode(bytes);
  const info = (v: onnxProto.onnx.IValueInfoProto) => ({
    name: v.name ?? '',
    elemType: v.type?.tensorType?.elemType ?? 0,
    dims: (v.type?.tensorType?.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : Number(d.dimValue ?? 0))),
  });
  return {
    irVersion: Number(m.irVersion),
    opset: Number(m.opsetImport[0]?.version ?? 0),
    ops: (m.graph?.node ?? []).map((n) => n.opType ?? ''),
    metadata: Object.fromEntries(m.metadataProps.map((p) => [p.key ?? '', p.value ?? ''])),
    initializerTypes: (m.graph?.initializer ?? []).map((t) => t.dataType ?? 0),
    inputs: (m.graph?.input ?? []).map(info),
    outputs: (m.graph?.output ?? []).map(info),
  };
}

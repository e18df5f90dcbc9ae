/**
 * lfc's graph IR.
 *
 *   Graph ──nodes (topological)──▶ Node { opType, domain, attrs }
 *     │                               │ inputs: (Value | undefined)[]   (undefined: omitted optional)
 *     │                               └ outputs: Value[]
 *     └─ values: name → Value { type: { dtype, shape: Dim[] }, initializer?, producer?, consumers }
 *
 * Values are SSA: one producer (a node, a graph input, or an initializer). Shapes are symbolic
 * (dim.ts). `known` holds the contents of small integer tensors when shape inference can compute
 * them (the Shape → Gather → Concat → Reshape arithmetic every exporter emits), possibly symbolic.
 * A node's `opset` is the version of its domain the model imports, fixed at import.
 */
import type { DType } from '../../runtime/dtype.js';
import type { Tensor } from '../../runtime/tensor.js';
import { shapeStr, type Dim } from './dim.js';

/** Tensors up to this many elements have their contents tracked by shape inference (`Value.known`). */
export const KNOWN_LIMIT = 4096;

export interface ValueType {
  dtype: DType;
  shape: Dim[];
}

/** A constant tensor whose bytes may live in an external file and load on first use. */
export interface Initializer {
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** Bytes it occupies in the model (raw or external), for statistics. */
  readonly byteLength: number;
  /** Where the bytes live when external: file path, offset, length. */
  readonly external?: { path: string; offset: number; length: number };
  /** Decode (and for external data, read) the tensor. Cached after the first call. */
  load(): Tensor;
  /** Whether load() has run (inspection must leave external weights unread). */
  readonly loaded?: boolean;
}

export class Value {
  type?: ValueType;
  initializer?: Initializer;
  /** Flattened contents of a small integer/shape tensor, when inference knows them. */
  known?: Dim[];
  producer?: Node;
  readonly consumers: Node[] = [];
  constructor(public name: string) {}

  toString(): string {
    return this.type ? `${this.name}: ${this.type.dtype}${shapeStr(this.type.shape)}` : `${this.name}: ?`;
  }
}

export type AttrValue = number | string | number[] | string[] | Tensor | Graph;

export class Node {
  readonly inputs: (Value | undefined)[] = [];
  readonly outputs: Value[] = [];
  /** Set when the node is removed from its graph (passes iterate over snapshots). */
  removed = false;
  constructor(
    public name: string,
    public opType: string,
    public domain: string,
    public opset: number,
    public attrs: Map<string, AttrValue> = new Map(),
  ) {}

  /** `Add 'node_name'` for error messages. */
  get label(): string { return `${this.opType} node '${this.name}'`; }
}

export class Graph {
  name = 'main';
  readonly inputs: Value[] = [];
  readonly outputs: Value[] = [];
  readonly nodes: Node[] = [];
  readonly values = new Map<string, Value>();
  /** domain ('' for ai.onnx) → opset version */
  readonly opsets = new Map<string, number>();
  readonly meta: Record<string, string> = {};
  /**
   * Symbols shape inference proved equal to an expression, e.g. total_sequence_length →
   * past_sequence_length + sequence_length (from broadcasting the attention mask). Already
   * substituted into every value's type.
   */
  readonly dimEquations = new Map<string, Dim>();

  value(name: string): Value {
    let v = this.values.get(name);
    if (!v) { v = new Value(name); this.values.set(name, v); }
    return v;
  }

  addNode(node: Node, inputs: (Value | undefined)[], outputs: Value[]): Node {
    for (const i of inputs) { node.inputs.push(i); i?.consumers.push(node); }
    for (const o of outputs) {
      if (o.producer) throw new Error(`value '${o.name}' is produced by both ${o.producer.label} and ${node.label}`);
      node.outputs.push(o);
      o.producer = node;
    }
    this.nodes.push(node);
    return node;
  }

  get initializers(): Value[] { return [...this.values.values()].filter((v) => v.initializer); }
}

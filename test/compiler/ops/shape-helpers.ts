/**
 * Helpers for the shape/data-movement op tests: run one op's `infer` on hand-made input infos
 * (symbolic shapes, known contents) and its `evaluate` on tensors, through the registry, the way
 * the inference driver and the interpreter do.
 */
import { expect } from 'vitest';
import type { DType } from '../../../runtime/dtype.js';
import { Tensor } from '../../../runtime/tensor.js';
import { Attrs } from '../../../compiler/ir/attrs.js';
import { dimStr, SymDim, type Dim } from '../../../compiler/ir/dim.js';
import { Node, Value, type AttrValue } from '../../../compiler/ir/graph.js';
import { resolveOp } from '../../../compiler/ops/index.js';
import type { InferContext, InputInfo, OpContext, OpDef, OutputInfo } from '../../../compiler/ops/registry.js';

export const sym = (name: string): SymDim => SymDim.symbol(name);
export const b = sym('batch'), s = sym('seq'), past = sym('past');
/** INT64_MAX / INT64_MIN as an int64 tensor stores them. */
export const INT64_MAX = 2 ** 63, INT64_MIN = -(2 ** 63);

/** An input for `infer`: dtype, shape, optionally known contents; `fed` marks a graph input. */
export interface In extends InputInfo { fed?: boolean }

export const info = (dtype: DType, shape: Dim[], known?: Dim[]): In => ({ dtype, shape, known });
/** A 1-D int64 input with known contents (a computed shape). */
export const ints = (...known: Dim[]): In => info('int64', [known.length], known);
/** A 0-D int64 input with known contents. */
export const scalar = (k: Dim): In => info('int64', [], [k]);
/** A float32 activation of a symbolic shape. */
export const act = (...shape: Dim[]): In => info('float32', shape);

export interface OpSpec {
  opset?: number;
  attrs?: Record<string, AttrValue>;
  outputs?: number;
}

function makeNode(op: string, spec: OpSpec, nIn: number, fed: boolean[]): { node: Node; def: OpDef; ctx: OpContext } {
  const opset = spec.opset ?? 17;
  const def = resolveOp('', op, opset);
  if (typeof def === 'string') throw new Error(def);
  const node = new Node(`${op}_0`, op, '', opset, new Map(Object.entries(spec.attrs ?? {})));
  const producer = new Node('producer', 'Identity', '', opset);
  for (let i = 0; i < nIn; i++) {
    const v = new Value(`in${i}`);
    if (!fed[i]) v.producer = producer;
    node.inputs.push(v);
  }
  for (let i = 0; i < (spec.outputs ?? 1); i++) node.outputs.push(new Value(`out${i}`));
  const ctx: OpContext = {
    node, attrs: new Attrs(node), opset,
    fail(message: string): never { throw new Error(`${node.label}: ${message}`); },
  };
  return { node, def, ctx };
}

/** Run `op`'s shape inference; undefined entries are omitted optional inputs. */
export function infer(op: string, inputs: (In | undefined)[], spec: OpSpec = {}): OutputInfo[] {
  const { node, def, ctx } = makeNode(op, spec, inputs.length, inputs.map((i) => !!i?.fed));
  inputs.forEach((x, i) => { if (!x) node.inputs[i] = undefined; });
  const ictx: InferContext = {
    ...ctx,
    inputs,
    input(i: number): InputInfo {
      const x = inputs[i];
      if (!x) ctx.fail(`input ${i} is required but missing`);
      return x;
    },
    numbers(i: number): number[] | undefined {
      const k = inputs[i]?.known;
      return k && k.every((d) => typeof d === 'number') ? (k as number[]) : undefined;
    },
  };
  return def.infer(ictx);
}

/** Run `op`'s reference evaluation. */
export function evaluate(op: string, inputs: (Tensor | undefined)[], spec: OpSpec = {}): Tensor[] {
  const { def, ctx } = makeNode(op, spec, inputs.length, []);
  return def.evaluate(ctx, inputs);
}

/** Dims as readable strings (numbers stay numbers), for toEqual on symbolic shapes. */
export const str = (ds: readonly Dim[] | undefined): (string | number)[] | undefined =>
  ds?.map((d) => (typeof d === 'number' ? d : dimStr(d)));

/** Expect one output of `shape` (and `known` contents, when given), compared as text. */
export function expectOut(o: OutputInfo, shape: Dim[], known?: Dim[]): void {
  expect(str(o.shape)).toEqual(str(shape));
  if (known) expect(str(o.known)).toEqual(str(known));
}

export const i64 = (shape: number[], v: number[]): Tensor => Tensor.from('int64', shape, v);
export const f32 = (shape: number[], v: number[]): Tensor => Tensor.from('float32', shape, v);
/** 0, 1, 2, ... as float32 of `shape`. */
export const iota = (shape: number[]): Tensor =>
  f32(shape, Array.from({ length: shape.reduce((a, c) => a * c, 1) }, (_, i) => i));

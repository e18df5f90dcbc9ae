/**
 * Test harness for the math ops: run one registered op's `infer` or `evaluate` on hand-made
 * inputs, through the same registry lookup and contexts the inference driver uses, without
 * building a graph. Inputs of `infer` are graph inputs (no producer), so ops see "fed at run time".
 */
import type { DType } from '../../../runtime/dtype.js';
import { Tensor } from '../../../runtime/tensor.js';
import { SymDim, type Dim } from '../../../compiler/ir/dim.js';
import { Node, Value, type AttrValue } from '../../../compiler/ir/graph.js';
import { opContext } from '../../../compiler/ir/infer.js';
import { resolveOp, type InferContext, type OpDef } from '../../../compiler/ops/index.js';
import type { InputInfo, OutputInfo } from '../../../compiler/ops/registry.js';

export const sym = (name: string): SymDim => SymDim.symbol(name);

export interface OpCall {
  attrs?: Record<string, AttrValue>;
  opset?: number;
  /** The inference driver's hook for dims that must agree at run time. */
  equate?: (a: Dim, b: Dim) => Dim;
}

function makeNode(op: string, nIn: number, call: OpCall): { node: Node; def: OpDef } {
  const opset = call.opset ?? 17;
  const node = new Node(`${op.toLowerCase()}_0`, op, '', opset, new Map(Object.entries(call.attrs ?? {})));
  for (let i = 0; i < nIn; i++) node.inputs.push(new Value(`in${i}`));
  node.outputs.push(new Value('out0'), new Value('out1'), new Value('out2'));
  const def = resolveOp('', op, opset);
  if (typeof def === 'string') throw new Error(def);
  return { node, def };
}

/** Evaluate `op` on tensors (undefined: omitted optional input). */
export function evalOp(op: string, inputs: readonly (Tensor | undefined)[], call: OpCall = {}): Tensor[] {
  const { node, def } = makeNode(op, inputs.length, call);
  return def.evaluate(opContext(node), inputs);
}

/** Evaluate and return the first output. */
export const eval1 = (op: string, inputs: readonly (Tensor | undefined)[], call: OpCall = {}): Tensor =>
  evalOp(op, inputs, call)[0];

/** Run `op`'s shape inference on input descriptions. */
export function inferOp(op: string, inputs: readonly (InputInfo | undefined)[], call: OpCall = {}): OutputInfo[] {
  const { node, def } = makeNode(op, inputs.length, call);
  const base = { ...opContext(node), ...(call.equate ? { equate: call.equate } : {}) };
  const ctx: InferContext = {
    ...base,
    inputs,
    input(i) { return inputs[i] ?? base.fail(`input ${i} is required but missing`); },
    numbers(i) {
      const k = inputs[i]?.known;
      return k && k.every((d) => typeof d === 'number') ? (k as number[]) : undefined;
    },
  };
  return def.infer(ctx);
}

/** An input description. */
export const info = (dtype: DType, shape: Dim[], known?: Dim[]): InputInfo => ({ dtype, shape, ...(known ? { known } : {}) });

export const f32 = (shape: number[], values: number[]): Tensor => Tensor.from('float32', shape, values);
export const i64 = (shape: number[], values: number[]): Tensor => Tensor.from('int64', shape, values);

/** Element-wise closeness with an absolute + relative tolerance. */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-5): void {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length}, expected ${expected.length}`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i], e = expected[i];
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    if (!(Math.abs(a - e) <= tol + tol * Math.abs(e))) {
      throw new Error(`element ${i}: ${a}, expected ${e} (actual [${Array.from(actual).join(', ')}])`);
    }
  }
}

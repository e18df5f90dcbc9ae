/**
 * Shape inference: gives every value of a graph a dtype and a symbolic shape.
 *
 * Nodes are visited in topological order. Each op's `infer` computes its outputs from its inputs'
 * types and, for shape arithmetic, their known contents. When every input's contents are known
 * numbers and the outputs are small, the node is also evaluated (constant folding), so chains
 * like Shape → Gather → Unsqueeze → Concat → Reshape resolve to exact, possibly symbolic, shapes.
 * Failures name the node; nothing is left "unknown".
 */
import { Tensor } from '../../runtime/tensor.js';
import { resolveOp } from '../ops/index.js';
import type { InferContext, InputInfo, OpContext, OpDef, OutputInfo } from '../ops/registry.js';
import { Attrs } from './attrs.js';
import { bareSymbol, dimMax, dimProduct, isSym, shapeStr, substituteDim, type Dim } from './dim.js';
import { KNOWN_LIMIT, type Graph, type Node } from './graph.js';

export class InferenceError extends Error {
  constructor(readonly node: Node | undefined, message: string) { super(message); }
}

/** Context for one node: what ops see during inference and evaluation. */
export function opContext(node: Node): OpContext {
  return {
    node,
    attrs: new Attrs(node),
    opset: node.opset,
    fail(message: string): never { throw new InferenceError(node, `${node.label}: ${message}`); },
  };
}

/** The op definition for a node, or an error naming it. */
export function opFor(node: Node): OpDef {
  const def = resolveOp(node.domain, node.opType, node.opset);
  if (typeof def === 'string') throw new InferenceError(node, `${node.label}: ${def}`);
  return def;
}

export interface InferOptions {
  /** Evaluate nodes whose inputs are all known numbers (default true). */
  fold?: boolean;
  /**
   * Infer only nodes whose outputs have no type yet (nodes a pass just added). Sound because a
   * rewrite replaces values by values of the same type; the plan-vs-graph checks catch a rule
   * that breaks this.
   */
  incremental?: boolean;
}

export function inferShapes(g: Graph, opts: InferOptions = {}): void {
  const fold = opts.fold ?? true;
  for (const v of g.inputs) if (!v.type) throw new InferenceError(undefined, `graph input '${v.name}' has no type`);
  const equate = (a: Dim, b: Dim): Dim => {
    a = substituteDim(a, g.dimEquations);
    b = substituteDim(b, g.dimEquations);
    const sb = bareSymbol(b), sa = bareSymbol(a);
    const [name, expr] = sb ? [sb, a] : sa ? [sa, b] : [undefined, undefined];
    if (!name || expr === undefined) return dimMax(a, b);
    const one = new Map([[name, expr]]);
    for (const [k, v] of g.dimEquations) g.dimEquations.set(k, substituteDim(v, one));
    g.dimEquations.set(name, expr);
    return expr;
  };
  for (const node of g.nodes) {
    if (opts.incremental && node.outputs.every((o) => o.type)) continue;
    inferNode(node, fold, g.dimEquations, equate);
  }
  if (g.dimEquations.size) {
    const sub = (ds: Dim[]): Dim[] => ds.map((d) => substituteDim(d, g.dimEquations));
    for (const v of g.values.values()) {
      if (v.type) v.type = { dtype: v.type.dtype, shape: sub(v.type.shape) };
      if (v.known) v.known = sub(v.known);
    }
  }
  for (const v of g.outputs) {
    if (!v.type) throw new InferenceError(v.producer, `graph output '${v.name}' has no inferred type`);
  }
}

function inferNode(node: Node, fold: boolean, subst: ReadonlyMap<string, Dim>, equate: (a: Dim, b: Dim) => Dim): void {
  const def = opFor(node);
  const base: OpContext = { ...opContext(node), equate };
  const sub = (ds: readonly Dim[]): Dim[] => ds.map((d) => substituteDim(d, subst));
  const inputs: (InputInfo | undefined)[] = node.inputs.map((v) => {
    if (!v) return undefined;
    const t = v.type;
    if (!t) base.fail(`input '${v.name}' has no type (its producer was not inferred)`);
    return { dtype: t.dtype, shape: sub(t.shape), known: v.known && sub(v.known) };
  });
  const ctx: InferContext = {
    ...base,
    inputs,
    input(i: number): InputInfo {
      const x = inputs[i];
      if (!x) base.fail(`input ${i} is required but missing`);
      return x;
    },
    numbers(i: number): number[] | undefined {
      const k = inputs[i]?.known;
      return k && k.every((d) => typeof d === 'number') ? (k as number[]) : undefined;
    },
  };
  let outs: OutputInfo[];
  try {
    outs = def.infer(ctx);
  } catch (e) {
    if (e instanceof InferenceError) throw e;
    throw new InferenceError(node, `${node.label}: shape inference failed: ${(e as Error).message}`);
  }
  if (outs.length < node.outputs.length) {
    base.fail(`declares ${node.outputs.length} outputs, the op produces at most ${outs.length}`);
  }
  node.outputs.forEach((v, i) => {
    v.type = { dtype: outs[i].dtype, shape: outs[i].shape };
    v.known = outs[i].known;
  });

  // Constant folding of small all-known subgraphs.
  const allKnown = node.inputs.every((v) => !v || (v.known && v.known.every((d) => typeof d === 'number')));
  const small = node.outputs.every((v) => {
    const n = dimProduct(v.type!.shape);
    return typeof n === 'number' && n <= KNOWN_LIMIT;
  });
  if (fold && allKnown && small && node.inputs.some((v) => v)) {
    const tensors = node.inputs.map((v) => (v ? Tensor.from(v.type!.dtype, v.type!.shape as number[], v.known as number[]) : undefined));
    let res: Tensor[];
    try {
      res = def.evaluate(base, tensors);
    } catch (e) {
      if (e instanceof InferenceError) throw e;
      throw new InferenceError(node, `${node.label}: evaluation failed: ${(e as Error).message}`);
    }
    node.outputs.forEach((v, i) => {
      const t = res[i];
      if (!t) return;
      if (t.shape.length !== v.type!.shape.length || t.shape.some((d, j) => d !== v.type!.shape[j])) {
        base.fail(`inferred ${v.type!.dtype}${shapeStr(v.type!.shape)} for '${v.name}' but folding produced [${t.shape.join(', ')}] (lfc bug)`);
      }
      if (t.dtype !== 'string') v.known = t.toArray();
    });
  }
}

/** How many values have a shape with symbols (for reports). */
export function countSymbolic(g: Graph): { values: number; symbolic: number } {
  let values = 0, symbolic = 0;
  for (const v of g.values.values()) {
    if (!v.type) continue;
    values++;
    if (v.type.shape.some(isSym)) symbolic++;
  }
  return { values, symbolic };
}

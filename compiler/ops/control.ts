/**
 * Control flow: If (ai.onnx If-1/11/13/16/19).
 *
 * An If node holds two subgraphs (then_branch, else_branch) without inputs; its ONNX input is the
 * condition (a one-element bool tensor), and the importer appends the values the branches read
 * from enclosing graphs as extra inputs (ir/subgraph.ts). Inference types the outputs from the
 * branch outputs: from the taken branch when the condition is known at compile time, else from
 * both, which must agree on dtype and rank (a dim either branch proves equal to the other's is
 * kept, others become fresh symbols). Evaluation
 * runs the taken branch in the reference interpreter with the captured values as its outer scope.
 *
 * lfc's compiler does not keep If nodes: passes/inline-if.ts inlines the branch a decoder runs
 * (Optimum's merged decoders switch on the `use_cache_branch` input) before anything else.
 */
import type { Tensor } from '../../runtime/tensor.js';
import { dimEq, substituteDim, SymDim, type Dim } from '../ir/dim.js';
import { Graph, type Node, type Value } from '../ir/graph.js';
import { inferShapes } from '../ir/infer.js';
import { run } from '../ir/interpret.js';
import type { OpContext, OpDef, OutputInfo } from './registry.js';

/** A graph attribute of an If node, or a clear failure. */
export function branch(ctx: Pick<OpContext, 'node' | 'fail'>, name: 'then_branch' | 'else_branch'): Graph {
  const g = ctx.node.attrs.get(name);
  if (g === undefined) ctx.fail(`attribute '${name}' is required`);
  if (!(g instanceof Graph)) ctx.fail(`attribute '${name}' must be a graph`);
  return g;
}

/** The condition of an If when known at compile time (initializer or inferred contents). */
export function knownCondition(node: Node): boolean | undefined {
  const c = node.inputs[0];
  if (!c) return undefined;
  if (c.initializer && c.initializer.shape.reduce((a, b) => a * b, 1) === 1) return c.initializer.load().data[0] !== 0;
  const k = c.known;
  if (k && k.length === 1 && typeof k[0] === 'number') return k[0] !== 0;
  return undefined;
}

function checkCondition(ctx: OpContext, dtype: string, shape: readonly Dim[]): void {
  if (dtype !== 'bool') ctx.fail(`condition must be bool, got ${dtype}`);
  if (shape.some((d) => typeof d === 'number' && d !== 1)) ctx.fail(`condition must have a single element, got shape [${shape.join(', ')}]`);
}

function inferBranch(ctx: OpContext, name: 'then_branch' | 'else_branch'): Graph {
  const g = branch(ctx, name);
  if (g.inputs.length) ctx.fail(`${name} must have no inputs, has ${g.inputs.length}`);
  try {
    inferShapes(g);
  } catch (e) {
    ctx.fail(`${name}: ${(e as Error).message}`);
  }
  return g;
}

/**
 * One dim valid in both branches, if there is one: equal dims, or a dim of one branch that the
 * other branch's own dim equations prove equal to its dim (the no-past branch of a merged decoder
 * proves sequence_length = total_sequence_length, the cache branch total = past + sequence).
 */
function mergeDim(a: Dim, b: Dim, eqA: ReadonlyMap<string, Dim>, eqB: ReadonlyMap<string, Dim>): Dim | undefined {
  if (dimEq(a, b)) return a;
  if (dimEq(substituteDim(a, eqB), substituteDim(b, eqB))) return a;
  if (dimEq(substituteDim(b, eqA), substituteDim(a, eqA))) return b;
  return undefined;
}

const typeOf = (ctx: OpContext, name: string, v: Value): NonNullable<Value['type']> =>
  v.type ?? ctx.fail(`${name} output '${v.name}' has no type`);

const ifOp: OpDef = {
  name: 'If',
  since: [1, 11, 13, 16, 19],
  infer(ctx) {
    const c = ctx.input(0);
    checkCondition(ctx, c.dtype, c.shape);
    const known = knownCondition(ctx.node);
    if (known !== undefined) {
      const name = known ? 'then_branch' : 'else_branch';
      const g = inferBranch(ctx, name);
      return g.outputs.map((v) => {
        const t = typeOf(ctx, name, v);
        return { dtype: t.dtype, shape: [...t.shape], known: v.known && [...v.known] };
      });
    }
    const a = inferBranch(ctx, 'then_branch'), b = inferBranch(ctx, 'else_branch');
    if (a.outputs.length !== b.outputs.length) {
      ctx.fail(`then_branch has ${a.outputs.length} outputs, else_branch ${b.outputs.length}`);
    }
    return a.outputs.map((va, i): OutputInfo => {
      const ta = typeOf(ctx, 'then_branch', va), tb = typeOf(ctx, 'else_branch', b.outputs[i]);
      if (ta.dtype !== tb.dtype) ctx.fail(`output ${i}: then_branch gives ${ta.dtype}, else_branch ${tb.dtype}`);
      if (ta.shape.length !== tb.shape.length) {
        ctx.fail(`output ${i}: then_branch gives rank ${ta.shape.length}, else_branch rank ${tb.shape.length}`);
      }
      const shape = ta.shape.map((d, j) => mergeDim(d, tb.shape[j], a.dimEquations, b.dimEquations) ?? SymDim.symbol(`${ctx.node.name}_out${i}_dim${j}`));
      const ka = va.known, kb = b.outputs[i].known;
      const same = ka && kb && ka.length === kb.length && ka.every((d, j) => dimEq(d, kb[j]));
      return { dtype: ta.dtype, shape, known: same ? [...ka] : undefined };
    });
  },
  evaluate(ctx, inputs) {
    const c = inputs[0] ?? ctx.fail('condition is missing');
    checkCondition(ctx, c.dtype, c.shape);
    if (c.size !== 1) ctx.fail(`condition must have a single element, got shape [${c.shape.join(', ')}]`);
    const g = branch(ctx, c.data[0] ? 'then_branch' : 'else_branch');
    const outer = new Map<Value, Tensor>();
    ctx.node.inputs.forEach((v, i) => { const t = inputs[i]; if (i > 0 && v && t) outer.set(v, t); });
    const out = run(g, new Map(), { outer });
    return g.outputs.map((v) => out.get(v.name)!);
  },
};

export const controlOps: OpDef[] = [ifOp];

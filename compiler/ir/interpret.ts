/**
 * The reference interpreter: runs a graph on the CPU with each op's `evaluate`.
 *
 * It is lfc's executable semantics of an ONNX graph (and later of the lowered graph), so it is
 * strict: feeds must match the declared dtypes and shapes, each symbol binds to one value, and
 * every value an op produces must have the shape inference promised. A mismatch is reported with
 * the node and value, because it means inference (and so everything compiled from it) is wrong.
 * Intermediate tensors are released after their last use.
 */
import type { Tensor } from '../../runtime/tensor.js';
import { dimStr, isSym, type Dim } from './dim.js';
import type { Graph, Node, Value } from './graph.js';
import { InferenceError, opContext, opFor } from './infer.js';

export interface RunOptions {
  /** Called after each node, e.g. for progress or tracing. */
  onNode?: (node: Node, index: number, total: number) => void;
  /** Keep every intermediate value in the result (default: only graph outputs). */
  keepAll?: boolean;
  /** Values of enclosing graphs a subgraph reads (If branches: the If node's captured inputs). */
  outer?: ReadonlyMap<Value, Tensor>;
}

export class RunError extends Error {}

/** Bind symbols of a declared shape against an actual shape, checking fixed dims. */
function bindShape(what: string, declared: readonly Dim[], actual: readonly number[], env: Map<string, number>): void {
  if (declared.length !== actual.length) {
    throw new RunError(`${what}: expected rank ${declared.length} ([${declared.map(dimStr).join(', ')}]), got [${actual.join(', ')}]`);
  }
  declared.forEach((d, i) => {
    const a = actual[i];
    if (!isSym(d)) {
      if (d !== a) throw new RunError(`${what}: dim ${i} must be ${d}, got ${a} (shape [${actual.join(', ')}])`);
      return;
    }
    const e = evalOrBind(d, a, env);
    if (e !== a) throw new RunError(`${what}: dim ${i} is ${dimStr(d)} = ${e}, got ${a} (shape [${actual.join(', ')}])`);
  });
}

/** Evaluate a symbolic dim; a single unbound symbol (or atom) with coefficient 1 gets bound. */
function evalOrBind(d: Dim, actual: number, env: Map<string, number>): number {
  if (typeof d === 'number') return d;
  let v = 0;
  const unbound: { name: string; coef: number }[] = [];
  for (const [m, c] of d.terms) {
    if (m === '') { v += c; continue; }
    const syms = m.split('\u0001');
    if (syms.every((s) => env.has(s))) v += c * syms.reduce((p, s) => p * env.get(s)!, 1);
    else if (syms.length === 1) unbound.push({ name: syms[0], coef: c });
    else return actual; // product of unbound symbols: cannot check, accept
  }
  if (unbound.length === 0) return v;
  if (unbound.length === 1 && (actual - v) % unbound[0].coef === 0 && (actual - v) / unbound[0].coef >= 0) {
    env.set(unbound[0].name, (actual - v) / unbound[0].coef);
    return actual;
  }
  return actual;
}

export function run(g: Graph, feeds: ReadonlyMap<string, Tensor>, opts: RunOptions = {}): Map<string, Tensor> {
  const env = new Map<string, number>();
  const vals = new Map<Value, Tensor>();
  for (const name of feeds.keys()) {
    if (!g.inputs.some((v) => v.name === name)) {
      throw new RunError(`feed '${name}' is not a graph input (inputs: ${g.inputs.map((v) => v.name).join(', ')})`);
    }
  }
  for (const v of g.inputs) {
    const t = feeds.get(v.name);
    if (!t) throw new RunError(`graph input '${v.name}' is not fed`);
    if (t.dtype !== v.type!.dtype) throw new RunError(`graph input '${v.name}': expected ${v.type!.dtype}, got ${t.dtype}`);
    bindShape(`graph input '${v.name}'`, v.type!.shape, t.shape, env);
    vals.set(v, t);
  }
  const remaining = new Map<Value, number>();
  for (const n of g.nodes) for (const v of n.inputs) if (v) remaining.set(v, (remaining.get(v) ?? 0) + 1);
  const outputs = new Set(g.outputs);

  const get = (v: Value): Tensor => {
    const t = vals.get(v);
    if (t) return t;
    if (v.initializer) return v.initializer.load();
    const o = opts.outer?.get(v);
    if (o) return o;
    throw new RunError(`value '${v.name}' has not been computed`);
  };

  g.nodes.forEach((node, idx) => {
    const ctx = opContext(node);
    const ins = node.inputs.map((v) => (v ? get(v) : undefined));
    let res: Tensor[];
    try {
      res = opFor(node).evaluate(ctx, ins);
    } catch (e) {
      if (e instanceof InferenceError) throw new RunError(e.message);
      throw new RunError(`${node.label}: ${(e as Error).message}`);
    }
    node.outputs.forEach((v, i) => {
      const t = res[i];
      if (!t) throw new RunError(`${node.label}: produced no value for output '${v.name}'`);
      if (v.type) {
        if (t.dtype !== v.type.dtype) {
          throw new RunError(`${node.label}: output '${v.name}' is ${t.dtype}, inference said ${v.type.dtype} (lfc bug)`);
        }
        bindShape(`${node.label}: output '${v.name}' (lfc bug: shape inference disagrees)`, v.type.shape, t.shape, env);
      }
      vals.set(v, t);
    });
    if (!opts.keepAll) {
      for (const v of node.inputs) {
        if (!v) continue;
        const r = remaining.get(v)! - 1;
        remaining.set(v, r);
        if (r === 0 && !outputs.has(v) && v.producer) vals.delete(v);
      }
    }
    opts.onNode?.(node, idx, g.nodes.length);
  });

  const out = new Map<string, Tensor>();
  if (opts.keepAll) for (const [v, t] of vals) out.set(v.name, t);
  for (const v of g.outputs) out.set(v.name, get(v));
  return out;
}

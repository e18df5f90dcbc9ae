/**
 * Helpers shared by the fusion passes (fuse-norm, fuse-linear, fuse-mlp): reading constants and
 * reduction axes, the "no intermediate escapes" check, near-miss reporting that names the node, and
 * `replacePattern`, which swaps a matched subgraph for one lfc node and removes the matched nodes at
 * once (so later matches in the same round see accurate consumer lists).
 */
import { ONNX_DTYPE_CODE, type DType } from '../../runtime/dtype.js';
import type { Tensor } from '../../runtime/tensor.js';
import { addConstant, addNode, removeNode, replaceAllUses } from '../ir/edit.js';
import type { AttrValue, Graph, Node, Value } from '../ir/graph.js';
import { constValue, scalarOf } from './canonicalize.js';
import type { Pass, PassContext, Rule } from './driver.js';

export { constValue, scalarOf };

/** The node producing `v` when it is the ONNX op `op` (one of `op` when a list). */
export function producedBy(v: Value | undefined, op: string | readonly string[]): Node | undefined {
  const p = v?.producer;
  if (!p || p.domain !== '') return undefined;
  return (typeof op === 'string' ? p.opType === op : op.includes(p.opType)) ? p : undefined;
}

/** The only consumer of `v` (undefined when it has several, none, or is a graph output). */
export function soleConsumer(g: Graph, v: Value | undefined): Node | undefined {
  if (!v || v.consumers.length !== 1 || g.outputs.includes(v)) return undefined;
  return v.consumers[0];
}

export const isOnnx = (n: Node | undefined, op: string): n is Node => !!n && n.domain === '' && n.opType === op;

/** Whether `v` is a compile-time constant (an initializer or a fully known small tensor). */
export const isConstant = (v: Value | undefined): boolean => !!v && constValue(v) !== undefined;

/** For a binary node with `v` as one operand, the other operand. */
export function otherOperand(n: Node, v: Value): Value | undefined {
  if (n.inputs[0] === v) return n.inputs[1];
  if (n.inputs[1] === v) return n.inputs[0];
  return undefined;
}

/** The rank of a value's inferred shape (-1 when unknown). */
export const rankOf = (v: Value | undefined): number => v?.type?.shape.length ?? -1;

/**
 * Checks a ReduceMean reduces exactly the last axis with keepdims; returns why not, or undefined.
 * Axes come from the attribute (before opset 18) or the constant second input (opset 18).
 */
export function lastAxisReduceProblem(r: Node, rank: number): string | undefined {
  let axes: number[] | undefined;
  if (r.inputs[1]) {
    const t = constValue(r.inputs[1]);
    if (!t) return `${r.label} takes its axes from a run-time tensor`;
    axes = t.toArray();
  } else {
    axes = r.attrs.get('axes') as number[] | undefined;
  }
  if (!axes || axes.length === 0) return `${r.label} reduces all axes, not only the last axis`;
  const norm = axes.map((a) => (a < 0 ? a + rank : a));
  if (norm.length !== 1 || norm[0] !== rank - 1) {
    return `${r.label} reduces axis ${axes.join(', ')}, not the last axis (${rank - 1} of rank ${rank})`;
  }
  const keep = r.attrs.get('keepdims');
  if (keep !== undefined && keep === 0) return `${r.label} has keepdims=0, so the result does not broadcast back over the row`;
  return undefined;
}

/**
 * Why a matched subgraph cannot be replaced: an intermediate value (an output of any node but
 * `root`) is used outside the pattern or is a graph output. Undefined when nothing escapes.
 */
export function escapeProblem(g: Graph, nodes: ReadonlySet<Node>, root: Node): string | undefined {
  for (const n of nodes) {
    if (n === root) continue;
    for (const o of n.outputs) {
      if (g.outputs.includes(o)) return `intermediate '${o.name}' of ${n.label} is a graph output`;
      const out = o.consumers.find((c) => !nodes.has(c));
      if (out) return `intermediate '${o.name}' of ${n.label} is also used by ${out.label}`;
    }
  }
  return undefined;
}

const reported = new WeakMap<PassContext, Set<string>>();
/** Record a near miss once per (pass, rule, node), although rewrite passes run several rounds. */
export function missOnce(ctx: PassContext, pass: string, rule: string, node: Node, why: string): false {
  let seen = reported.get(ctx);
  if (!seen) reported.set(ctx, (seen = new Set()));
  const key = `${pass}\u0001${rule}\u0001${node.name}\u0001${why}`;
  if (!seen.has(key)) { seen.add(key); ctx.missed(pass, rule, node, why); }
  return false;
}

/** Nodes the fusion rules removed (so a pass's sweep skips them without searching g.nodes). */
const removed = new WeakSet<Node>();

/** removeNode, remembered for `fusePass`. */
export function dropNode(g: Graph, n: Node): void {
  removeNode(g, n);
  removed.add(n);
}

/**
 * Like the driver's rewritePass, for rules that keep the graph tidy themselves: they remove what
 * they replace (`replacePattern`, `dropNode`) and type the values they create, so rounds need no
 * cleanup or shape inference in between; the pipeline does both once after the pass.
 */
export function fusePass(name: string, description: string, rules: readonly Rule[], maxRounds = 20): Pass {
  return {
    name, description,
    run(g, ctx) {
      let total = 0;
      for (let round = 0; round < maxRounds; round++) {
        let changed = 0;
        for (const node of [...g.nodes]) {
          if (removed.has(node)) continue;
          for (const r of rules) {
            if (!r.ops.includes(node.opType) || node.domain !== (r.domain ?? '')) continue;
            if (r.apply(g, node, ctx)) { changed++; break; }
          }
        }
        total += changed;
        if (changed === 0) break;
      }
      return total;
    },
  };
}

export function ensureLfc(g: Graph): void {
  if (!g.opsets.has('lfc')) g.opsets.set('lfc', 1);
}

export interface Replacement {
  pass: string;
  rule: string;
  /** The node the match is rooted at (named in the report). */
  root: Node;
  /** Every node of the pattern; all are removed. */
  nodes: ReadonlySet<Node>;
  op: string;
  inputs: (Value | undefined)[];
  attrs: [string, AttrValue][];
  /** For each output of the new node, the value it replaces (undefined: a new value nobody uses yet). */
  replaces: (Value | undefined)[];
  /** Types for outputs that replace nothing. */
  types?: (Value['type'] | undefined)[];
  detail: string;
  /** Cast the (single) output to this dtype, replacing `replaces[0]` with the Cast. */
  castTo?: DType;
}

/**
 * Add an lfc node in place of a matched pattern: new node, uses rewired, pattern nodes removed,
 * output types set (so later rules this round can read them), a fusion event recorded.
 */
export function replacePattern(g: Graph, ctx: PassContext, r: Replacement): Node {
  ensureLfc(g);
  const name = r.root.name.replace(/\/[^/]*$/, '') || r.root.name;
  const node = addNode(g, r.op, 'lfc', r.inputs, r.attrs, `${name}/${r.op}`, { outputs: r.replaces.length, before: r.root });
  node.outputs.forEach((o, i) => {
    const old = r.replaces[i];
    const t = old?.type ?? r.types?.[i];
    if (t) o.type = { dtype: t.dtype, shape: [...t.shape] };
  });
  let cast: Node | undefined;
  if (r.castTo && r.replaces[0]?.type) {
    node.outputs[0].type = { dtype: r.inputs[0]!.type!.dtype, shape: [...r.replaces[0].type.shape] };
    cast = addNode(g, 'Cast', '', [node.outputs[0]], [['to', ONNX_DTYPE_CODE[r.castTo]]], `${node.name}/cast`, { before: r.root });
    cast.outputs[0].type = { dtype: r.castTo, shape: [...r.replaces[0].type.shape] };
    replaceAllUses(g, r.replaces[0], cast.outputs[0]);
  } else if (r.replaces[0]) {
    replaceAllUses(g, r.replaces[0], node.outputs[0]);
  }
  // Remove pattern nodes as they become unused (the root first; others follow), then rewire the
  // remaining replaced values (e.g. AddNorm's sum, once the norm no longer reads it).
  const pending = new Set(r.nodes);
  const sweep = (): void => {
    for (let again = true; again;) {
      again = false;
      for (const n of pending) {
        if (n.outputs.every((o) => o.consumers.length === 0 && !g.outputs.includes(o))) {
          dropNode(g, n);
          pending.delete(n);
          again = true;
        }
      }
    }
  };
  sweep();
  r.replaces.forEach((old, i) => { if (i > 0 && old) replaceAllUses(g, old, node.outputs[i]); });
  sweep();
  // removeNode forgets values by name; a replaced graph output gave its name to the new value.
  for (const o of [...node.outputs, ...(cast?.outputs ?? [])]) g.values.set(o.name, o);
  if (pending.size) throw new Error(`lfc bug: ${r.pass}/${r.rule} left ${[...pending].map((n) => n.label).join(', ')} in use`);
  ctx.fused(r.pass, r.rule, r.root, r.detail);
  return node;
}

/** A new initializer (for weights built at compile time: transposed, concatenated, ones). */
export const constant = (g: Graph, t: Tensor, name: string): Value => addConstant(g, t, name);

/** Relative closeness of a constant to its reference value. */
export const near = (v: number, ref: number, rel: number): boolean => Math.abs(v - ref) <= rel * Math.abs(ref);

/** Relative tolerance for constants stored in `dtype` (its rounding error, at least 1e-6). */
export function constTolerance(dtype: DType | undefined): number {
  switch (dtype) {
    case 'float16': return 2 ** -10;
    case 'bfloat16': return 2 ** -7;
    default: return 1e-6;
  }
}

/** A short name of a value for reports. */
export const vname = (v: Value | undefined): string => (v ? `'${v.name}'` : '(none)');

/**
 * Graph editing for passes: replace uses, remove nodes, add nodes and constants, keep graph
 * outputs' names stable (users and the plan refer to them by name).
 */
import type { Tensor } from '../../runtime/tensor.js';
import { Node, type AttrValue, type Graph, type Value } from './graph.js';

/** Make every consumer of `from` (and the graph output slot, if any) use `to` instead. */
export function replaceAllUses(g: Graph, from: Value, to: Value): void {
  if (from === to) return;
  for (const n of from.consumers) {
    n.inputs.forEach((v, i) => { if (v === from) n.inputs[i] = to; });
    if (!to.consumers.includes(n)) to.consumers.push(n);
  }
  from.consumers.length = 0;
  const oi = g.outputs.indexOf(from);
  if (oi >= 0) {
    if (g.outputs.includes(to) || g.inputs.includes(to) || to.initializer) {
      // `to` already has a public identity: keep the output's name with an Identity.
      const id = addNode(g, 'Identity', '', [to], [], `${from.name}/keep_name`);
      g.outputs[oi] = renameOutput(g, id.outputs[0], from);
    } else {
      g.outputs[oi] = renameOutput(g, to, from);
    }
  }
}

/** Give `v` the name (and map slot) of `named`, which is being retired. */
function renameOutput(g: Graph, v: Value, named: Value): Value {
  g.values.delete(v.name);
  g.values.delete(named.name);
  v.name = named.name;
  g.values.set(v.name, v);
  return v;
}

/** Remove a node whose outputs have no consumers (and are not graph outputs). */
export function removeNode(g: Graph, n: Node): void {
  for (const o of n.outputs) {
    if (o.consumers.length || g.outputs.includes(o)) throw new Error(`cannot remove ${n.label}: output '${o.name}' is still used`);
    g.values.delete(o.name);
  }
  for (const v of n.inputs) {
    if (!v) continue;
    const i = v.consumers.indexOf(n);
    if (i >= 0) v.consumers.splice(i, 1);
  }
  const k = g.nodes.indexOf(n);
  if (k >= 0) g.nodes.splice(k, 1);
  n.removed = true;
}

let fresh = 0;
/** A value name not used in the graph. */
export function freshName(g: Graph, base: string): string {
  let name = base;
  while (g.values.has(name)) name = `${base}_${++fresh}`;
  return name;
}

/**
 * Add a node before `before` (default: at the end) with fresh output values. Types are left for
 * the caller or a re-run of shape inference.
 */
export function addNode(
  g: Graph, opType: string, domain: string, inputs: (Value | undefined)[], attrs: [string, AttrValue][] | Map<string, AttrValue>,
  name: string, opts: { outputs?: number; before?: Node; opset?: number } = {},
): Node {
  const opset = opts.opset ?? g.opsets.get(domain) ?? 1;
  const node = new Node(freshName(g, name), opType, domain, opset, new Map(attrs));
  const outs = Array.from({ length: opts.outputs ?? 1 }, (_, i) => g.value(freshName(g, `${node.name}:${i}`)));
  g.addNode(node, inputs, outs);
  if (opts.before) {
    g.nodes.pop();
    g.nodes.splice(g.nodes.indexOf(opts.before), 0, node);
  }
  return node;
}

/** A new initializer holding `t`. */
export function addConstant(g: Graph, t: Tensor, name: string): Value {
  const v = g.value(freshName(g, name));
  v.initializer = { dtype: t.dtype, shape: [...t.shape], byteLength: t.data.byteLength, load: () => t };
  v.type = { dtype: t.dtype, shape: [...t.shape] };
  if (t.size <= 4096) v.known = t.toArray();
  return v;
}

/** Remove values no node, input or output refers to (e.g. dead initializers). */
export function pruneValues(g: Graph): number {
  const used = new Set<Value>([...g.inputs, ...g.outputs]);
  for (const n of g.nodes) { for (const v of n.inputs) if (v) used.add(v); for (const v of n.outputs) used.add(v); }
  let removed = 0;
  for (const [k, v] of g.values) if (!used.has(v)) { g.values.delete(k); removed++; }
  return removed;
}

/** Order nodes topologically (files are supposed to be, some are not); report cycles by node. */
export function topoSort(g: Graph): void {
  // Producers outside this graph (values a subgraph captures from its parent) are ready already.
  const own = new Set(g.nodes);
  const indeg = new Map<Node, number>();
  for (const n of g.nodes) indeg.set(n, new Set(n.inputs.filter((v) => v?.producer && own.has(v.producer)).map((v) => v!.producer)).size);
  const ready = g.nodes.filter((n) => indeg.get(n) === 0);
  const order: Node[] = [];
  for (let head = 0; head < ready.length; head++) {
    const n = ready[head];
    order.push(n);
    for (const s of new Set(n.outputs.flatMap((o) => o.consumers))) {
      if (!own.has(s)) continue;
      const d = indeg.get(s)! - 1;
      indeg.set(s, d);
      if (d === 0) ready.push(s);
    }
  }
  if (order.length !== g.nodes.length) {
    const done = new Set(order);
    const stuck = g.nodes.filter((n) => !done.has(n)).slice(0, 3).map((n) => n.label);
    throw new Error(`graph has a cycle through ${stuck.join(', ')}`);
  }
  g.nodes.splice(0, g.nodes.length, ...order);
}

/** Nodes and graph inputs a value depends on, in graph order. */
export function ancestors(g: Graph, v: Value | readonly Value[]): { nodes: Node[]; inputs: Value[] } {
  const seen = new Set<Node>();
  const inputs = new Set<Value>();
  const stack: Value[] = Array.isArray(v) ? [...v] : [v as Value];
  while (stack.length) {
    const x = stack.pop()!;
    if (g.inputs.includes(x)) inputs.add(x);
    const p = x.producer;
    if (!p || seen.has(p)) continue;
    seen.add(p);
    for (const i of p.inputs) if (i) stack.push(i);
  }
  return { nodes: g.nodes.filter((n) => seen.has(n)), inputs: g.inputs.filter((i) => inputs.has(i)) };
}

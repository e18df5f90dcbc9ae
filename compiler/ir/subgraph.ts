/**
 * Subgraphs (the GRAPH attributes of control-flow ops such as If).
 *
 * A subgraph is an ir Graph of its own (its own values, nodes, inputs and outputs), but its nodes
 * may read values of the enclosing graphs by name (ONNX outer-scope references). The importer
 * resolves such a name to the outer graph's Value object itself, so a subgraph node's input may be
 * a Value the subgraph does not own: its *captured* values. The node that holds the subgraph lists
 * every value its subgraphs capture as extra inputs after its ONNX inputs (as onnxruntime's
 * implicit inputs), so topological order, liveness in the interpreter and dead-code elimination
 * in the enclosing graph all see the dependency. Outer values list only nodes of their own graph
 * as consumers.
 */
import { Graph, type Node, type Value } from './graph.js';
import { topoSort } from './edit.js';

/** Whether `v` belongs to `g` (is one of its own values). */
export const ownedBy = (g: Graph, v: Value): boolean => g.values.get(v.name) === v;

/** Values a subgraph reads from enclosing scopes (node inputs and outputs it does not own), in first-use order. */
export function capturedValues(sub: Graph): Value[] {
  const seen = new Set<Value>();
  for (const n of sub.nodes) for (const v of n.inputs) if (v && !ownedBy(sub, v)) seen.add(v);
  for (const v of sub.outputs) if (!ownedBy(sub, v)) seen.add(v);
  return [...seen];
}

/** The graph-valued attributes of a node. */
export function subgraphsOf(node: Node): [string, Graph][] {
  const out: [string, Graph][] = [];
  for (const [k, a] of node.attrs) if (isGraph(a)) out.push([k, a]);
  return out;
}

export const isGraph = (a: unknown): a is Graph => a instanceof Graph;

/** Topological order for a subgraph: edit.topoSort counts only producers inside the graph. */
export const topoSortSubgraph = topoSort;

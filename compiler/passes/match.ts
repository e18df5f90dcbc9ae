/**
 * Small helpers for writing fusion rules: walk producers by op type, read constant attributes
 * and inputs, and check that a pattern's intermediates do not escape it.
 */
import type { Graph, Node, Value } from '../ir/graph.js';
import { constValue } from './canonicalize.js';

/** The producer of `v` when it is an ai.onnx node of one of `ops`. */
export function producer(v: Value | undefined, ...ops: string[]): Node | undefined {
  const p = v?.producer;
  return p && p.domain === '' && ops.includes(p.opType) ? p : undefined;
}

/** Constant integer list of input i (axes, starts, perm given as inputs), else undefined. */
export function constInts(v: Value | undefined): number[] | undefined {
  const t = constValue(v);
  return t ? t.toArray() : undefined;
}

/**
 * True when every value in `inner` is used only by nodes in `pattern` and is not a graph
 * output: replacing the pattern's root then removes all of it.
 */
export function contained(g: Graph, inner: readonly Value[], pattern: readonly Node[]): Value | undefined {
  const nodes = new Set(pattern);
  for (const v of inner) {
    if (g.outputs.includes(v) || v.consumers.some((c) => !nodes.has(c))) return v;
  }
  return undefined;
}

/** Axis normalised against a rank (returns undefined when out of range). */
export function axisOf(a: number, rank: number): number | undefined {
  const x = a < 0 ? a + rank : a;
  return x >= 0 && x < rank ? x : undefined;
}

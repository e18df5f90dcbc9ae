/**
 * Small graphs for fusion-rule tests: a builder over the IR (inputs, constants, nodes by op type),
 * running FUSE on it, and checking the fused graph against the original with the interpreter.
 */
import { expect } from 'vitest';
import type { DType } from '../../../runtime/dtype.js';
import { Tensor } from '../../../runtime/tensor.js';
import '../../../compiler/ops/index.js';
import { SymDim, type Dim } from '../../../compiler/ir/dim.js';
import { addConstant, addNode } from '../../../compiler/ir/edit.js';
import { Graph, type AttrValue, type Value } from '../../../compiler/ir/graph.js';
import { run } from '../../../compiler/ir/interpret.js';
import { runPipeline, type FusionEvent, type Pass } from '../../../compiler/passes/driver.js';
import { FUSE } from '../../../compiler/passes/pipeline.js';
import { mulberry32 } from '../../helpers/decoder.js';

export const sym = (s: string): SymDim => SymDim.symbol(s);

export class Builder {
  readonly g = new Graph();
  private k = 0;
  constructor(opset = 17) { this.g.opsets.set('', opset); }

  input(name: string, shape: Dim[], dtype: DType = 'float32'): Value {
    const v = this.g.value(name);
    v.type = { dtype, shape };
    this.g.inputs.push(v);
    return v;
  }

  /** A constant: a number is a scalar, an array a 1-D tensor unless `shape` is given. */
  c(values: number | number[], dtype: DType = 'float32', shape?: number[]): Value {
    const vals = typeof values === 'number' ? [values] : values;
    const sh = shape ?? (typeof values === 'number' ? [] : [vals.length]);
    return addConstant(this.g, Tensor.from(dtype, sh, vals), `c${this.k++}`);
  }

  /** Seeded random constant of `shape`. */
  rand(shape: number[], seed: number, dtype: DType = 'float32'): Value {
    const r = mulberry32(seed);
    const n = shape.reduce((a, b) => a * b, 1);
    return addConstant(this.g, Tensor.from(dtype, shape, Array.from({ length: n }, () => r() * 2 - 1)), `w${this.k++}`);
  }

  op(opType: string, inputs: (Value | undefined)[], attrs: Record<string, AttrValue> = {}, name?: string): Value {
    return this.ops(opType, inputs, attrs, 1, name)[0];
  }

  ops(opType: string, inputs: (Value | undefined)[], attrs: Record<string, AttrValue>, outputs: number, name?: string): Value[] {
    const n = addNode(this.g, opType, '', inputs, Object.entries(attrs), name ?? `/t/${opType}_${this.k++}`, { outputs });
    return n.outputs;
  }

  /** A node of another domain (e.g. com.microsoft, imported at version 1). */
  dop(domain: string, opType: string, inputs: (Value | undefined)[], attrs: Record<string, AttrValue> = {}, outputs = 1): Value[] {
    if (!this.g.opsets.has(domain)) this.g.opsets.set(domain, 1);
    return addNode(this.g, opType, domain, inputs, Object.entries(attrs), `/t/${opType}_${this.k++}`, { outputs }).outputs;
  }

  output(...vs: Value[]): Graph {
    this.g.outputs.push(...vs);
    return this.g;
  }
}

/** Run passes (default: FUSE) and return the events. */
export function fuse(g: Graph, passes: readonly Pass[] = FUSE): FusionEvent[] {
  return runPipeline(g, passes);
}

/** Count nodes by `domain.op` ('' domain: bare op). */
export function countOps(g: Graph, op: string): number {
  return g.nodes.filter((n) => (n.domain ? `${n.domain}.${n.opType}` : n.opType) === op).length;
}

export const missed = (ev: FusionEvent[]): FusionEvent[] => ev.filter((e) => e.outcome === 'missed');

/** Random feeds for every graph input (symbols bound by `dims`). */
export function feedsFor(g: Graph, dims: Record<string, number> = {}, seed = 1): Map<string, Tensor> {
  const r = mulberry32(seed);
  const feeds = new Map<string, Tensor>();
  for (const v of g.inputs) {
    const shape = v.type!.shape.map((d) => (typeof d === 'number' ? d : dims[d.toString()] ?? 3));
    const n = shape.reduce((a, b) => a * b, 1);
    feeds.set(v.name, Tensor.from(v.type!.dtype, shape, Array.from({ length: n }, () => (r() * 2 - 1) * 2)));
  }
  return feeds;
}

/**
 * Build the graph twice, fuse one, and check both compute the same outputs (max abs difference
 * relative to the largest output value ≤ tol). Returns the fused graph and the events.
 */
export function fuseAndCompare(make: () => Graph, tol = 1e-5, passes: readonly Pass[] = FUSE): { g: Graph; events: FusionEvent[] } {
  const ref = make();
  const g = make();
  const events = fuse(g, passes);
  const feeds = feedsFor(ref);
  const a = run(ref, feeds), b = run(g, feeds);
  for (const [name, t] of a) {
    const u = b.get(name)!;
    expect(u, name).toBeDefined();
    expect(u.shape).toEqual(t.shape);
    expect(u.dtype).toBe(t.dtype);
    let scale = 1, diff = 0;
    for (let i = 0; i < t.size; i++) { scale = Math.max(scale, Math.abs(t.data[i])); diff = Math.max(diff, Math.abs(t.data[i] - u.data[i])); }
    expect(diff / scale, name).toBeLessThanOrEqual(tol);
  }
  return { g, events };
}

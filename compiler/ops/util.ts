/**
 * Helpers shared by op families: broadcasting (symbolic and concrete), axis normalisation,
 * index iteration. Every op file builds on these instead of re-deriving index arithmetic.
 */
import { arrayFor, type DType } from '../../runtime/dtype.js';
import { sizeOf, storeRounded, stridesOf, Tensor } from '../../runtime/tensor.js';
import { dimEq, dimMax, dimStr, isSym, shapeStr, type Dim } from '../ir/dim.js';
import type { InferContext, InputInfo, OpContext } from './registry.js';

/** Multidirectional (numpy) broadcasting of symbolic shapes. */
export function broadcastShapes(ctx: OpContext, shapes: readonly (readonly Dim[])[]): Dim[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let d: Dim = 1;
    for (const s of shapes) {
      const j = s.length - rank + i;
      if (j < 0) continue;
      const e = s[j];
      if (e === 1) continue;
      if (d === 1) { d = e; continue; }
      if (dimEq(d, e)) continue;
      if (!isSym(d) && !isSym(e)) {
        ctx.fail(`cannot broadcast shapes ${shapes.map(shapeStr).join(' and ')} (axis ${i}: ${dimStr(d)} vs ${dimStr(e)})`);
      }
      // A symbol against a number: the symbol must equal it at run time (or be 1).
      if (isSym(d) && !isSym(e)) { d = e; continue; }
      if (!isSym(d) && isSym(e)) continue;
      d = ctx.equate ? ctx.equate(d, e) : dimMax(d, e);
    }
    out.push(d);
  }
  return out;
}

export function broadcastConcrete(ctx: OpContext, shapes: readonly (readonly number[])[]): number[] {
  return broadcastShapes(ctx, shapes) as number[];
}

/**
 * For an input of `inShape` broadcast to `outShape`, the flat input index of every output
 * element, as an Int32Array (fast enough for reference sizes, and shared by every elementwise op).
 */
export function broadcastIndex(inShape: readonly number[], outShape: readonly number[]): Int32Array {
  const n = sizeOf(outShape);
  const idx = new Int32Array(n);
  const rank = outShape.length;
  const inStrides = stridesOf(inShape);
  const st = new Array<number>(rank).fill(0);
  for (let i = 0; i < inShape.length; i++) {
    const o = rank - inShape.length + i;
    st[o] = inShape[i] === 1 ? 0 : inStrides[i];
  }
  if (sizeOf(inShape) === n && inShape.length === rank) {
    for (let i = 0; i < n; i++) idx[i] = i;
    return idx;
  }
  const counter = new Array<number>(rank).fill(0);
  let off = 0;
  for (let i = 0; i < n; i++) {
    idx[i] = off;
    for (let a = rank - 1; a >= 0; a--) {
      counter[a]++;
      off += st[a];
      if (counter[a] < outShape[a]) break;
      off -= st[a] * counter[a];
      counter[a] = 0;
    }
  }
  return idx;
}

/** Elementwise map over broadcast inputs into a new tensor of `dtype` (rounded to it). */
export function mapBroadcast(
  ctx: OpContext,
  inputs: readonly Tensor[],
  dtype: DType,
  f: (...xs: number[]) => number,
): Tensor {
  const shape = broadcastConcrete(ctx, inputs.map((t) => t.shape));
  const n = sizeOf(shape);
  const out = new Tensor(dtype, shape, arrayFor(dtype, n));
  const o = out.data;
  if (inputs.length === 1) {
    const a = inputs[0].data;
    for (let i = 0; i < n; i++) o[i] = f(a[i]);
  } else if (inputs.length === 2) {
    const [a, b] = inputs.map((t) => t.data);
    const ia = broadcastIndex(inputs[0].shape, shape), ib = broadcastIndex(inputs[1].shape, shape);
    for (let i = 0; i < n; i++) o[i] = f(a[ia[i]], b[ib[i]]);
  } else {
    const idx = inputs.map((t) => broadcastIndex(t.shape, shape));
    const xs = new Array<number>(inputs.length);
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < inputs.length; k++) xs[k] = inputs[k].data[idx[k][i]];
      o[i] = f(...xs);
    }
  }
  return storeRounded(out);
}

/**
 * Elementwise map over the *known* (possibly symbolic) contents of small inputs, for shape
 * arithmetic (e.g. Mul(Gather(Shape(x), 0), 8)). Undefined unless every input's contents are known.
 */
export function mapKnown(
  ctx: OpContext,
  inputs: readonly (InputInfo | undefined)[],
  f: (...xs: Dim[]) => Dim | undefined,
): Dim[] | undefined {
  if (inputs.some((i) => !i || !i.known)) return undefined;
  const infos = inputs as InputInfo[];
  if (infos.some((i) => i.shape.some(isSym))) return undefined;
  const shapes = infos.map((i) => i.shape as number[]);
  const shape = broadcastConcrete(ctx, shapes);
  const idx = shapes.map((s) => broadcastIndex(s, shape));
  const out: Dim[] = [];
  for (let i = 0; i < sizeOf(shape); i++) {
    const r = f(...infos.map((t, k) => t.known![idx[k][i]]));
    if (r === undefined) return undefined;
    out.push(r);
  }
  return out;
}

/** Normalise a possibly negative axis for a tensor of `rank`, failing with the node's name. */
export function normAxis(ctx: OpContext, axis: number, rank: number, what = 'axis'): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) ctx.fail(`${what} ${axis} is out of range for rank ${rank}`);
  return a;
}

/** Input i's shape, which must be fully numeric for this op at evaluation-free inference. */
export function concreteShape(ctx: InferContext, i: number): number[] | undefined {
  const s = ctx.input(i).shape;
  return s.some(isSym) ? undefined : (s as number[]);
}

/** Require a tensor input at evaluation time. */
export function req(ctx: OpContext, inputs: readonly (Tensor | undefined)[], i: number, name: string): Tensor {
  const t = inputs[i];
  if (!t) ctx.fail(`input ${i} (${name}) is required`);
  return t;
}

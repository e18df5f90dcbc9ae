/**
 * Helpers shared by the math op families (elementwise, reduce, nn, quant):
 *  - symbolic dims: bounds (symbols are sizes ≥ 0), max/min decided by them, shape arithmetic
 *    that only keeps integral results (symKnown);
 *  - checks with clear messages: dtypes, scalars, run-time broadcasts and per-channel sizes;
 *  - the outer × axis × inner view of a tensor that every per-axis op (softmax, cumsum, argmax,
 *    norms, losses, per-axis quantization) iterates over, and float64 → dtype result building.
 */
import { isFloat, type DType } from '../../runtime/dtype.js';
import { sizeOf, storeRounded, Tensor } from '../../runtime/tensor.js';
import { dimMax, dimMin, dimSub, isSym, type Dim } from '../ir/dim.js';
import type { InputInfo, OpContext } from './registry.js';
import { broadcastIndex, mapKnown } from './util.js';

/**
 * Bounds on a dim, knowing every symbol stands for a size (≥ 0): lo ≤ d ≤ hi, with ±Infinity
 * where a bound is not known.
 */
export function dimBounds(d: Dim): { lo: number; hi: number } {
  if (!isSym(d)) return { lo: d, hi: d };
  let lo = d.constant, hi = d.constant;
  for (const [m, c] of d.terms) {
    if (m === '') continue;
    if (c > 0) hi = Infinity;
    if (c < 0) lo = -Infinity;
  }
  return { lo, hi };
}

/** Fail unless the input has a floating dtype. */
export function expectFloat(ctx: OpContext, info: InputInfo, what: string): void {
  if (!isFloat(info.dtype)) ctx.fail(`${what} must be a floating tensor, got ${info.dtype}`);
}

/** Fail unless all the given (present) inputs share one dtype; returns it. */
export function sameDtype(ctx: OpContext, infos: readonly (InputInfo | undefined)[], names?: readonly string[]): DType {
  let first: { d: DType; i: number } | undefined;
  infos.forEach((info, i) => {
    if (!info) return;
    if (!first) { first = { d: info.dtype, i }; return; }
    if (info.dtype !== first.d) {
      const n = (k: number): string => names?.[k] ?? `input ${k}`;
      ctx.fail(`${n(first.i)} is ${first.d} but ${n(i)} is ${info.dtype}; they must match`);
    }
  });
  if (!first) ctx.fail('needs at least one input');
  return first.d;
}

/** A tensor seen as [outer, len, inner] around `axis` (len: the product of dims axis..end-1). */
export interface AxisView { outer: number; len: number; inner: number }

export function axisView(shape: readonly number[], axis: number, end = axis + 1): AxisView {
  return {
    outer: sizeOf(shape.slice(0, axis)),
    len: sizeOf(shape.slice(axis, end)),
    inner: sizeOf(shape.slice(end)),
  };
}

/** Round half to even, as ONNX Round and QuantizeLinear do. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Scalar value of a tensor input with exactly one element. */
export function scalarOf(ctx: OpContext, t: Tensor, what: string): number {
  if (t.size !== 1) ctx.fail(`${what} must hold one element, got shape [${t.shape.join(',')}]`);
  return t.data[0];
}

/**
 * Call `f(base, stride)` for every line of an axis view: the line's elements are at
 * base + j*stride for j < len.
 */
export function forEachLine(v: AxisView, f: (base: number, stride: number) => void): void {
  for (let o = 0; o < v.outer; o++) {
    for (let i = 0; i < v.inner; i++) f(o * v.len * v.inner + i, v.inner);
  }
}

/** max of two dims, deciding by bounds (symbols are sizes ≥ 0) before falling back to an atom. */
export function symMax(a: Dim, b: Dim): Dim {
  const { lo, hi } = dimBounds(dimSub(a, b));
  return lo >= 0 ? a : hi <= 0 ? b : dimMax(a, b);
}

/** min of two dims, deciding by bounds like symMax. */
export function symMin(a: Dim, b: Dim): Dim {
  const { lo, hi } = dimBounds(dimSub(a, b));
  return hi <= 0 ? a : lo >= 0 ? b : dimMin(a, b);
}

/**
 * mapKnown for shape arithmetic, keeping only results that are dims: a symbolic result with a
 * fractional coefficient (Mul(Cast(seq, float), 0.5)) is not one, and gives undefined.
 */
export function symKnown(
  ctx: OpContext,
  inputs: readonly (InputInfo | undefined)[],
  f: (...xs: Dim[]) => Dim | undefined,
): Dim[] | undefined {
  const out = mapKnown(ctx, inputs, f);
  const integral = (d: Dim): boolean => !isSym(d) || [...d.terms.values()].every(Number.isInteger);
  return out && out.every(integral) ? out : undefined;
}

/** A new tensor of `dtype` and `shape` from float64 values, rounded to the dtype. */
export function fromValues(dtype: DType, shape: readonly number[], values: ArrayLike<number>): Tensor {
  const t = Tensor.zeros(dtype, shape);
  for (let i = 0; i < values.length; i++) t.data[i] = values[i];
  return storeRounded(t);
}

/**
 * broadcastIndex of `t` onto `target` (unidirectional: Gemm's C, LayerNorm's Scale), failing with
 * both shapes when `t` does not broadcast to exactly `target` at run time.
 */
export function broadcastTo(ctx: OpContext, t: Tensor, target: readonly number[], what: string): Int32Array {
  const ok = t.rank <= target.length && t.shape.every((d, i) => d === 1 || d === target[target.length - t.rank + i]);
  if (!ok) ctx.fail(`${what} [${t.shape.join(',')}] does not broadcast to [${target.join(',')}]`);
  return broadcastIndex(t.shape, target);
}

/** Fail unless the per-channel parameter `t` holds exactly `c` values. */
export function expectChannels(ctx: OpContext, t: Tensor, c: number, what: string): void {
  if (t.size !== c) ctx.fail(`${what} has ${t.size} values but the input has ${c} channels`);
}

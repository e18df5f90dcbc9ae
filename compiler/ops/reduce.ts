/**
 * Reductions and per-axis ops: ReduceSum/Mean/Max/Min/Prod/L1/L2/SumSquare/LogSum/LogSumExp
 * (axes as an attribute, or as an input from ReduceSum-13 and the others' opset 18; keepdims,
 * noop_with_empty_axes), ArgMax/ArgMin (keepdims, select_last_index), CumSum (exclusive, reverse)
 * Softmax/LogSoftmax/Hardmax (flattened to 2-D at `axis` before opset 13, per-axis from 13) and
 * GlobalAveragePool/GlobalMaxPool. Everything accumulates in float64 and rounds to the output
 * dtype once at the end.
 */
import { arrayFor } from '../../runtime/dtype.js';
import { sizeOf, storeRounded, Tensor } from '../../runtime/tensor.js';
import { dimAdd, dimMul, isSym, type Dim } from '../ir/dim.js';
import { axisView, expectFloat, forEachLine, fromValues, scalarOf, symMax, symMin } from './math-common.js';
import type { InferContext, OpContext, OpDef } from './registry.js';
import { fedAtRunTime, freshDims, operandLength } from './movement.js';
import { broadcastIndex, normAxis, req } from './util.js';

// ---- Reduce* -----------------------------------------------------------------------------------

interface Reducer {
  init: number;
  step: (acc: number, x: number) => number;
  /** From the accumulator, the element count and (with `shift`) the max. */
  finish?: (acc: number, n: number, max: number) => number;
  /** Subtract each group's max before `step` (log-sum-exp). */
  shift?: boolean;
  /** Contents of symbolic known inputs (ReduceProd of a shape, …). */
  sym?: (a: Dim, b: Dim) => Dim;
}

const sumStep = (a: number, x: number): number => a + x;
const maxStep = (a: number, x: number): number => (a > x || Number.isNaN(a) ? a : x);
const minStep = (a: number, x: number): number => (a < x || Number.isNaN(a) ? a : x);

const REDUCERS: Record<string, Reducer> = {
  ReduceSum: { init: 0, step: sumStep, sym: dimAdd },
  ReduceMean: { init: 0, step: sumStep, finish: (a, n) => a / n },
  ReduceMax: { init: -Infinity, step: maxStep, sym: symMax },
  ReduceMin: { init: Infinity, step: minStep, sym: symMin },
  ReduceProd: { init: 1, step: (a, x) => a * x, sym: dimMul },
  ReduceL1: { init: 0, step: (a, x) => a + Math.abs(x) },
  ReduceL2: { init: 0, step: (a, x) => a + x * x, finish: Math.sqrt },
  ReduceSumSquare: { init: 0, step: (a, x) => a + x * x },
  ReduceLogSum: { init: 0, step: sumStep, finish: Math.log },
  ReduceLogSumExp: { init: 0, step: (a, x) => a + Math.exp(x), finish: (a, _n, m) => Math.log(a) + m, shift: true },
};

/** The reduced axes (sorted, normalised), or undefined for "no reduction" (noop_with_empty_axes). */
function reduceAxes(ctx: OpContext, rank: number, axesIn: () => number[] | undefined | 'unknown'): number[] | undefined {
  const fromInput = ctx.node.opType === 'ReduceSum' ? ctx.opset >= 13 : ctx.opset >= 18;
  let axes: number[] | undefined;
  if (fromInput) {
    const a = axesIn();
    if (a === 'unknown') ctx.fail('axes input must be a constant (or computable from shapes)');
    axes = a;
  } else {
    axes = ctx.attrs.optInts('axes');
  }
  if (!axes || axes.length === 0) {
    if (fromInput && ctx.attrs.int('noop_with_empty_axes', 0) !== 0) return undefined;
    return Array.from({ length: rank }, (_, i) => i);
  }
  const norm = axes.map((a) => normAxis(ctx, a, rank, 'reduce axis'));
  if (new Set(norm).size !== norm.length) ctx.fail(`axes [${axes.join(',')}] repeat an axis`);
  return norm.sort((a, b) => a - b);
}

/** Shape after reducing `axes`: 1 there with keepdims, else dropped. */
function reducedShape<T extends Dim>(shape: readonly T[], axes: readonly number[], keep: boolean): (T | 1)[] {
  const out: (T | 1)[] = [];
  shape.forEach((d, i) => { if (!axes.includes(i)) out.push(d); else if (keep) out.push(1); });
  return out;
}

function reduceDef(name: string): OpDef {
  const r = REDUCERS[name];
  const since = name === 'ReduceSum' ? [1, 11, 13] : name === 'ReduceMax' || name === 'ReduceMin'
    ? [1, 11, 12, 13, 18] : [1, 11, 13, 18];
  return {
    name,
    since,
    infer(ctx) {
      const x = ctx.input(0);
      if (x.dtype === 'bool' || x.dtype === 'string') ctx.fail(`input must be numeric, got ${x.dtype}`);
      const keep = ctx.attrs.int('keepdims', 1) !== 0;
      if (fedAtRunTime(ctx, 1) && operandLength(ctx, 1, 'axes') > 0) {
        // Axes fed at run time: the rank is known, the dims only then.
        const rank = keep ? x.shape.length : x.shape.length - operandLength(ctx, 1, 'axes');
        return [{ dtype: x.dtype, shape: freshDims(ctx, 0, rank) }];
      }
      const axes = reduceAxes(ctx, x.shape.length, () => {
        if (!ctx.inputs[1] || fedAtRunTime(ctx, 1)) return undefined;
        return ctx.numbers(1) ?? 'unknown';
      });
      if (!axes) return [{ dtype: x.dtype, shape: [...x.shape], ...(x.known ? { known: [...x.known] } : {}) }];
      const out = { dtype: x.dtype, shape: reducedShape(x.shape, axes, keep) as Dim[] };
      const known = r.sym ? symReduce(ctx, axes, r.sym) : undefined;
      return [known ? { ...out, known } : out];
    },
    evaluate(ctx, inputs) {
      const x = req(ctx, inputs, 0, 'data');
      const axes = reduceAxes(ctx, x.rank, () => (inputs[1] ? inputs[1].toArray() : undefined));
      if (!axes) return [new Tensor(x.dtype, x.shape, x.data)];
      const keep = ctx.attrs.int('keepdims', 1) !== 0;
      return [reduceTensor(x, axes, keep, r)];
    },
  };
}

/** Reduce the known (possibly symbolic) contents of input 0 with dim arithmetic. */
function symReduce(ctx: InferContext, axes: number[], f: (a: Dim, b: Dim) => Dim): Dim[] | undefined {
  const x = ctx.input(0);
  if (!x.known || x.shape.some(isSym)) return undefined;
  const shape = x.shape as number[];
  const keepShape = reducedShape(shape, axes, true);
  const idx = broadcastIndex(keepShape, shape);
  const out: (Dim | undefined)[] = new Array(sizeOf(keepShape)).fill(undefined);
  x.known.forEach((v, i) => { const o = idx[i]; out[o] = out[o] === undefined ? v : f(out[o]!, v); });
  return out.some((v) => v === undefined) ? undefined : (out as Dim[]);
}

function reduceTensor(x: Tensor, axes: number[], keep: boolean, r: Reducer): Tensor {
  const keepShape = reducedShape(x.shape, axes, true);
  const n = sizeOf(keepShape);
  const idx = broadcastIndex(keepShape, x.shape);
  const count = n === 0 ? 0 : x.size / n;
  const a = x.data;
  const max = new Float64Array(n).fill(-Infinity);
  if (r.shift) for (let i = 0; i < a.length; i++) max[idx[i]] = maxStep(max[idx[i]], a[i]);
  const acc = new Float64Array(n).fill(r.init);
  if (r.shift) {
    for (let i = 0; i < a.length; i++) acc[idx[i]] = r.step(acc[idx[i]], a[i] - max[idx[i]]);
  } else {
    for (let i = 0; i < a.length; i++) acc[idx[i]] = r.step(acc[idx[i]], a[i]);
  }
  const out = new Tensor(x.dtype, reducedShape(x.shape, axes, keep), arrayFor(x.dtype, n));
  for (let i = 0; i < n; i++) out.data[i] = r.finish ? r.finish(acc[i], count, max[i]) : acc[i];
  return storeRounded(out);
}

/** GlobalAveragePool / GlobalMaxPool: reduce every spatial axis (2…) of [N, C, ...], keeping dims. */
function globalPool(name: string, r: Reducer): OpDef {
  const spatial = (rank: number): number[] => Array.from({ length: rank - 2 }, (_, i) => i + 2);
  return {
    name,
    since: [1],
    infer(ctx) {
      const x = ctx.input(0);
      expectFloat(ctx, x, 'X');
      if (x.shape.length < 3) ctx.fail(`X must be [N, C, spatial...], got rank ${x.shape.length}`);
      return [{ dtype: x.dtype, shape: reducedShape(x.shape, spatial(x.shape.length), true) as Dim[] }];
    },
    evaluate(ctx, inputs) {
      const x = req(ctx, inputs, 0, 'X');
      return [reduceTensor(x, spatial(x.rank), true, r)];
    },
  };
}

// ---- ArgMax / ArgMin ---------------------------------------------------------------------------

function argDef(name: 'ArgMax' | 'ArgMin'): OpDef {
  const better = name === 'ArgMax' ? (v: number, b: number) => v > b : (v: number, b: number) => v < b;
  return {
    name,
    since: [1, 11, 12, 13],
    infer(ctx) {
      const x = ctx.input(0);
      const axis = normAxis(ctx, ctx.attrs.int('axis', 0), x.shape.length);
      const keep = ctx.attrs.int('keepdims', 1) !== 0;
      return [{ dtype: 'int64', shape: reducedShape(x.shape, [axis], keep) as Dim[] }];
    },
    evaluate(ctx, inputs) {
      const x = req(ctx, inputs, 0, 'data');
      const axis = normAxis(ctx, ctx.attrs.int('axis', 0), x.rank);
      const keep = ctx.attrs.int('keepdims', 1) !== 0;
      const last = ctx.attrs.int('select_last_index', 0) !== 0;
      const v = axisView(x.shape, axis);
      const out = Tensor.zeros('int64', reducedShape(x.shape, [axis], keep));
      const a = x.data;
      let k = 0; // forEachLine visits lines in output order
      forEachLine(v, (base, stride) => {
        let best = 0;
        for (let j = 1; j < v.len; j++) {
          const e = a[base + j * stride], b = a[base + best * stride];
          if (better(e, b) || (last && e === b)) best = j;
        }
        out.data[k++] = best;
      });
      return [out];
    },
  };
}

// ---- CumSum ------------------------------------------------------------------------------------

const cumSumOp: OpDef = {
  name: 'CumSum',
  since: [11, 14],
  infer(ctx) {
    const x = ctx.input(0), axis = ctx.input(1);
    if (axis.dtype !== 'int32' && axis.dtype !== 'int64') ctx.fail(`axis must be int32 or int64, got ${axis.dtype}`);
    if (axis.shape.length > 1) ctx.fail(`axis must be a scalar, got rank ${axis.shape.length}`);
    return [{ dtype: x.dtype, shape: [...x.shape] }];
  },
  evaluate(ctx, inputs) {
    const x = req(ctx, inputs, 0, 'x');
    const axis = normAxis(ctx, scalarOf(ctx, req(ctx, inputs, 1, 'axis'), 'axis'), x.rank);
    const exclusive = ctx.attrs.int('exclusive', 0) !== 0, reverse = ctx.attrs.int('reverse', 0) !== 0;
    const v = axisView(x.shape, axis);
    const out = Tensor.zeros(x.dtype, x.shape);
    const a = x.data, o = out.data;
    forEachLine(v, (base, stride) => {
      let acc = 0;
      for (let t = 0; t < v.len; t++) {
        const p = base + (reverse ? v.len - 1 - t : t) * stride;
        if (exclusive) { o[p] = acc; acc += a[p]; } else { acc += a[p]; o[p] = acc; }
      }
    });
    return [storeRounded(out)];
  },
};

// ---- Softmax / LogSoftmax / Hardmax ------------------------------------------------------------

export type LineFn = (a: ArrayLike<number>, o: Float64Array, base: number, stride: number, len: number) => void;

function lineMax(a: ArrayLike<number>, base: number, stride: number, len: number): number {
  let m = -Infinity;
  for (let j = 0; j < len; j++) m = Math.max(m, a[base + j * stride]);
  return m;
}

function expSum(a: ArrayLike<number>, o: Float64Array, base: number, stride: number, len: number, m: number): number {
  let s = 0;
  for (let j = 0; j < len; j++) { const p = base + j * stride; o[p] = Math.exp(a[p] - m); s += o[p]; }
  return s;
}

const softmaxLine: LineFn = (a, o, base, stride, len) => {
  const s = expSum(a, o, base, stride, len, lineMax(a, base, stride, len));
  for (let j = 0; j < len; j++) o[base + j * stride] /= s;
};

export const logSoftmaxLine: LineFn = (a, o, base, stride, len) => {
  const m = lineMax(a, base, stride, len);
  const ls = Math.log(expSum(a, o, base, stride, len, m));
  for (let j = 0; j < len; j++) { const p = base + j * stride; o[p] = a[p] - m - ls; }
};

const hardmaxLine: LineFn = (a, o, base, stride, len) => {
  let best = 0;
  for (let j = 1; j < len; j++) if (a[base + j * stride] > a[base + best * stride]) best = j;
  for (let j = 0; j < len; j++) o[base + j * stride] = j === best ? 1 : 0;
};

function softmaxFamily(name: string, line: LineFn): OpDef {
  return {
    name,
    since: [1, 11, 13],
    infer(ctx) {
      const x = ctx.input(0);
      if (name !== 'Hardmax') expectFloat(ctx, x, 'input');
      normAxis(ctx, ctx.attrs.int('axis', ctx.opset >= 13 ? -1 : 1), x.shape.length);
      return [{ dtype: x.dtype, shape: [...x.shape] }];
    },
    evaluate(ctx, inputs) {
      const x = req(ctx, inputs, 0, 'input');
      const axis = normAxis(ctx, ctx.attrs.int('axis', ctx.opset >= 13 ? -1 : 1), x.rank);
      // Before opset 13 the input is coerced to 2-D [prod(dims < axis), prod(dims ≥ axis)].
      const v = axisView(x.shape, axis, ctx.opset >= 13 ? axis + 1 : x.rank);
      const tmp = new Float64Array(x.size);
      forEachLine(v, (base, stride) => line(x.data, tmp, base, stride, v.len));
      return [fromValues(x.dtype, x.shape, tmp)];
    },
  };
}

export const reduceOps: OpDef[] = [
  ...Object.keys(REDUCERS).map(reduceDef),
  globalPool('GlobalAveragePool', REDUCERS.ReduceMean),
  globalPool('GlobalMaxPool', REDUCERS.ReduceMax),
  argDef('ArgMax'),
  argDef('ArgMin'),
  cumSumOp,
  softmaxFamily('Softmax', softmaxLine),
  softmaxFamily('LogSoftmax', logSoftmaxLine),
  softmaxFamily('Hardmax', hardmaxLine),
];

/**
 * Slice (opsets 1, 10, 11, 13), on concrete and symbolic shapes; tensor.ts registers it.
 *
 * On numbers it follows the ONNX spec exactly: negative starts/ends count from the end, then
 * starts and ends are clamped to [0, dim] (to [0, dim-1] and [-1, dim-1] for negative steps), so
 * INT64_MAX/INT64_MIN (stored as ±2^63) mean "to the end". With symbols (a cached table sliced to
 * `seq`, the last token of a `seq` axis) it clamps wherever a bound can be proved and otherwise
 * takes the reading every exporter intends:
 *  - a symbolic start/end (e.g. `past + seq`) lies within the axis it indexes;
 *  - a negative constant index -k on a symbolic axis d means d - k (d ≥ k);
 *  - a positive constant k on a symbolic axis d gives the honest atom min(k, d) unless it is a
 *    sentinel (|k| ≥ 2^31 - 1, "to the end");
 *  - a symbolic length is taken as it comes (start ≤ end is assumed); a numeric one is never
 *    negative.
 * The interpreter checks every shape against inference at run time, so a broken assumption is
 * reported there rather than computed silently.
 */
import { stridesOf } from '../../runtime/tensor.js';
import {
  dimAdd, dimFloorDiv, dimMax, dimMin, dimNeg, dimNonNegative, dimSub, isSym, type Dim,
} from '../ir/dim.js';
import {
  fedAtRunTime, freshDims, isConcrete, knownDims, moved, normAxes, optKnownInts, optTensorInts,
  stridedIndex, takeTensor, tensorInts,
} from './movement.js';
import type { OpContext, OpDef } from './registry.js';
import { req } from './util.js';

/** Constants at least this large in magnitude mean "past the end" (INT32/INT64 max and min). */
const SENTINEL = 2 ** 31 - 1;

interface SliceParams { starts: Dim[]; ends: Dim[]; axes?: number[]; steps?: number[] }

/** Slice-1 takes its parameters as attributes (Slice-10 on, as inputs). */
const attrParams = (ctx: OpContext): SliceParams =>
  ({ starts: ctx.attrs.ints('starts'), ends: ctx.attrs.ints('ends'), axes: ctx.attrs.optInts('axes') });

/** Per axis of the input: the first element taken, the step, and the output length. */
interface SlicePlan { starts: Dim[]; steps: number[]; shape: Dim[] }

/** Clamp `v` into [lo, hi] where provable; `assume` says it lies inside otherwise. */
function clampDim(v: Dim, lo: Dim, hi: Dim, assume: boolean): Dim {
  const below = dimSub(v, lo);
  if (typeof below === 'number' && below < 0) return lo;
  if (typeof below !== 'number' && !dimNonNegative(below) && !assume) v = dimMax(lo, v);
  const above = dimSub(hi, v);
  if (typeof above === 'number' && above < 0) return hi;
  if (typeof above !== 'number' && !dimNonNegative(above) && !assume) v = dimMin(v, hi);
  return v;
}

/** One start or end of an axis of dim `d`, made non-negative and clamped into [lo, hi]. */
function resolveIndex(x: Dim, d: Dim, lo: Dim, hi: Dim): Dim {
  if (typeof x === 'number') {
    if (isSym(d) && x >= SENTINEL) return hi;
    if (isSym(d) && x <= -SENTINEL) return lo;
    return clampDim(x < 0 ? dimAdd(d, x) : x, lo, hi, x < 0);
  }
  // A symbolic index counts from the end when it is provably ≤ 0 (e.g. -num_logits_to_keep).
  const fromEnd = dimNonNegative(dimNeg(x));
  return clampDim(fromEnd ? dimAdd(d, x) : x, lo, hi, true);
}

/** Elements from `s` towards `e` (exclusive) by `step`, never negative. */
function sliceLength(s: Dim, e: Dim, step: number): Dim {
  const diff = step > 0 ? dimSub(e, s) : dimSub(s, e);
  const k = Math.abs(step);
  const n = k === 1 ? diff : dimFloorDiv(dimAdd(diff, k - 1), k);
  return typeof n === 'number' ? Math.max(n, 0) : n;
}

function planSlice(ctx: OpContext, shape: readonly Dim[], p: SliceParams): SlicePlan {
  const rank = shape.length;
  const n = p.starts.length;
  if (p.ends.length !== n) ctx.fail(`starts has ${n} entries but ends has ${p.ends.length}`);
  const axes = normAxes(ctx, p.axes ?? Array.from({ length: n }, (_, i) => i), rank);
  if (axes.length !== n) ctx.fail(`starts has ${n} entries but axes has ${axes.length}`);
  const steps = p.steps ?? new Array<number>(n).fill(1);
  if (steps.length !== n) ctx.fail(`starts has ${n} entries but steps has ${steps.length}`);
  const plan: SlicePlan = { starts: new Array<Dim>(rank).fill(0), steps: new Array<number>(rank).fill(1), shape: [...shape] };
  axes.forEach((a, i) => {
    const step = steps[i], d = shape[a];
    if (step === 0 || !Number.isInteger(step)) ctx.fail(`step ${step} on axis ${a} is invalid`);
    const [lo, hiS, loE, hiE]: Dim[] = step > 0 ? [0, d, 0, d] : [0, dimAdd(d, -1), -1, dimAdd(d, -1)];
    const s = resolveIndex(p.starts[i], d, lo, hiS);
    const e = resolveIndex(p.ends[i], d, loE, hiE);
    plan.starts[a] = s;
    plan.steps[a] = step;
    plan.shape[a] = sliceLength(s, e, step);
  });
  return plan;
}

/** The index map of a concrete slice plan over an input of `inShape`. */
export function sliceIndex(inShape: readonly number[], starts: readonly number[], steps: readonly number[], outShape: readonly number[]): Int32Array {
  const st = stridesOf(inShape);
  let offset = 0;
  for (let a = 0; a < inShape.length; a++) offset += starts[a] * st[a];
  return stridedIndex(outShape, st.map((s, a) => s * steps[a]), offset);
}

export const slice: OpDef = {
  name: 'Slice',
  since: [1, 10, 11, 13],
  infer(ctx) {
    const x = ctx.input(0);
    if (ctx.opset >= 10 && [1, 2, 3, 4].some((i) => fedAtRunTime(ctx, i))) {
      // Parameters fed at run time: the sliced axes (all of them, when axes are fed too) get
      // fresh sizes.
      const axes = fedAtRunTime(ctx, 3) ? undefined : optKnownInts(ctx, 3, 'axes');
      const sliced = new Set(normAxes(ctx, axes ?? x.shape.map((_, i) => i), x.shape.length));
      const fresh = freshDims(ctx, 0, x.shape.length);
      return [{ dtype: x.dtype, shape: x.shape.map((d, i) => (sliced.has(i) ? fresh[i] : d)) }];
    }
    const p: SliceParams = ctx.opset < 10
      ? attrParams(ctx)
      : {
        starts: knownDims(ctx, 1, 'starts'),
        ends: knownDims(ctx, 2, 'ends'),
        axes: optKnownInts(ctx, 3, 'axes'),
        steps: optKnownInts(ctx, 4, 'steps'),
      };
    const plan = planSlice(ctx, x.shape, p);
    if (!isConcrete(plan.starts)) return [{ dtype: x.dtype, shape: plan.shape }];
    const starts = plan.starts;
    return [moved(x, plan.shape, (inShape, outShape) => sliceIndex(inShape, starts, plan.steps, outShape))];
  },
  evaluate(ctx, inputs) {
    const x = req(ctx, inputs, 0, 'data');
    const p: SliceParams = ctx.opset < 10
      ? attrParams(ctx)
      : {
        starts: tensorInts(req(ctx, inputs, 1, 'starts')),
        ends: tensorInts(req(ctx, inputs, 2, 'ends')),
        axes: optTensorInts(inputs, 3),
        steps: optTensorInts(inputs, 4),
      };
    const plan = planSlice(ctx, x.shape, p);
    const shape = plan.shape as number[];
    return [takeTensor(x, shape, sliceIndex(x.shape, plan.starts as number[], plan.steps, shape))];
  },
};

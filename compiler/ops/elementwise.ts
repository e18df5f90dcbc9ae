/**
 * Elementwise ONNX ops. The unary and binary families live in elementwise-unary.ts and
 * elementwise-binary.ts; this file holds the ones with their own shapes of signature: variadic
 * Max/Min/Sum/Mean, Where, Clip (attributes before opset 11, inputs after), Cast, CastLike and
 * Identity, and exports the whole family as `elementwiseOps`.
 *
 * Ops that shape arithmetic passes through (Max, Min, Sum, Where, Clip, Cast, Identity) compute
 * symbolic `known` contents with dim.ts arithmetic where the result is decidable; numeric
 * contents are folded by the inference driver, which runs `evaluate` on known inputs.
 */
import { dtypeFromOnnx, isFloat, type DType } from '../../runtime/dtype.js';
import { castTensor, Tensor } from '../../runtime/tensor.js';
import { dimAdd, type Dim } from '../ir/dim.js';
import { binaryOps } from './elementwise-binary.js';
import { unaryOps } from './elementwise-unary.js';
import { dimBounds, sameDtype, scalarOf, symKnown, symMax, symMin } from './math-common.js';
import type { InferContext, InputInfo, OpContext, OpDef } from './registry.js';
import { broadcastShapes, mapBroadcast, req } from './util.js';

const present = (ctx: InferContext): InputInfo[] => ctx.inputs.filter((i): i is InputInfo => i !== undefined);

/** Max, Min, Sum, Mean: any number of inputs of one dtype, broadcast together. */
function variadic(
  name: string,
  since: number[],
  fold: (acc: number, x: number) => number,
  opts: { mean?: boolean; sym?: (a: Dim, b: Dim) => Dim } = {},
): OpDef {
  return {
    name,
    since,
    infer(ctx) {
      const ins = present(ctx);
      const dtype = sameDtype(ctx, ins);
      if (dtype === 'bool' || dtype === 'string') ctx.fail(`inputs must be numeric, got ${dtype}`);
      if (opts.mean && !isFloat(dtype)) ctx.fail(`inputs must be floating, got ${dtype}`);
      const sym = opts.sym;
      const known = sym ? symKnown(ctx, ins, (...xs) => xs.reduce(sym)) : undefined;
      return [{ dtype, shape: broadcastShapes(ctx, ins.map((i) => i.shape)), ...(known ? { known } : {}) }];
    },
    evaluate(ctx, inputs) {
      const ins = inputs.filter((t): t is Tensor => t !== undefined);
      if (ins.length === 0) ctx.fail('needs at least one input');
      const n = ins.length;
      const f = opts.mean
        ? (...xs: number[]) => xs.reduce(fold) / n
        : (...xs: number[]) => xs.reduce(fold);
      return [mapBroadcast(ctx, ins, ins[0].dtype, f)];
    },
  };
}

// Math.max/min propagate NaN, as the ONNX reference (numpy.maximum) does.
const maxOf = (a: number, b: number): number => Math.max(a, b);
const minOf = (a: number, b: number): number => Math.min(a, b);

const whereOp: OpDef = {
  name: 'Where',
  since: [9, 16],
  infer(ctx) {
    const [c, x, y] = [ctx.input(0), ctx.input(1), ctx.input(2)];
    if (c.dtype !== 'bool') ctx.fail(`condition must be bool, got ${c.dtype}`);
    const dtype = sameDtype(ctx, [x, y], ['X', 'Y']);
    const known = symKnown(ctx, [c, x, y], (k, a, b) => (typeof k === 'number' ? (k ? a : b) : undefined));
    return [{ dtype, shape: broadcastShapes(ctx, [c.shape, x.shape, y.shape]), ...(known ? { known } : {}) }];
  },
  evaluate(ctx, inputs) {
    const c = req(ctx, inputs, 0, 'condition'), x = req(ctx, inputs, 1, 'X'), y = req(ctx, inputs, 2, 'Y');
    return [mapBroadcast(ctx, [c, x, y], x.dtype, (k, a, b) => (k ? a : b))];
  },
};

/** Clip's default bounds: the lowest/highest float32 before opset 11, unbounded after. */
const FLT_MAX = 3.4028234663852886e38;

const clipOp: OpDef = {
  name: 'Clip',
  since: [6, 11, 12, 13],
  infer(ctx) {
    const x = ctx.input(0);
    if (x.dtype === 'bool' || x.dtype === 'string') ctx.fail(`input must be numeric, got ${x.dtype}`);
    if (ctx.opset >= 11) sameDtype(ctx, ctx.inputs, ['input', 'min', 'max']);
    for (const i of [1, 2]) {
      const b = ctx.inputs[i];
      if (ctx.opset >= 11 && b && b.shape.length > 1) ctx.fail(`${i === 1 ? 'min' : 'max'} must be a scalar`);
    }
    let known: Dim[] | undefined;
    if (ctx.opset >= 11) {
      const [lo, hi] = [ctx.inputs[1], ctx.inputs[2]];
      known = symKnown(ctx, [x, ...(lo ? [lo] : []), ...(hi ? [hi] : [])], (v, ...bs) => {
        let r = v;
        if (lo) r = symMax(r, bs[0]);
        if (hi) r = symMin(r, bs[lo ? 1 : 0]);
        return r;
      });
    }
    return [{ dtype: x.dtype, shape: [...x.shape], ...(known ? { known } : {}) }];
  },
  evaluate(ctx, inputs) {
    const x = req(ctx, inputs, 0, 'input');
    let lo: number, hi: number;
    if (ctx.opset < 11) {
      lo = ctx.attrs.float('min', -FLT_MAX);
      hi = ctx.attrs.float('max', FLT_MAX);
    } else {
      lo = inputs[1] ? scalarOf(ctx, inputs[1], 'min') : -Infinity;
      hi = inputs[2] ? scalarOf(ctx, inputs[2], 'max') : Infinity;
    }
    return [mapBroadcast(ctx, [x], x.dtype, (v) => Math.min(Math.max(v, lo), hi))];
  },
};

/** Symbolic dims keep their value through a cast to an integer or wide float type. */
function castSym(to: DType): (d: Dim) => Dim | undefined {
  if (to === 'bool') {
    return (d) => { const { lo, hi } = dimBounds(d); return lo > 0 || hi < 0 ? 1 : lo === 0 && hi === 0 ? 0 : undefined; };
  }
  const exact = !isFloat(to) || to === 'float32' || to === 'float64';
  return (d) => (exact ? d : undefined);
}

function castDef(name: string, since: number[], target: (ctx: InferContext) => DType): OpDef {
  return {
    name,
    since,
    infer(ctx) {
      const x = ctx.input(0);
      const to = target(ctx);
      if (to === 'string' || x.dtype === 'string') ctx.fail(`string tensors are not supported (${x.dtype} to ${to})`);
      const known = symKnown(ctx, [x], castSym(to));
      return [{ dtype: to, shape: [...x.shape], ...(known ? { known } : {}) }];
    },
    evaluate(ctx, inputs) {
      const x = req(ctx, inputs, 0, 'input');
      const to = name === 'Cast' ? castTarget(ctx) : req(ctx, inputs, 1, 'target_type').dtype;
      return [castTensor(x, to)];
    },
  };
}

const castTarget = (ctx: OpContext): DType =>
  dtypeFromOnnx(ctx.attrs.int('to'), `${ctx.node.label}: attribute 'to'`);

const identityOp: OpDef = {
  name: 'Identity',
  since: [1, 13, 14, 16],
  infer(ctx) {
    const x = ctx.input(0);
    return [{ dtype: x.dtype, shape: [...x.shape], ...(x.known ? { known: [...x.known] } : {}) }];
  },
  evaluate(ctx, inputs) {
    const x = req(ctx, inputs, 0, 'input');
    return [new Tensor(x.dtype, x.shape, x.data)];
  },
};

export const elementwiseOps: OpDef[] = [
  ...unaryOps,
  ...binaryOps,
  variadic('Max', [8, 12, 13], maxOf, { sym: symMax }),
  variadic('Min', [8, 12, 13], minOf, { sym: symMin }),
  variadic('Sum', [8, 13], (a, b) => a + b, { sym: dimAdd }),
  variadic('Mean', [8, 13], (a, b) => a + b, { mean: true }),
  whereOp,
  clipOp,
  castDef('Cast', [6, 9, 13, 19], castTarget),
  castDef('CastLike', [15, 19], (ctx) => ctx.input(1).dtype),
  identityOp,
];

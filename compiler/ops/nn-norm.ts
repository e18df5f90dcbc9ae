/**
 * Normalisation ONNX ops: LayerNormalization-17 (Y, optional Mean and InvStdDev in stash_type),
 * RMSNormalization-23, BatchNormalization (inference, and training mode from opset 14 with running
 * statistics), InstanceNormalization, MeanVarianceNormalization and LRN. All of them normalise with `moments`
 * (mean and biased variance over a set of axes, in float64) and round once at the end.
 */
import { dtypeFromOnnx, type DType } from '../../runtime/dtype.js';
import { sizeOf, type Tensor } from '../../runtime/tensor.js';
import { dimEq, shapeStr, type Dim } from '../ir/dim.js';
import { axisView, broadcastTo, expectChannels, expectFloat, fromValues, sameDtype } from './math-common.js';
import type { InferContext, OpContext, OpDef } from './registry.js';
import { broadcastIndex, broadcastShapes, normAxis, req } from './util.js';

interface Moments {
  mean: Float64Array;
  variance: Float64Array;
  /** For every element of x, the index of its group in mean/variance. */
  group: Int32Array;
  /** x's shape with the reduced axes set to 1. */
  shape: number[];
}

/** Mean and biased variance of x over `axes` (two passes, float64). */
function moments(x: Tensor, axes: readonly number[]): Moments {
  const shape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const n = sizeOf(shape), count = n === 0 ? 0 : x.size / n;
  const group = broadcastIndex(shape, x.shape);
  const mean = new Float64Array(n), variance = new Float64Array(n);
  const a = x.data;
  for (let i = 0; i < a.length; i++) mean[group[i]] += a[i];
  for (let g = 0; g < n; g++) mean[g] /= count;
  for (let i = 0; i < a.length; i++) { const d = a[i] - mean[group[i]]; variance[group[i]] += d * d; }
  for (let g = 0; g < n; g++) variance[g] /= count;
  return { mean, variance, group, shape };
}

/** Fail unless `t` (Scale, B, ...) broadcasts to exactly `target`. */
function checkBroadcastsTo(ctx: InferContext, t: { shape: readonly Dim[] } | undefined, target: readonly Dim[], what: string): void {
  if (!t) return;
  const bc = broadcastShapes(ctx, [target, t.shape]);
  if (bc.length !== target.length || !bc.every((d, i) => dimEq(d, target[i]))) {
    ctx.fail(`${what} ${shapeStr(t.shape)} does not broadcast to ${shapeStr(target)}`);
  }
}

/** Fail unless every per-channel input is 1-D of x's channel count. */
function checkPerChannel(ctx: InferContext, first: number, last: number): void {
  const c = ctx.input(0).shape[1];
  for (let i = first; i <= last; i++) {
    const p = ctx.inputs[i];
    if (p && (p.shape.length !== 1 || !dimEq(p.shape[0], c))) ctx.fail(`input ${i} must be [C] = [${c}], got ${shapeStr(p.shape)}`);
  }
}

const channelOf = (x: Tensor): ((i: number) => number) => {
  const v = axisView(x.shape, 1);
  return (i) => Math.floor(i / v.inner) % v.len;
};

// ---- LayerNormalization ------------------------------------------------------------------------

function layerNormSetup(ctx: OpContext, rank: number): { axis: number; stash: DType } {
  const axis = normAxis(ctx, ctx.attrs.int('axis', -1), rank);
  const stash = dtypeFromOnnx(ctx.attrs.int('stash_type', 1), `${ctx.node.label}: attribute 'stash_type'`);
  return { axis, stash };
}

const layerNormOp: OpDef = {
  name: 'LayerNormalization',
  since: [17],
  infer(ctx) {
    const x = ctx.input(0);
    expectFloat(ctx, x, 'X');
    sameDtype(ctx, ctx.inputs, ['X', 'Scale', 'B']);
    const { axis, stash } = layerNormSetup(ctx, x.shape.length);
    const norm = x.shape.slice(axis);
    checkBroadcastsTo(ctx, ctx.input(1), norm, 'Scale');
    checkBroadcastsTo(ctx, ctx.inputs[2], norm, 'B');
    const stats = [...x.shape.slice(0, axis), ...norm.map(() => 1)];
    return [{ dtype: x.dtype, shape: [...x.shape] }, { dtype: stash, shape: stats }, { dtype: stash, shape: [...stats] }];
  },
  evaluate(ctx, inputs) {
    const x = req(ctx, inputs, 0, 'X'), scale = req(ctx, inputs, 1, 'Scale'), bias = inputs[2];
    const { axis, stash } = layerNormSetup(ctx, x.rank);
    const eps = ctx.attrs.float('epsilon', 1e-5);
    const m = moments(x, Array.from({ length: x.rank - axis }, (_, i) => axis + i));
    const inv = m.variance.map((v) => 1 / Math.sqrt(v + eps));
    const norm = x.shape.slice(axis);
    const si = broadcastTo(ctx, scale, norm, 'Scale'), bi = bias && broadcastTo(ctx, bias, norm, 'B');
    const len = sizeOf(norm);
    const y = new Float64Array(x.size);
    for (let i = 0; i < x.size; i++) {
      const g = m.group[i], j = i % len;
      y[i] = (x.data[i] - m.mean[g]) * inv[g] * scale.data[si[j]] + (bias && bi ? bias.data[bi[j]] : 0);
    }
    return [fromValues(x.dtype, x.shape, y), fromValues(stash, m.shape, m.mean), fromValues(stash, m.shape, inv)];
  },
};

/** RMSNormalization-23: X / sqrt(mean(X², axes axis…) + epsilon) · scale, in scale's dtype. */
const rmsNormOp: OpDef = {
  name: 'RMSNormalization',
  since: [23],
  infer(ctx) {
    const x = ctx.input(0), scale = ctx.input(1);
    expectFloat(ctx, x, 'X');
    expectFloat(ctx, scale, 'scale');
    const axis = normAxis(ctx, ctx.attrs.int('axis', -1), x.shape.length);
    checkBroadcastsTo(ctx, scale, x.shape.slice(axis), 'scale');
    return [{ dtype: scale.dtype, shape: [...x.shape] }];
  },
  evaluate(ctx, inputs) {
    const x = req(ctx, inputs, 0, 'X'), scale = req(ctx, inputs, 1, 'scale');
    const axis = normAxis(ctx, ctx.attrs.int('axis', -1), x.rank);
    const eps = ctx.attrs.float('epsilon', 1e-5);
    const m = moments(x, Array.from({ length: x.rank - axis }, (_, i) => axis + i));
    // mean(x²) = variance + mean².
    const inv = m.variance.map((v, g) => 1 / Math.sqrt(v + m.mean[g] * m.mean[g] + eps));
    const norm = x.shape.slice(axis);
    const si = broadcastTo(ctx, scale, norm, 'scale');
    const len = sizeOf(norm);
    const y = Array.from(x.data as ArrayLike<number>, (v, i) => v * inv[m.group[i]] * scale.data[si[i % len]]);
    return [fromValues(scale.dtype, x.shape, y)];
  },
};

// ---- BatchNormalization, InstanceNormalization -------------------------------------------------

const training = (ctx: OpContext): boolean => ctx.opset >= 14 && ctx.attrs.int('training_mode', 0) !== 0;

const batchNormOp: OpDef = {
  name: 'BatchNormalization',
  since: [7, 9, 14, 15],
  infer(ctx) {
    const x = ctx.input(0);
    expectFloat(ctx, x, 'X');
    if (x.shape.length < 2) ctx.fail(`X must be [N, C, ...], got rank ${x.shape.length}`);
    checkPerChannel(ctx, 1, 4);
    const stat = ctx.input(3);
    return [{ dtype: x.dtype, shape: [...x.shape] }, { dtype: stat.dtype, shape: [...stat.shape] }, { dtype: stat.dtype, shape: [...stat.shape] }];
  },
  evaluate(ctx, inputs) {
    const [x, scale, bias, mean, variance] = [0, 1, 2, 3, 4].map((i) => req(ctx, inputs, i, ['X', 'scale', 'B', 'input_mean', 'input_var'][i]));
    for (const [t, n] of [[scale, 'scale'], [bias, 'B'], [mean, 'input_mean'], [variance, 'input_var']] as const) expectChannels(ctx, t, x.shape[1], n);
    const eps = ctx.attrs.float('epsilon', 1e-5);
    let m: ArrayLike<number> = mean.data, v: ArrayLike<number> = variance.data;
    let running: Tensor[] = [mean, variance];
    if (training(ctx)) {
      const mo = moments(x, x.shape.map((_, i) => i).filter((i) => i !== 1));
      const mom = ctx.attrs.float('momentum', 0.9);
      m = mo.mean;
      v = mo.variance;
      const blend = (r: Tensor, cur: Float64Array): Tensor =>
        fromValues(r.dtype, r.shape, Array.from(r.data as ArrayLike<number>, (p, c) => p * mom + cur[c] * (1 - mom)));
      running = [blend(mean, mo.mean), blend(variance, mo.variance)];
    }
    const ch = channelOf(x);
    const y = new Float64Array(x.size);
    for (let i = 0; i < x.size; i++) {
      const c = ch(i);
      y[i] = ((x.data[i] - m[c]) / Math.sqrt(v[c] + eps)) * scale.data[c] + bias.data[c];
    }
    return [fromValues(x.dtype, x.shape, y), ...running];
  },
};

const instanceNormOp: OpDef = {
  name: 'InstanceNormalization',
  since: [6],
  infer(ctx) {
    const x = ctx.input(0);
    expectFloat(ctx, x, 'input');
    if (x.shape.length < 3) ctx.fail(`input must be [N, C, spatial...], got rank ${x.shape.length}`);
    checkPerChannel(ctx, 1, 2);
    return [{ dtype: x.dtype, shape: [...x.shape] }];
  },
  evaluate(ctx, inputs) {
    const x = req(ctx, inputs, 0, 'input'), scale = req(ctx, inputs, 1, 'scale'), bias = req(ctx, inputs, 2, 'B');
    expectChannels(ctx, scale, x.shape[1], 'scale');
    expectChannels(ctx, bias, x.shape[1], 'B');
    const eps = ctx.attrs.float('epsilon', 1e-5);
    const m = moments(x, Array.from({ length: x.rank - 2 }, (_, i) => i + 2));
    const ch = channelOf(x);
    const y = new Float64Array(x.size);
    for (let i = 0; i < x.size; i++) {
      const g = m.group[i], c = ch(i);
      y[i] = ((x.data[i] - m.mean[g]) / Math.sqrt(m.variance[g] + eps)) * scale.data[c] + bias.data[c];
    }
    return [fromValues(x.dtype, x.shape, y)];
  },
};

// ---- MeanVarianceNormalization, LRN ------------------------------------------------------------

const mvnOp: OpDef = {
  name: 'MeanVarianceNormalization',
  since: [9, 13],
  infer(ctx) {
    const x = ctx.input(0);
    expectFloat(ctx, x, 'X');
    for (const a of ctx.attrs.ints('axes', [0, 2, 3])) normAxis(ctx, a, x.shape.length);
    return [{ dtype: x.dtype, shape: [...x.shape] }];
  },
  evaluate(ctx, inputs) {
    const x = req(ctx, inputs, 0, 'X');
    const m = moments(x, ctx.attrs.ints('axes', [0, 2, 3]).map((a) => normAxis(ctx, a, x.rank)));
    // The ONNX function body divides by sqrt(variance) + 1e-9.
    const y = Array.from(x.data as ArrayLike<number>, (v, i) => (v - m.mean[m.group[i]]) / (Math.sqrt(m.variance[m.group[i]]) + 1e-9));
    return [fromValues(x.dtype, x.shape, y)];
  },
};

const lrnOp: OpDef = {
  name: 'LRN',
  since: [1, 13],
  infer(ctx) {
    const x = ctx.input(0);
    expectFloat(ctx, x, 'X');
    if (x.shape.length < 3) ctx.fail(`X must be [N, C, spatial...], got rank ${x.shape.length}`);
    ctx.attrs.int('size');
    return [{ dtype: x.dtype, shape: [...x.shape] }];
  },
  evaluate(ctx, inputs) {
    const x = req(ctx, inputs, 0, 'X');
    const size = ctx.attrs.int('size');
    const alpha = ctx.attrs.float('alpha', 1e-4), beta = ctx.attrs.float('beta', 0.75), bias = ctx.attrs.float('bias', 1);
    const v = axisView(x.shape, 1);
    const lo = Math.floor((size - 1) / 2), hi = Math.ceil((size - 1) / 2);
    const y = new Float64Array(x.size);
    for (let i = 0; i < x.size; i++) {
      const c = Math.floor(i / v.inner) % v.len, base = i - c * v.inner;
      let sq = 0;
      for (let k = Math.max(0, c - lo); k <= Math.min(v.len - 1, c + hi); k++) sq += x.data[base + k * v.inner] ** 2;
      y[i] = x.data[i] / (bias + (alpha / size) * sq) ** beta;
    }
    return [fromValues(x.dtype, x.shape, y)];
  },
};

export const normOps: OpDef[] = [layerNormOp, rmsNormOp, batchNormOp, instanceNormOp, mvnOp, lrnOp];

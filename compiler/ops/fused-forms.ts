/**
 * Norm and GELU ops that exporters emit already fused, so that graphs using them import, infer and
 * run in the interpreter, and the fusion passes can turn them into lfc ops:
 *
 *   ai.onnx       RMSNormalization-23 (X, scale) {axis, epsilon, stash_type}
 *   com.microsoft SimplifiedLayerNormalization (X, scale) {axis, epsilon} → (Y, inv_std_var?), also
 *                 in ai.onnx, where onnxruntime registers it
 *                 SkipSimplifiedLayerNormalization (input, skip, gamma, bias?) {epsilon}
 *                   → (output, mean?, inv_std_var?, input_skip_bias_sum?)
 *                 SkipLayerNormalization (input, skip, gamma, beta?, bias?) {epsilon} → the same four
 *                 Gelu (X) (erf form), FastGelu (X, bias?) (tanh form), BiasGelu (A, B) (erf of A + B)
 *
 * The statistics outputs (mean, inv_std_var) are float32 with the normalised axes kept as 1. The
 * com.microsoft names are looked up in that domain only: ai.onnx has no SkipLayerNormalization, and
 * its own Gelu (opset 20) lives with the unary ops.
 */
import { sizeOf, type Tensor } from '../../runtime/tensor.js';
import { dimEq, shapeStr, type Dim } from '../ir/dim.js';
import { activationFn } from './activation.js';
import { expectFloat, fromValues, sameDtype } from './math-common.js';
import type { InferContext, OpContext, OpDef, OutputInfo } from './registry.js';
import { broadcastIndex, broadcastShapes, normAxis, req } from './util.js';

const MS = 'com.microsoft';

/** Fail unless `what` broadcasts to exactly `target` (the normalised shape). */
function checkTo(ctx: InferContext, i: number, target: readonly Dim[], what: string): void {
  const p = ctx.inputs[i];
  if (!p) return;
  const bc = broadcastShapes(ctx, [target, p.shape]);
  if (bc.length !== target.length || !bc.every((d, k) => dimEq(d, target[k]))) {
    ctx.fail(`${what} ${shapeStr(p.shape)} does not broadcast to the normalised shape ${shapeStr(target)}`);
  }
}

interface Stats { y: Float64Array; mean: Float64Array; inv: Float64Array }

/**
 * Normalise x over its axes from `axis` on: RMS (no centring) or layer norm, with per-element
 * scale and bias broadcast over the normalised shape.
 */
function normalise(x: Tensor, axis: number, rms: boolean, eps: number, scale: Tensor, bias?: Tensor): Stats {
  const norm = x.shape.slice(axis), len = sizeOf(norm), rows = len === 0 ? 0 : x.size / len;
  const si = broadcastIndex(scale.shape, norm), bi = bias && broadcastIndex(bias.shape, norm);
  const y = new Float64Array(x.size), mean = new Float64Array(rows), inv = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const o = r * len;
    let m = 0;
    if (!rms) { for (let j = 0; j < len; j++) m += x.data[o + j]; m /= len; }
    let ss = 0;
    for (let j = 0; j < len; j++) { const d = x.data[o + j] - m; ss += d * d; }
    const k = 1 / Math.sqrt(ss / len + eps);
    mean[r] = m;
    inv[r] = k;
    for (let j = 0; j < len; j++) y[o + j] = (x.data[o + j] - m) * k * scale.data[si[j]] + (bias && bi ? bias.data[bi[j]] : 0);
  }
  return { y, mean, inv };
}

const statShape = (shape: readonly Dim[], axis: number): Dim[] => shape.map((d, i) => (i < axis ? d : 1));

/** RMSNormalization-23 and com.microsoft SimplifiedLayerNormalization: (X, scale) → (Y, inv_std_var?). */
function rmsNormOp(name: string, domain: string, since: number): OpDef {
  return {
    name, domain, since: [since],
    infer(ctx) {
      const x = ctx.input(0);
      expectFloat(ctx, x, 'X');
      sameDtype(ctx, ctx.inputs, ['X', 'scale']);
      const axis = normAxis(ctx, ctx.attrs.int('axis', -1), x.shape.length);
      checkTo(ctx, 1, x.shape.slice(axis), 'scale');
      return [{ dtype: x.dtype, shape: [...x.shape] }, { dtype: 'float32', shape: statShape(x.shape, axis) }];
    },
    evaluate(ctx, inputs) {
      const x = req(ctx, inputs, 0, 'X'), scale = req(ctx, inputs, 1, 'scale');
      const axis = normAxis(ctx, ctx.attrs.int('axis', -1), x.rank);
      const s = normalise(x, axis, true, ctx.attrs.float('epsilon', 1e-5), scale);
      const st = statShape(x.shape, axis) as number[];
      return [fromValues(x.dtype, x.shape, s.y), fromValues('float32', st, s.inv)];
    },
  };
}

/** Skip(Simplified)LayerNormalization: sum = input + skip (+ bias), normalised over the last axis. */
function skipNormOp(name: string, rms: boolean): OpDef {
  // Inputs: input, skip, gamma, then beta (layer norm only) and bias.
  const biasAt = rms ? 3 : 4;
  const sum = (ctx: OpContext, inputs: readonly (Tensor | undefined)[]): Tensor => {
    const x = req(ctx, inputs, 0, 'input'), skip = req(ctx, inputs, 1, 'skip'), bias = inputs[biasAt];
    const h = x.shape[x.rank - 1];
    const ki = broadcastIndex(skip.shape, x.shape);
    const out = new Float64Array(x.size);
    for (let i = 0; i < x.size; i++) out[i] = x.data[i] + skip.data[ki[i]] + (bias ? bias.data[i % h] : 0);
    return fromValues(x.dtype, x.shape, out);
  };
  return {
    name, domain: MS, since: [1],
    infer(ctx) {
      const x = ctx.input(0);
      expectFloat(ctx, x, 'input');
      sameDtype(ctx, ctx.inputs, rms ? ['input', 'skip', 'gamma', 'bias'] : ['input', 'skip', 'gamma', 'beta', 'bias']);
      const rank = x.shape.length;
      if (rank < 1) ctx.fail('input must have rank ≥ 1');
      checkTo(ctx, 1, x.shape, 'skip');
      const h = x.shape.slice(-1);
      checkTo(ctx, 2, h, 'gamma');
      if (!rms) checkTo(ctx, 3, h, 'beta');
      checkTo(ctx, biasAt, h, 'bias');
      const stats: OutputInfo = { dtype: 'float32', shape: statShape(x.shape, rank - 1) };
      return [{ dtype: x.dtype, shape: [...x.shape] }, stats, { ...stats, shape: [...stats.shape] }, { dtype: x.dtype, shape: [...x.shape] }];
    },
    evaluate(ctx, inputs) {
      const s = sum(ctx, inputs);
      const gamma = req(ctx, inputs, 2, 'gamma'), beta = rms ? undefined : inputs[3];
      const r = normalise(s, s.rank - 1, rms, ctx.attrs.float('epsilon', 1e-12), gamma, beta);
      const st = statShape(s.shape, s.rank - 1) as number[];
      return [fromValues(s.dtype, s.shape, r.y), fromValues('float32', st, r.mean), fromValues('float32', st, r.inv), s];
    },
  };
}

/** com.microsoft GELU forms: f(X + bias) with bias optional (FastGelu) or required (BiasGelu). */
function geluOp(name: string, kind: 'gelu_erf' | 'gelu_tanh', withBias: 'none' | 'optional' | 'required'): OpDef {
  return {
    name, domain: MS, since: [1],
    infer(ctx) {
      const x = ctx.input(0);
      expectFloat(ctx, x, 'X');
      if (withBias === 'required') ctx.input(1);
      if (withBias !== 'none') {
        sameDtype(ctx, ctx.inputs, ['X', 'bias']);
        checkTo(ctx, 1, x.shape.slice(-1), 'bias');
      }
      return [{ dtype: x.dtype, shape: [...x.shape] }];
    },
    evaluate(ctx, inputs) {
      const x = req(ctx, inputs, 0, 'X'), bias = withBias === 'none' ? undefined : inputs[1];
      if (withBias === 'required') req(ctx, inputs, 1, 'bias');
      const f = activationFn(kind), n = bias?.size ?? 1;
      return [fromValues(x.dtype, x.shape, Float64Array.from(x.data as ArrayLike<number>, (v, i) => f(v + (bias ? bias.data[i % n] : 0))))];
    },
  };
}

export const fusedFormOps: OpDef[] = [
  rmsNormOp('RMSNormalization', '', 23),
  rmsNormOp('SimplifiedLayerNormalization', MS, 1),
  rmsNormOp('SimplifiedLayerNormalization', '', 1), // onnxruntime registers it in ai.onnx
  skipNormOp('SkipSimplifiedLayerNormalization', true),
  skipNormOp('SkipLayerNormalization', false),
  geluOp('Gelu', 'gelu_erf', 'none'),
  geluOp('FastGelu', 'gelu_tanh', 'optional'),
  geluOp('BiasGelu', 'gelu_erf', 'required'),
];

/**
 * Linear family: y = x · Wᵀ with a fused epilogue (bias, activation, residual), the projection of
 * every attention and MLP block; `linearGated` is the fused gate+up GEMM of gated MLPs (SwiGLU,
 * GeGLU). Dense weights only here; quantized formats get their own references when they land.
 *
 * Legend: T tokens (GEMM rows, M), K input features, N output features, I intermediate size.
 *
 * Layouts (row-major): x [T, K]; W [N, K] as torch.nn.Linear stores it (K contiguous, so each
 * output is a dot product of two contiguous rows); bias [N]; residual and y [T, N].
 *
 * Epilogue order, all in fp64 on the fp64 accumulator, then ONE rounding to `dtype` at the store:
 *   y = act(x·Wᵀ + bias) + residual
 * (Hugging Face in fp16 rounds after each op; the difference is within a few ulps.)
 */
import { activationFn, type Activation, type GateActivation } from './activation.js';
import { checkDims, checkLength, storeRounder, type StorageDType } from './common.js';

export type { Activation, GateActivation } from './activation.js';

export interface Args {
  x: Float32Array;
  weight: Float32Array;
  bias?: Float32Array;
  residual?: Float32Array;
  activation?: Activation;
  T: number;
  K: number;
  N: number;
  dtype: StorageDType;
}

/** y[T, N] = act(x · Wᵀ + bias) + residual, rounded once to `dtype`. */
export function reference(a: Args): Float32Array {
  const { T, K, N } = a;
  checkDims('linear', { T, K, N }, 0);
  checkLength('linear', 'x', a.x, { T, K });
  checkLength('linear', 'weight', a.weight, { N, K });
  if (a.bias) checkLength('linear', 'bias', a.bias, { N });
  if (a.residual) checkLength('linear', 'residual', a.residual, { T, N });
  const acc = gemmNT(a.x, a.weight, 0, T, N, K);
  const act = a.activation && a.activation !== 'none' ? activationFn(a.activation) : undefined;
  const r = storeRounder(a.dtype);
  const { bias, residual } = a;
  const y = new Float32Array(T * N);
  for (let t = 0; t < T; t++) {
    for (let n = 0; n < N; n++) {
      const i = t * N + n;
      let v = acc[i];
      if (bias) v += bias[n];
      if (act) v = act(v);
      if (residual) v += residual[i];
      y[i] = r ? r(v) : v;
    }
  }
  return y;
}

export interface GatedArgs {
  x: Float32Array;
  /** [2I, K]: the I gate rows, then the I up rows (one merged weight). */
  weight?: Float32Array;
  /** [I, K] each, when gate and up are stored apart (instead of `weight`). */
  gateWeight?: Float32Array;
  upWeight?: Float32Array;
  activation: GateActivation;
  T: number;
  K: number;
  I: number;
  dtype: StorageDType;
}

/** out[T, I] = act(x · Wgᵀ) · (x · Wuᵀ), both GEMMs accumulated in fp64, rounded once. */
export function linearGated(a: GatedArgs): Float32Array {
  const { T, K, I } = a;
  checkDims('linearGated', { T, K, I }, 0);
  checkLength('linearGated', 'x', a.x, { T, K });
  let gate: Float64Array, up: Float64Array;
  if (a.weight) {
    if (a.gateWeight || a.upWeight) throw new Error('linearGated: give weight or gateWeight+upWeight, not both');
    checkLength('linearGated', 'weight', a.weight, { '2I': 2 * I, K });
    gate = gemmNT(a.x, a.weight, 0, T, I, K);
    up = gemmNT(a.x, a.weight, I * K, T, I, K);
  } else {
    if (!a.gateWeight || !a.upWeight) throw new Error('linearGated: needs weight [2I, K] or both gateWeight and upWeight [I, K]');
    checkLength('linearGated', 'gateWeight', a.gateWeight, { I, K });
    checkLength('linearGated', 'upWeight', a.upWeight, { I, K });
    gate = gemmNT(a.x, a.gateWeight, 0, T, I, K);
    up = gemmNT(a.x, a.upWeight, 0, T, I, K);
  }
  const act = activationFn(a.activation);
  const r = storeRounder(a.dtype);
  const out = new Float32Array(T * I);
  for (let i = 0; i < out.length; i++) {
    const v = act(gate[i]) * up[i];
    out[i] = r ? r(v) : v;
  }
  return out;
}

/**
 * The GEMM core shared by linear and logits: acc[T, N] = x[T, K] · W[wOff.., N×K]ᵀ in fp64.
 * Register-blocked 2 rows × 4 outputs: each loaded x element feeds four dot products and each
 * weight element two, which keeps V8 at a few GFLOP/s without allocating per element.
 */
export function gemmNT(x: Float32Array, w: Float32Array, wOff: number, T: number, N: number, K: number): Float64Array {
  const acc = new Float64Array(T * N);
  let t = 0;
  for (; t + 1 < T; t += 2) {
    const x0 = t * K, x1 = x0 + K;
    let n = 0;
    for (; n + 3 < N; n += 4) {
      const w0 = wOff + n * K, w1 = w0 + K, w2 = w1 + K, w3 = w2 + K;
      let a00 = 0, a01 = 0, a02 = 0, a03 = 0, a10 = 0, a11 = 0, a12 = 0, a13 = 0;
      for (let k = 0; k < K; k++) {
        const u = x[x0 + k], v = x[x1 + k];
        const b0 = w[w0 + k], b1 = w[w1 + k], b2 = w[w2 + k], b3 = w[w3 + k];
        a00 += u * b0; a01 += u * b1; a02 += u * b2; a03 += u * b3;
        a10 += v * b0; a11 += v * b1; a12 += v * b2; a13 += v * b3;
      }
      const o0 = t * N + n, o1 = o0 + N;
      acc[o0] = a00; acc[o0 + 1] = a01; acc[o0 + 2] = a02; acc[o0 + 3] = a03;
      acc[o1] = a10; acc[o1 + 1] = a11; acc[o1 + 2] = a12; acc[o1 + 3] = a13;
    }
    for (; n < N; n++) {
      const w0 = wOff + n * K;
      let a0 = 0, a1 = 0;
      for (let k = 0; k < K; k++) { const b = w[w0 + k]; a0 += x[x0 + k] * b; a1 += x[x1 + k] * b; }
      acc[t * N + n] = a0; acc[(t + 1) * N + n] = a1;
    }
  }
  for (; t < T; t++) {
    const x0 = t * K;
    for (let n = 0; n < N; n++) {
      const w0 = wOff + n * K;
      let a0 = 0;
      for (let k = 0; k < K; k++) a0 += x[x0 + k] * w[w0 + k];
      acc[t * N + n] = a0;
    }
  }
  return acc;
}

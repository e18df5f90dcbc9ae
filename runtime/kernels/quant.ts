/**
 * Quantized linear family (issue 11): weight formats and the references of the quantized GEMMs.
 *
 * Formats (W is [N, K] as in linear.ts, K contiguous):
 *  - int8_channel: q int8 [N, K], scale fp32 [N]; w ≈ q · scale[n]; symmetric, q ∈ [-127, 127].
 *  - int4_group:   q uint4 [N, K] packed two per byte along K, LOW NIBBLE FIRST (element k of a row
 *                  lives in byte k >> 1, bits 0-3 when k is even, 4-7 when odd), so a row is K/2
 *                  bytes (MatMulNBits' byte order, groups concatenated); scale fp32 [N, K/g];
 *                  zero uint8 [N, K/g] (one zero point per byte, values 0..15);
 *                  w ≈ (q − zero) · scale. The range of each group is widened to include 0, so the
 *                  zero point is always representable and |w − dequant(w)| ≤ scale/2.
 *  - smooth (optional, either format): fp32 [K] multiplier applied to x before the GEMM
 *    (x'_k = x_k · smooth_k), i.e. 1/s of SmoothQuant / AWQ whose s was folded into W.
 *
 * linearW8A8: per-token dynamic symmetric int8 activations (sx_t = max|x_t|/127), exact int32
 * accumulation of q_x · q_w, then y = acc · sx_t · sw_n + bias, act, + residual, one rounding.
 * linearW4A16: y = x · dequant(W)ᵀ in fp64 (what a dequantize-in-registers kernel computes).
 */
import { activationFn, type Activation } from './activation.js';
import { checkDims, checkLength, storeRounder, type StorageDType } from './common.js';
import { gemmNT } from './linear.js';

export interface Int8Channel { q: Int8Array; scale: Float32Array }
export interface Int4Group { packed: Uint8Array; scale: Float32Array; zero: Uint8Array; groupSize: number }

/** Symmetric per-output-channel int8: scale[n] = max|W[n,:]| / 127 (1 for an all-zero row). */
export function quantizeWeightInt8PerChannel(w: Float32Array, N: number, K: number): Int8Channel {
  checkLength('quantizeWeightInt8PerChannel', 'w', w, { N, K });
  const q = new Int8Array(N * K), scale = new Float32Array(N);
  for (let n = 0; n < N; n++) {
    let m = 0;
    for (let k = 0; k < K; k++) m = Math.max(m, Math.abs(w[n * K + k]));
    const s = Math.fround(m > 0 ? m / 127 : 1);
    scale[n] = s;
    for (let k = 0; k < K; k++) q[n * K + k] = Math.max(-127, Math.min(127, Math.round(w[n * K + k] / s)));
  }
  return { q, scale };
}

export function dequantizeInt8PerChannel(f: Int8Channel, N: number, K: number): Float32Array {
  const w = new Float32Array(N * K);
  for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) w[n * K + k] = f.q[n * K + k] * f.scale[n];
  return w;
}

/** Element k of row n of a packed int4 matrix (low nibble first). */
export function int4At(packed: Uint8Array, K: number, n: number, k: number): number {
  const b = packed[n * (K >> 1) + (k >> 1)];
  return k & 1 ? b >> 4 : b & 15;
}

/** Asymmetric uint4 with zero points, one (scale, zero) per `groupSize` run of K in each row. */
export function quantizeInt4Group(w: Float32Array, N: number, K: number, groupSize = 128, layer = 'weight'): Int4Group {
  checkLength('quantizeInt4Group', 'w', w, { N, K });
  if (!(groupSize > 0) || K % groupSize !== 0 || groupSize % 2 !== 0) {
    throw new Error(`int4 quantization of '${layer}': group size ${groupSize} does not divide K = ${K} (or is odd); choose a group size dividing ${K}`);
  }
  const G = K / groupSize;
  const packed = new Uint8Array(N * (K >> 1)), scale = new Float32Array(N * G), zero = new Uint8Array(N * G);
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < G; g++) {
      const k0 = n * K + g * groupSize;
      let lo = 0, hi = 0;
      for (let i = 0; i < groupSize; i++) { const v = w[k0 + i]; if (v < lo) lo = v; if (v > hi) hi = v; }
      const s = Math.fround(hi > lo ? (hi - lo) / 15 : 1);
      const z = Math.max(0, Math.min(15, Math.round(-lo / s)));
      scale[n * G + g] = s; zero[n * G + g] = z;
      for (let i = 0; i < groupSize; i++) {
        const q = Math.max(0, Math.min(15, Math.round(w[k0 + i] / s) + z));
        const k = g * groupSize + i, bi = n * (K >> 1) + (k >> 1);
        packed[bi] |= k & 1 ? q << 4 : q;
      }
    }
  }
  return { packed, scale, zero, groupSize };
}

export function dequantizeInt4Group(f: Int4Group, N: number, K: number): Float32Array {
  const G = K / f.groupSize, w = new Float32Array(N * K);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const g = n * G + Math.floor(k / f.groupSize);
      w[n * K + k] = (int4At(f.packed, K, n, k) - f.zero[g]) * f.scale[g];
    }
  }
  return w;
}

/** Per-token dynamic symmetric int8 quantization of activations x [T, K]. */
export function quantizeActivationsInt8(x: Float32Array, T: number, K: number): { q: Int8Array; scale: Float32Array } {
  const q = new Int8Array(T * K), scale = new Float32Array(T);
  for (let t = 0; t < T; t++) {
    let m = 0;
    for (let k = 0; k < K; k++) m = Math.max(m, Math.abs(x[t * K + k]));
    const s = Math.fround(m > 0 ? m / 127 : 1);
    scale[t] = s;
    for (let k = 0; k < K; k++) q[t * K + k] = Math.max(-127, Math.min(127, Math.round(x[t * K + k] / s)));
  }
  return { q, scale };
}

export interface QuantArgs {
  x: Float32Array;
  bias?: Float32Array;
  residual?: Float32Array;
  activation?: Activation;
  smooth?: Float32Array;
  T: number;
  K: number;
  N: number;
  dtype: StorageDType;
}

function smoothed(x: Float32Array, smooth: Float32Array | undefined, T: number, K: number): Float32Array {
  if (!smooth) return x;
  checkLength('quant linear', 'smooth', smooth, { K });
  const o = new Float32Array(T * K);
  for (let t = 0; t < T; t++) for (let k = 0; k < K; k++) o[t * K + k] = x[t * K + k] * smooth[k];
  return o;
}

function epilogue(a: QuantArgs, acc: (t: number, n: number) => number): Float32Array {
  const { T, N, bias, residual } = a;
  const act = a.activation && a.activation !== 'none' ? activationFn(a.activation) : undefined;
  const r = storeRounder(a.dtype);
  const y = new Float32Array(T * N);
  for (let t = 0; t < T; t++) {
    for (let n = 0; n < N; n++) {
      const i = t * N + n;
      let v = acc(t, n);
      if (bias) v += bias[n];
      if (act) v = act(v);
      if (residual) v += residual[i];
      y[i] = r ? r(v) : v;
    }
  }
  return y;
}

/** W8A8: exact integer GEMM (|acc| ≤ 127²·K < 2³¹ for K < 133 000), scales in the epilogue. */
export function linearW8A8(a: QuantArgs & { weight: Int8Channel }): Float32Array {
  const { T, K, N } = a;
  checkDims('linearW8A8', { T, K, N }, 0);
  checkLength('linearW8A8', 'x', a.x, { T, K });
  checkLength('linearW8A8', 'weight', a.weight.q, { N, K });
  checkLength('linearW8A8', 'scale', a.weight.scale, { N });
  const xq = quantizeActivationsInt8(smoothed(a.x, a.smooth, T, K), T, K);
  const acc = new Int32Array(T * N);
  const wq = a.weight.q;
  for (let t = 0; t < T; t++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += xq.q[t * K + k] * wq[n * K + k];
      acc[t * N + n] = s;
    }
  }
  return epilogue(a, (t, n) => acc[t * N + n] * xq.scale[t] * a.weight.scale[n]);
}

/** W4A16: y = x · dequant(W)ᵀ accumulated in fp64 (dequantisation in registers). */
export function linearW4A16(a: QuantArgs & { weight: Int4Group }): Float32Array {
  const { T, K, N } = a;
  checkDims('linearW4A16', { T, K, N }, 0);
  checkLength('linearW4A16', 'x', a.x, { T, K });
  checkLength('linearW4A16', 'packed', a.weight.packed, { N, 'K/2': K >> 1 });
  const w = dequantizeInt4Group(a.weight, N, K);
  const acc = gemmNT(smoothed(a.x, a.smooth, T, K), w, 0, T, N, K);
  return epilogue(a, (t, n) => acc[t * N + n]);
}

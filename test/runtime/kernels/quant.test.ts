/**
 * Quantized linear family (issue 11): quantize → dequantize round trips within scale/2, the int4
 * packing layout (low nibble first, groups along K), and linearW8A8 equal to the exact integer GEMM.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  dequantizeInt4Group, dequantizeInt8PerChannel, int4At, linearW4A16, linearW8A8, quantizeActivationsInt8,
  quantizeInt4Group, quantizeWeightInt8PerChannel,
} from '../../../runtime/kernels/quant.js';
import { reference } from '../../../runtime/kernels/linear.js';

const f32 = fc.float({ min: -4, max: 4, noNaN: true, noDefaultInfinity: true });

describe('quant', () => {
  it('int8 per-channel round trip: |w − dq| ≤ scale/2', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 9 }), fc.array(f32, { minLength: 45, maxLength: 45 }), (N, K, vals) => {
      const w = Float32Array.from({ length: N * K }, (_, i) => vals[i % vals.length]);
      const f = quantizeWeightInt8PerChannel(w, N, K);
      const d = dequantizeInt8PerChannel(f, N, K);
      for (let i = 0; i < w.length; i++) expect(Math.abs(w[i] - d[i])).toBeLessThanOrEqual(f.scale[Math.floor(i / K)] * (0.5 + 1e-6) + 1e-12);
    }));
  });

  it('int4 group round trip: |w − dq| ≤ scale/2 per group, zero points in 0..15', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 3 }), fc.constantFrom(2, 4, 8), fc.integer({ min: 1, max: 3 }), fc.array(f32, { minLength: 72, maxLength: 72 }), (N, g, G, vals) => {
      const K = g * G;
      const w = Float32Array.from({ length: N * K }, (_, i) => vals[i % vals.length]);
      const f = quantizeInt4Group(w, N, K, g);
      const d = dequantizeInt4Group(f, N, K);
      for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) {
        const gi = n * G + Math.floor(k / g);
        expect(f.zero[gi]).toBeLessThanOrEqual(15);
        expect(Math.abs(w[n * K + k] - d[n * K + k])).toBeLessThanOrEqual(f.scale[gi] * (0.5 + 1e-6) + 1e-12);
      }
    }));
  });

  it('int4 packing: two per byte, low nibble first; groups do not leak across boundaries', () => {
    // one row, K = 4, group 2: group 0 = [0, 1] → lo 0, hi 1; group 1 = [-3, 0] → lo -3, hi 0
    const f = quantizeInt4Group(Float32Array.of(0, 1, -3, 0), 1, 4, 2);
    expect(f.scale[0]).toBeCloseTo(1 / 15, 7);
    expect(f.zero[0]).toBe(0);
    expect(f.packed[0]).toBe(0 | (15 << 4)); // k=0 → q 0 in low nibble, k=1 → q 15 in high nibble
    expect(f.zero[1]).toBe(15);
    expect(int4At(f.packed, 4, 0, 2)).toBe(0);
    expect(int4At(f.packed, 4, 0, 3)).toBe(15);
    expect(f.packed[1]).toBe(0 | (15 << 4));
    expect(Array.from(dequantizeInt4Group(f, 1, 4)).map((v) => Math.round(v * 1e5) / 1e5)).toEqual([0, 1, -3, 0]);
  });

  it('group size not dividing K is a clear error naming the layer and K', () => {
    expect(() => quantizeInt4Group(new Float32Array(3 * 96), 3, 96, 128, 'layers.0.attn.q_proj')).toThrow(/layers\.0\.attn\.q_proj.*K = 96/);
  });

  it('linearW8A8 equals the exact integer computation', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 5 }), fc.array(f32, { minLength: 64, maxLength: 64 }), (T, K, N, vals) => {
      const x = Float32Array.from({ length: T * K }, (_, i) => vals[i % 64]);
      const w = Float32Array.from({ length: N * K }, (_, i) => vals[(i * 7 + 3) % 64]);
      const bias = Float32Array.from({ length: N }, (_, i) => i);
      const wf = quantizeWeightInt8PerChannel(w, N, K);
      const xf = quantizeActivationsInt8(x, T, K);
      const y = linearW8A8({ x, weight: wf, bias, T, K, N, dtype: 'float32' });
      for (let t = 0; t < T; t++) for (let n = 0; n < N; n++) {
        let acc = 0;
        for (let k = 0; k < K; k++) acc += xf.q[t * K + k] * wf.q[n * K + k];
        expect(Number.isSafeInteger(acc)).toBe(true);
        expect(y[t * N + n]).toBe(Math.fround(acc * xf.scale[t] * wf.scale[n] + bias[n]));
      }
    }));
  });

  it('linearW4A16 is x · dequant(W)ᵀ and smooth folds exactly (x/s)·(W·s)', () => {
    const T = 3, K = 8, N = 4;
    const x = Float32Array.from({ length: T * K }, (_, i) => Math.sin(i));
    const w = Float32Array.from({ length: N * K }, (_, i) => Math.cos(i * 1.3));
    const f = quantizeInt4Group(w, N, K, 4);
    const y = linearW4A16({ x, weight: f, T, K, N, dtype: 'float32' });
    const yr = reference({ x, weight: dequantizeInt4Group(f, N, K), T, K, N, dtype: 'float32' });
    expect(Array.from(y)).toEqual(Array.from(yr));
    const ones = new Float32Array(K).fill(1);
    expect(Array.from(linearW4A16({ x, weight: f, smooth: ones, T, K, N, dtype: 'float32' }))).toEqual(Array.from(y));
    // int8 W8A8 vs fp32: within the quantization error bound
    const y8 = linearW8A8({ x, weight: quantizeWeightInt8PerChannel(w, N, K), T, K, N, dtype: 'float32' });
    const yf = reference({ x, weight: w, T, K, N, dtype: 'float32' });
    for (let i = 0; i < y8.length; i++) expect(Math.abs(y8[i] - yf[i])).toBeLessThan(0.05);
  });
});

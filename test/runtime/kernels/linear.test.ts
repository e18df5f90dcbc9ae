/**
 * Linear family: the blocked GEMM and its epilogue against a naive triple loop, the gated form
 * against two separate GEMMs, and the 128×512×2048 speed the reference backend relies on.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { activationFn, type Activation } from '../../../runtime/kernels/activation.js';
import { linearGated, reference } from '../../../runtime/kernels/linear.js';
import { DTYPES, EPS, TINY, expectClose, expectRepresentable, mulberry32, randArray } from './helpers.js';

/** y[t, n] = Σ_k x[t, k] · W[n, k] in fp64, the plainest way. */
function naiveMatmul(x: Float32Array, w: Float32Array, T: number, N: number, K: number): number[] {
  const y: number[] = [];
  for (let t = 0; t < T; t++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += x[t * K + k] * w[n * K + k];
      y.push(s);
    }
  }
  return y;
}

const ACTS: Activation[] = ['none', 'relu', 'silu', 'gelu_tanh', 'gelu_erf'];

describe('linear', () => {
  it('hand case with bias and residual', () => {
    // x [1,2] = [1, 2]; W [3,2] rows (1,0), (0,1), (1,1); bias (10, 20, 30); residual (1, 1, 1)
    const y = reference({ x: Float32Array.of(1, 2), weight: Float32Array.of(1, 0, 0, 1, 1, 1), bias: Float32Array.of(10, 20, 30),
      residual: Float32Array.of(1, 1, 1), T: 1, K: 2, N: 3, dtype: 'float32' });
    expect(Array.from(y)).toEqual([12, 23, 34]);
    const r = reference({ x: Float32Array.of(1, 2), weight: Float32Array.of(-1, 0, 0, 1), T: 1, K: 2, N: 2, activation: 'relu', residual: Float32Array.of(5, 5), dtype: 'float32' });
    expect(Array.from(r)).toEqual([5, 7]); // act before the residual
  });
  it('matches the naive triple loop with every epilogue, odd shapes included', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 1, max: 33 }), fc.integer({ min: 1, max: 19 }),
      fc.constantFrom(...DTYPES), fc.constantFrom(...ACTS), fc.boolean(), fc.boolean(), fc.integer(), (T, K, N, dtype, act, withBias, withRes, seed) => {
        const rng = mulberry32(seed);
        const x = randArray(rng, T * K, 1, dtype), weight = randArray(rng, N * K, 1, dtype);
        const bias = withBias ? randArray(rng, N, 1, dtype) : undefined;
        const residual = withRes ? randArray(rng, T * N, 1, dtype) : undefined;
        const y = reference({ x, weight, bias, residual, activation: act, T, K, N, dtype });
        const f = activationFn(act);
        const want = naiveMatmul(x, weight, T, N, K).map((v, i) => f(v + (bias ? bias[i % N] : 0)) + (residual ? residual[i] : 0));
        expectRepresentable(y, dtype);
        expectClose(y, want, TINY[dtype] + 1e-12, EPS[dtype] * (1 + 1e-9), `linear ${act}`);
      }), { numRuns: 150 });
  });
  it('fp16 and bf16 outputs are within tolerance of fp32', () => {
    const rng = mulberry32(11), T = 5, K = 64, N = 48;
    const x = randArray(rng, T * K, 1, 'bfloat16'), weight = randArray(rng, N * K, 0.2, 'bfloat16');
    const f32 = reference({ x, weight, T, K, N, dtype: 'float32' });
    for (const dtype of ['float16', 'bfloat16'] as const) expectClose(reference({ x, weight, T, K, N, dtype }), f32, 1e-6, EPS[dtype], dtype);
  });
  it('names wrong-length arguments', () => {
    const base = { x: new Float32Array(6), weight: new Float32Array(12), T: 2, K: 3, N: 4, dtype: 'float32' as const };
    expect(() => reference({ ...base, x: new Float32Array(5) })).toThrow('linear: x has 5 elements, expected 6 ([T=2, K=3])');
    expect(() => reference({ ...base, weight: new Float32Array(11) })).toThrow(/linear: weight has 11 elements, expected 12 \(\[N=4, K=3\]\)/);
    expect(() => reference({ ...base, bias: new Float32Array(3) })).toThrow(/linear: bias has 3 elements/);
    expect(() => reference({ ...base, residual: new Float32Array(3) })).toThrow(/linear: residual has 3 elements/);
  });
});

describe('linearGated', () => {
  it('merged [2I, K] weight equals separate gate/up weights and act(x·Wg)·(x·Wu)', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 7 }), fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 13 }),
      fc.constantFrom(...DTYPES), fc.constantFrom('silu' as const, 'gelu_tanh' as const, 'gelu_erf' as const), fc.integer(), (T, K, I, dtype, act, seed) => {
        const rng = mulberry32(seed);
        const x = randArray(rng, T * K, 1, dtype), gateWeight = randArray(rng, I * K, 1, dtype), upWeight = randArray(rng, I * K, 1, dtype);
        const weight = new Float32Array(2 * I * K);
        weight.set(gateWeight);
        weight.set(upWeight, I * K);
        const merged = linearGated({ x, weight, activation: act, T, K, I, dtype });
        const apart = linearGated({ x, gateWeight, upWeight, activation: act, T, K, I, dtype });
        expect(Array.from(merged)).toEqual(Array.from(apart));
        const g = naiveMatmul(x, gateWeight, T, I, K), u = naiveMatmul(x, upWeight, T, I, K), f = activationFn(act);
        expectRepresentable(merged, dtype);
        expectClose(merged, g.map((v, i) => f(v) * u[i]), TINY[dtype] + 1e-12, EPS[dtype] * (1 + 1e-9), 'gated');
      }), { numRuns: 80 });
  });
  it('needs one weight form and names wrong lengths', () => {
    const base = { x: new Float32Array(2), activation: 'silu' as const, T: 1, K: 2, I: 3, dtype: 'float32' as const };
    expect(() => linearGated(base)).toThrow(/needs weight \[2I, K\] or both/);
    expect(() => linearGated({ ...base, weight: new Float32Array(6) })).toThrow(/linearGated: weight has 6 elements, expected 12/);
    expect(() => linearGated({ ...base, gateWeight: new Float32Array(6), upWeight: new Float32Array(5) })).toThrow(/linearGated: upWeight has 5 elements/);
    expect(() => linearGated({ ...base, weight: new Float32Array(12), gateWeight: new Float32Array(6) })).toThrow(/not both/);
  });
});

/**
 * Add+norm family: RMSNorm and LayerNorm against textbook formulas, the residual sum stored and
 * normalised as stored, rounding to the storage dtype.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { reference } from '../../../runtime/kernels/add-norm.js';
import { DTYPES, EPS, TINY, expectClose, expectRepresentable, mulberry32, randArray, roundTo } from './helpers.js';

/** The textbook norm of one row, in fp64. */
function naiveNorm(row: number[], kind: 'rms' | 'layer', eps: number, gamma: ArrayLike<number>, beta?: ArrayLike<number>): number[] {
  const n = row.length;
  const mean = kind === 'layer' ? row.reduce((a, b) => a + b, 0) / n : 0;
  const centred = row.map((v) => v - mean);
  const denom = Math.sqrt(centred.reduce((a, v) => a + v * v, 0) / n + eps);
  return centred.map((v, h) => (v / denom) * gamma[h] + (beta ? beta[h] : 0));
}

describe('addNorm', () => {
  it('RMSNorm of [3, 4] with gamma 1 is x / √12.5', () => {
    const { y, residual } = reference({ x: Float32Array.of(3, 4), gamma: Float32Array.of(1, 1), kind: 'rms', eps: 0, T: 1, H: 2, dtype: 'float32' });
    expect(residual).toBeUndefined();
    expect(Array.from(y)).toEqual([Math.fround(3 / Math.sqrt(12.5)), Math.fround(4 / Math.sqrt(12.5))]);
  });
  it('LayerNorm of [1, 3] is [-1, 1] scaled and shifted', () => {
    const { y } = reference({ x: Float32Array.of(1, 3), gamma: Float32Array.of(2, 3), beta: Float32Array.of(10, 20), kind: 'layer', eps: 0, T: 1, H: 2, dtype: 'float32' });
    expect(Array.from(y)).toEqual([8, 23]);
  });
  it('residual add: returns the sum and normalises it', () => {
    const { y, residual } = reference({ x: Float32Array.of(1, 2), residual: Float32Array.of(2, 2), gamma: Float32Array.of(1, 1), kind: 'rms', eps: 0, T: 1, H: 2, dtype: 'float32' });
    expect(Array.from(residual!)).toEqual([3, 4]);
    expect(y[1]).toBe(Math.fround(4 / Math.sqrt(12.5)));
  });
  it('matches the textbook norms for random shapes, kinds and dtypes', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 6 }), fc.integer({ min: 1, max: 70 }), fc.constantFrom('rms' as const, 'layer' as const),
      fc.constantFrom(...DTYPES), fc.boolean(), fc.integer(), (T, H, kind, dtype, withResidual, seed) => {
        const rng = mulberry32(seed);
        const x = randArray(rng, T * H, 3, dtype), res = randArray(rng, T * H, 3, dtype);
        const gamma = randArray(rng, H, 2, dtype), beta = kind === 'layer' ? randArray(rng, H, 1, dtype) : undefined;
        const eps = 1e-5;
        const out = reference({ x, residual: withResidual ? res : undefined, gamma, beta, kind, eps, T, H, dtype });
        const round = roundTo(dtype);
        const want: number[] = [], sums: number[] = [];
        for (let t = 0; t < T; t++) {
          const row = Array.from({ length: H }, (_, h) => (withResidual ? round(x[t * H + h] + res[t * H + h]) : x[t * H + h]));
          sums.push(...row);
          want.push(...naiveNorm(row, kind, eps, gamma, beta));
        }
        if (withResidual) expect(Array.from(out.residual!)).toEqual(sums);
        expectRepresentable(out.y, dtype);
        // y is rounded once from an fp64 result: within half an ulp of it (plus fp64 noise)
        expectClose(out.y, want, TINY[dtype] + 1e-12, EPS[dtype] * (1 + 1e-9), 'y');
      }), { numRuns: 100 });
  });
  it('fp16 and bf16 stay within tolerance of fp32', () => {
    const rng = mulberry32(3), T = 4, H = 64;
    const x = randArray(rng, T * H, 2, 'float16'), gamma = randArray(rng, H, 1, 'float16');
    const f32 = reference({ x, gamma, kind: 'rms', eps: 1e-6, T, H, dtype: 'float32' }).y;
    for (const dtype of ['float16', 'bfloat16'] as const) {
      expectClose(reference({ x, gamma, kind: 'rms', eps: 1e-6, T, H, dtype }).y, f32, 1e-6, EPS[dtype], dtype);
    }
  });
  it('names wrong-length arguments and bad options', () => {
    const base = { x: new Float32Array(4), gamma: new Float32Array(2), kind: 'rms' as const, eps: 1e-5, T: 2, H: 2, dtype: 'float32' as const };
    expect(() => reference({ ...base, x: new Float32Array(3) })).toThrow(/addNorm: x has 3 elements, expected 4/);
    expect(() => reference({ ...base, residual: new Float32Array(2) })).toThrow(/addNorm: residual has 2 elements/);
    expect(() => reference({ ...base, gamma: new Float32Array(3) })).toThrow(/addNorm: gamma has 3 elements/);
    expect(() => reference({ ...base, beta: new Float32Array(2) })).toThrow(/beta is only for kind 'layer'/);
    expect(() => reference({ ...base, kind: 'layer', beta: new Float32Array(1) })).toThrow(/addNorm: beta has 1 elements/);
  });
});

/**
 * Activation family: erf against tabulated values and an independent quadrature, the activation
 * formulas at hand-computed points, and gatedActivation against a naive loop.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { activationFn, erf, gatedActivation, geluErf, geluTanh, reference, relu, silu } from '../../../runtime/kernels/activation.js';
import { DTYPES, EPS, TINY, expectClose, expectRepresentable, mulberry32, randArray } from './helpers.js';

/** erf by composite Simpson on 2/√π·e^{-t²} over [0, x] (error ~1e-14 with 4000 intervals). */
function erfSimpson(x: number): number {
  const n = 4000, h = x / n, f = (t: number): number => Math.exp(-t * t);
  let s = f(0) + f(x);
  for (let i = 1; i < n; i++) s += (i % 2 ? 4 : 2) * f(i * h);
  return ((2 / Math.sqrt(Math.PI)) * s * h) / 3;
}

describe('erf', () => {
  // Python's math.erf (libm, correctly rounded to ~1 ulp).
  it.each([
    [-5.5, -0.9999999999999927], [-3, -0.9999779095030014], [-2.5, -0.999593047982555],
    [-1, -0.8427007929497149], [-0.3, -0.3286267594591274], [0.1, 0.1124629160182849],
    [0.5, 0.5204998778130465], [1, 0.8427007929497149], [1.7, 0.9837904585907745],
    [2, 0.9953222650189527], [2.4999, 0.9995928300996666], [2.5, 0.999593047982555],
    [2.75, 0.9998993780778803], [3, 0.9999779095030014], [4, 0.9999999845827421],
    [5.5, 0.9999999999999927], [5.99, 1.0],
  ])('erf(%d) = %d', (x, want) => expect(Math.abs(erf(x) - want)).toBeLessThan(2e-15));
  it('matches quadrature within 1e-12 and is odd', () => {
    fc.assert(fc.property(fc.double({ min: -7, max: 7, noNaN: true }), (x) => {
      expect(Math.abs(erf(x) - erfSimpson(x))).toBeLessThan(1e-12);
      expect(erf(-x) === -erf(x)).toBe(true);
    }), { numRuns: 300 });
  });
  it('edge values', () => {
    expect(erf(0)).toBe(0);
    expect(erf(Infinity)).toBe(1);
    expect(erf(-Infinity)).toBe(-1);
    expect(erf(NaN)).toBeNaN();
  });
});

describe('scalar activations', () => {
  it('hand-computed values', () => {
    expect(silu(1)).toBeCloseTo(0.7310585786300049, 15);
    expect(silu(0)).toBe(0);
    expect(silu(-1000)).toBe(-0);
    expect(silu(1000)).toBe(1000);
    expect(geluErf(1)).toBeCloseTo(0.8413447460685429, 15);
    expect(geluErf(-2)).toBeCloseTo(-0.04550026389635842, 15);
    expect(geluTanh(1)).toBeCloseTo(0.8411919906082768, 15);
    expect(relu(-2)).toBe(0);
    expect(relu(3)).toBe(3);
    expect(relu(NaN)).toBeNaN();
    expect(activationFn('none')(-1.5)).toBe(-1.5);
  });
  it('gelu_tanh approximates gelu_erf within 5e-4', () => {
    for (let x = -8; x <= 8; x += 0.01) expect(Math.abs(geluTanh(x) - geluErf(x))).toBeLessThan(5e-4);
  });
});

describe('reference (elementwise)', () => {
  it.each(DTYPES)('rounds act(x) once to %s', (dtype) => {
    const x = randArray(mulberry32(1), 1000, 6, dtype);
    for (const act of ['relu', 'silu', 'gelu_tanh', 'gelu_erf'] as const) {
      const y = reference({ x, activation: act, dtype });
      expectRepresentable(y, dtype);
      const f = activationFn(act);
      expectClose(y, Array.from(x, f), TINY[dtype], EPS[dtype], act);
    }
  });
});

describe('gatedActivation', () => {
  it('equals act(gate)·up on naive loops, for random shapes and dtypes', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 6 }), fc.integer({ min: 1, max: 40 }), fc.constantFrom(...DTYPES),
      fc.constantFrom('silu', 'gelu_tanh', 'gelu_erf', 'relu'), fc.integer(), (T, I, dtype, act, seed) => {
        const input = randArray(mulberry32(seed), T * 2 * I, 4, dtype);
        const out = gatedActivation({ input, T, I, activation: act, dtype });
        const f = activationFn(act);
        const want: number[] = [];
        for (let t = 0; t < T; t++) for (let i = 0; i < I; i++) want.push(f(input[t * 2 * I + i]) * input[t * 2 * I + I + i]);
        expectRepresentable(out, dtype);
        expectClose(out, want, TINY[dtype], EPS[dtype], 'gated');
      }), { numRuns: 60 });
  });
  it('SwiGLU of a hand case', () => {
    const out = gatedActivation({ input: Float32Array.of(1, 0, 2, 3), T: 1, I: 2, activation: 'silu', dtype: 'float32' });
    expect(out[0]).toBeCloseTo(silu(1) * 2, 6);
    expect(out[1]).toBe(0);
  });
  it('names a wrong-length input', () => {
    expect(() => gatedActivation({ input: new Float32Array(5), T: 1, I: 3, activation: 'silu', dtype: 'float32' }))
      .toThrow(/gatedActivation: input has 5 elements, expected 6/);
  });
});

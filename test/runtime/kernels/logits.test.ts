/**
 * Logits family: row selection, the LM-head GEMM in fp32, softcap, and argmax tie-breaking.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { argmax, reference } from '../../../runtime/kernels/logits.js';
import { expectClose, mulberry32, randArray } from './helpers.js';

describe('logits', () => {
  it('selects rows and multiplies by Wᵀ (tied embeddings [V, H])', () => {
    const hidden = Float32Array.of(1, 0, 0, 1, 2, 3); // T=3, H=2
    const weight = Float32Array.of(1, 1, 1, -1, 0, 2); // V=3
    const out = reference({ hidden, logitIndices: Int32Array.of(2, 0), weight, T: 3, H: 2, V: 3 });
    expect(Array.from(out)).toEqual([5, -1, 6, 1, 1, 0]);
  });
  it('matches a naive loop on random shapes, with bias and softcap, in fp32 only', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 24 }), fc.integer({ min: 1, max: 40 }),
      fc.boolean(), fc.option(fc.double({ min: 1, max: 50, noNaN: true }), { nil: undefined }), fc.integer(), (T, H, V, withBias, softcap, seed) => {
        const rng = mulberry32(seed);
        const hidden = randArray(rng, T * H, 2, 'bfloat16'), weight = randArray(rng, V * H, 1, 'bfloat16');
        const bias = withBias ? randArray(rng, V, 1) : undefined;
        const logitIndices = Int32Array.from({ length: 1 + Math.floor(rng() * T) }, () => Math.floor(rng() * T));
        const out = reference({ hidden, logitIndices, weight, bias, T, H, V, softcap });
        const want: number[] = [];
        for (const t of logitIndices) {
          for (let v = 0; v < V; v++) {
            let s = bias ? bias[v] : 0;
            for (let h = 0; h < H; h++) s += hidden[t * H + h] * weight[v * H + h];
            want.push(softcap === undefined ? s : softcap * Math.tanh(s / softcap));
          }
        }
        expectClose(out, want, 1e-12, 2 ** -24 * (1 + 1e-9), 'logits');
      }), { numRuns: 100 });
  });
  it('softcap bounds the logits', () => {
    const out = reference({ hidden: Float32Array.of(100), logitIndices: Int32Array.of(0), weight: Float32Array.of(1, -1), T: 1, H: 1, V: 2, softcap: 30 });
    expect(out[0]).toBeCloseTo(30 * Math.tanh(100 / 30), 5);
    expect(out[1]).toBeCloseTo(-30 * Math.tanh(100 / 30), 5);
  });
  it('names bad logit indices and wrong lengths', () => {
    const base = { hidden: new Float32Array(4), weight: new Float32Array(6), T: 2, H: 2, V: 3 };
    expect(() => reference({ ...base, logitIndices: Int32Array.of(0, 2) })).toThrow('logits: logitIndices[1] is 2, outside 0..1');
    expect(() => reference({ ...base, logitIndices: Int32Array.of(0), hidden: new Float32Array(3) })).toThrow(/logits: hidden has 3 elements/);
    expect(() => reference({ ...base, logitIndices: Int32Array.of(0), weight: new Float32Array(5) })).toThrow(/logits: weight has 5 elements/);
    expect(() => reference({ ...base, logitIndices: Int32Array.of(0), bias: new Float32Array(2) })).toThrow(/logits: bias has 2 elements/);
  });
});

describe('argmax', () => {
  it('lowest index on ties, NaN never wins', () => {
    expect(Array.from(argmax(Float32Array.of(1, 3, 3, 0, /**/ -1, -1, -1, -1, /**/ NaN, 2, NaN, 2), 4))).toEqual([1, 0, 1]);
    expect(Array.from(argmax(Float32Array.of(-Infinity, -Infinity), 2))).toEqual([0]);
    expect(Array.from(argmax(Float32Array.of(NaN, NaN), 2))).toEqual([0]);
  });
  it('agrees with indexOf(max) on random rows', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: -3, max: 3 }), { minLength: 1, maxLength: 30 }), (row) => {
      expect(argmax(Float32Array.from(row), row.length)[0]).toBe(row.indexOf(Math.max(...row)));
    }));
  });
  it('rejects a length that is not a multiple of V', () => {
    expect(() => argmax(new Float32Array(5), 2)).toThrow(/argmax: logits has 5 elements, not a multiple of V=2/);
  });
});

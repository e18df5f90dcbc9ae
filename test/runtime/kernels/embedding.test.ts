/**
 * Embedding family: gathers rows, adds learned positions, scales, rounds once; names bad ids.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { reference } from '../../../runtime/kernels/embedding.js';
import { DTYPES, EPS, TINY, expectClose, expectRepresentable, mulberry32, randArray } from './helpers.js';

describe('embedding', () => {
  it('hand case: rows by id, plus positions (GPT-2)', () => {
    const table = Float32Array.of(0, 1, 10, 11, 20, 21); // V=3, H=2
    const out = reference({ tokens: Int32Array.of(2, 0, 2), table, V: 3, H: 2, dtype: 'float32' });
    expect(Array.from(out)).toEqual([20, 21, 0, 1, 20, 21]);
    const wpe = Float32Array.of(0.5, 0.25, 100, 200); // P=2
    const g = reference({ tokens: Int32Array.of(1, 1), table, V: 3, H: 2, positions: Int32Array.of(0, 1), positionTable: wpe, P: 2, dtype: 'float32' });
    expect(Array.from(g)).toEqual([10.5, 11.25, 110, 211]);
  });
  it('Gemma scale multiplies after the gather', () => {
    const out = reference({ tokens: Int32Array.of(0), table: Float32Array.of(1, -2), V: 1, H: 2, scale: Math.sqrt(2), dtype: 'float32' });
    expect(Array.from(out)).toEqual([Math.fround(Math.SQRT2), Math.fround(-2 * Math.SQRT2)]);
  });
  it('matches a naive gather for random shapes and dtypes', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 50 }), fc.integer({ min: 1, max: 24 }), fc.integer({ min: 0, max: 20 }),
      fc.constantFrom(...DTYPES), fc.boolean(), fc.integer(), (V, H, T, dtype, learned, seed) => {
        const rng = mulberry32(seed);
        const table = randArray(rng, V * H, 1, dtype);
        const P = 8;
        const wpe = randArray(rng, P * H, 1, dtype);
        const tokens = Int32Array.from({ length: T }, () => Math.floor(rng() * V));
        const positions = Int32Array.from({ length: T }, () => Math.floor(rng() * P));
        const scale = rng() < 0.5 ? undefined : 1 + rng();
        const out = reference({ tokens, table, V, H, dtype, scale, ...(learned ? { positions, positionTable: wpe, P } : {}) });
        const want: number[] = [];
        for (let t = 0; t < T; t++) {
          for (let h = 0; h < H; h++) want.push((table[tokens[t] * H + h] + (learned ? wpe[positions[t] * H + h] : 0)) * (scale ?? 1));
        }
        expectRepresentable(out, dtype);
        expectClose(out, want, TINY[dtype], EPS[dtype], 'embedding');
      }), { numRuns: 80 });
  });
  it('names the token index and id of an out-of-range token', () => {
    const table = new Float32Array(6);
    expect(() => reference({ tokens: Int32Array.of(0, 3), table, V: 3, H: 2, dtype: 'float32' }))
      .toThrow('embedding: token 1 has id 3, outside the vocabulary 0..2');
    expect(() => reference({ tokens: Int32Array.of(-1), table, V: 3, H: 2, dtype: 'float32' })).toThrow(/token 0 has id -1/);
    expect(() => reference({ tokens: Int32Array.of(0), table, V: 3, H: 2, positions: Int32Array.of(5), positionTable: new Float32Array(4), P: 2, dtype: 'float32' }))
      .toThrow(/token 0 has position 5/);
  });
  it('names wrong-length arguments', () => {
    expect(() => reference({ tokens: Int32Array.of(0), table: new Float32Array(5), V: 3, H: 2, dtype: 'float32' })).toThrow(/embedding: table has 5 elements, expected 6/);
    expect(() => reference({ tokens: Int32Array.of(0), table: new Float32Array(6), V: 3, H: 2, positions: Int32Array.of(0, 0), positionTable: new Float32Array(4), P: 2, dtype: 'float32' }))
      .toThrow(/embedding: positions has 2 elements, expected 1/);
    expect(() => reference({ tokens: Int32Array.of(0), table: new Float32Array(6), V: 3, H: 2, positions: Int32Array.of(0), dtype: 'float32' }))
      .toThrow(/come together/);
  });
});

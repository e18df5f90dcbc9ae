/**
 * The shared helpers of the references: the fast store rounding must be bit-identical to
 * floats.ts's, and argument checks name the family and argument.
 */
import { describe, expect, it } from 'vitest';
import { fp16Decode, roundBf16, roundFp16 } from '../../../runtime/floats.js';
import { checkDims, checkLength, storeBf16, storeFp16, storeRounder, type StorageDType } from '../../../runtime/kernels/common.js';
import { mulberry32 } from './helpers.js';

const f32 = new Float32Array(1), u32 = new Uint32Array(f32.buffer);
const fromBits = (b: number): number => { u32[0] = b >>> 0; return f32[0]; };
const same = (a: number, b: number): boolean => Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b));

describe('store rounding', () => {
  it('storeFp16 equals roundFp16 on every fp16 value, its neighbours and midpoints', () => {
    for (let h = 0; h < 0x7c00; h++) {
      for (const sign of [1, -1]) {
        const v = sign * fp16Decode(h), next = sign * fp16Decode(h + 1);
        for (const x of [v, (v + next) / 2, Math.fround((v + next) / 2) + 1e-12 * sign, v + (next - v) * 0.25]) {
          if (!same(storeFp16(x), roundFp16(x))) throw new Error(`storeFp16(${x}) = ${storeFp16(x)}, roundFp16 ${roundFp16(x)}`);
        }
      }
    }
  });
  it('storeFp16 and storeBf16 equal floats.ts on random fp32 bit patterns and fp64 values', () => {
    const rng = mulberry32(7);
    for (let i = 0; i < 300_000; i++) {
      const x = i % 2 ? fromBits(Math.floor(rng() * 2 ** 32)) : (rng() - 0.5) * 2 ** Math.floor(rng() * 60 - 40);
      if (!same(storeFp16(x), roundFp16(x))) throw new Error(`storeFp16(${x}) = ${storeFp16(x)}, roundFp16 ${roundFp16(x)}`);
      if (!same(storeBf16(x), roundBf16(x))) throw new Error(`storeBf16(${x}) = ${storeBf16(x)}, roundBf16 ${roundBf16(x)}`);
    }
  });
  it('handles zeros, infinities, NaN and overflow', () => {
    for (const x of [0, -0, Infinity, -Infinity, 65504, 65519.99, 65520, -65520, 1e-8, -3e-8, 2 ** -24, 2 ** -25]) {
      expect(Object.is(storeFp16(x), roundFp16(x)), `fp16 ${x}`).toBe(true);
      expect(Object.is(storeBf16(x), roundBf16(x)), `bf16 ${x}`).toBe(true);
    }
    expect(storeFp16(NaN)).toBeNaN();
    expect(storeBf16(NaN)).toBeNaN();
  });
  it('fp32 storage needs no rounder; other dtypes are refused', () => {
    expect(storeRounder('float32')).toBeUndefined();
    expect(() => storeRounder('int8' as StorageDType)).toThrow(/unsupported storage dtype 'int8'/);
  });
});

describe('argument checks', () => {
  it('name the family, the argument and the expected shape', () => {
    expect(() => checkLength('linear', 'weight', new Float32Array(12), { N: 4, K: 4 }))
      .toThrow('linear: weight has 12 elements, expected 16 ([N=4, K=4])');
    expect(() => checkDims('rope', { D: 0 })).toThrow('rope: D must be an integer ≥ 1, got 0');
    expect(() => checkDims('rope', { T: 1.5 }, 0)).toThrow(/T must be an integer ≥ 0/);
  });
});

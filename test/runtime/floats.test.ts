/**
 * Narrow float formats against bit patterns from the IEEE 754 / OCP FP8 specifications.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  bf16Decode, bf16Encode, fp16Decode, fp16Encode, fp8e4m3Decode, fp8e4m3Encode, fp8e5m2Decode, fp8e5m2Encode, roundFp16,
} from '../../runtime/floats.js';

describe('fp16', () => {
  it.each([
    [1, 0x3c00], [-2, 0xc000], [65504, 0x7bff], [2 ** -14, 0x0400], [2 ** -24, 0x0001],
    [0.333251953125, 0x3555], [Infinity, 0x7c00], [-Infinity, 0xfc00], [0, 0], [65520, 0x7c00],
  ])('%d encodes as %i', (x, bits) => {
    expect(fp16Encode(x)).toBe(bits);
    if (Number.isFinite(x) && x !== 65520) expect(fp16Decode(bits)).toBe(x);
  });
  it('rounds half to even', () => {
    expect(fp16Encode(1 + 2 ** -11)).toBe(0x3c00); // tie → even (mantissa 0)
    expect(fp16Encode(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie → even (mantissa 2)
    expect(fp16Encode(2 ** -25)).toBe(0); // half the smallest subnormal → 0
  });
  it('NaN stays NaN', () => expect(Number.isNaN(fp16Decode(fp16Encode(NaN)))).toBe(true));
  it('round trip of every finite bit pattern', () => {
    for (let b = 0; b < 0x7c00; b++) {
      expect(fp16Encode(fp16Decode(b))).toBe(b);
      expect(fp16Encode(fp16Decode(b | 0x8000))).toBe(b | 0x8000);
    }
  });
  it('rounding is idempotent and nearest', () => {
    fc.assert(fc.property(fc.float({ min: -60000, max: 60000, noNaN: true }), (x) => {
      const r = roundFp16(x);
      expect(roundFp16(r)).toBe(r);
      // the neighbour patterns are no closer
      const b = fp16Encode(x) & 0x7fff;
      for (const nb of [b - 1, b + 1]) {
        if (nb < 0 || nb >= 0x7c00) continue;
        expect(Math.abs(Math.abs(x) - fp16Decode(nb))).toBeGreaterThanOrEqual(Math.abs(Math.abs(x) - Math.abs(r)));
      }
    }));
  });
});

describe('bf16', () => {
  it.each([[1, 0x3f80], [-2, 0xc000], [3.140625, 0x4049], [Infinity, 0x7f80]])('%d encodes as %i', (x, bits) => {
    expect(bf16Encode(x)).toBe(bits);
    expect(bf16Decode(bits)).toBe(x);
  });
  it('rounds half to even', () => {
    expect(bf16Encode(1 + 2 ** -8)).toBe(0x3f80);
    expect(bf16Encode(1 + 3 * 2 ** -8)).toBe(0x3f82);
  });
});

describe('fp8', () => {
  it('e4m3fn: max 448, NaN at 0x7f, no infinities, saturating by default', () => {
    expect(fp8e4m3Decode(0x7e)).toBe(448);
    expect(Number.isNaN(fp8e4m3Decode(0x7f))).toBe(true);
    expect(fp8e4m3Encode(1)).toBe(0x38);
    expect(fp8e4m3Encode(1000)).toBe(0x7e);
    expect(fp8e4m3Encode(Infinity)).toBe(0x7e);
    expect(fp8e4m3Encode(1000, false)).toBe(0x7f);
    expect(fp8e4m3Decode(0x01)).toBe(2 ** -9);
  });
  it('e5m2: max 57344, infinities', () => {
    expect(fp8e5m2Decode(0x7b)).toBe(57344);
    expect(fp8e5m2Decode(0x7c)).toBe(Infinity);
    expect(fp8e5m2Encode(1)).toBe(0x3c);
    expect(fp8e5m2Encode(1e6, false)).toBe(0x7c);
  });
  it('every e4m3 pattern round trips', () => {
    for (let b = 0; b < 256; b++) {
      if ((b & 0x7f) === 0x7f) continue;
      expect(fp8e4m3Encode(fp8e4m3Decode(b))).toBe(b);
    }
  });
});

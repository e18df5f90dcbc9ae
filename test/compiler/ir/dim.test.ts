/**
 * Symbolic dims: canonical forms compare equal, and every operation agrees with arithmetic on
 * numbers under any binding of the symbols.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  SymDim, dimAdd, dimEq, dimFloorDiv, dimMul, dimStr, dimSub, evalDim, substituteDim, type Dim,
} from '../../../compiler/ir/dim.js';

const past = SymDim.symbol('past_sequence_length');
const seq = SymDim.symbol('sequence_length');
const batch = SymDim.symbol('batch');

describe('symbolic dims', () => {
  it('print readably and canonically', () => {
    expect(dimStr(dimAdd(past, seq))).toBe('past_sequence_length + sequence_length');
    expect(dimStr(dimAdd(seq, past))).toBe('past_sequence_length + sequence_length');
    expect(dimStr(dimMul(batch, 8))).toBe('8*batch');
    expect(dimStr(dimMul(seq, batch))).toBe('batch*sequence_length');
    expect(dimStr(dimSub(dimAdd(past, seq), past))).toBe('sequence_length');
    expect(dimSub(dimAdd(past, 3), past)).toBe(3);
  });
  it('divide exactly where they can', () => {
    expect(dimStr(dimFloorDiv(dimMul(batch, 512), 64))).toBe('8*batch');
    expect(dimStr(dimFloorDiv(dimMul(batch, seq), seq))).toBe('batch');
    expect(dimStr(dimFloorDiv(seq, 2))).toBe('floor(sequence_length/2)');
  });
  it('substitute symbols by expressions', () => {
    const total = SymDim.symbol('total');
    const d = dimMul(dimAdd(total, 1), 2);
    expect(dimStr(substituteDim(d, new Map([['total', dimAdd(past, seq)]])))).toBe('2*past_sequence_length + 2*sequence_length + 2');
  });

  const exprs: fc.Arbitrary<Dim> = fc.letrec<{ e: Dim }>((tie) => ({
    e: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.integer({ min: -5, max: 20 }),
      fc.constantFrom<Dim>(past, seq, batch),
      fc.tuple(tie('e'), tie('e')).map(([a, b]) => dimAdd(a, b)),
      fc.tuple(tie('e'), tie('e')).map(([a, b]) => dimMul(a, b)),
      fc.tuple(tie('e'), tie('e')).map(([a, b]) => dimSub(a, b)),
    ),
  })).e;

  it('agree with numbers under every binding (property)', () => {
    fc.assert(fc.property(exprs, exprs, fc.nat(50), fc.nat(50), fc.nat(8), (a, b, p, s, bt) => {
      const env = new Map([['past_sequence_length', p], ['sequence_length', s], ['batch', bt]]);
      const x = evalDim(a, env), y = evalDim(b, env);
      // (+ 0 folds -0 into 0: dims are integers)
      expect(evalDim(dimAdd(a, b), env) + 0).toBe(x + y + 0);
      expect(evalDim(dimMul(a, b), env) + 0).toBe(x * y + 0);
      expect(evalDim(dimSub(a, b), env) + 0).toBe(x - y + 0);
      // canonical: a + b and b + a are the same expression
      expect(dimEq(dimAdd(a, b), dimAdd(b, a))).toBe(true);
      expect(dimEq(dimMul(a, b), dimMul(b, a))).toBe(true);
    }));
  });
});

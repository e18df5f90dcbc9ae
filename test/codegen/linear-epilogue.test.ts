/**
 * linear family epilogue on the CPU emulator: bias, each activation, residual, and the scatter of
 * output columns to 2-3 outs (QKV / gate-up splits, odd boundaries that break the paired store,
 * outs listed out of order), on both the GEMV (T <= 8) and the GEMM path, bf16 and fp16; plus a
 * fast-check property over random small shapes and epilogues.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TILE_MENU, type LinearActivation } from '../../compiler/codegen/families/linear.js';
import { hasGxx } from '../helpers/emu-kernel.js';
import { cfg, checkLinear, type LinearCase } from './linear-harness.js';

const small = [{ ...TILE_MENU.t32x32, stages: 2, maxT: null }];

describe.skipIf(!hasGxx)('linear epilogue on the emulator', () => {
  describe.each(['relu', 'silu', 'gelu_tanh', 'gelu_erf'] as const)('activation %s + bias', (act: LinearActivation) => {
    const c = cfg('bfloat16', act, small);
    it('GEMV (T=5) and GEMM (T=17)', () => {
      expect(checkLinear(c, { T: 5, K: 64, N: 72, bias: true })).toBe(1);
      expect(checkLinear(c, { T: 17, K: 136, N: 72, bias: true })).toBe(2);
    });
  });

  const cases: [string, Omit<LinearCase, 'T'>][] = [
    ['bias', { K: 64, N: 72, bias: true }],
    ['residual', { K: 64, N: 136, residual: true }],
    ['bias + residual, QKV split in 3 outs', { K: 32, N: 72, bias: true, residual: true, outs: [[0, 24], [24, 48], [48, 72]] }],
    ['gate/up split in 2 outs', { K: 136, N: 136, outs: [[0, 68], [68, 136]] }],
    ['odd boundaries, outs out of order', { K: 64, N: 72, residual: true, outs: [[33, 47], [47, 72], [0, 33]] }],
    ['4 outs, odd N', { K: 32, N: 25, bias: true, outs: [[0, 7], [7, 8], [8, 20], [20, 25]] }],
  ];
  describe.each(['bfloat16', 'float16'] as const)('%s, no activation', (dtype) => {
    const c = cfg(dtype, 'none', small);
    it.each(cases)('%s', (_, tc) => {
      expect(checkLinear(c, { ...tc, T: 2 })).toBe(1);
      expect(checkLinear(c, { ...tc, T: 33 })).toBe(2);
    });
  });

  it('fp16 silu + bias + residual into 2 outs (GEMV, GEMM, simple path)', () => {
    const c = cfg('float16', 'silu', small);
    const tc = { K: 64, N: 72, bias: true, residual: true, outs: [[0, 40], [40, 72]] as [number, number][] };
    expect(checkLinear(c, { ...tc, T: 3 })).toBe(1);
    expect(checkLinear(c, { ...tc, T: 40 })).toBe(2);
    expect(checkLinear(c, { ...tc, K: 20, T: 9 })).toBe(0);
  });

  it('property: random shapes, epilogues and splits match the reference', () => {
    const c = cfg('bfloat16', 'gelu_tanh', [
      { ...TILE_MENU.t32x32, stages: 3, maxT: 24 }, { ...TILE_MENU.t64x64, stages: 2, maxT: null },
    ], { cols: 2 });
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 80 }),
      fc.boolean(), fc.boolean(), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 0, max: 1 << 30 }),
      (T, k8, N, bias, residual, nOuts, seed) => {
        const K = seed % 5 === 0 ? k8 * 8 + 3 : k8 * 8; // some K % 8 != 0 (simple path)
        const cuts = [0, ...Array.from({ length: Math.min(nOuts, N) - 1 }, (_, i) => 1 + ((seed >> (4 * i)) % (N - 1))), N]
          .sort((a, b) => a - b).filter((v, i, a) => i === 0 || v !== a[i - 1]);
        const outs = cuts.slice(1).map((e, i) => [cuts[i], e] as [number, number]);
        const path = checkLinear(c, { T, K, N, bias, residual, outs, seed });
        expect(path).toBe(K % 8 ? 0 : T <= 8 ? 1 : T <= 24 ? 2 : 3);
      },
    ), { numRuns: 12, seed: 20261128 });
  });
});

/**
 * linear family, int4_group weights (W4A16) on the CPU emulator against runtime/kernels/quant.ts
 * linearW4A16: packed nibbles (low first), per-group scale, zero points given or default 8,
 * SmoothQuant/AWQ smooth folded into the dequantized weight; GEMV (fp32 dequant) and GEMM
 * (dequantized in registers, rounded to the activation dtype for mma.sync) paths, bf16 and fp16.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { configForLinear, kernelName, TILE_MENU, type LinearConfig } from '../../compiler/codegen/families/linear.js';
import type { CodegenContext } from '../../compiler/codegen/kernel.js';
import { hasGxx } from '../helpers/emu-kernel.js';
import { cfg, checkLinear, tolerances } from './linear-harness.js';

const w4 = (c: LinearConfig, groupSize: number): LinearConfig => ({ ...c, weight: { kind: 'int4_group', groupSize } });
// GEMM path: the dequantized weight is rounded to the activation dtype before the mma (one more
// rounding than the fp64 reference), so its bf16 bound is looser.
const GEMM_TOL = { bfloat16: { rel: 6e-3, maxAbs: 2 ** -6 }, float16: { rel: 1e-3, maxAbs: 2 ** -9 } } as const;

describe.skipIf(!hasGxx)('linear W4A16 on the emulator', () => {
  describe.each(['bfloat16', 'float16'] as const)('%s', (dtype) => {
    const c = w4(cfg(dtype, 'silu', [{ ...TILE_MENU.t32x64, stages: 3, maxT: 32 }, { ...TILE_MENU.t64x64, stages: 2, maxT: null }]), 32);
    it('GEMV: zero points, smooth, bias, 2 outs', () => {
      expect(checkLinear(c, { T: 1, K: 64, N: 72, zero: true, smooth: true, bias: true, outs: [[0, 40], [40, 72]] }, tolerances[dtype])).toBe(1);
      expect(checkLinear(c, { T: 5, K: 128, N: 24, residual: true }, tolerances[dtype])).toBe(1);
    });
    it('GEMM: both tiles, partial M and N, zero points and smooth', () => {
      expect(checkLinear(c, { T: 17, K: 96, N: 72, zero: true, smooth: true, bias: true }, GEMM_TOL[dtype])).toBe(2);
      expect(checkLinear(c, { T: 70, K: 64, N: 136, zero: true, residual: true }, GEMM_TOL[dtype])).toBe(3);
    });
  });

  it('group size 8 with K = 136 (partial K slice) on both paths', () => {
    const c = w4(cfg('bfloat16', 'none', [{ ...TILE_MENU.t32x32, stages: 3, maxT: null }]), 8);
    expect(checkLinear(c, { T: 2, K: 136, N: 40, zero: true, smooth: true })).toBe(1);
    expect(checkLinear(c, { T: 33, K: 136, N: 40, zero: true, smooth: true }, GEMM_TOL.bfloat16)).toBe(2);
  });

  it.each([[16, 48], [24, 72], [128, 256]])('GEMV runs per lane follow the group size %i (K = %i)', (gs, K) => {
    const c = w4(cfg('bfloat16', 'none', [{ ...TILE_MENU.t32x32, stages: 2, maxT: null }], { cols: 4 }), gs);
    expect(checkLinear(c, { T: 3, K, N: 11, zero: true, smooth: true, bias: true })).toBe(1);
    expect(checkLinear(c, { T: 8, K, N: 5 })).toBe(1);
  });

  it('configForLinear picks W4A16 from step.format', () => {
    const ctx: CodegenContext = { dtype: 'bfloat16', target: 'h100', kv: { blockSize: 16, kvHeads: 2, headDim: 64 }, limits: { maxTokens: 512, maxSeqs: 8, maxContext: 1024, numSms: 132 } };
    const step = { kind: 'linear' as const, x: 'x', weight: 'w', outs: [{ buffer: 'y', start: 0, end: 4096 }], K: 4096, N: 4096 };
    const c = configForLinear({ ...step, format: { kind: 'int4_group', groupSize: 128, scale: 's', zero: 'z' } }, ctx);
    expect(c.weight).toEqual({ kind: 'int4_group', groupSize: 128 });
    expect(kernelName(c)).toMatch(/^lfc_linear_bf16_w4g128_none_/);
    expect(configForLinear({ ...step, format: { kind: 'int4_group', scale: 's' } }, ctx).weight).toEqual({ kind: 'int4_group', groupSize: 128 });
    expect(() => configForLinear({ ...step, format: { kind: 'int4_group', groupSize: 12, scale: 's' } }, ctx)).toThrow('not a multiple of 8');
  });
  it('property: random shapes and epilogues (group 16) match linearW4A16', () => {
    const c = w4(cfg('float16', 'silu', [{ ...TILE_MENU.t32x32, stages: 3, maxT: 24 }, { ...TILE_MENU.t64x64, stages: 2, maxT: null }]), 16);
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 70 }),
      fc.boolean(), fc.boolean(), fc.boolean(), fc.integer({ min: 0, max: 1 << 30 }),
      (T, k16, N, bias, zero, smooth, seed) => {
        const path = checkLinear(c, { T, K: 16 * k16, N, bias, zero, smooth, residual: seed % 2 === 0, seed }, T <= 8 ? tolerances.float16 : GEMM_TOL.float16);
        expect(path).toBe(T <= 8 ? 1 : T <= 24 ? 2 : 3);
      },
    ), { numRuns: 10, seed: 4 });
  });
});

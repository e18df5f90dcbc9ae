/**
 * linear family, int8_channel weights (W8A8) on the CPU emulator against runtime/kernels/quant.ts
 * linearW8A8: per-token dynamic int8 quantization of (smoothed) x into the workspace, exact int32
 * accumulation (int GEMV; mma m16n8k32 s8 over int8 pairs on the GEMM path), rescale by
 * s_x[t]·s_w[n], then the epilogue; simple path when K % 16 != 0. bf16 and fp16.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { configForLinear, render, TILE_MENU, type LinearConfig } from '../../compiler/codegen/families/linear.js';
import type { CodegenContext } from '../../compiler/codegen/kernel.js';
import { hasGxx } from '../helpers/emu-kernel.js';
import { cfg, checkLinear } from './linear-harness.js';

const w8 = (c: LinearConfig, maxK: number): LinearConfig => ({ ...c, weight: { kind: 'int8_channel', maxK } });

describe.skipIf(!hasGxx)('linear W8A8 on the emulator', () => {
  describe.each(['bfloat16', 'float16'] as const)('%s', (dtype) => {
    const c = w8(cfg(dtype, 'relu', [{ ...TILE_MENU.t32x64, stages: 3, maxT: 32 }, { ...TILE_MENU.t64x64, stages: 2, maxT: null }]), 160);
    it('GEMV: smooth, bias, residual, 2 outs', () => {
      expect(checkLinear(c, { T: 1, K: 64, N: 72, smooth: true, bias: true, outs: [[0, 40], [40, 72]] })).toBe(1);
      expect(checkLinear(c, { T: 5, K: 160, N: 24, residual: true })).toBe(1);
    });
    it('GEMM: both tiles, partial M, N and K slices', () => {
      expect(checkLinear(c, { T: 17, K: 144, N: 72, smooth: true, bias: true })).toBe(2);
      expect(checkLinear(c, { T: 70, K: 64, N: 136, residual: true })).toBe(3);
    });
    it('simple path (K % 16 != 0)', () => {
      expect(checkLinear(c, { T: 9, K: 40, N: 24, smooth: true, bias: true })).toBe(0);
    });
  });

  it('configForLinear picks W8A8 from step.format: workspace for the quantized x, no split-K', () => {
    const ctx: CodegenContext = { dtype: 'bfloat16', target: 'h100', kv: { blockSize: 16, kvHeads: 2, headDim: 64 }, limits: { maxTokens: 512, maxSeqs: 8, maxContext: 1024, numSms: 132 } };
    const step = { kind: 'linear' as const, x: 'x', weight: 'w', outs: [{ buffer: 'y', start: 0, end: 4096 }], K: 4096, N: 4096 };
    const c = configForLinear({ ...step, format: { kind: 'int8_channel', scale: 's', smooth: 'm' } }, ctx);
    expect(c.weight).toEqual({ kind: 'int8_channel', maxK: 4096 });
    expect(c.splitK).toBeUndefined();
    expect(render(c).workspaceBytes?.(ctx.limits)).toBe(512 * (4096 + 4) + 16);
    expect(() => render({ ...c, splitK: { maxSplits: 2, maxT: 64, maxN: 4096, minSlices: 1 } })).toThrow('split-K is not available with int8_channel');
  });
  it('property: random shapes and epilogues match linearW8A8', () => {
    const c = w8(cfg('bfloat16', 'gelu_erf', [{ ...TILE_MENU.t32x64, stages: 2, maxT: 24 }, { ...TILE_MENU.t64x64, stages: 3, maxT: null }]), 200);
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 70 }),
      fc.boolean(), fc.boolean(), fc.integer({ min: 0, max: 1 << 30 }),
      (T, k16, N, bias, smooth, seed) => {
        const K = seed % 4 === 0 ? 16 * k16 + 8 : 16 * k16; // some K % 16 != 0 (simple path)
        const path = checkLinear(c, { T, K, N, bias, smooth, residual: seed % 3 === 0, seed });
        expect(path).toBe(K % 16 ? 0 : T <= 8 ? 1 : T <= 24 ? 2 : 3);
      },
    ), { numRuns: 10, seed: 8 });
  });
});

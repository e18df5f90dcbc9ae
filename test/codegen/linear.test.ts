/**
 * linear family on the CPU emulator against runtime/kernels/linear.ts: the GEMV path (each
 * columns-per-warp the chooser uses), every GEMM tile shape × pipeline depth the chooser can
 * return (several tiles per build, T picking each), the simple path (K % 8 != 0), partial tiles in
 * M, N and K, bf16 and fp16. Outputs are poisoned with NaN first; buffers live in emulator
 * cudaMalloc memory that ends at a guard page. Epilogues: linear-epilogue.test.ts; nvcc:
 * linear-nvcc.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { configForLinear, render, TILE_MENU, type GemmTile, type LinearConfig } from '../../compiler/codegen/families/linear.js';
import type { CodegenContext } from '../../compiler/codegen/kernel.js';
import { hasGxx } from '../helpers/emu-kernel.js';
import { cfg, checkLinear } from './linear-harness.js';

const ctx = (target: CodegenContext['target'], dtype: CodegenContext['dtype'] = 'bfloat16'): CodegenContext => ({
  dtype, target, kv: { blockSize: 16, kvHeads: 2, headDim: 64 }, limits: { maxTokens: 512, maxSeqs: 8, maxContext: 1024, numSms: 132 },
});
const step = (N: number, K: number) => ({ kind: 'linear' as const, x: 'x', weight: 'w', outs: [{ buffer: 'y', start: 0, end: N }], K, N });

/** Every GEMM tile (shape + stages) the chooser returns over the shapes that matter. */
function chooserTiles(): Map<string, Omit<GemmTile, 'maxT'>> {
  const out = new Map<string, Omit<GemmTile, 'maxT'>>();
  for (const target of ['a100', 'h100', 'all'] as const)
    for (const N of [24, 128, 256, 384, 1024, 4096, 11008, 28672])
      for (const K of [64, 256, 512, 4096])
        for (const t of configForLinear(step(N, K), ctx(target)).tiles) {
          const { maxT: _, ...rest } = t;
          out.set(JSON.stringify(rest), rest);
        }
  return out;
}

// Several tiles in one build: tile i serves T in (16 i, 16 (i+1)], the last every larger T.
const SHAPES = Object.values(TILE_MENU);
function multiTile(stages: number): LinearConfig['tiles'] {
  return SHAPES.map((s, i) => ({ ...s, stages, maxT: i === SHAPES.length - 1 ? null : 16 * (i + 1) }));
}

describe.skipIf(!hasGxx)('linear on the emulator', () => {
  it('the chooser only returns tiles of TILE_MENU with 2..4 stages (all covered below)', () => {
    const menu = new Set(SHAPES.map((s) => JSON.stringify(s)));
    for (const t of chooserTiles().values()) {
      const { stages, ...shape } = t;
      expect(menu.has(JSON.stringify(shape)), JSON.stringify(t)).toBe(true);
      expect([2, 3, 4]).toContain(stages);
    }
  });

  describe.each([2, 3, 4])('GEMM tiles with %i stages (bf16)', (stages) => {
    const c = cfg('bfloat16', 'none', multiTile(stages));
    it.each(SHAPES.map((s, i) => [`${s.bm}x${s.bn}x${s.bk}`, i] as const))('tile %s: partial tiles in M, N, K', (_, i) => {
      const T = i === SHAPES.length - 1 ? 70 : 16 * i + 9 + (i % 3) * 3; // 9, 28, 41, 57, 70
      const N = SHAPES[i].bn === 128 && SHAPES[i].bm === 128 ? 72 : 136; // partial in N either way; keeps the 256-thread tile cheap
      expect(checkLinear(c, { T, K: 136, N })).toBe(2 + i);
      if (stages === 3) expect(checkLinear(c, { T, K: 32, N: 72 })).toBe(2 + i); // one K slice (< stages - 1)
    });
  });

  it('GEMM fp16, tiles 32x64 and 64x64 at N in {24, 72, 136}', () => {
    const c = cfg('float16', 'none', [{ ...TILE_MENU.t32x64, stages: 3, maxT: 32 }, { ...TILE_MENU.t64x64, stages: 3, maxT: null }]);
    expect(checkLinear(c, { T: 17, K: 64, N: 24 })).toBe(2);
    expect(checkLinear(c, { T: 70, K: 136, N: 72 })).toBe(3);
    expect(checkLinear(c, { T: 33, K: 64, N: 136 })).toBe(3);
  });

  describe.each([['bfloat16', [1, 2, 4]], ['float16', [2]]] as const)('GEMV (%s)', (dtype, colsList) => {
    it.each(colsList)('%i column(s) per warp, T in {1, 2, 5, 8}', (cols) => {
      const c = cfg(dtype, 'none', [{ ...TILE_MENU.t32x32, stages: 2, maxT: null }], { cols });
      for (const [T, K, N] of [[1, 32, 24], [2, 136, 72], [5, 64, 136], [8, 520, 9]]) {
        expect(checkLinear(c, { T, K, N }), `T=${T} K=${K} N=${N}`).toBe(1);
      }
    });
  });

  it('simple path when K % 8 != 0 (GEMV and GEMM sizes)', () => {
    const c = cfg('bfloat16', 'none', [{ ...TILE_MENU.t32x32, stages: 2, maxT: null }]);
    expect(checkLinear(c, { T: 2, K: 36, N: 24 })).toBe(0);
    expect(checkLinear(c, { T: 17, K: 5, N: 72 })).toBe(0);
  });

  it('configForLinear: an unknown format is named; tiles for 7B-class shapes', () => {
    const fp8 = { kind: 'fp8_block', scale: 's' } as unknown as NonNullable<Parameters<typeof configForLinear>[0]['format']>;
    expect(() => configForLinear({ ...step(64, 64), format: fp8 }, ctx('a100'))).toThrow('CUDA linear: weight format fp8_block not implemented yet');
    const big = configForLinear(step(28672, 4096), ctx('h100'));
    expect(big.tiles.map((t) => [t.bm, t.bn, t.stages])).toEqual([[64, 128, 4], [128, 128, 4]]);
    expect(big.splitK).toBeUndefined();
    const o = render(configForLinear(step(4096, 4096), ctx('a100')));
    expect((o.config as LinearConfig).splitK).toEqual({ maxSplits: 4, maxT: 128, maxN: 4096, minSlices: 4 });
    expect(o.workspaceBytes?.({ maxTokens: 512, maxSeqs: 8, maxContext: 1024, numSms: 132 })).toBe(4 * 128 * 4096 * 4);
    expect(configForLinear(step(256, 256), ctx('a100', 'float16')).dtype).toBe('float16');
  });
});

describe.skipIf(!hasGxx)('linear split-K on the emulator', () => {
  const sk = (dtype: LinearConfig['dtype'], maxN: number): LinearConfig => ({
    ...cfg(dtype, 'gelu_tanh', [{ ...TILE_MENU.t32x64, stages: 3, maxT: 32 }, { ...TILE_MENU.t64x64, stages: 2, maxT: null }]),
    splitK: { maxSplits: 4, maxT: 40, maxN, minSlices: 1 },
  });
  it.each(['bfloat16', 'float16'] as const)('%s: splits over K slices, partials reduced in order, epilogue after', (dtype) => {
    const c = sk(dtype, 136);
    // K = 136: 5 slices of 32 -> 4 wanted, 2 slices per split -> 3 splits.
    expect(checkLinear(c, { T: 17, K: 136, N: 136, bias: true, residual: true, outs: [[0, 40], [40, 136]] })).toBe(302);
    // K = 64: 2 slices -> 2 splits; tile 1 (T > 32).
    expect(checkLinear(c, { T: 40, K: 64, N: 72, bias: true })).toBe(203);
    // K = 32: one slice, no split.
    expect(checkLinear(c, { T: 20, K: 32, N: 72 })).toBe(2);
    // T beyond splitK.maxT, or N beyond maxN: no split.
    expect(checkLinear(c, { T: 41, K: 136, N: 72 })).toBe(3);
    expect(checkLinear(sk(dtype, 64), { T: 17, K: 136, N: 72 })).toBe(2);
  });
});

/**
 * linear family with nvcc: every config configForLinear returns over the shapes that matter
 * (shipped model K ∈ {256, 512}, N ∈ {256, 384, 1024}; 7B-class K = 4096, N up to 28672), per
 * target, compiles for sm_80 + sm_90a with no spills and no stack frame. Registers and shared
 * memory per kernel are printed; W4A16 (int4_group) and W8A8 (int8_channel) configs too (dynamic shared memory is the tile's, ptxas reports static only).
 */
import { describe, expect, it } from 'vitest';
import { configForLinear, render, tileSmemBytes, type LinearConfig } from '../../compiler/codegen/families/linear.js';
import type { CodegenContext, RenderedKernel } from '../../compiler/codegen/kernel.js';
import { compileKernelsNvcc, hasNvcc } from '../helpers/emu-kernel.js';

const ctx = (target: CodegenContext['target'], dtype: CodegenContext['dtype']): CodegenContext => ({
  dtype, target, kv: { blockSize: 16, kvHeads: 2, headDim: 64 }, limits: { maxTokens: 512, maxSeqs: 8, maxContext: 1024, numSms: 132 },
});

function chooserConfigs(): LinearConfig[] {
  const seen = new Map<string, LinearConfig>();
  for (const target of ['a100', 'h100', 'all'] as const)
    for (const [N, K] of [[24, 64], [256, 256], [384, 512], [1024, 256], [4096, 4096], [28672, 4096]]) {
      const c = configForLinear({ kind: 'linear', x: 'x', weight: 'w', outs: [{ buffer: 'y', start: 0, end: N }], K, N, activation: 'silu' }, ctx(target, 'bfloat16'));
      seen.set(JSON.stringify(c), c);
    }
  // fp16 and another activation: one config is enough (dtype / activation only change the epilogue and mma).
  const f = configForLinear({ kind: 'linear', x: 'x', weight: 'w', outs: [{ buffer: 'y', start: 0, end: 4096 }], K: 4096, N: 4096, activation: 'gelu_erf' }, ctx('a100', 'float16'));
  seen.set(JSON.stringify(f), f);
  // W4A16 (int4_group, group 128), decode- and prefill-sized tiles.
  for (const N of [1024, 4096]) {
    const q = configForLinear({ kind: 'linear', x: 'x', weight: 'w', outs: [{ buffer: 'y', start: 0, end: N }], K: 4096, N, format: { kind: 'int4_group', groupSize: 128, scale: 's', zero: 'z' } }, ctx('h100', 'bfloat16'));
    seen.set(JSON.stringify(q), q);
  }
  // W8A8 (int8_channel).
  const q8 = configForLinear({ kind: 'linear', x: 'x', weight: 'w', outs: [{ buffer: 'y', start: 0, end: 4096 }], K: 4096, N: 4096, format: { kind: 'int8_channel', scale: 's' } }, ctx('a100', 'float16'));
  seen.set(JSON.stringify(q8), q8);
  return [...seen.values()];
}

describe.skipIf(!hasNvcc)('linear kernels with nvcc', () => {
  const configs = chooserConfigs();
  it.each(configs.map((c) => [render(c).name, c] as const))('%s compiles for sm_80 and sm_90a without spills or stack', (_, c) => {
    const k: RenderedKernel = render(c);
    const lines: string[] = [];
    {
      const rep = compileKernelsNvcc([k]);
      expect(new Set(rep.map((r) => r.arch))).toEqual(new Set(['sm_80', 'sm_90a']));
      for (const r of rep) {
        expect(r.spillStores + r.spillLoads + r.stackBytes, `${r.arch} ${r.kernel}`).toBe(0);
        const tile = /GemmTileILi(\d+)ELi(\d+)ELi(\d+)ELi(\d+)ELi(\d+)ELi(\d+)E/.exec(r.kernel);
        const what = tile ? `gemm ${tile[1]}x${tile[2]}x${tile[3]} warps ${tile[4]}x${tile[5]} stages ${tile[6]}` :
          /gemv_kernelILi(\d+)ELi(\d+)ELi(\d+)E/.test(r.kernel) ? `gemv ${/gemv_kernelILi(\d+)ELi(\d+)ELi(\d+)E/.exec(r.kernel)!.slice(1).join('/')} (warps/cols/maxT)` :
          /gemv_w8_kernelILi(\d+)ELi(\d+)ELi(\d+)E/.test(r.kernel) ? `gemv w8 ${/gemv_w8_kernelILi(\d+)ELi(\d+)ELi(\d+)E/.exec(r.kernel)!.slice(1).join('/')}` :
          r.kernel.includes('splitk_reduce') ? 'split-K reduce' : r.kernel.includes('w8_quantize') ? 'w8 quantize x' : 'simple';
        const dyn = tile ? tileSmemBytes({ bm: +tile[1], bn: +tile[2], bk: +tile[3], warpsM: 0, warpsN: 0, stages: +tile[6], maxT: null }) : 0;
        lines.push(`${k.name.padEnd(84)} ${r.arch.padEnd(6)} ${what.padEnd(44)} regs ${String(r.registers).padStart(3)}  smem ${r.sharedBytes + dyn}`);
      }
    }
    console.log(lines.join('\n'));
  }, 120_000);
});

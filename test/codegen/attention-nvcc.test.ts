/**
 * attention family with nvcc: the chosen configs (head dims 32/64/128/256, bf16 and fp16) compile
 * for sm_80 + sm_90a with no spills and no stack frame; registers and shared memory are printed.
 * (Emulator correctness: attention.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { configForAttention, render, tileSmemBytes, type AttentionConfig, type AttentionStep } from '../../compiler/codegen/families/attention.js';
import type { ActDType, CodegenContext } from '../../compiler/codegen/kernel.js';
import { compileKernelsNvcc, hasNvcc } from '../helpers/emu-kernel.js';

const step = (D: number): AttentionStep => ({ kind: 'attention', layer: 0, q: 'q', out: 'out', heads: 32, kvHeads: 8, headDim: D, scale: 1 / Math.sqrt(D) });
const ctx = (dtype: ActDType, D: number): CodegenContext => ({
  dtype, target: 'all', kv: { blockSize: 16, kvHeads: 8, headDim: D }, limits: { maxTokens: 1024, maxSeqs: 64, maxContext: 8192, numSms: 132 },
});

describe.skipIf(!hasNvcc)('paged attention with nvcc', () => {
  it('compiles for sm_80 and sm_90a without spills or stack', () => {
    const configs: AttentionConfig[] = [
      ...[32, 64, 128, 256].map((D) => configForAttention(step(D), ctx('bfloat16', D))),
      ...[32, 128].map((D) => configForAttention(step(D), ctx('float16', D))),
      // KV warps (an autotuner option): 4 per decode CTA, 2 per prefill row warp
      ...[32, 128].map((D) => {
        const c = configForAttention(step(D), ctx('bfloat16', D));
        return { ...c, prefill: { ...c.prefill, warps: 2, kvWarps: 2 }, decode: { ...c.decode, kvWarps: 4 } };
      }),
    ];
    const kernels = configs.map(render);
    const rep = compileKernelsNvcc(kernels);
    expect(new Set(rep.map((r) => r.arch))).toEqual(new Set(['sm_80', 'sm_90a']));
    for (const c of configs) {
      console.log(`${c.dtype} d${c.headDim}: prefill smem ${tileSmemBytes(c, c.prefill)} B, decode smem ${tileSmemBytes(c, c.decode)} B (dynamic)`);
    }
    for (const r of rep) {
      const short = r.kernel.replace(/^.*lfc_attention_/, '').replace(/_cu_[0-9a-f]{8}\d+/, ' ');
      console.log(`${r.arch} ${short}: ${r.registers} registers, ${r.stackBytes} B stack, ${r.spillStores}/${r.spillLoads} B spill st/ld`);
      expect(r.spillStores + r.spillLoads + r.stackBytes, `${r.arch} ${r.kernel}`).toBe(0);
    }
  }, 300_000);
});

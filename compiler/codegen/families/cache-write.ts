/**
 * cache_write family: k_cache[slot], v_cache[slot] = k[t], v[t] for slot = slot_mapping[t] ≥ 0
 * (−1: padding, skipped), caches [numBlocks, blockSize, kvHeads, headDim] in the activation dtype.
 * One block per (token, K|V), 16-byte vectors when kvHeads·headDim % 8 == 0 and pointers allow.
 * Reference: rope.cacheWrite of runtime/kernels/rope.ts.
 * Args used: LfcCacheWriteArgs { k, v, k_cache, v_cache, slot_mapping, T, kv_heads, head_dim,
 * block_size, num_blocks }.
 */
import type { Step } from '../../../runtime/plan.js';
import { CUDA_TYPE, type ActDType, type CodegenContext, type RenderedKernel } from '../kernel.js';
import { renderTemplate } from '../render.js';

export interface CacheWriteConfig {
  dtype: ActDType;
  threads: number;
}

export function configForCacheWrite(_step: Extract<Step, { kind: 'cache_write' }>, ctx: CodegenContext): CacheWriteConfig {
  // One 16-byte vector per thread covers kvHeads·headDim ≤ 8·threads in one sweep.
  const row = ctx.kv.kvHeads * ctx.kv.headDim;
  return { dtype: ctx.dtype, threads: Math.min(256, Math.max(32, Math.ceil(row / 8 / 32) * 32)) };
}

export function kernelName(c: CacheWriteConfig): string {
  return `lfc_cache_write_${c.dtype === 'bfloat16' ? 'bf16' : 'f16'}_t${c.threads}`;
}

export function render(c: CacheWriteConfig): RenderedKernel {
  const name = kernelName(c);
  const source = renderTemplate('cache_write.cu.hbs', {
    template: 'cache_write.cu.hbs', name, configJson: JSON.stringify(c), actType: CUDA_TYPE[c.dtype], threads: c.threads,
  });
  return { family: 'cache_write', name, launches: [{ fn: name, args: 'LfcCacheWriteArgs' }], source, config: c };
}

/**
 * embedding family: out[t, :] = table[indices[t], :] (token ids, or positions for a learned
 * position table whose sum with the token rows is a separate 'add' step). A gather: one block per
 * row, 16-byte vectors when the row width and pointers allow.
 * Reference: runtime/kernels/embedding.ts (a copy; the table is already in the activation dtype).
 * Args used: LfcEmbeddingArgs { indices, table, out, T, V, H }.
 */
import type { Step } from '../../../runtime/plan.js';
import { CUDA_TYPE, type ActDType, type CodegenContext, type RenderedKernel } from '../kernel.js';
import { renderTemplate } from '../render.js';

export interface EmbeddingConfig {
  dtype: ActDType;
  /** Threads per block (one block per row). */
  threads: number;
  /** Grid cap (blocks stride over rows beyond it). */
  maxBlocks: number;
}

export function configForEmbedding(step: Extract<Step, { kind: 'embedding' }>, ctx: CodegenContext): EmbeddingConfig {
  // 16-byte vectors: H/8 of them per row; 128 threads cover H = 1024 in one sweep, larger rows loop.
  const vecs = Math.ceil(step.hidden / 8);
  const threads = Math.min(256, Math.max(32, Math.ceil(vecs / 32) * 32));
  return { dtype: ctx.dtype, threads, maxBlocks: 65535 };
}

export function kernelName(c: EmbeddingConfig): string {
  return `lfc_embedding_${c.dtype === 'bfloat16' ? 'bf16' : 'f16'}_t${c.threads}`;
}

export function render(c: EmbeddingConfig): RenderedKernel {
  const name = kernelName(c);
  const source = renderTemplate('embedding.cu.hbs', {
    template: 'embedding.cu.hbs', name, configJson: JSON.stringify(c), actType: CUDA_TYPE[c.dtype],
    threads: c.threads, maxBlocks: c.maxBlocks,
  });
  return { family: 'embedding', name, launches: [{ fn: name, args: 'LfcEmbeddingArgs' }], source, config: c };
}

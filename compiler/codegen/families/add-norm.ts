/**
 * add_norm family: s = x (+ residual), sumOut = s, out = RMSNorm/LayerNorm(s) · gamma (+ beta).
 * One block per row (one warp when H ≤ 256), the row held in registers (16-byte loads when
 * H % 8 == 0 and the pointers are 16-byte aligned, else scalar), fp32 statistics, one rounding per store. Hidden size, norm kind and
 * thread count are compile time; residual, sum_out and beta are optional at run time (nullptr).
 * Reference: runtime/kernels/add-norm.ts (the norm reads the stored, rounded sum).
 * Args used: LfcAddNormArgs { x, residual?, out, sum_out?, gamma, beta?, eps, T, H (must equal hidden) }.
 */
import type { Step } from '../../../runtime/plan.js';
import { CUDA_TYPE, type ActDType, type CodegenContext, type RenderedKernel } from '../kernel.js';
import { renderTemplate } from '../render.js';

export interface AddNormConfig {
  dtype: ActDType;
  norm: 'rms' | 'layer';
  hidden: number;
  /** Threads per block (a multiple of 32, ≤ 1024); 32 = one warp per row. */
  threads: number;
  maxBlocks: number;
}

/** Enough threads that each holds ≤ 2 groups (of 8, or single elements when H % 8 ≠ 0). */
export function defaultThreads(hidden: number): number {
  const groups = hidden % 8 === 0 ? hidden / 8 : hidden;
  const t = Math.ceil(groups / 2 / 32) * 32;
  return Math.min(1024, Math.max(32, t));
}

export function configForAddNorm(step: Extract<Step, { kind: 'add_norm' }>, ctx: CodegenContext): AddNormConfig {
  return { dtype: ctx.dtype, norm: step.norm, hidden: step.hidden, threads: defaultThreads(step.hidden), maxBlocks: 65535 };
}

export function kernelName(c: AddNormConfig): string {
  return `lfc_add_norm_${c.norm}_${c.dtype === 'bfloat16' ? 'bf16' : 'f16'}_h${c.hidden}_t${c.threads}`;
}

export function render(c: AddNormConfig): RenderedKernel {
  if (c.threads % 32 !== 0 || c.threads < 32 || c.threads > 1024) throw new Error(`add_norm: threads ${c.threads} must be a multiple of 32 in 32..1024`);
  if (!(c.hidden > 0)) throw new Error(`add_norm: hidden ${c.hidden} must be > 0`);
  const perThread = Math.ceil(c.hidden / c.threads); // the scalar (G = 1) instantiation holds the most
  if (perThread > 64) throw new Error(`add_norm: ${perThread} values per thread (hidden ${c.hidden}, ${c.threads} threads) would spill; use more threads`);
  const name = kernelName(c);
  const source = renderTemplate('add_norm.cu.hbs', {
    template: 'add_norm.cu.hbs', name, configJson: JSON.stringify(c), actType: CUDA_TYPE[c.dtype],
    hidden: c.hidden, threads: c.threads, layer: c.norm === 'layer' ? 'true' : 'false', maxBlocks: c.maxBlocks,
  });
  return { family: 'add_norm', name, launches: [{ fn: name, args: 'LfcAddNormArgs' }], source, config: c };
}

/**
 * logits family: logits[l, :] = x[logit_indices[l], :] · Wᵀ (+ bias), fp32 out [L, V], W [V, H] in
 * the activation dtype. Memory-bound on W: each warp owns `cols` vocabulary rows and computes them
 * for all L logit rows (tiles of `rowsPerTile`), streaming W once; fp32 accumulation; a 31-shuffle
 * reduce-scatter gives each lane one output. Any L (tiles loop); H % 8 == 0 uses 16-byte loads.
 * Softcap (Gemma 2) is not in the plan step and not applied here.
 * Reference: runtime/kernels/logits.ts.
 * Args used: LfcLogitsArgs { x, logit_indices, w, bias?, out, L, H (= hidden), V }.
 */
import type { Step } from '../../../runtime/plan.js';
import { CUDA_TYPE, type ActDType, type CodegenContext, type RenderedKernel } from '../kernel.js';
import { renderTemplate } from '../render.js';

export interface LogitsConfig {
  dtype: ActDType;
  hidden: number;
  /** Warps per block. */
  warps: number;
  /** Output columns (W rows) per warp; cols · rowsPerTile = 32. */
  cols: number;
  rowsPerTile: number;
}

export function configForLogits(step: Extract<Step, { kind: 'logits' }>, ctx: CodegenContext): LogitsConfig {
  return { dtype: ctx.dtype, hidden: step.hidden, warps: 4, cols: 4, rowsPerTile: 8 };
}

export function kernelName(c: LogitsConfig): string {
  return `lfc_logits_${c.dtype === 'bfloat16' ? 'bf16' : 'f16'}_h${c.hidden}_w${c.warps}_c${c.cols}`;
}

export function render(c: LogitsConfig): RenderedKernel {
  if (c.cols * c.rowsPerTile !== 32) throw new Error(`logits: cols ${c.cols} × rowsPerTile ${c.rowsPerTile} must be 32`);
  if (!(c.warps >= 1 && c.warps <= 32)) throw new Error(`logits: warps ${c.warps} must be in 1..32`);
  const name = kernelName(c);
  const source = renderTemplate('logits.cu.hbs', {
    template: 'logits.cu.hbs', name, configJson: JSON.stringify(c), actType: CUDA_TYPE[c.dtype],
    hidden: c.hidden, warps: c.warps, cols: c.cols, rowsPerTile: c.rowsPerTile,
  });
  return { family: 'logits', name, launches: [{ fn: name, args: 'LfcLogitsArgs' }], source, config: c };
}

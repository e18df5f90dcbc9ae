/**
 * rope family: out = rope(x) for x [T, heads, headDim], cos/sin fp32 tables [P, rotaryDim/2]
 * indexed by the batch positions; 'half' (rotate_half) or 'interleaved' pairs; dims past
 * rotaryDim are copied. Head dim, rotary dim and style are compile time; 16-byte vectors when
 * the layout allows (rotaryDim/2 % 8 == 0 for 'half', rotaryDim % 8 == 0 for 'interleaved').
 * Reference: runtime/kernels/rope.ts (the 'rope' step of runtime/backends/reference.ts).
 * Args used: LfcRopeArgs { x, out, positions, cos, sin, T, heads, head_dim (= headDim),
 * rotary_dim (= rotaryDim), table_rows }.
 */
import type { Step } from '../../../runtime/plan.js';
import { CUDA_TYPE, type ActDType, type CodegenContext, type RenderedKernel } from '../kernel.js';
import { renderTemplate } from '../render.js';

export interface RopeConfig {
  dtype: ActDType;
  style: 'half' | 'interleaved';
  headDim: number;
  rotaryDim: number;
  threads: number;
}

export function configForRope(step: Extract<Step, { kind: 'rope' }>, ctx: CodegenContext): RopeConfig {
  return { dtype: ctx.dtype, style: step.style, headDim: step.headDim, rotaryDim: step.rotaryDim, threads: 128 };
}

export function kernelName(c: RopeConfig): string {
  return `lfc_rope_${c.style}_${c.dtype === 'bfloat16' ? 'bf16' : 'f16'}_d${c.headDim}_r${c.rotaryDim}_t${c.threads}`;
}

export function render(c: RopeConfig): RenderedKernel {
  const R = c.rotaryDim, D = c.headDim;
  if (!Number.isInteger(R) || R < 2 || R % 2 !== 0 || R > D) throw new Error(`rope: rotaryDim ${R} must be even, ≥ 2 and ≤ headDim ${D}`);
  const name = kernelName(c);
  const source = renderTemplate('rope.cu.hbs', {
    template: 'rope.cu.hbs', name, configJson: JSON.stringify(c), actType: CUDA_TYPE[c.dtype],
    headDim: D, rotaryDim: R, interleaved: c.style === 'interleaved' ? 'true' : 'false', threads: c.threads,
  });
  return { family: 'rope', name, launches: [{ fn: name, args: 'LfcRopeArgs' }], source, config: c };
}

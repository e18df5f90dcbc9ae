/**
 * activation and gated_act families (one template, templates/elementwise.cu.hbs):
 *   activation: out = act(x)            LfcActivationArgs { x, out, n }
 *   gated_act:  out = act(gate) · up    LfcGatedActArgs { gate, up, out, n }
 * Grid-stride loop over 16-byte vectors (when the pointers are 16-byte aligned) and a scalar tail;
 * fp32 math (lfc_common.cuh act_*), one rounding at the store.
 * Reference: runtime/kernels/activation.ts and the 'gated_act' step of runtime/backends/reference.ts.
 */
import type { Step } from '../../../runtime/plan.js';
import { CUDA_TYPE, type ActDType, type CodegenContext, type RenderedKernel } from '../kernel.js';
import { renderTemplate } from '../render.js';

export type EwActivation = 'relu' | 'silu' | 'gelu_tanh' | 'gelu_erf';

export interface ElementwiseConfig {
  dtype: ActDType;
  /** true: gated_act (act(gate) · up); false: activation. */
  gated: boolean;
  activation: EwActivation;
  threads: number;
  maxBlocks: number;
}

const ACT_FN: Record<EwActivation, string> = {
  relu: 'lfc::act_relu', silu: 'lfc::act_silu', gelu_tanh: 'lfc::act_gelu_tanh', gelu_erf: 'lfc::act_gelu_erf',
};

export function configForActivation(step: Extract<Step, { kind: 'activation' }>, ctx: CodegenContext): ElementwiseConfig {
  return { dtype: ctx.dtype, gated: false, activation: step.activation, threads: 256, maxBlocks: 1024 };
}

export function configForGatedAct(step: Extract<Step, { kind: 'gated_act' }>, ctx: CodegenContext): ElementwiseConfig {
  return { dtype: ctx.dtype, gated: true, activation: step.activation, threads: 256, maxBlocks: 1024 };
}

export function kernelName(c: ElementwiseConfig): string {
  return `lfc_${c.gated ? 'gated_act' : 'activation'}_${c.activation}_${c.dtype === 'bfloat16' ? 'bf16' : 'f16'}_t${c.threads}`;
}

export function render(c: ElementwiseConfig): RenderedKernel {
  if (!(c.activation in ACT_FN)) throw new Error(`elementwise: unknown activation '${c.activation}'`);
  const name = kernelName(c);
  const source = renderTemplate('elementwise.cu.hbs', {
    template: 'elementwise.cu.hbs', name, configJson: JSON.stringify(c), actType: CUDA_TYPE[c.dtype],
    gated: c.gated, actFn: ACT_FN[c.activation], threads: c.threads, maxBlocks: c.maxBlocks,
  });
  return {
    family: c.gated ? 'gated_act' : 'activation', name,
    launches: [{ fn: name, args: c.gated ? 'LfcGatedActArgs' : 'LfcActivationArgs' }], source, config: c,
  };
}

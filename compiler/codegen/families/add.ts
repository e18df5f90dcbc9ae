/**
 * add family: out = a + b (residual adds the fuser could not fold into add_norm or a linear
 * epilogue). Grid-stride loop over 16-byte vectors; the row layout does not matter.
 * Reference: the 'add' step of runtime/backends/reference.ts (sum in fp32, one rounding).
 */
import { CUDA_TYPE, type ActDType, type RenderedKernel } from '../kernel.js';
import { renderTemplate } from '../render.js';

export interface AddConfig {
  dtype: ActDType;
  threads: number;
  /** Grid cap (grid-stride beyond it). */
  maxBlocks: number;
}

export function configForAdd(dtype: ActDType): AddConfig {
  return { dtype, threads: 256, maxBlocks: 1024 };
}

export function kernelName(c: AddConfig): string {
  return `lfc_add_${c.dtype === 'bfloat16' ? 'bf16' : 'f16'}_t${c.threads}`;
}

export function render(c: AddConfig): RenderedKernel {
  const name = kernelName(c);
  const source = renderTemplate('add.cu.hbs', {
    template: 'add.cu.hbs', name, configJson: JSON.stringify(c), actType: CUDA_TYPE[c.dtype],
    threads: c.threads, maxBlocks: c.maxBlocks,
  });
  return { family: 'add', name, launches: [{ fn: name, args: 'LfcAddArgs' }], source, config: c };
}

/**
 * The kernel unit of each plan step: dispatch on the step's kind to its family's config chooser
 * and renderer. The single place that knows which family serves which step.
 */
import type { Step } from '../../../runtime/plan.js';
import type { CodegenContext, RenderedKernel } from '../kernel.js';
import * as add from './add.js';

export function kernelFor(step: Step, ctx: CodegenContext): RenderedKernel {
  switch (step.kind) {
    case 'add': return add.render(add.configForAdd(ctx.dtype));
    default: throw new Error(`no CUDA kernel family for step kind '${step.kind}' yet`);
  }
}

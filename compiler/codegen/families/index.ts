/**
 * The kernel unit of each plan step: dispatch on the step's kind to its family's config chooser
 * and renderer. The single place that knows which family serves which step.
 */
import type { Step } from '../../../runtime/plan.js';
import type { CodegenContext, RenderedKernel } from '../kernel.js';
import * as add from './add.js';
import * as addNorm from './add-norm.js';
import * as attention from './attention.js';
import * as cacheWrite from './cache-write.js';
import * as elementwise from './elementwise.js';
import * as embedding from './embedding.js';
import * as linear from './linear.js';
import * as logits from './logits.js';
import * as rope from './rope.js';
import { tunedKernel } from '../../tune/db.js';
import * as sample from './sample.js';

export function kernelFor(step: Step, ctx: CodegenContext): RenderedKernel {
  // The tuning database of ctx.target (a100/h100) first, when it has the step's problem.
  const tuned = tunedKernel(step, ctx);
  if (tuned) return tuned;
  switch (step.kind) {
    case 'embedding': return embedding.render(embedding.configForEmbedding(step, ctx));
    case 'add': return add.render(add.configForAdd(ctx.dtype));
    case 'add_norm': return addNorm.render(addNorm.configForAddNorm(step, ctx));
    case 'linear': return linear.render(linear.configForLinear(step, ctx));
    case 'gated_act': return elementwise.render(elementwise.configForGatedAct(step, ctx));
    case 'activation': return elementwise.render(elementwise.configForActivation(step, ctx));
    case 'rope': return rope.render(rope.configForRope(step, ctx));
    case 'cache_write': return cacheWrite.render(cacheWrite.configForCacheWrite(step, ctx));
    case 'attention': return attention.render(attention.configForAttention(step, ctx));
    case 'logits': return logits.render(logits.configForLogits(step, ctx));
  }
}

/** The device sampling unit the launcher runs after the logits step (lfc_forward_sample). */
export function sampleKernelFor(step: Extract<Step, { kind: 'logits' }>, ctx: CodegenContext): RenderedKernel {
  return sample.render(sample.configForSample(step, ctx));
}

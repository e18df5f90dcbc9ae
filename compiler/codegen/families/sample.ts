/**
 * sample family: one block per row of fp32 logits [L, V] → token (and optionally its logprob), with
 * per-row temperature / top_k / top_p / Philox seed+counter, runtime/sampling.ts semantics: greedy
 * argmax (lowest id on ties) at temperature 0; else softmax(logits / T), top_k, top_p, and the
 * inverse CDF in token-id order at u = philox_uniform(seed, counter). Thresholds by radix select
 * over the fp32 bits of p; masses as exact 40-bit fixed-point integer sums (deterministic). The
 * template documents where results can differ from the fp64 Sampler (boundaries only).
 * Penalties, min_p and top-n logprobs stay on the CPU. No workspace.
 * Args used: LfcSampleArgs { logits, temperature, top_k, top_p, seeds, counters, out_tokens,
 * out_logprobs?, L, V } (workspace unused).
 * Not a plan Step kind: the launcher runs it after the logits step, so configForSample takes the
 * logits step.
 */
import type { Step } from '../../../runtime/plan.js';
import type { CodegenContext, RenderedKernel } from '../kernel.js';
import { renderTemplate } from '../render.js';

export interface SampleConfig {
  /** Threads per block (one block per row): 1024 for large vocabularies. */
  threads: number;
}

export function configForSample(step: Extract<Step, { kind: 'logits' }>, _ctx: CodegenContext): SampleConfig {
  return { threads: step.vocab >= 16384 ? 1024 : 256 };
}

export function kernelName(c: SampleConfig): string {
  return `lfc_sample_t${c.threads}`;
}

export function render(c: SampleConfig): RenderedKernel {
  if (c.threads % 32 !== 0 || c.threads < 32 || c.threads > 1024) throw new Error(`sample: threads ${c.threads} must be a multiple of 32 in 32..1024`);
  const name = kernelName(c);
  // The preamble wants an activation type; the sampler reads fp32 logits only.
  const source = renderTemplate('sample.cu.hbs', {
    template: 'sample.cu.hbs', name, configJson: JSON.stringify(c), actType: '__nv_bfloat16', threads: c.threads,
  });
  return { family: 'sample', name, launches: [{ fn: name, args: 'LfcSampleArgs' }], source, config: c };
}

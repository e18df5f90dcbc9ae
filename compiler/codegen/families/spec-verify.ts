/**
 * spec-verify family: speculative-decoding verification on the GPU, so the target's logits stay on
 * the device. One block per speculating sequence reads its k + 1 fp32 logit rows, its k drafts (and
 * optionally the draft distributions q), and writes the number of accepted drafts and the next
 * token (corrected or bonus), optionally its logprob and SpecDecoder.verify's per-row tokens.
 * Semantics of runtime/spec/spec-decoder.ts SpecDecoder.verify, draw for draw: greedy
 * accept-while-argmax-equals; sampled accept d when philox_uniform(seed, pos, ACCEPT_STREAM = 2) <
 * min(1, p(d)/q(d)), at the first rejection a draw from normalise(max(0, p − q)) with
 * RESIDUAL_STREAM = 3, and the bonus token from p with stream 0 at position first + k, where p is
 * the Sampler's final distribution (temperature, top_k, top_p: the sample kernel's radix select and
 * exact fixed-point masses). Penalties and min_p are not applied here: requests using them verify
 * on the CPU. The template documents the rounding-boundary differences from the fp64 CPU path.
 * Args: LfcSpecVerifyArgs (templates/common/lfc_abi_spec.h); no workspace. Dtype-independent.
 * Not a plan Step kind: the launcher would run it after the logits step of a speculative step.
 */
import type { CodegenContext, RenderedKernel } from '../kernel.js';
import { renderTemplate } from '../render.js';

export interface SpecVerifyConfig {
  /** Threads per block (one block per sequence): 1024 for large vocabularies. */
  threads: number;
}

export function configForSpecVerify(vocab: number, _ctx?: CodegenContext): SpecVerifyConfig {
  if (!Number.isInteger(vocab) || vocab <= 0) throw new Error(`spec-verify: vocabulary must be a positive integer, got ${vocab}`);
  return { threads: vocab >= 16384 ? 1024 : 256 };
}

export function kernelName(c: SpecVerifyConfig): string {
  return `lfc_spec_verify_t${c.threads}`;
}

export function render(c: SpecVerifyConfig): RenderedKernel {
  if (c.threads % 32 !== 0 || c.threads < 32 || c.threads > 1024) throw new Error(`spec-verify: threads ${c.threads} must be a multiple of 32 in 32..1024`);
  const name = kernelName(c);
  // The preamble wants an activation type; verification reads fp32 logits and q only.
  const source = renderTemplate('spec_verify.cu.hbs', {
    template: 'spec_verify.cu.hbs', name, configJson: JSON.stringify(c), actType: '__nv_bfloat16', threads: c.threads,
  });
  return { family: 'spec-verify', name, launches: [{ fn: name, args: 'LfcSpecVerifyArgs' }], source, config: c };
}

/** The verification unit the launcher runs after the logits step (lfc_forward_verify). */
export function verifyKernelFor(step: { vocab: number }, ctx: CodegenContext): RenderedKernel {
  return render(configForSpecVerify(step.vocab, ctx));
}

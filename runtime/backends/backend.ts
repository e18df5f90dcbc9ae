/**
 * The Backend interface: what the engine calls. A backend owns the weights, the paged KV cache
 * and the activation arena of one loaded plan, and runs `forward` on a RaggedBatch.
 */
import type { RaggedBatch } from '../batch.js';
import type { Plan } from '../plan.js';

/** Per-logit-row sampling parameters for Backend.forwardSample. */
export interface DeviceSampleRows {
  temperature: Float32Array;
  topK: Int32Array;
  topP: Float32Array;
  seed: BigUint64Array;
  counter: BigInt64Array;
}

/** Per-sequence inputs of Backend.forwardVerify (lfc_abi_spec.h LfcSpecVerifyArgs). */
export interface DeviceVerifyRequest {
  /** First logit row of each sequence; it owns k + 1 consecutive rows. */
  logitRows: Int32Array;
  /** [S + 1] offsets into draftTokens. */
  draftStarts: Int32Array;
  draftTokens: Int32Array;
  /** [Σk, V] draft distributions q, or undefined: every draft one-hot. */
  draftProbs?: Float32Array;
  /** [S] 1 where the sequence's drafts have rows in draftProbs. */
  hasDraftProbs?: Int32Array;
  temperature: Float32Array;
  topK: Int32Array;
  topP: Float32Array;
  seed: BigUint64Array;
  /** Position of each sequence's first draft (its length). */
  position: BigInt64Array;
}

export interface Backend {
  readonly plan: Plan;
  readonly numBlocks: number;
  readonly maxTokens: number;
  /** Sequences one forward may carry (unbounded when absent). */
  readonly maxSeqs?: number;
  /** Above this many tokens in a step, speculation does not pay on this backend (cost-model hint). */
  readonly specMaxBatchTokens?: number;
  /** Logits [logitIndices.length, vocab] in fp32. */
  forward(batch: RaggedBatch): Float32Array;
  /**
   * Forward, then sample one token per logit row on the device (backends that can; the engine
   * falls back to `forward` + the host Sampler otherwise). Rows: runtime/sampling.ts semantics for
   * temperature / topK (0: off) / topP with the Philox draw at (seed, counter); no penalties,
   * min_p or top-n logprobs.
   */
  forwardSample?(batch: RaggedBatch, rows: DeviceSampleRows): { tokens: Int32Array; logprobs: Float32Array };
  /**
   * Forward, then speculative verification (and plain sampling, as sequences with no drafts) on the
   * device: per logit row, SpecDecoder.verify's output (accepted drafts, the next token, then -1).
   */
  forwardVerify?(batch: RaggedBatch, req: DeviceVerifyRequest): Int32Array;
  /** Copy KV blocks (copy-on-write of forked sequences): pairs of (src, dst) block ids. */
  copyBlocks(pairs: readonly (readonly [number, number])[]): void;
}

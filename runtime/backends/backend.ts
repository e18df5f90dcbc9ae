/**
 * The Backend interface: what the engine calls. A backend owns the weights, the paged KV cache
 * and the activation arena of one loaded plan, and runs `forward` on a RaggedBatch.
 */
import type { RaggedBatch } from '../batch.js';
import type { Plan } from '../plan.js';

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
  /** Copy KV blocks (copy-on-write of forked sequences): pairs of (src, dst) block ids. */
  copyBlocks(pairs: readonly (readonly [number, number])[]): void;
}

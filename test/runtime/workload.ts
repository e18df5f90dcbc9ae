/**
 * Runs a workload (requests with arrival steps) through Scheduler + FakeBackend + Sampler to
 * completion, checking on every step what must always hold: the batch validates, the token
 * budget and sequence cap are kept, block ref counts equal their users. Used by the property tests.
 */
import { validateBatch } from '../../runtime/batch.js';
import { type ResolvedSampling, resolveSamplingParams, Sampler, type SamplingParams } from '../../runtime/sampling.js';
import { Scheduler, type SchedulerPolicy, type Sequence } from '../../runtime/scheduler.js';
import { FakeBackend } from './fake-backend.js';

export interface WorkRequest {
  id: number;
  prompt: number[];
  maxTokens: number;
  stop: number[];
  arrival: number;
  sampling: SamplingParams;
  numSpeculativeTokens?: number;
}

export interface RunConfig {
  numBlocks: number;
  blockSize: number;
  maxBatchedTokens: number;
  maxSeqs: number;
  policy?: SchedulerPolicy;
  prefixCaching?: boolean;
  /** Called before each schedule(), e.g. to set draft tokens. */
  beforeStep?: (s: Scheduler, step: number) => void;
}

export interface Outcome { tokens: number[]; reason: string; error?: string; cached: number; preemptions: number }

export interface RunResult {
  outcomes: Map<number, Outcome>; steps: number; preemptions: number; maxTokensInStep: number; maxSeqsInStep: number;
  /** Logit indices beyond one per row: draft tokens verified. */
  draftLogits: number;
}

export const VOCAB = 64;

export function runWorkload(reqs: readonly WorkRequest[], cfg: RunConfig): RunResult {
  const sched = new Scheduler({ ...cfg, policy: cfg.policy ?? 'continuous' });
  const backend = new FakeBackend(cfg.numBlocks, cfg.blockSize, VOCAB);
  const sampler = new Sampler(VOCAB);
  const params = new Map<number | string, ResolvedSampling>();
  const seqs = new Map<number, Sequence>();
  const order = [...reqs].sort((a, b) => a.arrival - b.arrival || a.id - b.id);
  let next = 0, step = 0, maxT = 0, maxB = 0, drafts = 0;
  const limit = 100_000;
  while (next < order.length || sched.hasWork()) {
    if (step > limit) throw new Error(`workload did not finish in ${limit} steps`);
    while (next < order.length && order[next].arrival <= step) {
      const r = order[next++];
      params.set(r.id, resolveSamplingParams(r.sampling));
      seqs.set(r.id, sched.add({ id: r.id, prompt: r.prompt, maxTokens: r.maxTokens, stopTokenIds: r.stop, numSpeculativeTokens: r.numSpeculativeTokens }));
    }
    cfg.beforeStep?.(sched, step);
    const st = sched.schedule();
    step++;
    if (!st) continue;
    const b = st.batch;
    validateBatch(b, cfg.blockSize, cfg.numBlocks, VOCAB);
    if (b.tokens.length > cfg.maxBatchedTokens) throw new Error(`step ${step}: ${b.tokens.length} tokens > budget ${cfg.maxBatchedTokens}`);
    if (st.seqs.length > cfg.maxSeqs) throw new Error(`step ${step}: ${st.seqs.length} sequences > maxSeqs ${cfg.maxSeqs}`);
    // Block tables: exactly each sequence's blocks, then -1.
    for (let r = 0; r < st.seqs.length; r++) {
      const want = [...sched.kv.blockTable(st.seqs[r].id)];
      const row = [...b.blockTables.subarray(r * b.maxBlocksPerSeq, (r + 1) * b.maxBlocksPerSeq)];
      const n = Math.ceil(b.contextLens[r] / cfg.blockSize);
      if (want.length !== n || row.some((x, j) => x !== (j < n ? want[j] : -1))) throw new Error(`step ${step}: block table row ${r} is [${row}], blocks [${want}]`);
    }
    maxT = Math.max(maxT, b.tokens.length);
    maxB = Math.max(maxB, st.seqs.length);
    backend.copy(st.copies);
    const logits = backend.forward(b);
    const sampled = new Int32Array(b.logitIndices.length);
    drafts += sampled.length - new Set(st.logitRows).size;
    for (let i = 0; i < sampled.length; i++) {
      const s = st.seqs[st.logitRows[i]], pos = b.positions[b.logitIndices[i]] + 1;
      const row = logits.subarray(i * VOCAB, (i + 1) * VOCAB);
      sampled[i] = sampler.sample(row, params.get(s.id)!, { tokens: s.tokens, promptLen: s.promptLen, length: Math.min(pos, s.length) }, pos).token;
    }
    sched.postprocess(sampled);
    sched.kv.checkInvariants();
  }
  const stats = sched.kv.stats();
  if (stats.freeBlocks !== cfg.numBlocks) throw new Error(`${cfg.numBlocks - stats.freeBlocks} blocks leaked`);
  const outcomes = new Map<number, Outcome>();
  for (const [id, s] of seqs) {
    if (s.status !== 'finished') throw new Error(`request ${id} did not finish (${s.status})`);
    outcomes.set(id, { tokens: [...s.outputTokens], reason: s.finishReason!, error: s.error, cached: s.numCachedTokens, preemptions: s.numPreemptions });
  }
  return { outcomes, steps: step, preemptions: sched.numPreemptions, maxTokensInStep: maxT, maxSeqsInStep: maxB, draftLogits: drafts };
}

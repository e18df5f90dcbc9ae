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
  /**
   * Fork of request `parent` once it has `afterOutputs` outputs and is running (arrival and prompt
   * unused); maxTokens counts the tokens generated after the fork.
   */
  forkOf?: { parent: number; afterOutputs: number };
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

/** tokens: generated (for a fork: after the fork); forkPrompt: a fork's tokens when forked. */
export interface Outcome { tokens: number[]; reason: string; error?: string; cached: number; preemptions: number; forkPrompt?: number[] }

export interface RunResult {
  outcomes: Map<number, Outcome>; steps: number; preemptions: number; maxTokensInStep: number; maxSeqsInStep: number;
  /** Logit indices beyond one per row: draft tokens verified. */
  draftLogits: number;
  /** Copy-on-write block copies run. */
  copies: number;
}

export const VOCAB = 64;

export function runWorkload(reqs: readonly WorkRequest[], cfg: RunConfig): RunResult {
  const sched = new Scheduler({ ...cfg, policy: cfg.policy ?? 'continuous' });
  const backend = new FakeBackend(cfg.numBlocks, cfg.blockSize, VOCAB);
  const sampler = new Sampler(VOCAB);
  const params = new Map<number | string, ResolvedSampling>();
  const seqs = new Map<number, Sequence>();
  const order = reqs.filter((r) => !r.forkOf).sort((a, b) => a.arrival - b.arrival || a.id - b.id);
  let forks = reqs.filter((r) => r.forkOf);
  const forkPrompts = new Map<number, number[]>(), unforked = new Set<number>();
  let next = 0, step = 0, maxT = 0, maxB = 0, drafts = 0, copies = 0;
  const limit = 100_000;
  while (next < order.length || sched.hasWork() || forks.length > 0) {
    if (step > limit) throw new Error(`workload did not finish in ${limit} steps`);
    while (next < order.length && order[next].arrival <= step) {
      const r = order[next++];
      params.set(r.id, resolveSamplingParams(r.sampling));
      seqs.set(r.id, sched.add({ id: r.id, prompt: r.prompt, maxTokens: r.maxTokens, stopTokenIds: r.stop, numSpeculativeTokens: r.numSpeculativeTokens }));
    }
    forks = forks.filter((r) => {
      const p = seqs.get(r.forkOf!.parent);
      if (unforked.has(r.forkOf!.parent)) { unforked.add(r.id); return false; }
      if (!p) return true;
      if (p.status === 'finished' || !sched.hasWork()) { unforked.add(r.id); return false; }
      const max = p.numOutput + r.maxTokens;
      if (p.status !== 'running' || p.numOutput < r.forkOf!.afterOutputs || sched.numRunning >= cfg.maxSeqs) return true;
      if (p.promptLen + max + (r.numSpeculativeTokens ?? 0) > cfg.numBlocks * cfg.blockSize) { unforked.add(r.id); return false; }
      forkPrompts.set(r.id, [...p.tokens.subarray(0, p.length)]);
      params.set(r.id, resolveSamplingParams(r.sampling));
      seqs.set(r.id, sched.fork(p.id, { id: r.id, maxTokens: max, stopTokenIds: r.stop, numSpeculativeTokens: r.numSpeculativeTokens }));
      return false;
    });
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
    copies += st.copies.length;
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
  for (const id of unforked) outcomes.set(id, { tokens: [], reason: 'unforked', cached: 0, preemptions: 0 });
  for (const [id, s] of seqs) {
    if (s.status !== 'finished') throw new Error(`request ${id} did not finish (${s.status})`);
    const fp = forkPrompts.get(id), inherited = fp ? fp.length - s.promptLen : 0;
    outcomes.set(id, {
      tokens: [...s.outputTokens.subarray(inherited)], reason: s.finishReason!, error: s.error, cached: s.numCachedTokens,
      preemptions: s.numPreemptions, ...(fp ? { forkPrompt: fp } : {}),
    });
  }
  return { outcomes, steps: step, preemptions: sched.numPreemptions, maxTokensInStep: maxT, maxSeqsInStep: maxB, draftLogits: drafts, copies };
}

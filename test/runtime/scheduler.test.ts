/**
 * Scheduler properties on random workloads run with the fake backend (see workload.ts, which also
 * checks every step: batch validates, block tables exact, budget and maxSeqs kept, ref counts
 * equal users, no leak at the end): every request ends; tokens do not depend on batching,
 * preemption, cache size, block size, policy or speculative drafts; a fork (copy-on-write) goes on
 * like its tokens at the fork run alone; prefix caching hits all full blocks but the last token.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Deque } from '../../runtime/deque.js';
import { Scheduler } from '../../runtime/scheduler.js';
import { type RunConfig, runWorkload, VOCAB, type WorkRequest } from './workload.js';

const token = fc.integer({ min: 0, max: VOCAB - 1 });

/** Requests whose prompts often share prefixes from a small pool; a 2-token alphabet makes equal blocks behind different prefixes common. */
const workloadArb = fc.record({
  alphabet: fc.constantFrom(2, VOCAB),
  prefixes: fc.array(fc.array(token, { minLength: 1, maxLength: 40 }), { minLength: 1, maxLength: 3 }),
  reqs: fc.array(fc.record({
    prefix: fc.nat(), usePrefix: fc.boolean(), suffix: fc.array(token, { maxLength: 24 }),
    maxTokens: fc.integer({ min: 1, max: 24 }), stop: fc.array(token, { maxLength: 2 }), arrival: fc.integer({ min: 0, max: 12 }),
    greedy: fc.boolean(), topK: fc.constantFrom(0, 5), topP: fc.constantFrom(1, 0.9), seed: fc.nat(),
    fork: fc.option(fc.record({ parent: fc.nat(), afterOutputs: fc.integer({ min: 0, max: 4 }) }), { freq: 4 }),
  }), { minLength: 1, maxLength: 10 }),
}).map(({ alphabet, prefixes, reqs }): WorkRequest[] => reqs.map((r, id) => {
  const prompt = [...(r.usePrefix ? prefixes[r.prefix % prefixes.length] : []), ...r.suffix].map((t) => t % alphabet);
  return {
    id, prompt: prompt.length > 0 ? prompt : [1], maxTokens: r.maxTokens, stop: r.stop, arrival: r.arrival,
    sampling: r.greedy ? { temperature: 0 } : { temperature: 1, top_k: r.topK, top_p: r.topP, seed: r.seed },
    ...(r.fork && id > 0 ? { forkOf: { parent: r.fork.parent % id, afterOutputs: r.fork.afterOutputs } } : {}),
  };
}));

const smallConfigArb = fc.record({
  numBlocks: fc.integer({ min: 2, max: 40 }),
  blockSize: fc.constantFrom(1, 2, 4, 16),
  maxBatchedTokens: fc.integer({ min: 1, max: 48 }),
  maxSeqs: fc.integer({ min: 1, max: 6 }),
  policy: fc.constantFrom('continuous' as const, 'static' as const),
  prefixCaching: fc.boolean(),
});

const HUGE: RunConfig = { numBlocks: 4096, blockSize: 16, maxBatchedTokens: 4096, maxSeqs: 256 };

const soloCache = new Map<string, number[]>();
/** Tokens of `r` run alone (arrival 0) in a huge cache. */
function solo(r: WorkRequest): number[] {
  const key = JSON.stringify([r.prompt, r.maxTokens, r.stop, r.sampling]);
  let t = soloCache.get(key);
  if (!t) { t = runWorkload([{ ...r, id: 0, arrival: 0, forkOf: undefined }], HUGE).outcomes.get(0)!.tokens; soloCache.set(key, t); }
  return t;
}

describe('Scheduler on random workloads', () => {
  it('every request ends, nothing leaks, and tokens equal a solo run and a huge-cache run', () => {
    let preemptions = 0, rejected = 0, hits = 0, forks = 0, copies = 0;
    fc.assert(fc.property(workloadArb, smallConfigArb, (reqs, cfg) => {
      const small = runWorkload(reqs, cfg);
      const huge = runWorkload(reqs, HUGE);
      preemptions += small.preemptions;
      copies += small.copies;
      for (const r of reqs) {
        const o = small.outcomes.get(r.id)!;
        if (o.reason === 'unforked') continue;
        if (o.forkPrompt) { // a fork continues like its tokens at the fork, run alone
          forks++;
          expect(o.tokens).toEqual(solo({ ...r, prompt: o.forkPrompt }));
          continue;
        }
        if (o.reason === 'rejected') {
          rejected++;
          expect(r.prompt.length + r.maxTokens).toBeGreaterThan(cfg.numBlocks * cfg.blockSize);
          expect(o.error).toMatch(new RegExp(`request ${r.id}: prompt \\(${r.prompt.length} tokens\\)`));
          continue;
        }
        hits += o.cached;
        expect(['stop', 'length']).toContain(o.reason);
        expect(o.tokens.length).toBeLessThanOrEqual(r.maxTokens);
        if (o.reason === 'length') expect(o.tokens.length).toBe(r.maxTokens);
        else expect(r.stop).toContain(o.tokens.at(-1));
        expect(o.tokens).toEqual(solo(r));
        expect(o.tokens).toEqual(huge.outcomes.get(r.id)!.tokens);
      }
    }), { numRuns: 150 });
    // The generators must actually exercise preemption, rejection and prefix hits.
    expect(preemptions).toBeGreaterThan(0);
    expect(rejected).toBeGreaterThan(0);
    expect(hits).toBeGreaterThan(0);
    expect(forks).toBeGreaterThan(0);
    expect(copies).toBeGreaterThan(0);
  });

  it('continuous batching keeps the budget full and mixes prefill chunks with decodes', () => {
    fc.assert(fc.property(workloadArb, fc.integer({ min: 1, max: 32 }), fc.integer({ min: 1, max: 8 }), (reqs, budget, maxSeqs) => {
      const r = runWorkload(reqs, { numBlocks: 512, blockSize: 4, maxBatchedTokens: budget, maxSeqs });
      expect(r.maxTokensInStep).toBeLessThanOrEqual(budget);
      expect(r.maxSeqsInStep).toBeLessThanOrEqual(maxSeqs);
      expect(r.preemptions).toBe(0);
    }), { numRuns: 60 });
  });

  it('speculative drafts (right or wrong) do not change the tokens', () => {
    let drafts = 0;
    fc.assert(fc.property(workloadArb, fc.integer({ min: 1, max: 4 }), fc.nat(), smallConfigArb, (all, k, salt, cfg) => {
      const reqs = all.filter((r) => !r.forkOf);
      const spec = reqs.map((r) => ({ ...r, numSpeculativeTokens: k }));
      const base = runWorkload(reqs, { ...cfg, numBlocks: cfg.numBlocks + 8 });
      // Drafts: the true continuation, corrupted at a pseudo-random place.
      const run = runWorkload(spec, {
        ...cfg, numBlocks: cfg.numBlocks + 8,
        beforeStep: (s: Scheduler, step: number) => {
          for (const r of spec) {
            const seq = s.get(r.id);
            if (!seq || seq.status !== 'running' || seq.length - seq.numComputed !== 1) continue;
            const truth = base.outcomes.get(r.id)!.tokens.slice(seq.numOutput, seq.numOutput + k);
            const bad = (salt + step + r.id) % (k + 2);
            if (bad < truth.length) truth[bad] = (truth[bad] + 1) % VOCAB;
            s.setDraft(r.id, truth);
          }
        },
      });
      for (const r of reqs) {
        const o = run.outcomes.get(r.id)!;
        if (o.reason === 'rejected') expect(r.prompt.length + r.maxTokens + k).toBeGreaterThan((cfg.numBlocks + 8) * cfg.blockSize);
        else expect(o.tokens).toEqual(base.outcomes.get(r.id)!.tokens);
      }
      drafts += run.draftLogits;
    }), { numRuns: 60 });
    expect(drafts).toBeGreaterThan(0);
  });
});

describe('Scheduler', () => {
  const prompt = Array.from({ length: 37 }, (_, i) => (i * 7) % VOCAB);

  it('a second identical prompt hits the cache for all full blocks but its last token', () => {
    for (const len of [1, 15, 16, 17, 32, 37]) {
      const p = prompt.slice(0, len);
      const reqs: WorkRequest[] = [0, 1].map((id) => ({ id, prompt: p, maxTokens: 3, stop: [], arrival: id * 10, sampling: { temperature: 0 } }));
      const r = runWorkload(reqs, { numBlocks: 64, blockSize: 16, maxBatchedTokens: 64, maxSeqs: 4 });
      expect(r.outcomes.get(0)!.cached).toBe(0);
      expect(r.outcomes.get(1)!.cached).toBe(Math.floor((len - 1) / 16) * 16);
      expect(r.outcomes.get(1)!.tokens).toEqual(r.outcomes.get(0)!.tokens);
    }
  });

  it('chunks a long prefill under the budget and asks logits only for its last token', () => {
    const s = new Scheduler({ maxBatchedTokens: 16, maxSeqs: 4, blockSize: 4, numBlocks: 64 });
    s.add({ id: 'a', prompt, maxTokens: 2 });
    const sizes: number[] = [], logits: number[] = [];
    for (let step = s.schedule(); step; step = s.schedule()) {
      sizes.push(step.batch.tokens.length);
      logits.push(step.batch.logitIndices.length);
      s.postprocess(new Int32Array(step.batch.logitIndices.length).fill(5));
    }
    expect(sizes).toEqual([16, 16, 5, 1]);
    expect(logits).toEqual([0, 0, 1, 1]);
  });

  it('preempts the most recently admitted request and readmits it first', () => {
    const s = new Scheduler({ maxBatchedTokens: 64, maxSeqs: 4, blockSize: 4, numBlocks: 6 });
    const a = s.add({ id: 'a', prompt: prompt.slice(0, 8), maxTokens: 12 });
    const b = s.add({ id: 'b', prompt: prompt.slice(8, 16), maxTokens: 12 });
    const c = s.add({ id: 'c', prompt: prompt.slice(16, 20), maxTokens: 2 });
    let step = s.schedule()!;
    expect(step.seqs.map((q) => q.id)).toEqual(['a', 'b', 'c']);
    s.postprocess([1, 2, 3]);
    // a, b, c hold 2 + 2 + 1 of the 6 blocks; a's decode takes the last one, b's needs one more.
    step = s.schedule()!;
    expect(s.numPreemptions).toBe(1);
    expect(c.numPreemptions).toBe(1);
    expect(c.status).toBe('waiting');
    expect(c.numComputed).toBe(0);
    expect([...c.outputTokens]).toEqual([3]); // keeps its generated token for the recompute
    expect(step.seqs.map((q) => q.id)).toEqual(['a', 'b']); // no admission in a step that preempted
    const late = s.add({ id: 'd', prompt: [5], maxTokens: 1 });
    s.postprocess([4, 4]);
    while (s.numPreemptions < 2) { step = s.schedule()!; s.postprocess(new Int32Array(step.batch.logitIndices.length).fill(9)); }
    expect([a.numPreemptions, b.numPreemptions]).toEqual([0, 1]); // b goes next: it was admitted after a
    const order: (string | number)[] = [];
    while (s.hasWork()) {
      step = s.schedule()!;
      for (const q of step.seqs) if (!order.includes(q.id)) order.push(q.id);
      s.postprocess(new Int32Array(step.batch.logitIndices.length).fill(9));
    }
    expect(order.indexOf('b')).toBeLessThan(order.indexOf('c')); // front of the queue, last preempted first
    expect(order.indexOf('c')).toBeLessThan(order.indexOf('d'));
    expect([a, b, c, late].map((q) => q.finishReason)).toEqual(['length', 'length', 'length', 'length']);
    expect([...c.outputTokens]).toEqual([3, 9]);
    expect(s.kv.numFreeBlocks).toBe(6);
  });

  it('rejects what can never fit, and rejects misuse with the request id', () => {
    const s = new Scheduler({ maxBatchedTokens: 8, maxSeqs: 2, blockSize: 4, numBlocks: 4 });
    const r = s.add({ id: 7, prompt: prompt.slice(0, 10), maxTokens: 7 });
    expect(r.finishReason).toBe('rejected');
    expect(r.error).toBe('request 7: prompt (10 tokens) + max tokens (7) need 17 KV slots, the cache holds 16');
    expect(s.add({ id: 8, prompt: [], maxTokens: 1 }).error).toBe('request 8: the prompt is empty');
    expect(() => s.add({ id: 9, prompt: [1], maxTokens: 0 })).toThrow('request 9: maxTokens must be a positive integer, got 0');
    expect(() => s.add({ id: 9, prompt: [1, -2], maxTokens: 1 })).toThrow('request 9: prompt token 1 is -2');
    s.add({ id: 10, prompt: [1], maxTokens: 1 });
    expect(() => s.add({ id: 10, prompt: [1], maxTokens: 1 })).toThrow('request 10 is already queued or running');
    expect(() => s.postprocess([])).toThrow('postprocess() without a scheduled step');
    s.schedule();
    expect(() => s.schedule()).toThrow('before postprocess()');
  });

  it('fork shares the parent tokens and blocks, copies on write, and refuses what it cannot do', () => {
    const s = new Scheduler({ maxBatchedTokens: 64, maxSeqs: 2, blockSize: 4, numBlocks: 8 });
    s.add({ id: 'a', prompt: [1, 2, 3, 4, 5], maxTokens: 4 });
    expect(() => s.fork('a', { id: 'b', maxTokens: 3 })).toThrow('cannot fork request a into b: request a is not running');
    let st = s.schedule()!;
    expect(() => s.fork('a', { id: 'b', maxTokens: 3 })).toThrow('a step is in flight');
    s.postprocess([7]);
    expect(() => s.fork('a', { id: 'b', maxTokens: 1 })).toThrow('maxTokens must be an integer above the 1 inherited tokens, got 1');
    expect(() => s.fork('a', { id: 'b', maxTokens: 40 })).toThrow('45 KV slots needed, the cache holds 32');
    const b = s.fork('a', { id: 'b', maxTokens: 3 });
    expect([b.promptLen, [...b.outputTokens], b.numComputed]).toEqual([5, [7], 5]);
    expect(s.kv.blockTable('b')).toEqual(s.kv.blockTable('a'));
    expect(() => s.fork('a', { id: 'c', maxTokens: 3 })).toThrow('2 requests run, maxSeqs is 2');
    st = s.schedule()!;
    expect(st.copies).toEqual([{ src: s.kv.blockTable('b')[1], dst: s.kv.blockTable('a')[1] }]); // a writes first
    s.postprocess([8, 9]);
    expect([...b.outputTokens]).toEqual([7, 9]);
    s.kv.checkInvariants();
  });

  it('abort frees every block, waiting or running, even while its step is in flight', () => {
    const s = new Scheduler({ maxBatchedTokens: 64, maxSeqs: 1, blockSize: 4, numBlocks: 16 });
    const a = s.add({ id: 'a', prompt: prompt.slice(0, 9), maxTokens: 5 });
    const b = s.add({ id: 'b', prompt: prompt.slice(0, 9), maxTokens: 5 });
    const step = s.schedule()!;
    expect(s.abort('a')).toBe(true);
    expect(s.abort('b')).toBe(true);
    s.postprocess(new Int32Array(step.batch.logitIndices.length));
    expect([a.finishReason, b.finishReason]).toEqual(['aborted', 'aborted']);
    expect(s.abort('a')).toBe(false);
    expect(s.hasWork()).toBe(false);
    expect(s.kv.numFreeBlocks).toBe(16);
    s.kv.checkInvariants();
  });

  it('static policy admits a batch once and runs it to completion before admitting more', () => {
    const s = new Scheduler({ maxBatchedTokens: 64, maxSeqs: 2, blockSize: 4, numBlocks: 64, policy: 'static' });
    s.add({ id: 'a', prompt: [1, 2, 3], maxTokens: 1 });
    s.add({ id: 'b', prompt: [1, 2, 3], maxTokens: 4 });
    s.add({ id: 'c', prompt: [4], maxTokens: 1 });
    const rows: string[] = [];
    for (let step = s.schedule(); step; step = s.schedule()) {
      rows.push(step.seqs.map((q) => q.id).join(''));
      s.postprocess(new Int32Array(step.batch.logitIndices.length).fill(9));
    }
    expect(rows).toEqual(['ab', 'b', 'b', 'b', 'c']);
  });
});

describe('Deque', () => {
  it('behaves as an array under random pushes at both ends, shifts and removes', () => {
    fc.assert(fc.property(fc.array(fc.tuple(fc.constantFrom('back', 'front', 'shift', 'remove'), fc.nat(5))), (ops) => {
      const d = new Deque<number>(), a: number[] = [];
      for (const [op, x] of ops) {
        if (op === 'back') { d.pushBack(x); a.push(x); }
        else if (op === 'front') { d.pushFront(x); a.unshift(x); }
        else if (op === 'shift') expect(d.shift()).toBe(a.shift());
        else { const i = a.indexOf(x); expect(d.remove(x)).toBe(i >= 0); if (i >= 0) a.splice(i, 1); }
        expect(d.length).toBe(a.length);
        expect(d.peek()).toBe(a[0]);
      }
      expect(Array.from({ length: d.length }, (_, i) => d.at(i))).toEqual(a);
    }));
  });
});

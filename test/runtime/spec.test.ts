/**
 * Speculative decoding (runtime/spec): greedy output identical to greedy without speculation
 * (n-gram and draft model, k = 1..6, batched requests), rejection sampling reproduces the
 * target's distribution (chi-square, fake 8-token backends, with and without temperature/top-p),
 * rollback leaks no block in either cache, per-request opt-out, the n-gram lookup itself.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileModel } from '../../compiler/compile.js';
import type { Backend } from '../../runtime/backends/backend.js';
import { ReferenceBackend } from '../../runtime/backends/reference.js';
import type { RaggedBatch } from '../../runtime/batch.js';
import { Engine } from '../../runtime/engine.js';
import type { Plan } from '../../runtime/plan.js';
import { resolveSamplingParams, Sampler } from '../../runtime/sampling.js';
import { DraftModelProposer, NgramProposer, type Proposer } from '../../runtime/spec/proposer.js';
import { specOptions } from '../../runtime/spec/index.js';
import { ServerMetrics } from '../../runtime/server/metrics.js';
import { mulberry32 } from '../helpers/random.js';
import { FakeBackend } from './fake-backend.js';

const DRAFT = join(import.meta.dirname, '../../models/coder-draft.onnx');
const CODER = join(import.meta.dirname, '../../models/coder.onnx');
const TARGET = existsSync(CODER) ? CODER : DRAFT;

describe('NgramProposer', () => {
  it('proposes what followed the latest earlier match of the last n..1 tokens', () => {
    const p = new NgramProposer(3, 8);
    const t = [1, 2, 3, 4, 5, 9, 2, 3, 4, 7, 2, 3, 4];
    expect(Array.from(p.lookup(t, t.length, 3))).toEqual([7, 2, 3]);
    expect(Array.from(p.lookup([5, 6, 7, 6], 4, 4))).toEqual([7, 6]); // falls back to n = 1
    expect(Array.from(p.lookup([1, 2, 3], 3, 4))).toEqual([]);
  });
});

describe.skipIf(!existsSync(DRAFT))('speculative decoding on the shipped models', () => {
  const compile = (f: string) => { const r = compileModel(f, { maxPositions: 256 }); return { plan: r.plan!, weights: r.weights!.pack() }; };
  const tgt = compile(TARGET);
  const dft = TARGET === DRAFT ? tgt : compile(DRAFT);
  const NB = 48;
  const engine = (proposer?: Proposer, maxK = 4, opts: { maxBatchTokens?: number } = {}) =>
    new Engine(new ReferenceBackend(tgt.plan, tgt.weights, { numBlocks: NB, maxTokens: 128 }), {
      maxSeqs: 8, ...(proposer ? { speculative: { proposer, maxK, adaptive: true, ...opts } } : {}),
    });
  const draft = () => new DraftModelProposer(new ReferenceBackend(dft.plan, dft.weights, { numBlocks: NB, maxTokens: 128 }));
  const rnd = mulberry32(7);
  const code = ['def add(a, b):\n    return a + b\n\ndef ', 'for i in range(10):\n    print(i)\nfor j in range(', 'import os\nimport sys\nimport ', 'class Foo:\n    def __init__(self):\n        self.'];
  const prompts = [...code, ...Array.from({ length: 2 }, () => Array.from({ length: 3 + Math.floor(rnd() * 10) }, () => 32 + Math.floor(rnd() * 90)))];
  const N = 20;
  let plain: number[][] = [];

  it('greedy speculative output equals greedy output (n-gram and draft, k = 1..6, batched)', async () => {
    const base = engine();
    plain = await Promise.all(prompts.map((p) => base.generate(p, { max_tokens: N, temperature: 0 }).then((c) => c.tokens)));
    for (const k of [1, 3, 6]) {
      for (const make of [() => new NgramProposer(3, 8), draft]) {
        const prop = make();
        const e = engine(prop, k);
        const got = await Promise.all(prompts.map((p) => e.generate(p, { max_tokens: N, temperature: 0 }).then((c) => c.tokens)));
        expect(got, `${prop.name} k=${k}`).toEqual(plain);
        expect(e.spec!.metrics.numDraftTokens, `${prop.name} k=${k} proposed`).toBeGreaterThan(0);
        expect(e.scheduler.kv.numFreeBlocks).toBe(NB);
        if (prop instanceof DraftModelProposer) expect(prop.kv.numFreeBlocks).toBe(NB);
      }
    }
  }, 300_000);

  it('one request at a time with k = 2 and 5 and the draft model; opt-out requests are untouched', async () => {
    for (const k of [2, 5]) {
      const prop = draft();
      const e = engine(prop, k);
      for (let i = 0; i < 2; i++) expect((await e.generate(prompts[i], { max_tokens: N, temperature: 0 })).tokens).toEqual(plain[i]);
      const before = e.spec!.metrics.numSpecRows;
      expect((await e.generate(prompts[2], { max_tokens: N, temperature: 0, speculative: false })).tokens).toEqual(plain[2]);
      expect(e.spec!.metrics.numSpecRows).toBe(before);
      expect(prop.kv.numFreeBlocks).toBe(NB);
    }
  }, 300_000);

  it('exposes vLLM-style spec_decode metrics; specOptions checks its settings', async () => {
    const e = engine(new NgramProposer(2, 8), 4);
    const metrics = new ServerMetrics(e);
    await e.generate(prompts[1], { max_tokens: N, temperature: 0 });
    const text = await metrics.registry.metrics();
    const m = e.spec!.metrics;
    expect(text).toContain(`lfc_spec_decode_num_draft_tokens_total ${m.numDraftTokens}`);
    expect(text).toContain(`lfc_spec_decode_num_accepted_tokens_total ${m.numAcceptedTokens}`);
    expect(text).toMatch(/lfc_spec_decode_acceptance_rate_per_position\{position="0"\} [0-9.]+/);
    expect(() => specOptions({ draftDir: 'x', ngram: 3 })).toThrow(/not both/);
    expect(specOptions({})).toBeUndefined();
    expect(specOptions({ ngram: 2, k: 6 })!.maxK).toBe(6);
  });

  it('speculation is off above the batch-token threshold', async () => {
    const e = engine(new NgramProposer(2, 8), 4, { maxBatchTokens: 2 });
    await Promise.all(prompts.slice(0, 4).map((p) => e.generate(p, { max_tokens: 8, temperature: 0 })));
    expect(e.spec!.metrics.numDraftTokens).toBe(0);
  });

  it('seeded sampling with speculation is reproducible and leaks no block', async () => {
    const run = async () => {
      const prop = draft();
      const e = engine(prop, 4);
      const out = await Promise.all(prompts.slice(0, 4).map((p, i) => e.generate(p, { max_tokens: N, temperature: 0.8, top_p: 0.95, seed: i })));
      expect(e.scheduler.kv.numFreeBlocks).toBe(NB);
      expect(prop.kv.numFreeBlocks).toBe(NB);
      return out.map((c) => c.tokens);
    };
    expect(await run()).toEqual(await run());
  }, 120_000);
});

// ---- statistical test on fake 8-token models with known distributions ----

const V = 8;
/** A backend whose next-token logits for position q are table[q mod 3], whatever the history. */
class TableBackend implements Backend {
  readonly plan: Plan;
  readonly numBlocks = 4096;
  readonly maxTokens = 4096;
  forwards = 0;
  constructor(readonly table: number[][]) {
    this.plan = { model: { vocab: V, maxPositions: 64, bos: 6, eos: 7 }, kv: { blockSize: 4 } } as unknown as Plan;
  }
  forward(b: RaggedBatch): Float32Array {
    this.forwards++;
    const out = new Float32Array(b.logitIndices.length * V);
    b.logitIndices.forEach((t, i) => out.set(this.table[(b.positions[t] + 1) % 3], i * V));
    return out;
  }
  copyBlocks(): void {}
}

const TARGET_LOGITS = [[2, 1, 0.5, 0, -1, 1.5, 0.2, -3], [0, 0, 1, 1, 2, -1, -2, 0.5], [1, -1, 1, -1, 0, 0, 3, 0]];
const DRAFT_LOGITS = [[0, 2, 0, 1, 0, 0, 1, -3], [1, 0, 0, 2, 0, 1, -2, 0], [0, 0, 0, 0, 0, 0, 0, 0]];

function chiSquare(counts: number[], p: ArrayLike<number>, n: number): number {
  let x = 0;
  for (let v = 0; v < p.length; v++) {
    const e = p[v] * n;
    if (e === 0) { if (counts[v] > 0) return Infinity; continue; }
    x += (counts[v] - e) ** 2 / e;
  }
  return x;
}

describe('rejection sampling keeps the target distribution', () => {
  const cases: [string, Record<string, number>][] = [['temperature 1', {}], ['temperature 0.7, top_p 0.9', { temperature: 0.7, top_p: 0.9 }]];
  for (const [name, sp] of cases) {
    for (const kind of ['draft', 'ngram'] as const) {
      it(`${kind}, ${name}: chi-square over 6000 samples`, async () => {
        const target = new TableBackend(TARGET_LOGITS);
        const prop = kind === 'draft' ? new DraftModelProposer(new TableBackend(DRAFT_LOGITS)) : new NgramProposer(1, 4);
        const e = new Engine(target, { maxSeqs: 256, maxBatchedTokens: 1024, speculative: { proposer: prop, maxK: 3, adaptive: false, maxBatchTokens: 4096 } });
        const S = 6000, prompt = [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5, 1, 2]; // length 14: positions 14.. are sampled
        const T = 4;
        const counts = Array.from({ length: T }, () => new Array(V).fill(0));
        for (let i = 0; i < S; i += 500) {
          const cs = await Promise.all(Array.from({ length: 500 }, (_, j) => e.generate(prompt, { max_tokens: T, ignore_eos: true, seed: 1000 + i + j, ...sp })));
          for (const c of cs) c.tokens.forEach((t, j) => counts[j][t]++);
        }
        expect(e.spec!.metrics.numDraftTokens).toBeGreaterThan(S);
        expect(e.spec!.metrics.numAcceptedTokens).toBeLessThan(e.spec!.metrics.numDraftTokens); // q ≠ p: some rejections
        const sampler = new Sampler(V), params = resolveSamplingParams({ ...sp, seed: 0 });
        for (let j = 0; j < T; j++) {
          const pos = prompt.length + j;
          const p = sampler.distribution(TARGET_LOGITS[pos % 3], params, { tokens: [], promptLen: 0, length: 0 });
          const df = Array.from(p).filter((x) => x > 0).length - 1;
          // p = 0.001 critical values of chi-square
          const crit = [0, 10.83, 13.82, 16.27, 18.47, 20.52, 22.46, 24.32][df];
          expect(chiSquare(counts[j], p, S), `token ${j} counts ${counts[j]}`).toBeLessThan(crit);
        }
        expect(e.scheduler.kv.numFreeBlocks).toBe(target.numBlocks);
        if (prop instanceof DraftModelProposer) expect(prop.kv.numFreeBlocks).toBe(4096);
      }, 120_000);
    }
  }
});

// ---- property: rollback under preemption leaks nothing, on the KV-reading fake model ----

/** FakeBackend (logits read through the block tables) behind the Backend interface. */
function fakeBackend(numBlocks: number, blockSize = 4, vocab = 64): Backend & { fake: FakeBackend } {
  const fake = new FakeBackend(numBlocks, blockSize, vocab);
  return {
    fake, numBlocks, maxTokens: 4096,
    plan: { model: { vocab, maxPositions: 512, bos: vocab - 2, eos: vocab - 1 }, kv: { blockSize } } as unknown as Plan,
    forward: (b) => fake.forward(b),
    copyBlocks: (pairs) => fake.copy(pairs.map(([src, dst]) => ({ src, dst }))),
  };
}

describe('speculative decoding on a fake model that reads its KV cache', () => {
  it('random prompts, k, cache sizes (preemption): same greedy tokens, no leaked block in either cache', async () => {
    const rnd = mulberry32(11);
    let preemptions = 0, specRows = 0;
    for (let trial = 0; trial < 12; trial++) {
      const nb = 14 + Math.floor(rnd() * 20);
      const reqs = Array.from({ length: 2 + Math.floor(rnd() * 5) }, () => {
        // repetitive prompts so n-gram lookup finds matches
        const base = Array.from({ length: 2 + Math.floor(rnd() * 4) }, () => Math.floor(rnd() * 60));
        return { prompt: Array.from({ length: 4 + Math.floor(rnd() * 20) }, (_, i) => base[i % base.length]), max: 4 + Math.floor(rnd() * 24) };
      });
      const run = async (proposer?: Proposer, k = 1, budget = 64) => {
        const e = new Engine(fakeBackend(nb), { maxSeqs: 4, maxBatchedTokens: budget, ...(proposer ? { speculative: { proposer, maxK: k, maxBatchTokens: 1000 } } : {}) });
        const out = await Promise.all(reqs.map((r) => e.generate(r.prompt, { max_tokens: r.max, temperature: 0, ignore_eos: true })));
        expect(e.scheduler.kv.numFreeBlocks).toBe(nb);
        e.scheduler.kv.checkInvariants();
        return { tokens: out.map((c) => c.tokens), e };
      };
      const plain = (await run()).tokens;
      const k = 1 + Math.floor(rnd() * 6);
      const budget = 8 + Math.floor(rnd() * 40);
      const dp = new DraftModelProposer(fakeBackend(nb));
      const d = await run(dp, k, budget);
      expect(d.tokens, `trial ${trial} draft k=${k}`).toEqual(plain);
      expect(dp.kv.numFreeBlocks).toBe(nb);
      expect(d.e.spec!.metrics.numAcceptedTokens).toBeGreaterThan(0); // identical model: drafts accepted
      const n = await run(new NgramProposer(2, 8), k, budget);
      expect(n.tokens, `trial ${trial} ngram k=${k}`).toEqual(plain);
      preemptions += d.e.scheduler.numPreemptions + n.e.scheduler.numPreemptions;
      specRows += d.e.spec!.metrics.numSpecRows + n.e.spec!.metrics.numSpecRows;
    }
    expect(preemptions).toBeGreaterThan(0);
    expect(specRows).toBeGreaterThan(50);
  }, 120_000);
});

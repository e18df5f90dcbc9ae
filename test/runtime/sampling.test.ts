/**
 * Sampler: Philox known answers, parameter validation messages, each mask (top-k, top-p, min-p)
 * and penalty on hand-made distributions, seed determinism independent of batch position, and a
 * chi-square check that temperature-1 sampling reproduces a known distribution.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { philox4x32, resolveSamplingParams, Sampler, type SamplingParams, type TokenHistory, uniform } from '../../runtime/sampling.js';

const hex = (w: number[]): string[] => w.map((x) => x.toString(16).padStart(8, '0'));
const noHistory: TokenHistory = { tokens: [], promptLen: 0, length: 0 };
/** Logits whose softmax is exactly `probs`. */
const logitsOf = (probs: number[]): Float32Array => Float32Array.from(probs, (p) => (p > 0 ? Math.log(p) : -Infinity));
const dist = (probs: number[], p: SamplingParams, h = noHistory): number[] =>
  [...new Sampler(probs.length).distribution(logitsOf(probs), resolveSamplingParams(p), h)].map((x) => +x.toFixed(6));

describe('Philox-4x32-10', () => {
  it('matches the Random123 known-answer vectors', () => {
    expect(hex(philox4x32(0, 0, 0, 0, 0, 0))).toEqual(['6627e8d5', 'e169c58d', 'bc57ac4c', '9b00dbd8']);
    const m = 0xffffffff;
    expect(hex(philox4x32(m, m, m, m, m, m))).toEqual(['408f276d', '41c83b0e', 'a20bc7c6', '6d5451fd']);
    expect(hex(philox4x32(0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0)))
      .toEqual(['d16cfe09', '94fdcceb', '5001e420', '24126ea1']);
  });
  it('gives uniforms in [0, 1) that depend on seed, counter and stream', () => {
    const u = uniform(42, 7);
    expect(u).toBeGreaterThanOrEqual(0);
    expect(u).toBeLessThan(1);
    expect(uniform(42, 7)).toBe(u);
    expect(new Set([uniform(43, 7), uniform(42, 8), uniform(42, 7, 1), u, uniform(2 ** 40 + 42, 7)]).size).toBe(5);
  });
});

describe('resolveSamplingParams', () => {
  it('fills defaults', () => {
    const r = resolveSamplingParams({ seed: 1 });
    expect(r).toEqual({ temperature: 1, topK: 0, topP: 1, minP: 0, repetitionPenalty: 1, presencePenalty: 0, frequencyPenalty: 0, seed: 1, logprobs: -1 });
    expect(Number.isSafeInteger(resolveSamplingParams().seed)).toBe(true);
    expect(resolveSamplingParams({ top_k: -1 }).topK).toBe(0);
  });
  it.each([
    [{ top_p: 1.5 }, 'top_p must be in (0, 1], got 1.5'],
    [{ top_p: 0 }, 'top_p must be in (0, 1], got 0'],
    [{ temperature: -1 }, 'temperature must be >= 0 and finite, got -1'],
    [{ top_k: 2.5 }, 'top_k must be -1 or 0 (off) or a positive integer, got 2.5'],
    [{ min_p: 2 }, 'min_p must be in [0, 1], got 2'],
    [{ repetition_penalty: 0 }, 'repetition_penalty must be > 0 and finite, got 0'],
    [{ presence_penalty: 3 }, 'presence_penalty must be in [-2, 2], got 3'],
    [{ frequency_penalty: -2.5 }, 'frequency_penalty must be in [-2, 2], got -2.5'],
    [{ seed: 1.5 }, 'seed must be a safe integer, got 1.5'],
    [{ logprobs: 21 }, 'logprobs must be an integer in [0, 20], got 21'],
    [{ temperature: '1' }, 'temperature must be a number, got string'],
    [{ temperature: NaN }, 'temperature must be a number, got NaN'],
    [{ topP: 0.5 }, "unknown sampling parameter 'topP'"],
  ])('%o → %s', (p, msg) => expect(() => resolveSamplingParams(p as SamplingParams)).toThrow(msg));
});

describe('Sampler masks and penalties', () => {
  const probs = [0.1, 0.4, 0.2, 0.3];
  it('temperature 1 keeps the distribution; temperature sharpens or flattens it', () => {
    expect(dist(probs, {})).toEqual(probs);
    const t = dist(probs, { temperature: 0.5 }), sq = probs.map((p) => p * p), z = sq.reduce((a, b) => a + b);
    expect(t).toEqual(sq.map((x) => +(x / z).toFixed(6)));
  });
  it('top_k keeps the k most probable', () => {
    expect(dist(probs, { top_k: 2 })).toEqual([0, 0.4 / 0.7, 0, 0.3 / 0.7].map((x) => +x.toFixed(6)));
    expect(dist(probs, { top_k: 10 })).toEqual(probs);
  });
  it('top_p keeps the smallest most-probable set reaching the mass', () => {
    expect(dist(probs, { top_p: 0.7 })).toEqual([0, 0.4 / 0.7, 0, 0.3 / 0.7].map((x) => +x.toFixed(6)));
    expect(dist(probs, { top_p: 0.71 })).toEqual([0, 0.4 / 0.9, 0.2 / 0.9, 0.3 / 0.9].map((x) => +x.toFixed(6)));
    expect(dist(probs, { top_p: 0.01 })).toEqual([0, 1, 0, 0]);
    expect(dist(probs, { top_k: 3, top_p: 0.5 })).toEqual([0, 0.4 / 0.7, 0, 0.3 / 0.7].map((x) => +x.toFixed(6)));
  });
  it('min_p drops tokens below min_p × the top probability', () => {
    expect(dist(probs, { min_p: 0.45 })).toEqual([0, 0.4 / 0.9, 0.2 / 0.9, 0.3 / 0.9].map((x) => +x.toFixed(6)));
    expect(dist(probs, { min_p: 0.55 })).toEqual([0, 0.4 / 0.7, 0, 0.3 / 0.7].map((x) => +x.toFixed(6)));
    expect(dist(probs, { min_p: 1 })).toEqual([0, 1, 0, 0]);
  });
  it('ties in top_k break toward the lower token id', () => {
    expect(dist([0.25, 0.25, 0.25, 0.25], { top_k: 2 })).toEqual([0.5, 0.5, 0, 0]);
  });
  it('repetition penalty divides positive and multiplies negative logits of seen tokens', () => {
    const s = new Sampler(4), logits = Float32Array.from([2, -2, 1, 0]);
    const h: TokenHistory = { tokens: [0, 1, 0], promptLen: 2, length: 3 };
    const f = s.distribution(logits, resolveSamplingParams({ repetition_penalty: 2 }), h);
    const want = [1, -4, 1, 0].map(Math.exp), z = want.reduce((a, b) => a + b);
    expect([...f].map((x) => +x.toFixed(6))).toEqual(want.map((x) => +(x / z).toFixed(6)));
  });
  it('presence and frequency penalties count generated tokens only', () => {
    const s = new Sampler(4), logits = new Float32Array(4);
    const h: TokenHistory = { tokens: [3, 3, 0, 0, 1], promptLen: 2, length: 5 };
    const f = s.distribution(logits, resolveSamplingParams({ presence_penalty: 0.5, frequency_penalty: 0.25 }), h);
    const want = [-(0.5 + 0.5), -(0.5 + 0.25), 0, 0].map(Math.exp), z = want.reduce((a, b) => a + b);
    expect([...f].map((x) => +x.toFixed(6))).toEqual(want.map((x) => +(x / z).toFixed(6)));
  });
});

/** The masks written the obvious way: sort everything. */
function naive(logits: number[], p: { temperature: number; top_k: number; top_p: number; min_p: number }): number[] {
  const m = Math.max(...logits), x = logits.map((l) => Math.exp((l - m) / p.temperature));
  let kept = x.map((_, i) => i).filter((i) => x[i] >= p.min_p && x[i] > 0).sort((a, b) => x[b] - x[a] || a - b);
  if (p.top_k > 0) kept = kept.slice(0, p.top_k);
  const mass = kept.reduce((a, i) => a + x[i], 0);
  let before = 0, j = 0;
  while (j < kept.length && (j === 0 || before < p.top_p * mass)) before += x[kept[j++]];
  kept = kept.slice(0, j);
  const z = kept.reduce((a, i) => a + x[i], 0), out = new Array(x.length).fill(0);
  for (const i of kept) out[i] = x[i] / z;
  return out;
}

describe('Sampler masks on random distributions', () => {
  it('match a sort-everything reference', () => {
    const arb = fc.record({
      logits: fc.array(fc.oneof(fc.integer({ min: -40, max: 10 }), fc.constant(3)), { minLength: 1, maxLength: 300 }),
      temperature: fc.constantFrom(0.3, 1, 2), top_k: fc.integer({ min: 0, max: 20 }),
      top_p: fc.constantFrom(1, 0.95, 0.5, 0.1), min_p: fc.constantFrom(0, 0.01, 0.3),
    });
    fc.assert(fc.property(arb, ({ logits: raw, ...c }) => {
      const logits = Float32Array.from(raw, (v) => v / 3);
      const got = new Sampler(logits.length).distribution(logits, resolveSamplingParams({ ...c, seed: 0 }), noHistory);
      const want = naive([...logits], c);
      got.forEach((g, i) => expect(g).toBeCloseTo(want[i], 9));
    }), { numRuns: 300 });
  });
});

describe('Sampler.sample', () => {
  it('greedy takes the argmax (lowest id on ties) with its logprob', () => {
    const s = new Sampler(4);
    const r = s.sample(logitsOf([0.1, 0.4, 0.4, 0.1]), resolveSamplingParams({ temperature: 0, logprobs: 2 }), noHistory, 0);
    expect(r.token).toBe(1);
    expect(r.logprob).toBeCloseTo(Math.log(0.4), 6);
    expect(r.top!.map((t) => t.token)).toEqual([1, 2]);
  });
  it('returns top-n logprobs of the final distribution, most probable first', () => {
    const r = new Sampler(4).sample(logitsOf([0.1, 0.4, 0.2, 0.3]), resolveSamplingParams({ top_k: 3, logprobs: 4, seed: 3 }), noHistory, 5);
    expect(r.top!.map((t) => t.token)).toEqual([1, 3, 2, 0]);
    expect(r.top!.map((t) => +Math.exp(t.logprob).toFixed(6))).toEqual([0.4 / 0.9, 0.3 / 0.9, 0.2 / 0.9, 0].map((x) => +x.toFixed(6)));
    expect(r.logprob).toBe(r.top!.find((t) => t.token === r.token)!.logprob);
    expect(new Sampler(4).sample(logitsOf([0.1, 0.4, 0.2, 0.3]), resolveSamplingParams({ seed: 3 }), noHistory, 5).top).toBeUndefined();
  });
  it('the same seed and position give the same token wherever the row sits in a batch', () => {
    const V = 50, B = 8;
    const rows = Array.from({ length: B }, (_, b) => Float32Array.from({ length: V }, (_, v) => Math.sin(v * 1.3 + b)));
    const params = rows.map((_, b) => resolveSamplingParams({ seed: 1000 + b, top_p: 0.9 }));
    const run = (order: number[]): number[] => {
      const s = new Sampler(V), out: number[] = [];
      for (const b of order) out[b] = s.sample(rows[b], params[b], noHistory, 17).token;
      return out;
    };
    const forward = run([...Array(B).keys()]);
    expect(run([...Array(B).keys()].reverse())).toEqual(forward);
    expect(run([3, 1, 7, 0, 6, 2, 5, 4])).toEqual(forward);
    // alone, in a fresh sampler
    for (let b = 0; b < B; b++) expect(new Sampler(V).sample(rows[b], params[b], noHistory, 17).token).toBe(forward[b]);
  });
  it('temperature 1 draws match the distribution (chi-square over 20k draws)', () => {
    const probs = [0.05, 0.1, 0.15, 0.2, 0.25, 0.125, 0.075, 0.05], n = 20_000;
    const s = new Sampler(probs.length), p = resolveSamplingParams({ seed: 12345 }), counts = new Array(probs.length).fill(0);
    for (let i = 0; i < n; i++) counts[s.sample(logitsOf(probs), p, noHistory, i).token]++;
    const chi2 = counts.reduce((acc, c, i) => acc + (c - n * probs[i]) ** 2 / (n * probs[i]), 0);
    expect(chi2).toBeLessThan(24.3); // 7 degrees of freedom, p = 0.001
  });
  it('rejects a logits row of the wrong size or without a finite maximum', () => {
    const s = new Sampler(4), p = resolveSamplingParams({ seed: 1 });
    expect(() => s.sample(new Float32Array(3), p, noHistory, 0)).toThrow('logits row has 3 entries, vocabulary 4');
    expect(() => s.sample(new Float32Array(4).fill(NaN), p, noHistory, 0)).toThrow('no finite maximum');
    expect(() => s.sample(Float32Array.from([1, NaN, 0, 0]), p, noHistory, 0)).toThrow('logits row contains NaN');
  });
});

/**
 * spec-verify kernel on the CPU emulator against runtime/spec/spec-decoder.ts SpecDecoder.verify
 * itself (a stub proposer hands it each case's draft distributions q): every case runs through
 * verify on the CPU and through one batched kernel launch (ragged k, logit rows at scattered
 * offsets, one-hot and q drafts mixed via has_draft_probs), and the accepted count, the next token,
 * verify's per-row tokens and the logprob of the next token must agree.
 *
 * Cases (vocab 259, 128 threads): greedy with k = 0..6, draft = argmax up to an injected miss
 * (ties at the max included: the lowest id wins); sampled with one-hot drafts and with draft
 * distributions q (fp32 values, drafts drawn from q, some q(d) = 0), temperatures 0.3..2,
 * top_k off/1/5/50, top_p off/0.9/0.5, k = 0..6, random seeds (negative ones too) and positions;
 * peaked rows with argmax drafts so the all-accepted bonus path is common. Logits are multiples
 * of 1/16 (exact ties). The kernel's p is fp32 with exact fixed-point masses, the CPU's fp64, so a
 * case where a decision on the CPU path lies within a rounding distance of its boundary (acceptance
 * u within 1e-5 of p(d)/q(d), a residual or bonus draw within 1e-6 of a CDF step, a top_p cut that
 * moves when top_p changes by 1e-6) is skipped and counted (expected: next to none).
 * Plus V = 5003 at 1024 threads, and nvcc for sm_80 + sm_90a without spills or stack.
 */
import { describe, expect, it } from 'vitest';
import * as sv from '../../compiler/codegen/families/spec-verify.js';
import type { RenderedKernel } from '../../compiler/codegen/kernel.js';
import type { Sequence } from '../../runtime/scheduler.js';
import { resolveSamplingParams, Sampler, uniform, type ResolvedSampling } from '../../runtime/sampling.js';
import type { Proposer } from '../../runtime/spec/proposer.js';
import { ACCEPT_STREAM, RESIDUAL_STREAM, SpecDecoder } from '../../runtime/spec/spec-decoder.js';
import { buildEmuLib, compileKernelsNvcc, hasGxx, hasNvcc } from '../helpers/emu-kernel.js';
import { mulberry32 } from '../helpers/random.js';

const kernels = (): RenderedKernel[] => [sv.render({ threads: 128 }), sv.render({ threads: 1024 })];

function wrapper(ks: RenderedKernel[]): string {
  const lines = ['#include "lfc_abi_spec.h"'];
  for (const k of ks) {
    lines.push(`cudaError_t ${k.name}(const LfcSpecVerifyArgs&, cudaStream_t);`);
    lines.push(`extern "C" int run_${k.name}(const float* lg, const int* rows, const int* ds, const int* dt, const float* q, const int* hq,
  const float* t, const int* tk, const float* tp, const uint64_t* seeds, const int64_t* pos, int* acc, int* next, float* lp, int* rt, int S, int V) {
  LfcSpecVerifyArgs a{lg, rows, ds, dt, q, hq, t, tk, tp, seeds, pos, acc, next, lp, rt, nullptr, S, V}; return ${k.name}(a, nullptr); }`);
  }
  return lines.join('\n') + '\n';
}

interface Case {
  logits: Float32Array; // [k + 1, V]
  draft: Int32Array;
  q?: Float64Array[]; // fp32-representable rows
  temperature: number; topK: number; topP: number; seed: number;
  position: number; // seq.length: position of the first draft
}

class StubProposer implements Proposer {
  readonly name = 'stub';
  q: Float64Array[] | undefined;
  propose(): Int32Array[] { return []; }
  draftProbs(): Float64Array[] | undefined { return this.q; }
}

function paramsOf(c: Case, topP = c.topP): ResolvedSampling {
  return resolveSamplingParams({ temperature: c.temperature, top_k: c.topK, top_p: topP, seed: c.seed });
}

interface Ref { out: Int32Array; accepted: number; next: number; logprob: number }

/** SpecDecoder.verify on the CPU, plus the log-probability of the next token under p. */
function reference(dec: SpecDecoder, prop: StubProposer, c: Case, V: number): Ref {
  prop.q = c.q;
  const seq = { id: 1, tokens: new Int32Array(c.position + c.draft.length + 1), promptLen: c.position, length: c.position } as unknown as Sequence;
  const out = dec.verify(seq, paramsOf(c), c.draft, c.logits);
  let a = 0;
  while (a < c.draft.length && out[a] === c.draft[a]) a++;
  const p = new Sampler(V).distribution(c.logits.subarray(a * V, (a + 1) * V), paramsOf(c), { tokens: [], promptLen: 0, length: 0 });
  return { out, accepted: a, next: out[a], logprob: Math.log(p[out[a]]) };
}

/** True when a decision on the CPU path lies within rounding distance of its boundary. */
function nearBoundary(c: Case, ref: Ref, V: number): boolean {
  if (c.temperature === 0) return false;
  const sampler = new Sampler(V), NOH = { tokens: [], promptLen: 0, length: 0 };
  const kept = (g: Float64Array) => Array.from(g, (v) => v > 0).join();
  const cdfNear = (w: ArrayLike<number>, u: number): boolean => {
    let sum = 0;
    for (let i = 0; i < w.length; i++) sum += w[i];
    const x = u * sum;
    let acc = 0;
    for (let i = 0; i < w.length; i++) {
      if (w[i] === 0) continue;
      if (Math.abs(x - acc) < 1e-6 * sum) return true;
      acc += w[i];
    }
    return Math.abs(x - acc) < 1e-6 * sum;
  };
  for (let j = 0; j <= ref.accepted; j++) {
    const row = c.logits.subarray(j * V, (j + 1) * V), pos = c.position + j;
    const p = Float64Array.from(sampler.distribution(row, paramsOf(c), NOH));
    for (const d of [-1e-6, 1e-6]) {
      if (c.topP < 1 && kept(Float64Array.from(sampler.distribution(row, paramsOf(c, Math.min(1, c.topP + d)), NOH))) !== kept(p)) return true;
    }
    if (j === c.draft.length) return cdfNear(p, uniform(c.seed, pos));
    const d = c.draft[j], q = c.q?.[j];
    const qd = q ? q[d] : 1;
    const ratio = qd > 0 ? p[d] / qd : 1;
    if (ratio < 1 + 1e-5 && Math.abs(uniform(c.seed, pos, ACCEPT_STREAM) - ratio) < 1e-5) return true;
    if (j === ref.accepted) {
      const r = Float64Array.from(p, (v, i) => (i === d ? 0 : q ? Math.max(0, v - q[i]) : v));
      const sum = r.reduce((s, v) => s + v, 0);
      if (sum < 1e-6) return true;
      return cdfNear(r, uniform(c.seed, pos, RESIDUAL_STREAM));
    }
  }
  return false;
}

interface Got { accepted: Int32Array; next: Int32Array; logprobs: Float32Array; rowTokens: Int32Array; rows: Int32Array }

/** One launch over all cases: logit rows at scattered offsets (a gap row before each sequence). */
function runCases(lib: ReturnType<typeof buildEmuLib>, k: RenderedKernel, cases: Case[], V: number, withQ = true): Got {
  const S = cases.length;
  const rows = new Int32Array(S), ds = new Int32Array(S + 1);
  let r = 0;
  cases.forEach((c, s) => { r += 1 + (s % 3); rows[s] = r; r += c.draft.length + 1; ds[s + 1] = ds[s] + c.draft.length; });
  const lg = new Float32Array(r * V).fill(Number.NaN); // gap rows are garbage nobody may read
  cases.forEach((c, s) => lg.set(c.logits, rows[s] * V));
  const dt = new Int32Array(Math.max(1, ds[S])), q = new Float32Array(Math.max(1, ds[S]) * V).fill(Number.NaN);
  const hq = new Int32Array(S);
  cases.forEach((c, s) => {
    dt.set(c.draft, ds[s]);
    if (c.q) { hq[s] = 1; c.q.forEach((row, j) => q.set(row, (ds[s] + j) * V)); }
  });
  const accepted = new Int32Array(S).fill(-7), next = new Int32Array(S).fill(-7), logprobs = new Float32Array(S).fill(NaN);
  const rowTokens = new Int32Array(r).fill(-9);
  const run = lib.func(`int run_${k.name}(const float*, const int*, const int*, const int*, const float*, const int*, const float*, const int*, const float*, const uint64_t*, const int64_t*, int*, int*, float*, int*, int, int)`);
  const rc = run(lg, rows, ds, dt, withQ ? q : null, withQ ? hq : null,
    Float32Array.from(cases, (c) => c.temperature), Int32Array.from(cases, (c) => c.topK), Float32Array.from(cases, (c) => c.topP),
    BigUint64Array.from(cases, (c) => BigInt.asUintN(64, BigInt(c.seed))), BigInt64Array.from(cases, (c) => BigInt(c.position)),
    accepted, next, logprobs, rowTokens, S, V);
  expect(rc).toBe(0);
  return { accepted, next, logprobs, rowTokens, rows };
}

function randomLogits(rnd: () => number, V: number, spread: number): Float32Array {
  return Float32Array.from({ length: V }, () => Math.round((rnd() * 2 - 1) * spread * 16) / 16);
}

function argmaxOf(x: ArrayLike<number>): number {
  let b = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[b]) b = i;
  return b;
}

/** A draw from a probability row with the test's own RNG. */
function drawFrom(p: ArrayLike<number>, rnd: () => number): number {
  let sum = 0;
  for (let i = 0; i < p.length; i++) sum += p[i];
  const u = rnd() * sum;
  let acc = 0;
  for (let i = 0; i < p.length; i++) { acc += p[i]; if (u < acc && p[i] > 0) return i; }
  return argmaxOf(p);
}

function softmaxF32(x: ArrayLike<number>, T: number): Float64Array {
  let m = -Infinity;
  for (let i = 0; i < x.length; i++) m = Math.max(m, x[i]);
  const e = Float64Array.from(x as ArrayLike<number>, (v) => Math.exp((v - m) / T));
  const s = e.reduce((a, b) => a + b, 0);
  return Float64Array.from(e, (v) => Math.fround(v / s));
}

function makeCases(rnd: () => number, V: number, n: number, mode: 'greedy' | 'onehot' | 'q'): Case[] {
  const temps = [0.3, 0.7, 1, 1.3, 2], topKs = [0, 0, 1, 5, 50], topPs = [1, 1, 0.9, 0.5];
  const sampler = new Sampler(V), NOH = { tokens: [], promptLen: 0, length: 0 };
  const cases: Case[] = [];
  for (let i = 0; i < n; i++) {
    const k = i % 7;
    const peaked = i % 3 === 0;
    const logits = new Float32Array((k + 1) * V);
    for (let j = 0; j <= k; j++) {
      const row = randomLogits(rnd, V, peaked ? 12 : i % 2 ? 3 : 6);
      if (i % 11 === 5) { const top = Math.max(...row); row[200] = top; row[17] = top; } // tie at the max
      logits.set(row, j * V);
    }
    const c: Case = {
      logits, draft: new Int32Array(k),
      temperature: mode === 'greedy' ? 0 : temps[i % temps.length],
      topK: mode === 'greedy' ? 0 : topKs[Math.floor(i / 5) % topKs.length],
      topP: mode === 'greedy' ? 1 : Math.fround(topPs[Math.floor(i / 25) % topPs.length]),
      seed: i % 13 === 4 ? -Math.floor(rnd() * 2 ** 40) : Math.floor(rnd() * 2 ** 52),
      position: 1 + Math.floor(rnd() * 4000),
    };
    const miss = peaked ? k : Math.floor(rnd() * (k + 1)); // greedy: first wrong draft (k: none)
    if (mode === 'q') c.q = [];
    for (let j = 0; j < k; j++) {
      const row = logits.subarray(j * V, (j + 1) * V);
      if (mode === 'greedy') {
        const best = argmaxOf(row);
        c.draft[j] = j < miss ? best : (best + 1 + Math.floor(rnd() * (V - 1))) % V;
      } else if (mode === 'onehot') {
        const p = sampler.distribution(row, paramsOf(c), NOH);
        const r = rnd();
        c.draft[j] = peaked || r < 0.5 ? argmaxOf(p) : r < 0.9 ? drawFrom(p, rnd) : Math.floor(rnd() * V);
      } else {
        const noisy = Float32Array.from(row, (v) => v + (rnd() - 0.5) * (peaked ? 0.5 : 3));
        const q = softmaxF32(noisy, c.temperature);
        c.q!.push(q);
        c.draft[j] = drawFrom(q, rnd);
        if (i % 17 === 3 && j === 0) q[c.draft[j]] = 0; // q(d) = 0: always accepted
      }
    }
    cases.push(c);
  }
  return cases;
}

describe.skipIf(!hasGxx)('spec-verify on the emulator', () => {
  const all = kernels();
  const lib = buildEmuLib(all, wrapper(all));
  const [k128, k1024] = all;

  function check(cases: Case[], V: number, kern: RenderedKernel, label: string, withQ = true): { compared: number; skipped: number; hist: number[]; bonus: number } {
    const prop = new StubProposer();
    const dec = new SpecDecoder({ proposer: prop, maxK: 8 }, V);
    const got = runCases(lib, kern, cases, V, withQ);
    let skipped = 0, bonus = 0;
    const hist = new Array(8).fill(0);
    cases.forEach((c, s) => {
      const ref = reference(dec, prop, withQ ? c : { ...c, q: undefined }, V);
      if (nearBoundary(withQ ? c : { ...c, q: undefined }, ref, V)) { skipped++; return; }
      const what = `${label} case ${s} (k=${c.draft.length} T=${c.temperature} top_k=${c.topK} top_p=${c.topP} seed=${c.seed} q=${!!c.q})`;
      expect(got.accepted[s], what).toBe(ref.accepted);
      expect(got.next[s], what).toBe(ref.next);
      expect(Array.from(got.rowTokens.subarray(got.rows[s], got.rows[s] + c.draft.length + 1)), what).toEqual(Array.from(ref.out));
      if (Number.isFinite(ref.logprob)) expect(Math.abs(got.logprobs[s] - ref.logprob), `${what} logprob`).toBeLessThan(1e-4);
      else expect(got.logprobs[s], `${what} logprob`).toBe(-Infinity);
      hist[ref.accepted]++;
      if (ref.accepted === c.draft.length) bonus++;
    });
    console.log(`spec-verify ${label}: ${cases.length - skipped} compared, ${skipped} skipped at a rounding boundary; accepted counts ${hist.join('/')}; ${bonus} bonus`);
    return { compared: cases.length - skipped, skipped, hist, bonus };
  }

  it('greedy: accept while the argmax equals the draft, k = 0..6, ties at the max', () => {
    const V = 259;
    const cases = makeCases(mulberry32(7), V, 140, 'greedy');
    const r = check(cases, V, k128, 'greedy');
    expect(r.skipped).toBe(0);
    expect(r.hist.filter((x) => x > 0).length).toBeGreaterThanOrEqual(6); // every accepted count 0..5+
    expect(r.bonus).toBeGreaterThan(30);
  });

  it('sampled, one-hot drafts: acceptance with p(d), residual p without d, bonus from p (many seeds, top_k/top_p)', () => {
    const V = 259;
    const cases = makeCases(mulberry32(21), V, 420, 'onehot');
    const r = check(cases, V, k128, 'one-hot');
    expect(r.skipped).toBeLessThan(8);
    expect(r.hist[0]).toBeGreaterThan(20);
    expect(r.bonus).toBeGreaterThan(60);
  });

  it('sampled with draft distributions q: min(1, p/q) acceptance and the max(0, p − q) residual', () => {
    const V = 259;
    const cases = makeCases(mulberry32(33), V, 420, 'q');
    const r = check(cases, V, k128, 'q');
    expect(r.skipped).toBeLessThan(8);
    expect(r.hist[0]).toBeGreaterThan(20);
    expect(r.bonus).toBeGreaterThan(60);
  });

  it('one launch mixing greedy, one-hot and q sequences; draft_probs = null means one-hot for all', () => {
    const V = 259;
    const mixed = [...makeCases(mulberry32(41), V, 30, 'greedy'), ...makeCases(mulberry32(42), V, 40, 'onehot'), ...makeCases(mulberry32(43), V, 40, 'q')];
    const order = mixed.map((_, i) => i).sort((a, b) => ((a * 37) % 110) - ((b * 37) % 110));
    const shuffled = order.map((i) => mixed[i]);
    check(shuffled, V, k128, 'mixed');
    check(makeCases(mulberry32(44), V, 40, 'q'), V, k128, 'q ignored', false);
  });

  it('1024 threads on a larger vocabulary (V = 5003) agrees too', () => {
    const V = 5003;
    const cases = [...makeCases(mulberry32(3), V, 4, 'greedy'), ...makeCases(mulberry32(4), V, 5, 'onehot'), ...makeCases(mulberry32(5), V, 5, 'q')];
    const r = check(cases, V, k1024, 'V=5003');
    expect(r.compared).toBeGreaterThan(10);
  });
});

describe.skipIf(!hasNvcc)('spec-verify with nvcc', () => {
  it('every config compiles for sm_80 and sm_90a without spills or stack', () => {
    const rep = compileKernelsNvcc([...kernels(), sv.render(sv.configForSpecVerify(32000))]);
    expect(new Set(rep.map((r) => r.arch))).toEqual(new Set(['sm_80', 'sm_90a']));
    for (const r of rep) expect(r.spillStores + r.stackBytes, `${r.kernel} ${r.arch}`).toBe(0);
  }, 300_000);
});

/**
 * sampling kernel on the CPU emulator against runtime/sampling.ts's Sampler: greedy rows (ties at
 * the maximum, -inf entries, logprob) and a few hundred stochastic rows over random logits
 * (vocab 259, temperatures 0.3..2, top_k off/1/5/50/258/300, top_p off/0.95/0.8/0.5/0.1, random
 * seeds and counters). Logits are multiples of 1/16 so ties are exact in both (top_k tie-breaking
 * by lowest id is exercised) and distinct values stay apart in fp32. The kernel's masses differ
 * from the Sampler's fp64 sums in rounding only, so a case whose draw u lies within 1e-6 of a CDF
 * boundary, or whose top_p cut moves when top_p changes by 1e-6, is skipped (the test counts them;
 * with these logits there are next to none). Tokens must match exactly; logprobs within 1e-4.
 * nvcc: every config for sm_80 + sm_90a without spills or stack.
 */
import { describe, expect, it } from 'vitest';
import * as sample from '../../compiler/codegen/families/sample.js';
import type { RenderedKernel } from '../../compiler/codegen/kernel.js';
import { argmax } from '../../runtime/kernels/logits.js';
import { resolveSamplingParams, Sampler, uniform, type ResolvedSampling } from '../../runtime/sampling.js';
import { buildEmuLib, compileKernelsNvcc, hasGxx, hasNvcc } from '../helpers/emu-kernel.js';
import { mulberry32 } from '../helpers/random.js';

const kernels = (): RenderedKernel[] => [sample.render({ threads: 128 }), sample.render({ threads: 1024 })];

function wrapper(ks: RenderedKernel[]): string {
  const lines = ['#include "lfc_abi.h"'];
  for (const k of ks) {
    lines.push(`cudaError_t ${k.name}(const LfcSampleArgs&, cudaStream_t);`);
    lines.push(`extern "C" int run_${k.name}(const float* lg, const float* t, const int* tk, const float* tp, const uint64_t* seeds, const int64_t* ctr, int* out, float* lp, int L, int V) {
  LfcSampleArgs a{lg, t, tk, tp, seeds, ctr, out, lp, nullptr, L, V}; return ${k.name}(a, nullptr); }`);
  }
  return lines.join('\n') + '\n';
}

interface Row { logits: Float32Array; temperature: number; topK: number; topP: number; seed: number; counter: number }

const NOHIST = { tokens: [], promptLen: 0, length: 0 };

function params(r: Row, topP = r.topP): ResolvedSampling {
  return resolveSamplingParams({ temperature: r.temperature, top_k: r.topK, top_p: topP, seed: r.seed });
}

/** The Sampler's token and logprob, or null when the case sits on a rounding boundary. */
function expected(sampler: Sampler, r: Row): { token: number; logprob: number } | null {
  const p = params(r);
  const res = sampler.sample(r.logits, p, NOHIST, r.counter);
  if (r.temperature === 0) return res;
  const f = Float64Array.from(sampler.distribution(r.logits, p, NOHIST));
  const kept = (g: Float64Array) => Array.from(g, (v) => v > 0).join();
  for (const d of [-1e-6, 1e-6]) {
    const tp = Math.min(1, r.topP + d);
    if (r.topP < 1 && kept(Float64Array.from(sampler.distribution(r.logits, params(r, tp), NOHIST))) !== kept(f)) return null;
  }
  const u = uniform(r.seed, r.counter);
  let acc = 0;
  for (let i = 0; i < f.length; i++) {
    if (f[i] === 0) continue;
    const next = acc + f[i];
    if (Math.abs(u - acc) < 1e-6 || Math.abs(u - next) < 1e-6) return null;
    acc = next;
  }
  return res;
}

function runRows(lib: ReturnType<typeof buildEmuLib>, k: RenderedKernel, rows: Row[], V: number): { tokens: Int32Array; logprobs: Float32Array } {
  const L = rows.length;
  const lg = new Float32Array(L * V);
  rows.forEach((r, i) => lg.set(r.logits, i * V));
  const tokens = new Int32Array(L).fill(-7), logprobs = new Float32Array(L).fill(NaN);
  const run = lib.func(`int run_${k.name}(const float*, const float*, const int*, const float*, const uint64_t*, const int64_t*, int*, float*, int, int)`);
  const rc = run(lg, Float32Array.from(rows, (r) => r.temperature), Int32Array.from(rows, (r) => r.topK), Float32Array.from(rows, (r) => r.topP),
    BigUint64Array.from(rows, (r) => BigInt(r.seed)), BigInt64Array.from(rows, (r) => BigInt(r.counter)), tokens, logprobs, L, V);
  expect(rc).toBe(0);
  return { tokens, logprobs };
}

function randomLogits(rnd: () => number, V: number, spread: number): Float32Array {
  return Float32Array.from({ length: V }, () => Math.round((rnd() * 2 - 1) * spread * 16) / 16);
}

describe.skipIf(!hasGxx)('sampling on the emulator', () => {
  const all = kernels();
  const lib = buildEmuLib(all, wrapper(all));
  const [k128, k1024] = all;

  it('greedy: argmax with lowest-id ties, -inf entries, logprob of softmax', () => {
    const V = 259, rnd = mulberry32(5);
    const rows: Row[] = [];
    for (let i = 0; i < 12; i++) {
      const logits = randomLogits(rnd, V, 4);
      if (i % 3 === 1) { logits[200] = 9; logits[17] = 9; logits[250] = 9; } // tie at the max: 17 wins
      if (i % 4 === 2) for (let j = 0; j < V; j += 2) logits[j] = -Infinity;
      rows.push({ logits, temperature: 0, topK: i % 2 ? 5 : 0, topP: i % 5 ? 0.5 : 1, seed: i, counter: i });
    }
    const { tokens, logprobs } = runRows(lib, k128, rows, V);
    const sampler = new Sampler(V);
    rows.forEach((r, i) => {
      expect(tokens[i], `row ${i}`).toBe(argmax(r.logits, V)[0]);
      const ref = sampler.sample(r.logits, params(r), NOHIST, r.counter);
      expect(tokens[i]).toBe(ref.token);
      expect(Math.abs(logprobs[i] - ref.logprob), `row ${i} logprob`).toBeLessThan(1e-4);
    });
  });

  it('stochastic: the same token as the Sampler for the same seed on a few hundred random rows', () => {
    const V = 259, rnd = mulberry32(11);
    const temps = [0.3, 0.7, 1, 1.3, 2];
    const topKs = [0, 1, 5, 50, 258, 300];
    const topPs = [1, 0.95, 0.8, 0.5, 0.1];
    const rows: Row[] = [];
    for (let i = 0; i < 360; i++) {
      const logits = randomLogits(rnd, V, i % 2 ? 3 : 8);
      if (i % 7 === 0) for (let j = 0; j < 20; j++) logits[Math.floor(rnd() * V)] = logits[0]; // ties around one value
      rows.push({
        logits, temperature: temps[i % temps.length], topK: topKs[Math.floor(i / 5) % topKs.length], topP: Math.fround(topPs[Math.floor(i / 30) % topPs.length]),
        seed: Math.floor(rnd() * 2 ** 52), counter: Math.floor(rnd() * 2 ** 40),
      });
    }
    const { tokens, logprobs } = runRows(lib, k128, rows, V);
    const sampler = new Sampler(V);
    let skipped = 0;
    const distinct = new Set<number>();
    rows.forEach((r, i) => {
      const ref = expected(sampler, r);
      if (!ref) { skipped++; return; }
      expect(tokens[i], `row ${i} (T=${r.temperature} top_k=${r.topK} top_p=${r.topP})`).toBe(ref.token);
      expect(Math.abs(logprobs[i] - ref.logprob), `row ${i} logprob`).toBeLessThan(1e-4);
      distinct.add(ref.token);
    });
    expect(skipped).toBeLessThan(10);
    console.log(`sample: ${rows.length - skipped} rows compared, ${skipped} skipped at a rounding boundary`);
    expect(distinct.size).toBeGreaterThan(50); // the draws really spread over the vocabulary
  });

  it('1024 threads on a larger vocabulary (V = 5003) agrees too', () => {
    const V = 5003, rnd = mulberry32(3);
    const rows: Row[] = [
      { logits: randomLogits(rnd, V, 6), temperature: 0, topK: 0, topP: 1, seed: 1, counter: 1 },
      { logits: randomLogits(rnd, V, 6), temperature: 1, topK: 0, topP: 1, seed: 99, counter: 7 },
      { logits: randomLogits(rnd, V, 6), temperature: 0.8, topK: 40, topP: 0.9, seed: 12345, counter: 2 ** 33 + 5 },
      { logits: randomLogits(rnd, V, 6), temperature: 1.5, topK: 0, topP: Math.fround(0.7), seed: 2 ** 50 + 3, counter: 0 },
    ];
    const { tokens, logprobs } = runRows(lib, k1024, rows, V);
    const sampler = new Sampler(V);
    rows.forEach((r, i) => {
      const ref = expected(sampler, r);
      if (!ref) return;
      expect(tokens[i], `row ${i}`).toBe(ref.token);
      expect(Math.abs(logprobs[i] - ref.logprob)).toBeLessThan(1e-4);
    });
  });
});

describe.skipIf(!hasNvcc)('sampling with nvcc', () => {
  it('every config compiles for sm_80 and sm_90a without spills or stack', () => {
    const rep = compileKernelsNvcc([...kernels(), sample.render({ threads: 256 })]);
    expect(new Set(rep.map((r) => r.arch))).toEqual(new Set(['sm_80', 'sm_90a']));
    for (const r of rep) expect(r.spillStores + r.stackBytes, `${r.kernel} ${r.arch}`).toBe(0);
  }, 300_000);
});

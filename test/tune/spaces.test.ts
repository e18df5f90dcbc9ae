/**
 * Config spaces: every candidate a space yields passes the constraints and the family's validator
 * and renders (fast-check over problems and targets); every choice the constraints reject is one
 * the family rejects, exceeds the target's shared memory, or is one of the documented useless
 * ones (a path the bucket never runs, a tile that must spill, a split-K that never splits), and
 * every choice the family rejects is rejected (fast-check over wide raw choices); messages carry
 * numbers. With nvcc: rankCandidates compiles the best few of a linear and an attention space
 * for sm_90a, reads ptxas and ranks by the model (cached in the artifact object cache).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { findTool } from '../../compiler/build/cuda-build.js';
import * as attention from '../../compiler/codegen/families/attention.js';
import * as linear from '../../compiler/codegen/families/linear.js';
import { TARGET_ARCH } from '../../compiler/codegen/kernel.js';
import { floorMs, predict } from '../../compiler/tune/model.js';
import { compileRepresentative, rankWithDrops, renderCandidate } from '../../compiler/tune/prune.js';
import { checkChoice, chooserChoice, choiceKey, configFor, space, type AttentionChoice, type AttentionProblem, type LinearChoice, type LinearProblem } from '../../compiler/tune/spaces.js';

const hasNvcc = findTool('nvcc') !== null;
const pow2 = (lo: number, hi: number) => fc.integer({ min: lo, max: hi }).map((e) => 2 ** e);
const target = fc.constantFrom('a100' as const, 'h100' as const, 'all' as const);

const linearProblem: fc.Arbitrary<LinearProblem> = fc.record({
  family: fc.constant('linear' as const), dtype: fc.constantFrom('bfloat16' as const, 'float16' as const),
  N: fc.constantFrom(24, 256, 384, 1024, 4096, 11008, 14336), K: fc.constantFrom(64, 256, 512, 1024, 4096, 11008),
  weight: fc.constantFrom('dense' as const, 'int4_group' as const), groupSize: fc.constant(0), T: pow2(0, 13),
}).map((p) => ({ ...p, groupSize: p.weight === 'int4_group' ? 128 : 0 }));

const attentionProblem: fc.Arbitrary<AttentionProblem> = fc.record({
  family: fc.constant('attention' as const), dtype: fc.constantFrom('bfloat16' as const, 'float16' as const),
  headDim: fc.constantFrom(32, 64, 128, 256), kv: fc.constantFrom([32, 32], [32, 8], [8, 2], [28, 4], [64, 8]),
  mode: fc.constantFrom('decode' as const, 'prefill' as const), T: pow2(0, 13), context: pow2(4, 15),
}).map(({ kv, ...p }) => ({ ...p, heads: kv[0], kvHeads: kv[1], B: p.mode === 'decode' ? p.T : 1, context: p.mode === 'decode' ? p.context : p.T }));

describe('config spaces', () => {
  it('linear: every candidate passes the constraints, validates and renders; tens per problem', () => {
    fc.assert(fc.property(linearProblem, target, (p, t) => {
      const { candidates } = space(p, t);
      expect(candidates.length).toBeGreaterThan(0);
      expect(candidates.length).toBeLessThanOrEqual(80);
      for (const c of candidates) {
        expect(checkChoice(p, c.choice, t)).toBeNull();
        linear.validateLinearConfig(c.config as linear.LinearConfig);
      }
      // Rendering is the slow part: a few per problem.
      for (const c of candidates.slice(0, 3)) expect(renderCandidate(c).source).toContain('cudaError_t');
    }), { numRuns: 40 });
  });

  it('attention: every candidate passes the constraints and renders; tens per problem', () => {
    fc.assert(fc.property(attentionProblem, target, (p, t) => {
      const { candidates } = space(p, t);
      expect(candidates.length).toBeGreaterThan(0);
      expect(candidates.length).toBeLessThanOrEqual(80);
      for (const c of candidates) {
        expect(checkChoice(p, c.choice, t)).toBeNull();
        expect(renderCandidate(c).family).toBe('attention');
      }
    }), { numRuns: 30 });
  });

  const USELESS = /T ≥ 2|GEMV serves|accumulators|fewer than 2 splits/;

  it('linear: a rejected choice is invalid for the family, over the target\'s shared memory, or useless; a family-invalid one is rejected', () => {
    const choice: fc.Arbitrary<LinearChoice> = fc.oneof(
      fc.record({ path: fc.constant('gemv' as const), cols: fc.integer({ min: 0, max: 5 }), warps: fc.integer({ min: 0, max: 10 }) }),
      fc.record({
        path: fc.constant('gemm' as const),
        tile: fc.record({ bm: fc.constantFrom(16, 32, 48, 64, 128, 256), bn: fc.constantFrom(16, 32, 64, 128, 256), bk: fc.constantFrom(8, 16, 32, 64, 128), warpsM: fc.integer({ min: 1, max: 8 }), warpsN: fc.integer({ min: 1, max: 8 }), stages: fc.integer({ min: 1, max: 5 }) }),
        splitK: fc.option(fc.record({ maxSplits: fc.integer({ min: 1, max: 17 }), minSlices: fc.integer({ min: 0, max: 8 }) })),
      }),
    );
    fc.assert(fc.property(linearProblem, choice, target, (p, c, t) => {
      const reason = checkChoice(p, c, t);
      let familyOk = true;
      try { linear.validateLinearConfig(configFor(p, c, t) as linear.LinearConfig); } catch { familyOk = false; }
      const limit = t === 'all' ? TARGET_ARCH.a100.smemPerBlockOptin : TARGET_ARCH[t].smemPerBlockOptin;
      const smemOk = c.path === 'gemv' || linear.tileSmemBytes({ ...c.tile, maxT: null }) <= limit;
      if (!familyOk || !smemOk) expect(reason).not.toBeNull();
      if (reason !== null && familyOk && smemOk) expect(reason).toMatch(USELESS);
      if (reason === null) expect(familyOk && smemOk).toBe(true);
    }), { numRuns: 300 });
  });

  it('attention: a rejected choice is invalid for the family or over the target\'s shared memory, and conversely', () => {
    const tile = fc.record({ warps: fc.integer({ min: 0, max: 9 }), rowTilesPerWarp: fc.integer({ min: 0, max: 3 }), kvWarps: fc.integer({ min: 0, max: 5 }), blockN: fc.constantFrom(8, 16, 32, 48, 64, 128, 144), stages: fc.integer({ min: 1, max: 5 }) });
    fc.assert(fc.property(attentionProblem, tile, target, (p, tl, t) => {
      const c: AttentionChoice = p.mode === 'decode' ? { mode: 'decode', tile: tl, split: { maxSplits: 16, minKeysPerSplit: 256, ctasPerSm: 4 } } : { mode: 'prefill', tile: tl };
      const reason = checkChoice(p, c, t);
      let familyOk = true;
      try { attention.render(configFor(p, c, t) as attention.AttentionConfig); } catch { familyOk = false; }
      expect(reason === null, `${reason}`).toBe(familyOk);
    }), { numRuns: 200 });
  });

  it('constraint messages carry the numbers', () => {
    const p: LinearProblem = { family: 'linear', dtype: 'bfloat16', N: 4096, K: 4096, weight: 'dense', groupSize: 0, T: 512 };
    const big: LinearChoice = { path: 'gemm', tile: { bm: 128, bn: 256, bk: 64, warpsM: 2, warpsN: 4, stages: 4 }, splitK: null };
    // 4 stages × (128 + 256) × 64 × 2 B = 196608 B
    expect(checkChoice(p, big, 'a100')).toMatch(/needs 196608 bytes of shared memory; sm_80 allows 166912/);
    expect(checkChoice(p, big, 'h100')).toMatch(/needs 196608 bytes .* caps GEMM tiles at 166912/);
    expect(checkChoice({ ...p, T: 1 }, big, 'h100')).toMatch(/T ≥ 2.*T = 1/);
    expect(checkChoice({ ...p, T: 32 }, { path: 'gemv', cols: 3, warps: 4 }, 'h100')).toMatch(/GEMV serves T ≤ 16; bucket T = 32/);
    const a: AttentionProblem = { family: 'attention', dtype: 'bfloat16', headDim: 256, heads: 32, kvHeads: 8, mode: 'prefill', T: 1024, B: 1, context: 1024 };
    // rows 8·2·16 = 256; (256 + 2·4·128) × (256 + 8) × 2 B = 675840 B
    expect(checkChoice(a, { mode: 'prefill', tile: { warps: 8, rowTilesPerWarp: 2, kvWarps: 1, blockN: 128, stages: 4 } }, 'h100')).toMatch(/needs 675840 bytes of shared memory; sm_90a allows 232448/);
    expect(checkChoice(a, { mode: 'prefill', tile: { warps: 4, rowTilesPerWarp: 1, kvWarps: 4, blockN: 32, stages: 2 } }, 'h100')).toMatch(/4 × 4 = 16 > 8/);
  });

  it('the chooser\'s GEMV choice is in the decode space', () => {
    const p: LinearProblem = { family: 'linear', dtype: 'bfloat16', N: 4096, K: 4096, weight: 'dense', groupSize: 0, T: 1 };
    expect(space(p, 'h100').candidates.map((c) => c.key)).toContain(choiceKey(chooserChoice(p, 'h100')));
  });
});

describe('compile representatives', () => {
  it('attention candidates share a compile exactly when they differ only in split-KV settings', () => {
    const p: AttentionProblem = { family: 'attention', dtype: 'bfloat16', headDim: 64, heads: 8, kvHeads: 2, mode: 'decode', T: 8, B: 8, context: 2048 };
    const cands = space(p, 'h100').candidates;
    const rep = (c: (typeof cands)[number]) => renderCandidate(compileRepresentative(c)).name;
    const tile = (c: (typeof cands)[number]) => c.key.replace(/ split.*$/, '');
    for (const a of cands) for (const b of cands) expect(rep(a) === rep(b)).toBe(tile(a) === tile(b));
    expect(new Set(cands.map(rep)).size).toBe(cands.length / 3);
  });
});

describe('the model without a GPU', () => {
  it('never predicts below the roofline floor; wave quantisation and edge waste cost time', () => {
    const p: LinearProblem = { family: 'linear', dtype: 'bfloat16', N: 4096, K: 4096, weight: 'dense', groupSize: 0, T: 2048 };
    for (const c of space(p, 'h100').candidates) expect(predict(c, 'h100').ms).toBeGreaterThanOrEqual(floorMs(p, 'h100'));
    const gemm = (bm: number, bn: number, warpsM: number, warpsN: number) => space(p, 'h100').candidates.find((c) => c.key === `gemm ${bm}x${bn}x32 w${warpsM}x${warpsN} s3`)!;
    // T = 2048, N = 4096: 128×128 tiles give 16·32 = 512 CTAs; 32×32 tiles re-read shared memory 4× as often per FLOP.
    expect(predict(gemm(128, 128, 2, 4), 'h100').ms).toBeLessThan(predict(gemm(32, 32, 1, 2), 'h100').ms);
    // Decode: GEMV beats nothing else at T = 1; at T = 1 the space is GEMV only.
    expect(space({ ...p, T: 1 }, 'h100').candidates.every((c) => c.key.startsWith('gemv'))).toBe(true);
  });
});

describe.skipIf(!hasNvcc)('ranking with nvcc (sm_90a, cached objects)', () => {
  it('compiles the best few of a linear and an attention space, drops spills, ranks by the model', async () => {
    const lp: LinearProblem = { family: 'linear', dtype: 'bfloat16', N: 1024, K: 1024, weight: 'dense', groupSize: 0, T: 64 };
    const ap: AttentionProblem = { family: 'attention', dtype: 'bfloat16', headDim: 64, heads: 8, kvHeads: 2, mode: 'prefill', T: 256, B: 1, context: 256 };
    for (const p of [lp, ap]) {
      const r = await rankWithDrops(p, 'h100', { limit: 3 });
      expect(r.compiled).toBe(true);
      expect(r.ranked.length + r.dropped.length).toBe(3);
      for (const x of r.ranked) {
        expect(x.ptxas!.length).toBeGreaterThan(0);
        expect(x.ptxas!.every((e) => e.arch === 'sm_90a')).toBe(true);
        expect(x.prediction.estimatedRegisters).toBe(false);
        expect(x.occupancy.ctasPerSm).toBeGreaterThan(0);
        expect(x.predictedMs).toBeGreaterThanOrEqual(x.floorMs);
        console.log(`${x.candidate.key}: ${x.prediction.registers} registers, ${x.occupancy.ctasPerSm} CTAs/SM (${x.occupancy.limiter}), predicted ${x.predictedMs.toFixed(4)} ms, floor ${x.floorMs.toFixed(4)} ms`);
      }
      const ms = r.ranked.map((x) => x.predictedMs);
      expect(ms).toEqual([...ms].sort((a, b) => a - b));
    }
  }, 120_000);

  it('decode attention candidates that differ only in split-KV settings share one compile', async () => {
    const p: AttentionProblem = { family: 'attention', dtype: 'bfloat16', headDim: 64, heads: 8, kvHeads: 2, mode: 'decode', T: 8, B: 8, context: 2048 };
    const msgs: string[] = [];
    const r = await rankWithDrops(p, 'h100', { limit: 8, onProgress: (m) => msgs.push(m) });
    const all = [...r.ranked.map((x) => x.candidate), ...r.dropped.map((x) => x.candidate)];
    for (const d of r.dropped) console.log(`dropped ${d.candidate.key}: ${d.reason}`);
    expect(all.length).toBe(8);
    const units = new Set(all.map((c) => renderCandidate(compileRepresentative(c)).name));
    expect(Number(/nvcc \d+\/(\d+)/.exec(msgs[0])![1])).toBe(units.size);
    for (const x of r.ranked) for (const y of r.ranked) {
      if (x.candidate.key.replace(/ split.*$/, '') === y.candidate.key.replace(/ split.*$/, '')) expect(x.prediction.registers).toBe(y.prediction.registers);
    }
  }, 120_000);
});

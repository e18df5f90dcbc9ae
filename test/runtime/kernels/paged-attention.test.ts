/**
 * Paged attention: against textbook softmax(QKᵀ·scale + mask)·V over dense per-sequence K/V
 * rebuilt from the cache, on random ragged batches (prefill, chunked prefill, decode and
 * verification mixed) with shuffled block ids; independence of the physical layout; the
 * flash-decoding split form; hand cases for GQA and the sliding window.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { combine, partial, reference, type Args } from '../../../runtime/kernels/paged-attention.js';
import type { StorageDType } from '../../../runtime/kernels/common.js';
import {
  DTYPES, EPS, TINY, arbSeqs, expectClose, expectRepresentable, fillCache, mulberry32, pagedBatch, randArray, sameBits, slotOf,
  type PagedBatch, type SeqSpec,
} from './helpers.js';

interface Options { scale?: number; softcap?: number; window?: number }

/** Textbook attention per sequence, fp64, with K/V gathered position by position from the cache. */
function naiveAttention(a: Args, pb: PagedBatch): number[] {
  const { q, Hq, Hkv, D } = a;
  const scale = a.scale ?? 1 / Math.sqrt(D);
  const out: number[] = [];
  for (let b = 0; b < pb.contextLens.length; b++) {
    const ctx = pb.contextLens[b];
    // dense K, V [ctx][Hkv][D] of this sequence
    const K: number[][][] = [], V: number[][][] = [];
    for (let j = 0; j < ctx; j++) {
      const at = slotOf(pb, b, j) * Hkv * D;
      K.push(Array.from({ length: Hkv }, (_, g) => Array.from(a.kCache.subarray(at + g * D, at + (g + 1) * D))));
      V.push(Array.from({ length: Hkv }, (_, g) => Array.from(a.vCache.subarray(at + g * D, at + (g + 1) * D))));
    }
    for (let t = pb.seqStarts[b]; t < pb.seqStarts[b + 1]; t++) {
      const p = pb.positions[t];
      for (let h = 0; h < Hq; h++) {
        const g = Math.floor((h * Hkv) / Hq);
        const qv = q.subarray((t * Hq + h) * D, (t * Hq + h + 1) * D);
        const s = K.map((k, j) => {
          const visible = j <= p && (a.window === undefined || j > p - a.window);
          if (!visible) return -Infinity;
          let x = k[g].reduce((acc, kd, d) => acc + kd * qv[d], 0) * scale;
          if (a.softcap !== undefined) x = a.softcap * Math.tanh(x / a.softcap);
          return x;
        });
        const m = Math.max(...s);
        const e = s.map((x) => Math.exp(x - m));
        const z = e.reduce((x, y) => x + y, 0);
        for (let d = 0; d < D; d++) out.push(e.reduce((acc, w, j) => acc + (w / z) * V[j][g][d], 0));
      }
    }
  }
  return out;
}

interface Case { args: Args; pb: PagedBatch; logicalK: Float32Array[]; logicalV: Float32Array[] }

function makeCase(seqs: SeqSpec[], blockSize: number, Hq: number, Hkv: number, D: number, dtype: StorageDType, seed: number, opts: Options = {}): Case {
  const rng = mulberry32(seed);
  const pb = pagedBatch(seqs, blockSize, rng);
  const T = pb.positions.length;
  const logicalK = seqs.map((s) => randArray(rng, (s.cached + s.fresh) * Hkv * D, 1.5, dtype));
  const logicalV = seqs.map((s) => randArray(rng, (s.cached + s.fresh) * Hkv * D, 1, dtype));
  const args: Args = {
    q: randArray(rng, T * Hq * D, 1.5, dtype), kCache: fillCache(pb, logicalK, Hkv, D), vCache: fillCache(pb, logicalV, Hkv, D),
    batch: pb, Hq, Hkv, D, blockSize, numBlocks: pb.numBlocks, dtype, ...opts,
  };
  return { args, pb, logicalK, logicalV };
}

const arbHeads = fc.record({ Hkv: fc.integer({ min: 1, max: 3 }), group: fc.integer({ min: 1, max: 3 }), D: fc.integer({ min: 1, max: 12 }) });
const arbOpts: fc.Arbitrary<Options> = fc.record({
  scale: fc.option(fc.double({ min: 0.05, max: 2, noNaN: true }), { nil: undefined }),
  softcap: fc.option(fc.double({ min: 0.5, max: 50, noNaN: true }), { nil: undefined }),
  window: fc.option(fc.integer({ min: 1, max: 20 }), { nil: undefined }),
}, { requiredKeys: [] });

describe('pagedAttention', () => {
  it('GQA with Hq=4, Hkv=2 maps query heads 0,1 → kv head 0 and 2,3 → kv head 1', () => {
    const { args } = makeCase([{ cached: 0, fresh: 1 }], 4, 4, 2, 1, 'float32', 1);
    const slot = args.batch.blockTables[0] * 4;
    args.vCache[slot * 2] = 10; args.vCache[slot * 2 + 1] = 20; // one key: softmax weight 1
    expect(Array.from(reference(args))).toEqual([10, 10, 20, 20]);
  });
  it('a sliding window of 2 averages the last two values when keys are equal', () => {
    const { args } = makeCase([{ cached: 3, fresh: 1 }], 2, 1, 1, 1, 'float32', 2, { window: 2 });
    const vs = [100, 200, 5, 7];
    vs.forEach((v, j) => { const s = slotOf(args.batch as PagedBatch, 0, j); args.kCache[s] = 0; args.vCache[s] = v; });
    expect(Array.from(reference(args))).toEqual([6]);
    delete args.window;
    expect(Array.from(reference(args))).toEqual([78]);
  });
  it('matches textbook attention on random ragged batches (prefill, chunks, decode, verification)', () => {
    fc.assert(fc.property(arbSeqs(), fc.integer({ min: 1, max: 9 }), arbHeads, arbOpts, fc.constantFrom(...DTYPES), fc.integer(),
      (seqs, blockSize, { Hkv, group, D }, opts, dtype, seed) => {
        const { args, pb } = makeCase(seqs, blockSize, Hkv * group, Hkv, D, dtype, seed, opts);
        const out = reference(args);
        expectRepresentable(out, dtype);
        expectClose(out, naiveAttention(args, pb), TINY[dtype] + 1e-9, EPS[dtype] * (1 + 1e-6), 'attention');
      }), { numRuns: 150 });
  });
  it('decode batches (one new token per sequence) match too', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 60 }), { minLength: 1, maxLength: 6 }), fc.integer({ min: 1, max: 16 }), fc.integer(), (ctxs, blockSize, seed) => {
      const { args, pb } = makeCase(ctxs.map((c) => ({ cached: c, fresh: 1 })), blockSize, 8, 2, 8, 'float32', seed);
      expectClose(reference(args), naiveAttention(args, pb), 1e-9, 2 ** -24 * (1 + 1e-6), 'decode');
    }), { numRuns: 40 });
  });
  it('the result does not depend on block ids or block size', () => {
    fc.assert(fc.property(arbSeqs(), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 9 }), arbHeads, arbOpts, fc.constantFrom(...DTYPES), fc.integer(),
      (seqs, bs1, bs2, { Hkv, group, D }, opts, dtype, seed) => {
        const a = makeCase(seqs, bs1, Hkv * group, Hkv, D, dtype, seed, opts);
        const pb2 = pagedBatch(seqs, bs2, mulberry32(seed ^ 0x5eed), 5, 3);
        const b: Args = { ...a.args, batch: pb2, blockSize: bs2, numBlocks: pb2.numBlocks,
          kCache: fillCache(pb2, a.logicalK, Hkv, D), vCache: fillCache(pb2, a.logicalV, Hkv, D) };
        expect(sameBits(reference(a.args), reference(b))).toBe(true);
      }), { numRuns: 80 });
  });
  it('combine(partial splits) equals the full reference for random split points', () => {
    fc.assert(fc.property(arbSeqs(4, 60), fc.integer({ min: 1, max: 9 }), arbHeads, arbOpts, fc.array(fc.integer({ min: 0, max: 80 }), { maxLength: 5 }), fc.integer(),
      (seqs, blockSize, { Hkv, group, D }, opts, cuts, seed) => {
        const { args } = makeCase(seqs, blockSize, Hkv * group, Hkv, D, 'float32', seed, opts);
        const bounds = [0, ...[...new Set(cuts)].sort((x, y) => x - y).filter((c) => c > 0), Infinity];
        const parts = bounds.slice(1).map((end, i) => partial(args, bounds[i], end));
        const full = reference(args);
        expectClose(combine(parts, D, 'float32'), full, 1e-6, 1e-5, 'combined');
        // and in fp16 storage, within an ulp of the full reference
        const half = reference({ ...args, dtype: 'float16' });
        expectClose(combine(parts, D, 'float16'), half, 1e-6, 2 * EPS.float16, 'combined fp16');
      }), { numRuns: 100 });
  });
  it('a split with no visible key leaves max −∞, sum 0, out 0', () => {
    const { args } = makeCase([{ cached: 2, fresh: 1 }], 4, 2, 1, 3, 'float32', 3);
    const p = partial(args, 10, 20);
    expect(Array.from(p.max)).toEqual([-Infinity, -Infinity]);
    expect(Array.from(p.sum)).toEqual([0, 0]);
    expect(Array.from(p.out)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(sameBits(combine([p, partial(args, 0, 10)], 3, 'float32'), combine([partial(args, 0, 10)], 3, 'float32'))).toBe(true);
  });
  it('fp16 and bf16 stay within tolerance of fp32', () => {
    const { args } = makeCase([{ cached: 30, fresh: 5 }, { cached: 0, fresh: 9 }, { cached: 50, fresh: 1 }], 8, 4, 2, 16, 'float16', 7);
    const f32 = reference({ ...args, dtype: 'float32' });
    for (const dtype of ['float16', 'bfloat16'] as const) expectClose(reference({ ...args, dtype }), f32, 1e-6, EPS[dtype], dtype);
  });
  it('names wrong-length arguments and inconsistent batches', () => {
    const { args } = makeCase([{ cached: 3, fresh: 2 }], 4, 4, 2, 2, 'float32', 5);
    const bt = (args.batch as PagedBatch);
    expect(() => reference({ ...args, q: new Float32Array(3) })).toThrow('pagedAttention: q has 3 elements, expected 16 ([T=2, Hq=4, D=2])');
    expect(() => reference({ ...args, kCache: new Float32Array(3) })).toThrow(/pagedAttention: kCache has 3 elements/);
    expect(() => reference({ ...args, vCache: new Float32Array(3) })).toThrow(/pagedAttention: vCache has 3 elements/);
    expect(() => reference({ ...args, Hkv: 3 })).toThrow(/Hq=4 must be a multiple of Hkv=3/);
    expect(() => reference({ ...args, batch: { ...bt, contextLens: Int32Array.of(5, 5) } })).toThrow(/pagedAttention: batch.contextLens has 2 elements/);
    expect(() => reference({ ...args, batch: { ...bt, blockTables: bt.blockTables.subarray(1) } })).toThrow(/pagedAttention: batch.blockTables has/);
    expect(() => reference({ ...args, batch: { ...bt, blockTables: Int32Array.of(0, 99, -1) } })).toThrow(/batch.blockTables entry 1 is 99, cache has 4 blocks/);
    expect(() => reference({ ...args, batch: { ...bt, positions: Int32Array.of(3, 5) } })).toThrow(/token 1: batch.positions 5 is outside its sequence's context 0..4/);
    expect(() => reference({ ...args, batch: { ...bt, seqStarts: Int32Array.of(0, 1) } })).toThrow(/batch.seqStarts must run from 0 to T=2/);
    expect(() => reference({ ...args, window: 0 })).toThrow(/window must be an integer ≥ 1/);
    expect(() => partial(args, 5, 2)).toThrow(/split \[5, 2\)/);
    expect(() => combine([{ max: new Float32Array(2), sum: new Float32Array(2), out: new Float32Array(3) }], 2, 'float32')).toThrow(/parts\[0\].out has 3 elements/);
  });
});

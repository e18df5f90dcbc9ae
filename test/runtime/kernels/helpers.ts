/**
 * Shared by the kernel reference tests: seeded random data, ragged batches over a paged cache
 * with shuffled block ids, and closeness checks that say where two arrays differ.
 */
import fc from 'fast-check';
import { expect } from 'vitest';
import { roundBf16, roundFp16 } from '../../../runtime/floats.js';
import type { StorageDType } from '../../../runtime/kernels/common.js';
import { mulberry32 } from '../../helpers/random.js';
export { mulberry32 };

export const DTYPES: readonly StorageDType[] = ['float32', 'float16', 'bfloat16'];


/** n uniform values in [-scale, scale), rounded to `dtype` (narrow values held as floats). */
export function randArray(rng: () => number, n: number, scale = 1, dtype: StorageDType = 'float32'): Float32Array {
  const a = new Float32Array(n);
  const r = roundTo(dtype);
  for (let i = 0; i < n; i++) a[i] = r((rng() * 2 - 1) * scale);
  return a;
}

export function roundTo(dtype: StorageDType): (x: number) => number {
  return dtype === 'float16' ? roundFp16 : dtype === 'bfloat16' ? roundBf16 : Math.fround;
}

/** Relative precision (half an ulp at 1) of a storage dtype. */
export const EPS: Record<StorageDType, number> = { float32: 2 ** -24, float16: 2 ** -11, bfloat16: 2 ** -8 };
/** Absolute rounding error of a dtype's subnormals (half their spacing). */
export const TINY: Record<StorageDType, number> = { float32: 2 ** -150, float16: 2 ** -25, bfloat16: 2 ** -134 };

/** Every element of `a` is a value of `dtype` already. */
export function expectRepresentable(a: Float32Array, dtype: StorageDType): void {
  const r = roundTo(dtype);
  for (let i = 0; i < a.length; i++) {
    if (r(a[i]) !== a[i] && !Number.isNaN(a[i])) throw new Error(`element ${i} = ${a[i]} is not a ${dtype} value`);
  }
}

/** |a − b| ≤ atol + rtol·|b| elementwise, failing with the first bad index. */
export function expectClose(a: ArrayLike<number>, b: ArrayLike<number>, atol: number, rtol = 0, what = 'value'): void {
  expect(a.length, `${what}: length`).toBe(b.length);
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= atol + rtol * Math.abs(b[i]))) {
      throw new Error(`${what}[${i}]: ${a[i]} vs ${b[i]} (diff ${d}, atol ${atol}, rtol ${rtol})`);
    }
  }
}

export const sameBits = (a: Float32Array, b: Float32Array): boolean =>
  a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

// ---- ragged batches over a paged cache ------------------------------------------------------

/** One sequence of a batch: tokens already cached, and new tokens this step. */
export interface SeqSpec { cached: number; fresh: number }

export const arbSeqs = (maxSeqs = 4, maxCached = 40, maxFresh = 12): fc.Arbitrary<SeqSpec[]> =>
  fc.array(fc.record({ cached: fc.integer({ min: 0, max: maxCached }), fresh: fc.integer({ min: 1, max: maxFresh }) }), { minLength: 1, maxLength: maxSeqs });

export interface PagedBatch {
  positions: Int32Array;
  seqStarts: Int32Array;
  contextLens: Int32Array;
  blockTables: Int32Array;
  maxBlocksPerSeq: number;
  slotMapping: Int32Array;
  numBlocks: number;
  blockSize: number;
}

/**
 * Lay the sequences out in a cache of `blockSize`-token blocks whose ids are shuffled by `rng`,
 * with `spare` unused blocks and `pad` unused (−1) block-table columns.
 */
export function pagedBatch(seqs: SeqSpec[], blockSize: number, rng: () => number, spare = 2, pad = 1): PagedBatch {
  const B = seqs.length;
  const need = seqs.map((s) => Math.ceil((s.cached + s.fresh) / blockSize));
  const numBlocks = need.reduce((x, y) => x + y, 0) + spare;
  const ids = Array.from({ length: numBlocks }, (_, i) => i);
  for (let i = ids.length - 1; i > 0; i--) { const j = Math.floor(rng() * (i + 1)); [ids[i], ids[j]] = [ids[j], ids[i]]; }
  const M = Math.max(...need) + pad;
  const blockTables = new Int32Array(B * M).fill(-1);
  let next = 0;
  seqs.forEach((_, b) => { for (let j = 0; j < need[b]; j++) blockTables[b * M + j] = ids[next++]; });
  const T = seqs.reduce((x, s) => x + s.fresh, 0);
  const positions = new Int32Array(T), slotMapping = new Int32Array(T), seqStarts = new Int32Array(B + 1);
  const contextLens = Int32Array.from(seqs, (s) => s.cached + s.fresh);
  let t = 0;
  seqs.forEach((s, b) => {
    seqStarts[b] = t;
    for (let i = 0; i < s.fresh; i++, t++) {
      const p = s.cached + i;
      positions[t] = p;
      slotMapping[t] = blockTables[b * M + Math.floor(p / blockSize)] * blockSize + (p % blockSize);
    }
  });
  seqStarts[B] = T;
  return { positions, seqStarts, contextLens, blockTables, maxBlocksPerSeq: M, slotMapping, numBlocks, blockSize };
}

/** Slot of cache position j of sequence b. */
export const slotOf = (pb: PagedBatch, b: number, j: number): number =>
  pb.blockTables[b * pb.maxBlocksPerSeq + Math.floor(j / pb.blockSize)] * pb.blockSize + (j % pb.blockSize);

/**
 * A cache [numBlocks, blockSize, Hkv, D] holding `logical[b]` ([contextLens[b], Hkv, D]) for
 * every sequence; every other slot is NaN, so reading one poisons the result.
 */
export function fillCache(pb: PagedBatch, logical: Float32Array[], Hkv: number, D: number): Float32Array {
  const row = Hkv * D;
  const cache = new Float32Array(pb.numBlocks * pb.blockSize * row).fill(NaN);
  logical.forEach((l, b) => {
    for (let j = 0; j < pb.contextLens[b]; j++) cache.set(l.subarray(j * row, (j + 1) * row), slotOf(pb, b, j) * row);
  });
  return cache;
}

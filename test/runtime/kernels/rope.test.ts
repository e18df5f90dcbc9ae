/**
 * RoPE family: rotation as complex multiplication in fp64, both pair styles, partial rotary,
 * precomputed tables, the relative-position property; cacheWrite into shuffled paged blocks.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cacheWrite, cosSinTable, invFreq, reference, type RopeStyle } from '../../../runtime/kernels/rope.js';
import { DTYPES, EPS, expectClose, expectRepresentable, mulberry32, pagedBatch, randArray, roundTo, sameBits, slotOf } from './helpers.js';

/** Rotate one head vector as complex numbers z_i = x_lo + i·x_hi times e^{i·pos·θ^(−2i/R)}, fp64. */
function naiveRotate(x: ArrayLike<number>, pos: number, R: number, style: RopeStyle, theta: number): number[] {
  const out = Array.from(x);
  for (let i = 0; i < R / 2; i++) {
    const [lo, hi] = style === 'half' ? [i, i + R / 2] : [2 * i, 2 * i + 1];
    const ang = pos * theta ** (-(2 * i) / R);
    out[lo] = x[lo] * Math.cos(ang) - x[hi] * Math.sin(ang);
    out[hi] = x[lo] * Math.sin(ang) + x[hi] * Math.cos(ang);
  }
  return out;
}

const one = (x: Float32Array, pos: number, style: RopeStyle, D: number, R = D, dtype: 'float32' | 'float16' | 'bfloat16' = 'float32'): Float32Array => {
  const q = x.slice(), k = x.slice();
  reference({ q, k, positions: Int32Array.of(pos), T: 1, Hq: 1, Hkv: 1, D, rotaryDim: R, style, dtype });
  expect(sameBits(q, k)).toBe(true); // q and k rotate alike
  return q;
};

describe('rope', () => {
  it('position 0 is the identity, for every style and dtype', () => {
    for (const dtype of DTYPES) {
      for (const style of ['half', 'interleaved'] as const) {
        const x = randArray(mulberry32(1), 16, 3, dtype);
        expect(sameBits(one(x, 0, style, 16, 16, dtype), x)).toBe(true);
      }
    }
  });
  it("'half' rotates the pair (x0, x_{D/2}) by pos·θ⁰ = pos radians", () => {
    const x = new Float32Array(8);
    x[0] = 1; x[4] = 2;
    const y = one(x, 3, 'half', 8);
    expect(y[0]).toBeCloseTo(Math.cos(3) - 2 * Math.sin(3), 6);
    expect(y[4]).toBeCloseTo(Math.sin(3) + 2 * Math.cos(3), 6);
    expect(Array.from(y.filter((_, i) => i !== 0 && i !== 4))).toEqual([0, 0, 0, 0, 0, 0]);
  });
  it("'interleaved' rotates the pair (x0, x1) by pos radians", () => {
    const y = one(Float32Array.of(1, 2, 0, 0), 3, 'interleaved', 4);
    expect(y[0]).toBeCloseTo(Math.cos(3) - 2 * Math.sin(3), 6);
    expect(y[1]).toBeCloseTo(Math.sin(3) + 2 * Math.cos(3), 6);
  });
  it('invFreq is θ^(−2i/R) in fp32', () => {
    const f = invFreq(8, 10000);
    expect(f[0]).toBe(1);
    expectClose(f, [1, 0.1, 0.01, 0.001], 0, 2 ** -23);
  });
  it('matches complex rotation for random shapes, styles, partial rotary and dtypes', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 12 }),
      fc.integer({ min: 1, max: 6 }), fc.constantFrom('half' as const, 'interleaved' as const), fc.constantFrom(...DTYPES),
      fc.constantFrom(10000, 500000, 100), fc.integer(), (T, Hkv, group, halfD, halfR, style, dtype, theta, seed) => {
        const D = 2 * halfD, R = 2 * Math.min(halfR, halfD), Hq = Hkv * group;
        const rng = mulberry32(seed);
        const q = randArray(rng, T * Hq * D, 2, dtype), k = randArray(rng, T * Hkv * D, 2, dtype);
        const positions = Int32Array.from({ length: T }, () => Math.floor(rng() * 300));
        const q0 = q.slice(), k0 = k.slice();
        reference({ q, k, positions, T, Hq, Hkv, D, rotaryDim: R, style, theta, dtype });
        expectRepresentable(q, dtype);
        expectRepresentable(k, dtype);
        for (const [x, x0, heads] of [[q, q0, Hq], [k, k0, Hkv]] as const) {
          for (let t = 0; t < T; t++) {
            for (let h = 0; h < heads; h++) {
              const o = (t * heads + h) * D;
              const want = naiveRotate(x0.subarray(o, o + D), positions[t], R, style, theta);
              const got = x.subarray(o, o + D);
              // fp32 angles (HF) vs fp64 ones: |Δangle| ≤ pos·2^-23; then one rounding to dtype
              expectClose(got, want, 6 * 300 * 2 ** -23 + 4 * EPS[dtype], EPS[dtype], `t${t} h${h}`);
              for (let d = R; d < D; d++) expect(got[d]).toBe(x0[o + d]); // beyond the rotary dims: untouched
            }
          }
        }
      }), { numRuns: 100 });
  });
  it('a precomputed table gives the same bits as computing cos/sin in the kernel', () => {
    const rng = mulberry32(4), T = 6, Hq = 4, Hkv = 2, D = 16, R = 8;
    const q = randArray(rng, T * Hq * D), k = randArray(rng, T * Hkv * D);
    const positions = Int32Array.of(0, 1, 7, 63, 100, 2047);
    const a = { q: q.slice(), k: k.slice() }, b = { q: q.slice(), k: k.slice() };
    reference({ ...a, positions, T, Hq, Hkv, D, rotaryDim: R, style: 'half', theta: 1e4, dtype: 'float16' });
    reference({ ...b, positions, T, Hq, Hkv, D, rotaryDim: R, style: 'half', table: cosSinTable(2048, R, 1e4), dtype: 'float16' });
    expect(sameBits(a.q, b.q) && sameBits(a.k, b.k)).toBe(true);
  });
  it('an explicit invFreq replaces theta (scaled RoPE)', () => {
    const x = Float32Array.of(1, 0, 1, 0), q = x.slice(), k = x.slice();
    reference({ q, k, positions: Int32Array.of(2), T: 1, Hq: 1, Hkv: 1, D: 4, style: 'interleaved', invFreq: Float32Array.of(0.5, 0.25), dtype: 'float32' });
    expectClose(q, [Math.cos(1), Math.sin(1), Math.cos(0.5), Math.sin(0.5)], 1e-7);
    expect(() => reference({ q, k, positions: Int32Array.of(2), T: 1, Hq: 1, Hkv: 1, D: 4, style: 'half', invFreq: Float32Array.of(1), dtype: 'float32' }))
      .toThrow(/rope: invFreq has 1 elements, expected 2/);
  });
  it('q·k depends only on the distance between positions', () => {
    const rng = mulberry32(9), D = 32;
    const qv = randArray(rng, D), kv = randArray(rng, D);
    const dot = (p: number, pk: number): number => {
      const q = qv.slice(), k = kv.slice(), q2 = qv.slice(), k2 = kv.slice();
      reference({ q, k: k2, positions: Int32Array.of(p), T: 1, Hq: 1, Hkv: 1, D, style: 'half', dtype: 'float32' });
      reference({ q: q2, k, positions: Int32Array.of(pk), T: 1, Hq: 1, Hkv: 1, D, style: 'half', dtype: 'float32' });
      return q.reduce((s, v, i) => s + v * k[i], 0);
    };
    expect(dot(10, 3)).toBeCloseTo(dot(107, 100), 4);
    expect(dot(5, 5)).toBeCloseTo(dot(0, 0), 4);
  });
  it('names bad arguments', () => {
    const base = { q: new Float32Array(8), k: new Float32Array(8), positions: Int32Array.of(0, 1), T: 2, Hq: 1, Hkv: 1, D: 4, style: 'half' as const, dtype: 'float32' as const };
    expect(() => reference({ ...base, q: new Float32Array(7) })).toThrow('rope: q has 7 elements, expected 8 ([T=2, Hq=1, D=4])');
    expect(() => reference({ ...base, k: new Float32Array(4) })).toThrow(/rope: k has 4 elements/);
    expect(() => reference({ ...base, positions: Int32Array.of(0) })).toThrow(/rope: positions has 1 elements/);
    expect(() => reference({ ...base, rotaryDim: 3 })).toThrow(/rotaryDim 3 must be even/);
    expect(() => reference({ ...base, rotaryDim: 6 })).toThrow(/≤ D=4/);
    expect(() => reference({ ...base, table: cosSinTable(1, 4) })).toThrow('rope: token 1 has position 1, outside the cos/sin table 0..0');
    expect(() => reference({ ...base, table: { cos: new Float32Array(3), sin: new Float32Array(4), P: 2 } })).toThrow(/rope: table.cos has 3 elements/);
  });
});

describe('cacheWrite', () => {
  it('puts each token in its slot of shuffled blocks, rounded to the cache dtype', () => {
    fc.assert(fc.property(fc.array(fc.record({ cached: fc.integer({ min: 0, max: 20 }), fresh: fc.integer({ min: 1, max: 9 }) }), { minLength: 1, maxLength: 4 }),
      fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 8 }), fc.constantFrom(...DTYPES), fc.integer(),
      (seqs, blockSize, Hkv, D, cacheDtype, seed) => {
        const rng = mulberry32(seed);
        const pb = pagedBatch(seqs, blockSize, rng);
        const T = pb.positions.length, row = Hkv * D;
        const k = randArray(rng, T * row), v = randArray(rng, T * row);
        const kCache = new Float32Array(pb.numBlocks * blockSize * row).fill(NaN), vCache = kCache.slice();
        cacheWrite({ k, v, kCache, vCache, slotMapping: pb.slotMapping, T, Hkv, D, blockSize, numBlocks: pb.numBlocks, cacheDtype });
        const round = roundTo(cacheDtype);
        let t = 0, written = 0;
        seqs.forEach((s, b) => {
          for (let i = 0; i < s.fresh; i++, t++) {
            const at = slotOf(pb, b, s.cached + i) * row;
            for (let e = 0; e < row; e++) {
              expect(kCache[at + e]).toBe(round(k[t * row + e]));
              expect(vCache[at + e]).toBe(round(v[t * row + e]));
            }
            written += row;
          }
        });
        expect(kCache.filter((x) => !Number.isNaN(x)).length).toBe(written); // nothing else touched
      }), { numRuns: 60 });
  });
  it('skips slot −1 and names a slot outside the cache', () => {
    const base = { k: Float32Array.of(1, 2), v: Float32Array.of(3, 4), T: 2, Hkv: 1, D: 1, blockSize: 2, numBlocks: 1, cacheDtype: 'float32' as const };
    const kCache = new Float32Array(2), vCache = new Float32Array(2);
    cacheWrite({ ...base, kCache, vCache, slotMapping: Int32Array.of(-1, 0) });
    expect(Array.from(kCache)).toEqual([2, 0]);
    expect(Array.from(vCache)).toEqual([4, 0]);
    expect(() => cacheWrite({ ...base, kCache, vCache, slotMapping: Int32Array.of(0, 2) })).toThrow('cacheWrite: token 1 has slot 2, cache has 2 slots (1 blocks × 2)');
    expect(() => cacheWrite({ ...base, kCache: new Float32Array(3), vCache, slotMapping: Int32Array.of(0, 1) })).toThrow(/cacheWrite: kCache has 3 elements, expected 2/);
    expect(() => cacheWrite({ ...base, kCache, vCache, slotMapping: Int32Array.of(0) })).toThrow(/cacheWrite: slotMapping has 1 elements/);
  });
});

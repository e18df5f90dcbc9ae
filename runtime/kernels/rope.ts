/**
 * RoPE family: rotary position embedding of q and k, in place, and `cacheWrite`, which stores the
 * new tokens' K/V into the paged cache (on the GPU both are one kernel after the QKV GEMM).
 *
 * Legend: T tokens, Hq query heads, Hkv kv heads, D head dim, R rotary dims (R ≤ D, even),
 * P rows of a precomputed cos/sin table, S cache block size, NB cache blocks.
 *
 * Each head vector's first R dims are rotated in pairs (x, y) by angle pos · invFreq[i],
 *   x' = x·cos − y·sin,  y' = y·cos + x·sin,   invFreq[i] = theta^(−2i/R),  i < R/2,
 * and dims R..D−1 are left as they are (partial rotary: GPT-NeoX, Phi). The pairs are
 *   'half'        (x_i, x_{i+R/2})   rotate_half: GPT-NeoX, Hugging Face LLaMA
 *   'interleaved' (x_{2i}, x_{2i+1}) GPT-J
 * cos/sin come from `table` [P, R/2] when given (the graph's own cache, whatever its dtype),
 * else are computed in fp32 exactly as Hugging Face does: invFreq = 1 / theta^(2i/R) in fp32
 * (or the given `invFreq`, e.g. Llama 3's rescaled one), freq = fp32(pos · invFreq), cos/sin of
 * it rounded to fp32. The rotation runs in fp64 on the
 * stored q/k and is rounded once to `dtype`. (Hugging Face additionally casts cos/sin to the
 * activation dtype and rounds after each multiply; that is within tolerance, not the spec.)
 */
import { checkDims, checkLength, storeRounder, type StorageDType } from './common.js';

export type RopeStyle = 'half' | 'interleaved';

export interface CosSinTable {
  /** [P, R/2] each. */
  cos: Float32Array;
  sin: Float32Array;
  P: number;
}

export interface Args {
  /** [T, Hq, D], rotated in place. */
  q: Float32Array;
  /** [T, Hkv, D], rotated in place. */
  k: Float32Array;
  positions: Int32Array;
  T: number;
  Hq: number;
  Hkv: number;
  D: number;
  /** Rotated dims R (default D). */
  rotaryDim?: number;
  style: RopeStyle;
  /** Frequency base (default 10000); unused when `table` or `invFreq` is given. */
  theta?: number;
  /** [R/2] inverse frequencies, replacing theta^(−2i/R) (scaled RoPE variants). */
  invFreq?: Float32Array;
  table?: CosSinTable;
  dtype: StorageDType;
}

/** invFreq[i] = 1 / theta^(2i/R) for i < R/2, each step in fp32 as torch computes it. */
export function invFreq(rotaryDim: number, theta = 10000): Float32Array {
  const half = rotaryDim / 2;
  const f = new Float32Array(half);
  for (let i = 0; i < half; i++) f[i] = Math.fround(1 / Math.fround(Math.pow(theta, Math.fround((2 * i) / rotaryDim))));
  return f;
}

/** The cos/sin table [P, R/2] for positions 0..P−1, as the kernel computes it without one. */
export function cosSinTable(P: number, rotaryDim: number, theta = 10000): CosSinTable {
  const inv = invFreq(rotaryDim, theta), half = rotaryDim / 2;
  const cos = new Float32Array(P * half), sin = new Float32Array(P * half);
  for (let p = 0; p < P; p++) {
    for (let i = 0; i < half; i++) {
      const f = Math.fround(p * inv[i]);
      cos[p * half + i] = Math.cos(f);
      sin[p * half + i] = Math.sin(f);
    }
  }
  return { cos, sin, P };
}

/** Rotate q and k in place. */
export function reference(a: Args): void {
  const { T, Hq, Hkv, D, positions } = a;
  checkDims('rope', { T }, 0);
  checkDims('rope', { Hq, Hkv, D });
  const R = a.rotaryDim ?? D;
  if (!Number.isInteger(R) || R < 2 || R % 2 !== 0 || R > D) throw new Error(`rope: rotaryDim ${R} must be even, ≥ 2 and ≤ D=${D}`);
  if (a.style !== 'half' && a.style !== 'interleaved') throw new Error(`rope: unknown style '${a.style as string}'`);
  checkLength('rope', 'q', a.q, { T, Hq, D });
  checkLength('rope', 'k', a.k, { T, Hkv, D });
  checkLength('rope', 'positions', positions, { T });
  const half = R / 2;
  if (a.table) {
    checkDims('rope', { P: a.table.P });
    checkLength('rope', 'table.cos', a.table.cos, { P: a.table.P, 'R/2': half });
    checkLength('rope', 'table.sin', a.table.sin, { P: a.table.P, 'R/2': half });
  }
  if (a.table && a.invFreq) throw new Error('rope: give table or invFreq, not both');
  if (a.invFreq) checkLength('rope', 'invFreq', a.invFreq, { 'R/2': half });
  const inv = a.table ? undefined : a.invFreq ?? invFreq(R, a.theta ?? 10000);
  const r = storeRounder(a.dtype);
  // Pair i of a head at offset o is (o + lo(i), o + hi(i)).
  const stride = a.style === 'half' ? 1 : 2, partner = a.style === 'half' ? half : 1;
  const cos = new Float64Array(half), sin = new Float64Array(half);

  const rotate = (x: Float32Array, heads: number, t: number): void => {
    for (let h = 0; h < heads; h++) {
      const o = (t * heads + h) * D;
      for (let i = 0; i < half; i++) {
        const lo = o + i * stride, hi = lo + partner;
        const u = x[lo], v = x[hi];
        const nu = u * cos[i] - v * sin[i], nv = v * cos[i] + u * sin[i];
        x[lo] = r ? r(nu) : nu;
        x[hi] = r ? r(nv) : nv;
      }
    }
  };

  for (let t = 0; t < T; t++) {
    const p = positions[t];
    if (a.table) {
      if (!(p >= 0 && p < a.table.P)) throw new Error(`rope: token ${t} has position ${p}, outside the cos/sin table 0..${a.table.P - 1}`);
      for (let i = 0; i < half; i++) { cos[i] = a.table.cos[p * half + i]; sin[i] = a.table.sin[p * half + i]; }
    } else {
      if (!(p >= 0)) throw new Error(`rope: token ${t} has negative position ${p}`);
      for (let i = 0; i < half; i++) {
        const f = Math.fround(p * inv![i]);
        cos[i] = Math.fround(Math.cos(f));
        sin[i] = Math.fround(Math.sin(f));
      }
    }
    rotate(a.q, Hq, t);
    rotate(a.k, Hkv, t);
  }
}

export interface CacheWriteArgs {
  /** [T, Hkv, D] each: the new tokens' keys (after RoPE) and values. */
  k: Float32Array;
  v: Float32Array;
  /** [NB, S, Hkv, D] each, written in place. */
  kCache: Float32Array;
  vCache: Float32Array;
  /** [T]: slot = block · S + offset; −1 skips the token (padding). */
  slotMapping: Int32Array;
  T: number;
  Hkv: number;
  D: number;
  blockSize: number;
  numBlocks: number;
  /** The cache's dtype; values are rounded to it as they are stored. */
  cacheDtype: StorageDType;
}

/**
 * kCache[slot, :, :] = k[t], vCache[slot, :, :] = v[t] for slot = slotMapping[t]. With the
 * cache laid out [NB, S, Hkv, D], slot s starts at element s · Hkv · D.
 */
export function cacheWrite(a: CacheWriteArgs): void {
  const { T, Hkv, D, blockSize, numBlocks } = a;
  checkDims('cacheWrite', { T }, 0);
  checkDims('cacheWrite', { Hkv, D, blockSize, numBlocks });
  checkLength('cacheWrite', 'k', a.k, { T, Hkv, D });
  checkLength('cacheWrite', 'v', a.v, { T, Hkv, D });
  checkLength('cacheWrite', 'kCache', a.kCache, { NB: numBlocks, S: blockSize, Hkv, D });
  checkLength('cacheWrite', 'vCache', a.vCache, { NB: numBlocks, S: blockSize, Hkv, D });
  checkLength('cacheWrite', 'slotMapping', a.slotMapping, { T });
  const r = storeRounder(a.cacheDtype);
  const row = Hkv * D, slots = numBlocks * blockSize;
  for (let t = 0; t < T; t++) {
    const s = a.slotMapping[t];
    if (s === -1) continue;
    if (!(s >= 0 && s < slots)) throw new Error(`cacheWrite: token ${t} has slot ${s}, cache has ${slots} slots (${numBlocks} blocks × ${blockSize})`);
    const src = t * row, dst = s * row;
    for (let i = 0; i < row; i++) {
      const kv = a.k[src + i], vv = a.v[src + i];
      a.kCache[dst + i] = r ? r(kv) : kv;
      a.vCache[dst + i] = r ? r(vv) : vv;
    }
  }
}

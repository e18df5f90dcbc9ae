/**
 * Paged attention family: one reference for prefill, chunked prefill, decode and multi-token
 * (speculative) verification, since a ragged batch makes them all the same computation
 * (ARCHITECTURE.md, "One forward for every kind of step"), plus the flash-decoding split form
 * (`partial` + `combine`) that the GPU's split-K decode kernel must agree with.
 *
 * Legend: T new tokens, B sequences, Hq query heads, Hkv kv heads (Hq % Hkv = 0), D head dim,
 * S cache block size (tokens per block), NB cache blocks, M = maxBlocksPerSeq.
 *
 * Layouts: q and out [T, Hq, D]; kCache, vCache [NB, S, Hkv, D]; batch fields as in batch.ts
 * (blockTables [B, M]). Cache position j of sequence b lives in slot
 *   blockTables[b, ⌊j/S⌋] · S + j mod S,   i.e. at element (slot · Hkv + kvHead) · D.
 * The cache already holds the new tokens' K/V (rope.ts's cacheWrite runs first).
 *
 * For token t of sequence b at position p = positions[t] (p < contextLens[b]) and head h:
 *   keys j ∈ [0, p], or (p − window, p] with a sliding window    (causal)
 *   kv head ⌊h / (Hq/Hkv)⌋                                        (GQA / MQA)
 *   s_j = (q·k_j) · scale           scale = 1/√D unless given
 *   s_j = cap · tanh(s_j / cap)     with a logit softcap (Gemma 2)
 *   out = Σ_j softmax(s)_j · v_j    in fp64, max-subtracted; rounded once to `dtype`
 * (Flash-attention kernels round the probabilities to the dtype before the P·V MMA; that is
 * within tolerance, not the spec.)
 */
import type { RaggedBatch } from '../batch.js';
import { checkDims, checkLength, storeRounder, type StorageDType } from './common.js';

/** The fields of a RaggedBatch attention reads. */
export type AttentionBatch = Pick<RaggedBatch, 'positions' | 'seqStarts' | 'contextLens' | 'blockTables' | 'maxBlocksPerSeq'>;

export interface Args {
  q: Float32Array;
  kCache: Float32Array;
  vCache: Float32Array;
  batch: AttentionBatch;
  Hq: number;
  Hkv: number;
  D: number;
  blockSize: number;
  numBlocks: number;
  /** Multiplies q·k (default 1/√D). */
  scale?: number;
  /** Logit softcap: s → cap · tanh(s / cap). */
  softcap?: number;
  /** Sliding window: token at p sees keys p − window < j ≤ p. */
  window?: number;
  dtype: StorageDType;
}

/** out[T, Hq, D]. */
export function reference(a: Args): Float32Array {
  const T = validate(a, 'pagedAttention');
  const { max, sum, out } = attend(a, T, 0, Infinity);
  const r = storeRounder(a.dtype);
  const D = a.D, res = new Float32Array(out.length);
  for (let th = 0; th < max.length; th++) {
    const inv = sum[th] > 0 ? 1 / sum[th] : 0;
    for (let d = th * D; d < (th + 1) * D; d++) {
      const v = out[d] * inv;
      res[d] = r ? r(v) : v;
    }
  }
  return res;
}

/**
 * One split of the flash-decoding form: what a split-K block leaves in its fp32 workspace after
 * attending only to the cache positions in [start, end) (intersected with each token's causal,
 * windowed range). Row (t, h) with no key in range has max −∞, sum 0, out 0.
 */
export interface Partial {
  /** [T, Hq]: the running max m of the scores (held in fp32). */
  max: Float32Array;
  /** [T, Hq]: Σ e^(s_j − m). */
  sum: Float32Array;
  /** [T, Hq, D]: Σ e^(s_j − m) · v_j, not normalised. */
  out: Float32Array;
}

export function partial(a: Args, start: number, end: number): Partial {
  validate(a, 'pagedAttention.partial');
  if (!(start >= 0 && end >= start)) throw new Error(`pagedAttention.partial: split [${start}, ${end}) is not a range of positions`);
  const T = a.batch.positions.length;
  const p = attend(a, T, start, end);
  return { max: Float32Array.from(p.max), sum: Float32Array.from(p.sum), out: Float32Array.from(p.out) };
}

/**
 * Merge splits covering disjoint position ranges: M = max_s m_s, then
 * out = Σ_s e^(m_s − M) out_s / Σ_s e^(m_s − M) sum_s, rounded once to `dtype`.
 * Equals `reference` when the splits cover every position (up to fp32 workspace rounding).
 */
export function combine(parts: readonly Partial[], D: number, dtype: StorageDType): Float32Array {
  if (parts.length === 0) throw new Error('pagedAttention.combine: no partials');
  const rows = parts[0].max.length;
  checkDims('pagedAttention.combine', { D });
  parts.forEach((p, i) => {
    checkLength('pagedAttention.combine', `parts[${i}].max`, p.max, { 'T·Hq': rows });
    checkLength('pagedAttention.combine', `parts[${i}].sum`, p.sum, { 'T·Hq': rows });
    checkLength('pagedAttention.combine', `parts[${i}].out`, p.out, { 'T·Hq': rows, D });
  });
  const r = storeRounder(dtype);
  const res = new Float32Array(rows * D);
  const acc = new Float64Array(D);
  for (let th = 0; th < rows; th++) {
    let M = -Infinity;
    for (const p of parts) if (p.max[th] > M) M = p.max[th];
    if (M === -Infinity) continue; // no key at all: zeros
    acc.fill(0);
    let l = 0;
    for (const p of parts) {
      if (p.max[th] === -Infinity) continue;
      const w = Math.exp(p.max[th] - M);
      l += w * p.sum[th];
      for (let d = 0; d < D; d++) acc[d] += w * p.out[th * D + d];
    }
    for (let d = 0; d < D; d++) {
      const v = acc[d] / l;
      res[th * D + d] = r ? r(v) : v;
    }
  }
  return res;
}

/** Max, sum and unnormalised output of every (token, head) over cache positions [start, end). */
function attend(a: Args, T: number, start: number, end: number): { max: Float64Array; sum: Float64Array; out: Float64Array } {
  const { q, kCache, vCache, batch, Hq, Hkv, D, blockSize: S } = a;
  const { positions, seqStarts, contextLens, blockTables, maxBlocksPerSeq: Mb } = batch;
  const scale = a.scale ?? 1 / Math.sqrt(D);
  const cap = a.softcap, window = a.window;
  const group = Hq / Hkv;
  const max = new Float64Array(T * Hq).fill(-Infinity), sum = new Float64Array(T * Hq), out = new Float64Array(T * Hq * D);
  let maxCtx = 0;
  for (const c of contextLens) maxCtx = Math.max(maxCtx, c);
  const rowOf = new Int32Array(maxCtx); // cache position → slot · Hkv
  const scores = new Float64Array(maxCtx);
  const acc = new Float64Array(D);

  for (let b = 0; b < contextLens.length; b++) {
    for (let j = 0; j < contextLens[b]; j++) {
      rowOf[j] = (blockTables[b * Mb + Math.floor(j / S)] * S + (j % S)) * Hkv;
    }
    for (let t = seqStarts[b]; t < seqStarts[b + 1]; t++) {
      const p = positions[t];
      const j0 = Math.max(window === undefined ? 0 : p - window + 1, 0, start);
      const j1 = Math.min(p + 1, end);
      if (j0 >= j1) continue;
      for (let h = 0; h < Hq; h++) {
        const kvh = Math.floor(h / group), qo = (t * Hq + h) * D, th = t * Hq + h;
        let m = -Infinity;
        for (let j = j0; j < j1; j++) {
          const ko = (rowOf[j] + kvh) * D;
          let s = 0;
          for (let d = 0; d < D; d++) s += q[qo + d] * kCache[ko + d];
          s *= scale;
          if (cap !== undefined) s = cap * Math.tanh(s / cap);
          scores[j - j0] = s;
          if (s > m) m = s;
        }
        m = Math.fround(m); // the GPU keeps its running max in fp32
        acc.fill(0);
        let l = 0;
        for (let j = j0; j < j1; j++) {
          const e = Math.exp(scores[j - j0] - m);
          l += e;
          const vo = (rowOf[j] + kvh) * D;
          for (let d = 0; d < D; d++) acc[d] += e * vCache[vo + d];
        }
        max[th] = m;
        sum[th] = l;
        out.set(acc, th * D);
      }
    }
  }
  return { max, sum, out };
}

/** Check shapes and the batch against the cache; returns T. */
function validate(a: Args, fam: string): number {
  const { Hq, Hkv, D, blockSize: S, numBlocks: NB, batch } = a;
  checkDims(fam, { Hq, Hkv, D, blockSize: S, numBlocks: NB });
  checkDims(fam, { maxBlocksPerSeq: batch.maxBlocksPerSeq }, 0);
  if (Hq % Hkv !== 0) throw new Error(`${fam}: Hq=${Hq} must be a multiple of Hkv=${Hkv}`);
  if (a.window !== undefined && !(Number.isInteger(a.window) && a.window >= 1)) throw new Error(`${fam}: window must be an integer ≥ 1, got ${a.window}`);
  if (a.softcap !== undefined && !(a.softcap > 0)) throw new Error(`${fam}: softcap must be > 0, got ${a.softcap}`);
  const T = batch.positions.length, B = batch.seqStarts.length - 1, Mb = batch.maxBlocksPerSeq;
  if (B < 0) throw new Error(`${fam}: batch.seqStarts must have B+1 entries`);
  checkLength(fam, 'q', a.q, { T, Hq, D });
  checkLength(fam, 'kCache', a.kCache, { NB, S, Hkv, D });
  checkLength(fam, 'vCache', a.vCache, { NB, S, Hkv, D });
  checkLength(fam, 'batch.contextLens', batch.contextLens, { B });
  checkLength(fam, 'batch.blockTables', batch.blockTables, { B, M: Mb });
  if (batch.seqStarts[0] !== 0 || batch.seqStarts[B] !== T) throw new Error(`${fam}: batch.seqStarts must run from 0 to T=${T}`);
  for (let b = 0; b < B; b++) {
    const ctx = batch.contextLens[b];
    if (batch.seqStarts[b + 1] < batch.seqStarts[b]) throw new Error(`${fam}: batch.seqStarts decreases at sequence ${b}`);
    if (!(ctx >= 0 && Math.ceil(ctx / S) <= Mb)) throw new Error(`${fam}: sequence ${b}: batch.contextLens ${ctx} needs more than ${Mb} blocks of ${S}`);
    for (let j = 0; j < Math.ceil(ctx / S); j++) {
      const blk = batch.blockTables[b * Mb + j];
      if (!(blk >= 0 && blk < NB)) throw new Error(`${fam}: sequence ${b}: batch.blockTables entry ${j} is ${blk}, cache has ${NB} blocks`);
    }
    for (let t = batch.seqStarts[b]; t < batch.seqStarts[b + 1]; t++) {
      const p = batch.positions[t];
      if (!(p >= 0 && p < ctx)) throw new Error(`${fam}: token ${t}: batch.positions ${p} is outside its sequence's context 0..${ctx - 1}`);
    }
  }
  return T;
}

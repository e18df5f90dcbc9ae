/**
 * Unfused attention: the naive baseline of the ablation (issue 13), the computation an eager
 * framework runs before FlashAttention. Same semantics as paged-attention.ts's `reference` (causal,
 * GQA/MQA, scale, softcap, sliding window), computed the unfused way, one sequence at a time:
 *
 *   1. gather the sequence's K and V out of the paged cache into contiguous [ctx, Hkv, D] copies;
 *   2. S = Q·Kᵀ · scale for every (new token, head, key): the whole [n, Hq, ctx] score matrix is
 *      materialised (masked entries −∞), then softcapped;
 *   3. P = softmax(S) row by row, written back over S (a second full pass over the matrix);
 *   4. O = P·V, rounded once to `dtype`.
 * S and P live in fp32 (a materialised matrix in memory), so the result equals the fused
 * reference within fp32 rounding, not bit for bit. On the CPU both cost the same FLOPs; the
 * difference FlashAttention removes (the HBM traffic of S and P) only shows on a GPU.
 */
import type { AttentionBatch, Args } from './paged-attention.js';
import { storeRounder } from './common.js';

export type { AttentionBatch, Args };

/** out[T, Hq, D]. */
export function reference(a: Args): Float32Array {
  validate(a);
  const { q, kCache, vCache, batch, Hq, Hkv, D, blockSize: S } = a;
  const { positions, seqStarts, contextLens, blockTables, maxBlocksPerSeq: Mb } = batch;
  const T = positions.length, B = contextLens.length;
  const scale = a.scale ?? 1 / Math.sqrt(D), cap = a.softcap, window = a.window, group = Hq / Hkv;
  const r = storeRounder(a.dtype);
  const out = new Float32Array(T * Hq * D);
  for (let b = 0; b < B; b++) {
    const t0 = seqStarts[b], n = seqStarts[b + 1] - t0, ctx = contextLens[b];
    if (n === 0 || ctx === 0) continue;
    // 1. contiguous copies of this sequence's keys and values
    const K = new Float32Array(ctx * Hkv * D), Vv = new Float32Array(ctx * Hkv * D);
    for (let j = 0; j < ctx; j++) {
      const src = (blockTables[b * Mb + Math.floor(j / S)] * S + (j % S)) * Hkv * D;
      K.set(kCache.subarray(src, src + Hkv * D), j * Hkv * D);
      Vv.set(vCache.subarray(src, src + Hkv * D), j * Hkv * D);
    }
    // 2. the score matrix [n, Hq, ctx]
    const Sm = new Float32Array(n * Hq * ctx);
    for (let i = 0; i < n; i++) {
      const p = positions[t0 + i];
      const lo = window === undefined ? 0 : p - window + 1;
      for (let h = 0; h < Hq; h++) {
        const qo = ((t0 + i) * Hq + h) * D, kvh = Math.floor(h / group), row = (i * Hq + h) * ctx;
        for (let j = 0; j < ctx; j++) {
          if (j > p || j < lo) { Sm[row + j] = -Infinity; continue; }
          const ko = (j * Hkv + kvh) * D;
          let s = 0;
          for (let d = 0; d < D; d++) s += q[qo + d] * K[ko + d];
          s *= scale;
          if (cap !== undefined) s = cap * Math.tanh(s / cap);
          Sm[row + j] = s;
        }
      }
    }
    // 3. softmax in place: P over S
    for (let rI = 0; rI < n * Hq; rI++) {
      const row = rI * ctx;
      let m = -Infinity;
      for (let j = 0; j < ctx; j++) if (Sm[row + j] > m) m = Sm[row + j];
      if (m === -Infinity) { Sm.fill(0, row, row + ctx); continue; }
      let l = 0;
      for (let j = 0; j < ctx; j++) { const e = Math.exp(Sm[row + j] - m); Sm[row + j] = e; l += e; }
      const inv = 1 / l;
      for (let j = 0; j < ctx; j++) Sm[row + j] *= inv;
    }
    // 4. O = P·V
    const acc = new Float64Array(D);
    for (let i = 0; i < n; i++) {
      for (let h = 0; h < Hq; h++) {
        const kvh = Math.floor(h / group), row = (i * Hq + h) * ctx;
        acc.fill(0);
        for (let j = 0; j < ctx; j++) {
          const pj = Sm[row + j];
          if (pj === 0) continue;
          const vo = (j * Hkv + kvh) * D;
          for (let d = 0; d < D; d++) acc[d] += pj * Vv[vo + d];
        }
        const o = ((t0 + i) * Hq + h) * D;
        for (let d = 0; d < D; d++) out[o + d] = r ? r(acc[d]) : acc[d];
      }
    }
  }
  return out;
}

/** The essentials of the fused reference's checks: shapes, block tables, positions inside each context. */
function validate(a: Args): void {
  const { batch } = a;
  const B = batch.contextLens.length;
  if (a.Hq % a.Hkv !== 0) throw new Error(`unfusedAttention: Hq=${a.Hq} must be a multiple of Hkv=${a.Hkv}`);
  const T = batch.positions.length;
  if (a.q.length !== T * a.Hq * a.D) throw new Error(`unfusedAttention: q has ${a.q.length} elements, expected T·Hq·D = ${T * a.Hq * a.D}`);
  if (batch.seqStarts.length !== B + 1 || batch.seqStarts[0] !== 0 || batch.seqStarts[B] !== T) throw new Error(`unfusedAttention: batch.seqStarts must have B+1 entries from 0 to T=${T}`);
  for (let b = 0; b < B; b++) {
    const ctx = batch.contextLens[b];
    if (Math.ceil(ctx / a.blockSize) > batch.maxBlocksPerSeq) throw new Error(`unfusedAttention: sequence ${b}: context ${ctx} needs more than ${batch.maxBlocksPerSeq} blocks`);
    for (let j = 0; j < Math.ceil(ctx / a.blockSize); j++) {
      const blk = batch.blockTables[b * batch.maxBlocksPerSeq + j];
      if (!(blk >= 0 && blk < a.numBlocks)) throw new Error(`unfusedAttention: sequence ${b}: block table entry ${j} is ${blk}, cache has ${a.numBlocks} blocks`);
    }
    for (let t = batch.seqStarts[b]; t < batch.seqStarts[b + 1]; t++) {
      const p = batch.positions[t];
      if (!(p >= 0 && p < ctx)) throw new Error(`unfusedAttention: token ${t}: position ${p} is outside its sequence's context 0..${ctx - 1}`);
    }
  }
}

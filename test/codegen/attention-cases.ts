/**
 * Ragged batches and reference outputs for the attention family's tests (attention.test.ts on the
 * emulator, attention-gpu.test.ts on a GPU): random block tables with shuffled block ids, q/K/V in
 * the storage dtype, runtime/kernels/paged-attention.ts as the reference, tolerances, small configs.
 */
import { configForAttention, workspaceBytes, type AttentionConfig, type AttentionStep } from '../../compiler/codegen/families/attention.js';
import type { ActDType, CodegenContext } from '../../compiler/codegen/kernel.js';
import { bf16Decode, bf16Encode, fp16Decode, fp16Encode } from '../../runtime/floats.js';
import { reference, type Args as RefArgs } from '../../runtime/kernels/paged-attention.js';
import { mulberry32 } from '../helpers/random.js';
// ---------------------------------------------------------------- ragged batches

export interface SeqSpec { ctx: number; n: number }
/** Cache and table sizes, fixed when two batches must share the buffers of one CUDA graph. */
export interface Layout { maxBlocksPerSeq: number; numBlocks: number }

export interface Batch {
  positions: Int32Array;
  seqStarts: Int32Array;
  contextLens: Int32Array;
  blockTables: Int32Array;
  slotMapping: Int32Array;
  maxBlocksPerSeq: number;
  numBlocks: number;
  T: number;
  B: number;
  maxNew: number;
  maxContext: number;
}

/**
 * Sequences with `ctx` tokens in the cache after the step, the last `n` of them new. Block ids
 * are a shuffled permutation of the cache (plus spare blocks), unused table entries -1. A
 * sequence with ctx 0 is a padding sequence (its `n` tokens get position 0, slot -1).
 */
export function makeBatch(seqs: SeqSpec[], S: number, rnd: () => number, layout?: Layout): Batch {
  const B = seqs.length;
  const blocksOf = seqs.map((s) => Math.ceil(s.ctx / S));
  const maxBlocksPerSeq = layout?.maxBlocksPerSeq ?? Math.max(1, ...blocksOf) + 1;
  const numBlocks = layout?.numBlocks ?? blocksOf.reduce((a, b) => a + b, 0) + 3;
  if (blocksOf.reduce((a, b) => a + b, 0) > numBlocks || Math.max(...blocksOf) > maxBlocksPerSeq) throw new Error('batch does not fit the layout');
  const ids = Array.from({ length: numBlocks }, (_, i) => i);
  for (let i = ids.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [ids[i], ids[j]] = [ids[j], ids[i]];
  }
  const blockTables = new Int32Array(B * maxBlocksPerSeq).fill(-1);
  let next = 0;
  seqs.forEach((s, b) => { for (let j = 0; j < blocksOf[b]; j++) blockTables[b * maxBlocksPerSeq + j] = ids[next++]; });
  const T = seqs.reduce((a, s) => a + s.n, 0);
  const positions = new Int32Array(T), slotMapping = new Int32Array(T), seqStarts = new Int32Array(B + 1);
  let t = 0;
  seqs.forEach((s, b) => {
    seqStarts[b] = t;
    for (let i = 0; i < s.n; i++, t++) {
      if (s.ctx === 0) { positions[t] = 0; slotMapping[t] = -1; continue; }
      const p = s.ctx - s.n + i;
      positions[t] = p;
      slotMapping[t] = blockTables[b * maxBlocksPerSeq + Math.floor(p / S)] * S + (p % S);
    }
  });
  seqStarts[B] = T;
  return {
    positions, seqStarts, contextLens: Int32Array.from(seqs.map((s) => s.ctx)), blockTables, slotMapping, maxBlocksPerSeq,
    numBlocks, T, B, maxNew: Math.max(0, ...seqs.map((s) => s.n)), maxContext: Math.max(0, ...seqs.map((s) => s.ctx)),
  };
}

export const codec = (dtype: ActDType) => dtype === 'bfloat16'
  ? { enc: bf16Encode, dec: bf16Decode, nan: 0x7fc0 }
  : { enc: fp16Encode, dec: fp16Decode, nan: 0x7e00 };

/**
 * |got − ref| ≤ atol + rtol·|ref| (outputs are O(1): V in [-1, 1]); about two ulps of the dtype
 * at 0.5 (bf16 2^-8, fp16 2^-11): the output's own rounding plus P rounded to the dtype for P·V.
 */
export const TOL: Record<ActDType, { atol: number; rtol: number }> = {
  bfloat16: { atol: 4e-3, rtol: 8e-3 },
  float16: { atol: 5e-4, rtol: 1e-3 },
};

export interface Case {
  seqs: SeqSpec[];
  Hq: number;
  Hkv: number;
  S: number;
  /** num_sms passed to the launch: 0 turns split-KV off; huge forces the most splits. */
  numSms?: number;
  /** Overrides max_new_tokens (an upper bound: larger sends a decode batch down the prefill path). */
  maxNew?: number;
  seed?: number;
}

export const SPLIT_ON = 1 << 20;

export interface Prepared {
  bt: Batch;
  q: Uint16Array;
  k: Uint16Array;
  v: Uint16Array;
  /** The reference output, zeros for padding tokens. */
  expected: Float32Array;
  scale: number;
  /** Bytes of workspace the case provides (the family's formula for this batch). */
  wsBytes: number;
  /** The reference's arguments (non-padding sequences only) and their tokens' batch indices. */
  refArgs: RefArgs;
  refTokens: number[];
}

/** Random q/K/V in the storage dtype for a case, and the reference output. */
export function prepare(cfg: AttentionConfig, c: Case, layout?: Layout): Prepared {
  const { dtype, headDim: D } = cfg;
  const { Hq, Hkv, S } = c;
  const rnd = mulberry32(c.seed ?? 1234);
  const bt = makeBatch(c.seqs, S, rnd, layout);
  const { enc, dec } = codec(dtype);
  const randVals = (n: number, amp: number) => {
    const bits = new Uint16Array(n), vals = new Float32Array(n);
    for (let i = 0; i < n; i++) { bits[i] = enc((rnd() * 2 - 1) * amp); vals[i] = dec(bits[i]); }
    return { bits, vals };
  };
  const q = randVals(bt.T * Hq * D, 2), kc = randVals(bt.numBlocks * S * Hkv * D, 2), vc = randVals(bt.numBlocks * S * Hkv * D, 1);
  const scale = 1 / Math.sqrt(D);

  // Reference over the non-padding sequences; padding tokens must come out zero.
  const live = c.seqs.map((s, b) => ({ s, b })).filter(({ s }) => s.ctx > 0);
  const rows: number[] = [];
  for (const { b } of live) for (let t = bt.seqStarts[b]; t < bt.seqStarts[b + 1]; t++) rows.push(t);
  const rq = new Float32Array(rows.length * Hq * D);
  rows.forEach((t, i) => rq.set(q.vals.subarray(t * Hq * D, (t + 1) * Hq * D), i * Hq * D));
  const rStarts = new Int32Array(live.length + 1);
  live.forEach(({ s }, i) => { rStarts[i + 1] = rStarts[i] + s.n; });
  const rTables = new Int32Array(live.length * bt.maxBlocksPerSeq);
  live.forEach(({ b }, i) => rTables.set(bt.blockTables.subarray(b * bt.maxBlocksPerSeq, (b + 1) * bt.maxBlocksPerSeq), i * bt.maxBlocksPerSeq));
  const refArgs: RefArgs = {
    q: rq, kCache: kc.vals, vCache: vc.vals, Hq, Hkv, D, blockSize: S, numBlocks: bt.numBlocks, scale, dtype,
    batch: {
      positions: Int32Array.from(rows.map((t) => bt.positions[t])), seqStarts: rStarts,
      contextLens: Int32Array.from(live.map(({ s }) => s.ctx)), blockTables: rTables, maxBlocksPerSeq: bt.maxBlocksPerSeq,
    },
  };
  const ref = reference(refArgs);
  const expected = new Float32Array(bt.T * Hq * D);
  rows.forEach((t, i) => expected.set(ref.subarray(i * Hq * D, (i + 1) * Hq * D), t * Hq * D));
  const wsBytes = workspaceBytes({ ...cfg, heads: Hq }, { maxTokens: bt.T, maxSeqs: bt.B, maxContext: bt.maxContext, numSms: 1 });
  return { bt, q: q.bits, k: kc.bits, v: vc.bits, expected, scale, wsBytes, refArgs, refTokens: rows };
}

/** Largest error relative to |got − ref| ≤ atol + rtol·|ref| (≤ 1 passes); throws past 1. */
export function compare(dtype: ActDType, Hq: number, D: number, out: Uint16Array, expected: Float32Array): { worst: number; maxErr: number } {
  const { dec } = codec(dtype);
  const { atol, rtol } = TOL[dtype];
  let worst = 0, maxErr = 0, where = -1;
  for (let i = 0; i < expected.length; i++) {
    const got = dec(out[i]);
    const err = Math.abs(got - expected[i]);
    const rel = Number.isNaN(got) ? Infinity : err / (atol + rtol * Math.abs(expected[i]));
    if (rel > worst) { worst = rel; where = i; }
    if (err > maxErr) maxErr = err;
  }
  if (worst > 1) {
    const t = Math.floor(where / (Hq * D)), h = Math.floor(where / D) % Hq, d = where % D;
    throw new Error(`token ${t} head ${h} dim ${d}: got ${dec(out[where])}, expected ${expected[where]} (${worst.toFixed(2)}× tolerance)`);
  }
  return { worst, maxErr };
}

// ---------------------------------------------------------------- configs

export const ctxFor = (dtype: ActDType, D: number, heads: number, kvHeads: number, target: CodegenContext['target'] = 'all'): CodegenContext => ({
  dtype, target, kv: { blockSize: 16, kvHeads, headDim: D }, limits: { maxTokens: 256, maxSeqs: 16, maxContext: 4096, numSms: 132 },
});
export const stepFor = (heads: number, kvHeads: number, D: number): AttentionStep =>
  ({ kind: 'attention', layer: 0, q: 'q', out: 'out', heads, kvHeads, headDim: D, scale: 1 / Math.sqrt(D) });

/** Small tiles so that ≤ 70-token contexts cross several KV tiles, row tiles and splits. */
export function testConfig(dtype: ActDType, D: number): AttentionConfig {
  return {
    ...configForAttention(stepFor(4, 2, D), ctxFor(dtype, D, 4, 2)),
    prefill: { warps: 2, rowTilesPerWarp: 2, kvWarps: 1, blockN: 32, stages: 2 },
    decode: { warps: 1, rowTilesPerWarp: 1, kvWarps: 2, blockN: 16, stages: 3, maxNewTokens: 4, maxSplits: 8, minKeysPerSplit: 16, ctasPerSm: 4 },
  };
}

export const report = (name: string, r: { worst: number; maxErr: number }) =>
  console.log(`${name}: max |err| ${r.maxErr.toExponential(2)}, ${(r.worst * 100).toFixed(0)}% of tolerance`);


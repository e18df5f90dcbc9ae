/**
 * Config spaces of the tunable kernel families (linear, attention) for one problem: a plan step's
 * shape at one batch-shape bucket, on one target. A space yields `Candidate`s: the tuned part
 * (`choice`: the path that problem's bucket runs) and the whole family config to render for it.
 * Constraints are checked here in TypeScript (numbers in the messages) and then by the family's
 * own validator, so a config the space yields always renders, and nvcc never sees an invalid one.
 *
 * Buckets: T in powers of two (a bucket b covers b/2 < T ≤ b); attention adds the mode (decode:
 * B sequences × 1 new token; prefill: one prompt of T tokens) and a context bucket (powers of two).
 * A linear config covers every T (GEMV up to gemv.maxT, then tiles by maxT): a candidate for a
 * bucket makes that bucket's path the one under test (GEMV with gemv.maxT = bucket; or one GEMM
 * tile for every T > 1, optionally with split-K); db.ts composes the winners of all buckets into
 * one config per step.
 */
import type { Plan, Step } from '../../runtime/plan.js';
import { TARGET_ARCH, type ActDType, type CodegenContext, type GpuTarget } from '../codegen/kernel.js';
import * as attention from '../codegen/families/attention.js';
import * as linear from '../codegen/families/linear.js';
import type { BatchShape } from '../kernels/cost.js';

// ---------------------------------------------------------------------------------------------
// Problems

export type WeightKind = 'dense' | 'int4_group' | 'int8_channel';

export interface LinearProblem {
  family: 'linear';
  dtype: ActDType;
  N: number;
  K: number;
  weight: WeightKind;
  /** int4_group group size (0 otherwise). */
  groupSize: number;
  /** T bucket (power of two). */
  T: number;
}

export interface AttentionProblem {
  family: 'attention';
  dtype: ActDType;
  headDim: number;
  heads: number;
  kvHeads: number;
  mode: 'decode' | 'prefill';
  /** New tokens of the batch (decode: B; prefill: the prompt length), power of two. */
  T: number;
  /** Sequences (decode: T; prefill: 1). */
  B: number;
  /** Context bucket (tokens per sequence after the step), power of two. */
  context: number;
}

export type TuneProblem = LinearProblem | AttentionProblem;

/** Smallest power of two ≥ n (n ≥ 1). */
export function pow2Bucket(n: number): number {
  let b = 1;
  while (b < n) b *= 2;
  return b;
}

/** The bucket key: family, shape fields, bucket (GPU separate: one DB file per GPU). */
export function problemKey(p: TuneProblem): string {
  const dt = p.dtype === 'bfloat16' ? 'bf16' : 'f16';
  if (p.family === 'linear') return `linear|${dt}|N${p.N}|K${p.K}|${p.weight}${p.weight === 'int4_group' ? `g${p.groupSize}` : ''}|T${p.T}`;
  return `attention|${dt}|D${p.headDim}|H${p.heads}|KV${p.kvHeads}|${p.mode}|T${p.T}|C${p.context}`;
}

/** The batch shapes tuning measures: decode (B sequences × 1 token, context) or one prefill of T. */
export type TuneShape = { kind: 'decode'; B: number; context: number } | { kind: 'prefill'; T: number };

export function shapeName(s: TuneShape): string {
  return s.kind === 'decode' ? `decode B=${s.B} ctx=${s.context}` : `prefill T=${s.T}`;
}

export function batchShapeOf(s: TuneShape): BatchShape {
  return s.kind === 'decode'
    ? { T: s.B, contextTokens: s.B * s.context, attendedKeys: s.B * s.context, L: s.B }
    : { T: s.T, contextTokens: s.T, attendedKeys: (s.T * (s.T + 1)) / 2, L: 1 };
}

/** The problem a step poses at a tune shape (undefined: not a tuned family). */
export function problemFor(step: Step, dtype: ActDType, s: TuneShape): TuneProblem | undefined {
  const T = pow2Bucket(s.kind === 'decode' ? s.B : s.T);
  if (step.kind === 'linear') {
    const weight: WeightKind = step.format?.kind ?? 'dense';
    const groupSize = step.format?.kind === 'int4_group' ? step.format.groupSize ?? 128 : 0;
    return { family: 'linear', dtype, N: step.N, K: step.K, weight, groupSize, T };
  }
  if (step.kind === 'attention') {
    return s.kind === 'decode'
      ? { family: 'attention', dtype, headDim: step.headDim, heads: step.heads, kvHeads: step.kvHeads, mode: 'decode', T, B: T, context: pow2Bucket(s.context + 1) }
      : { family: 'attention', dtype, headDim: step.headDim, heads: step.heads, kvHeads: step.kvHeads, mode: 'prefill', T, B: 1, context: T };
  }
  return undefined;
}

/** A plan step standing for a problem (for cost.ts and the family choosers). */
export function stepOf(p: TuneProblem): Step {
  if (p.family === 'linear') {
    const format = p.weight === 'int4_group' ? { kind: 'int4_group' as const, groupSize: p.groupSize, scale: 's', zero: 'z' }
      : p.weight === 'int8_channel' ? { kind: 'int8_channel' as const, scale: 's' } : undefined;
    return { kind: 'linear', x: 'x', weight: 'w', outs: [{ buffer: 'y', start: 0, end: p.N }], K: p.K, N: p.N, ...(format ? { format } : {}) };
  }
  return { kind: 'attention', layer: 0, q: 'q', out: 'o', heads: p.heads, kvHeads: p.kvHeads, headDim: p.headDim, scale: 1 / Math.sqrt(p.headDim) };
}

/** The minimal plan fields cost.ts reads. */
export function planLike(dtype: ActDType): Plan {
  return { dtype, kv: { dtype } } as unknown as Plan;
}

export function contextFor(p: TuneProblem, target: GpuTarget | 'all'): CodegenContext {
  const kv = p.family === 'attention' ? { blockSize: 16, kvHeads: p.kvHeads, headDim: p.headDim } : { blockSize: 16, kvHeads: 1, headDim: 64 };
  return { dtype: p.dtype, target, kv, limits: { maxTokens: 512, maxSeqs: 64, maxContext: 8192, numSms: 132 } };
}

// ---------------------------------------------------------------------------------------------
// Choices

export type LinearChoice =
  | { path: 'gemv'; cols: number; warps: number }
  | { path: 'gemm'; tile: Omit<linear.GemmTile, 'maxT'>; splitK: { maxSplits: number; minSlices: number } | null };

export interface AttentionChoice {
  mode: 'decode' | 'prefill';
  tile: attention.AttentionTile;
  /** Decode only: split-KV settings. */
  split?: { maxSplits: number; minKeysPerSplit: number; ctasPerSm: number };
}

export type Choice = LinearChoice | AttentionChoice;

export interface Candidate {
  problem: TuneProblem;
  choice: Choice;
  /** The whole family config to render. */
  config: linear.LinearConfig | attention.AttentionConfig;
  /** Short stable text of the choice (DB, logs). */
  key: string;
}

export function choiceKey(c: Choice): string {
  if ('path' in c) {
    if (c.path === 'gemv') return `gemv c${c.cols} w${c.warps}`;
    const t = c.tile;
    return `gemm ${t.bm}x${t.bn}x${t.bk} w${t.warpsM}x${t.warpsN} s${t.stages}${c.splitK ? ` sk${c.splitK.maxSplits}/${c.splitK.minSlices}` : ''}`;
  }
  const t = c.tile;
  const s = c.split ? ` split ${c.split.maxSplits}/${c.split.minKeysPerSplit}/${c.split.ctasPerSm}` : '';
  return `${c.mode} w${t.warps} r${t.rowTilesPerWarp} kv${t.kvWarps} n${t.blockN} s${t.stages}${s}`;
}

function smemLimit(target: GpuTarget | 'all'): { bytes: number; what: string } {
  if (target === 'all') return { bytes: Math.min(TARGET_ARCH.a100.smemPerBlockOptin, TARGET_ARCH.h100.smemPerBlockOptin), what: 'sm_80 and sm_90a allow' };
  return { bytes: TARGET_ARCH[target].smemPerBlockOptin, what: `${TARGET_ARCH[target].sm} allows` };
}

/** The largest gemv.maxT (linear.ts: 1..16). */
export const GEMV_MAX_T = 16;

/**
 * The linear config a choice renders to for a problem: GEMV candidates set gemv.maxT to the
 * bucket (registers scale with it) and keep the chooser's tiles above; GEMM candidates take
 * every T > 1 with their one tile (gemv.maxT 1), split-K for T ≤ 8192 when chosen.
 */
export function linearConfigFor(p: LinearProblem, c: LinearChoice, target: GpuTarget | 'all', real?: RealStep): linear.LinearConfig {
  const base = linear.configForLinear((real?.step ?? stepOf(p)) as linear.LinearStep, real?.ctx ?? contextFor(p, target));
  const { splitK: _drop, ...rest } = base;
  if (c.path === 'gemv') {
    const maxT = Math.min(GEMV_MAX_T, p.T);
    const tiles = base.tiles.map((t) => ({ ...t }));
    // Keep tile maxT above gemv.maxT (tiles whose range falls below it are dropped).
    const kept = tiles.filter((t) => t.maxT === null || t.maxT > maxT);
    return { ...base, gemv: { maxT, cols: c.cols, warps: c.warps }, tiles: kept };
  }
  const splitK = c.splitK && p.weight !== 'int8_channel' ? { maxSplits: c.splitK.maxSplits, maxT: 8192, maxN: p.N, minSlices: c.splitK.minSlices } : undefined;
  return { ...rest, gemv: { ...base.gemv, maxT: 1 }, tiles: [{ ...c.tile, maxT: null }], ...(splitK ? { splitK } : {}) };
}

/** Why a linear choice is invalid for a problem on a target (null: valid). Messages carry numbers. */
export function checkLinearChoice(p: LinearProblem, c: LinearChoice, target: GpuTarget | 'all'): string | null {
  if (c.path === 'gemv') {
    if (p.T > GEMV_MAX_T) return `GEMV serves T ≤ ${GEMV_MAX_T}; bucket T = ${p.T}`;
    if (![1, 2, 4].includes(c.cols)) return `gemv cols ${c.cols} not in 1, 2, 4`;
    if (!(Number.isInteger(c.warps) && c.warps >= 1 && c.warps <= 8)) return `gemv warps ${c.warps} not in 1..8`;
  } else {
    const t = c.tile;
    if (p.T < 2) return `a GEMM tile needs T ≥ 2 (T = 1 always takes the GEMV path); bucket T = ${p.T}`;
    if (![16, 32, 64].includes(t.bk)) return `tile bk ${t.bk} not in 16, 32, 64`;
    if (!(t.stages >= 2 && t.stages <= 4)) return `tile stages ${t.stages} not in 2..4`;
    if (!(t.warpsM >= 1 && t.warpsN >= 1)) return `tile warps ${t.warpsM}x${t.warpsN} must be ≥ 1`;
    if (t.bm % (16 * t.warpsM) !== 0 || t.bn % (16 * t.warpsN) !== 0) return `warp tile ${t.bm}/${t.warpsM} x ${t.bn}/${t.warpsN} is not a multiple of 16 in M and N`;
    const threads = linear.tileThreads({ ...t, maxT: null });
    if (threads < 32 || threads > 512) return `tile has ${threads} threads (32..512)`;
    const smem = linear.tileSmemBytes({ ...t, maxT: null });
    const lim = smemLimit(target);
    const famLimit = TARGET_ARCH.a100.smemPerBlockOptin; // validateLinearConfig's bound, whatever the target
    if (smem > lim.bytes) return `tile ${t.bm}x${t.bn}x${t.bk} with ${t.stages} stages needs ${smem} bytes of shared memory; ${lim.what} ${lim.bytes}`;
    if (smem > famLimit) return `tile ${t.bm}x${t.bn}x${t.bk} with ${t.stages} stages needs ${smem} bytes of shared memory; linear.ts caps GEMM tiles at ${famLimit} (the sm_80 opt-in limit) on every target`;
    const wm = t.bm / t.warpsM, wn = t.bn / t.warpsN;
    if (wm * wn > 64 * 64) return `warp tile ${wm}x${wn} holds ${(wm * wn) / 32} fp32 accumulators per thread (at most 128)`;
    if (c.splitK) {
      if (p.weight === 'int8_channel') return 'split-K is not implemented for int8_channel weights';
      if (!(c.splitK.maxSplits >= 2 && c.splitK.maxSplits <= 16)) return `split-K maxSplits ${c.splitK.maxSplits} not in 2..16`;
      if (!(c.splitK.minSlices >= 1)) return `split-K minSlices ${c.splitK.minSlices} must be ≥ 1`;
      const kt = Math.ceil(p.K / t.bk);
      if (kt < 2 * c.splitK.minSlices) return `K = ${p.K} gives ${kt} slices of ${t.bk}: fewer than 2 splits of ${c.splitK.minSlices}`;
    }
  }
  try {
    linear.validateLinearConfig(linearConfigFor(p, c, target));
  } catch (e) {
    return (e as Error).message;
  }
  return null;
}

export function attentionConfigFor(p: AttentionProblem, c: AttentionChoice, target: GpuTarget | 'all', real?: RealStep): attention.AttentionConfig {
  const base = attention.configForAttention((real?.step ?? stepOf(p)) as attention.AttentionStep, real?.ctx ?? contextFor(p, target));
  if (c.mode === 'prefill') return { ...base, prefill: { ...c.tile } };
  return { ...base, decode: { ...base.decode, ...c.tile, ...(c.split ?? {}) } };
}

export function checkAttentionChoice(p: AttentionProblem, c: AttentionChoice, target: GpuTarget | 'all'): string | null {
  const t = c.tile;
  if (c.mode !== p.mode) return `choice for ${c.mode}, problem is ${p.mode}`;
  if (!(t.warps >= 1 && t.warps <= 8)) return `warps ${t.warps} not in 1..8`;
  if (![1, 2, 4].includes(t.kvWarps)) return `kvWarps ${t.kvWarps} not in 1, 2, 4`;
  if (t.warps * t.kvWarps > 8) return `warps × kvWarps = ${t.warps} × ${t.kvWarps} = ${t.warps * t.kvWarps} > 8`;
  if (![1, 2].includes(t.rowTilesPerWarp)) return `rowTilesPerWarp ${t.rowTilesPerWarp} not in 1, 2`;
  if (!(t.blockN >= 16 && t.blockN <= 128 && t.blockN % 16 === 0)) return `blockN ${t.blockN} not a multiple of 16 in 16..128`;
  if (!(t.stages >= 2 && t.stages <= 4)) return `stages ${t.stages} not in 2..4`;
  const smem = attention.tileSmemBytes({ headDim: p.headDim, dtype: p.dtype }, t);
  const lim = smemLimit(target);
  if (smem > lim.bytes) return `${c.mode} tile (${t.warps}·${t.rowTilesPerWarp}·16 rows, ${t.kvWarps}·${t.blockN} keys, ${t.stages} stages, head dim ${p.headDim}) needs ${smem} bytes of shared memory; ${lim.what} ${lim.bytes}`;
  if (c.split) {
    if (c.mode !== 'decode') return 'split-KV settings apply to the decode path only';
    if (!(c.split.maxSplits >= 1 && c.split.minKeysPerSplit >= 1 && c.split.ctasPerSm >= 1)) return `split settings ${JSON.stringify(c.split)} must be ≥ 1`;
  }
  try {
    attention.render(attentionConfigFor(p, c, target));
  } catch (e) {
    return (e as Error).message;
  }
  return null;
}

export function checkChoice(p: TuneProblem, c: Choice, target: GpuTarget | 'all'): string | null {
  if (p.family === 'linear') return 'path' in c ? checkLinearChoice(p, c, target) : 'an attention choice for a linear problem';
  return 'mode' in c ? checkAttentionChoice(p, c, target) : 'a linear choice for an attention problem';
}

/**
 * The family config of a choice; with `real`, for an actual plan step and codegen context (its
 * activation, bias, residual, block size), as the tuner builds it into an artifact.
 */
export function configFor(p: TuneProblem, c: Choice, target: GpuTarget | 'all', real?: RealStep): linear.LinearConfig | attention.AttentionConfig {
  return p.family === 'linear' ? linearConfigFor(p, c as LinearChoice, target, real) : attentionConfigFor(p, c as AttentionChoice, target, real);
}

/** A plan step and the context it is rendered in (instead of the problem's stand-in step). */
export interface RealStep { step: Step; ctx: CodegenContext }

// ---------------------------------------------------------------------------------------------
// Spaces

/** Tile shapes (bm × bn, warps) the linear space draws from: TILE_MENU plus a few more. */
const LINEAR_TILES: Omit<linear.GemmTile, 'maxT' | 'stages' | 'bk'>[] = [
  ...Object.values(linear.TILE_MENU).map(({ bm, bn, warpsM, warpsN }) => ({ bm, bn, warpsM, warpsN })),
  { bm: 16, bn: 64, warpsM: 1, warpsN: 2 },
  { bm: 16, bn: 128, warpsM: 1, warpsN: 4 },
  { bm: 32, bn: 128, warpsM: 1, warpsN: 4 },
  { bm: 128, bn: 64, warpsM: 4, warpsN: 2 },
  { bm: 128, bn: 128, warpsM: 2, warpsN: 2 },
];

export interface SpaceOptions {
  /** Also return invalid choices with their reason (tests). */
  withRejected?: boolean;
}

export interface Space {
  candidates: Candidate[];
  /** Choices the constraints removed, with the reason (withRejected only). */
  rejected: { choice: Choice; reason: string }[];
}

/** The raw choices before constraints: the parameter grid for a linear problem (tens, not thousands). */
export function linearChoices(p: LinearProblem): LinearChoice[] {
  const out: LinearChoice[] = [];
  if (p.T <= GEMV_MAX_T) for (const cols of [1, 2, 4]) for (const warps of [2, 4, 8]) out.push({ path: 'gemv', cols, warps });
  if (p.T < 2) return out;
  // Tiles no taller than twice the bucket (else most rows are padding), none wider than 2·N.
  const tiles = LINEAR_TILES.filter((t) => t.bm <= Math.max(16, 2 * p.T) && t.bm >= Math.min(32, p.T) / 2 && t.bn <= Math.max(32, 2 * p.N));
  const bks = p.K >= 1024 ? [32, 64] : [32];
  const stages = p.K >= 256 ? [2, 3, 4] : [2, 3];
  for (const t of tiles) for (const bk of bks) for (const s of stages) {
    if (bk === 64 && s === 4) continue; // 64-deep slices: 2-3 stages already hold as many bytes
    const tile = { ...t, bk, stages: s };
    out.push({ path: 'gemm', tile, splitK: null });
    // Split-K where the grid of this tile fills less than one wave of a 108-SM part and K is long.
    const ctas = Math.ceil(p.T / t.bm) * Math.ceil(p.N / t.bn);
    if (p.K >= 1024 && ctas < 108 && p.weight !== 'int8_channel' && s === Math.min(3, stages[stages.length - 1]) && bk === 32) {
      out.push({ path: 'gemm', tile, splitK: { maxSplits: 4, minSlices: 4 } });
      if (p.K >= 4096) out.push({ path: 'gemm', tile, splitK: { maxSplits: 8, minSlices: 4 } });
    }
  }
  return out;
}

export function attentionChoices(p: AttentionProblem): AttentionChoice[] {
  const out: AttentionChoice[] = [];
  const group = p.heads / p.kvHeads;
  if (p.mode === 'decode') {
    const rows = group; // one new token per sequence in a decode bucket
    const warps = rows > 16 ? 2 : 1;
    const blockNs = p.headDim >= 256 ? [16, 32] : [16, 32, 64];
    const splits = [{ maxSplits: 16, minKeysPerSplit: 256, ctasPerSm: 4 }, { maxSplits: 16, minKeysPerSplit: 128, ctasPerSm: 8 }, { maxSplits: 8, minKeysPerSplit: 512, ctasPerSm: 2 }];
    for (const kvWarps of [1, 2, 4]) for (const blockN of blockNs) for (const stages of [2, 3]) for (const split of splits) {
      out.push({ mode: 'decode', tile: { warps, rowTilesPerWarp: 1, kvWarps, blockN, stages }, split });
    }
    return out;
  }
  for (const warps of [2, 4, 8]) for (const rowTilesPerWarp of [1, 2]) for (const kvWarps of [1, 2]) for (const blockN of [32, 64]) for (const stages of [2, 3]) {
    if (warps * rowTilesPerWarp * 16 > 2 * Math.max(16, p.T * group)) continue; // taller than twice the rows
    out.push({ mode: 'prefill', tile: { warps, rowTilesPerWarp, kvWarps, blockN, stages } });
  }
  return out;
}

/** The candidates of a problem's space on a target: every raw choice that passes the constraints. */
export function space(p: TuneProblem, target: GpuTarget | 'all', opts: SpaceOptions = {}): Space {
  const raw: Choice[] = p.family === 'linear' ? linearChoices(p) : attentionChoices(p);
  const candidates: Candidate[] = [];
  const rejected: Space['rejected'] = [];
  const seen = new Set<string>();
  for (const choice of raw) {
    const key = choiceKey(choice);
    if (seen.has(key)) continue;
    seen.add(key);
    const reason = checkChoice(p, choice, target);
    if (reason) { if (opts.withRejected) rejected.push({ choice, reason }); continue; }
    candidates.push({ problem: p, choice, config: configFor(p, choice, target), key });
  }
  return { candidates, rejected };
}

/** The family chooser's choice for a problem (the baseline every tuning run also times). */
export function chooserChoice(p: TuneProblem, target: GpuTarget | 'all'): Choice {
  if (p.family === 'linear') {
    const c = linear.configForLinear(stepOf(p) as linear.LinearStep, contextFor(p, target));
    if (p.T <= c.gemv.maxT) return { path: 'gemv', cols: c.gemv.cols, warps: c.gemv.warps };
    const t = c.tiles.find((x) => x.maxT === null || p.T <= x.maxT)!;
    const { maxT: _m, ...tile } = t;
    return { path: 'gemm', tile, splitK: c.splitK && p.T <= c.splitK.maxT ? { maxSplits: c.splitK.maxSplits, minSlices: c.splitK.minSlices } : null };
  }
  const c = attention.configForAttention(stepOf(p) as attention.AttentionStep, contextFor(p, target));
  if (p.mode === 'prefill') return { mode: 'prefill', tile: c.prefill };
  const { maxNewTokens: _n, maxSplits, minKeysPerSplit, ctasPerSm, ...tile } = c.decode;
  return { mode: 'decode', tile, split: { maxSplits, minKeysPerSplit, ctasPerSm } };
}

/**
 * linear family: y = act(x·Wᵀ + bias) + residual with the output columns scattered to up to four
 * buffers (QKV split, gate/up split). W [N, K] row-major in the activation dtype, fp32 accumulation,
 * one rounding at the store. Reference: runtime/kernels/linear.ts (epilogue order act(acc + bias) +
 * residual) and the 'linear' step of runtime/backends/reference.ts.
 *
 * One rendered config = one launch function `cudaError_t NAME(const LfcLinearArgs&, cudaStream_t)`
 * covering every T; it picks on the host (scalar fields only: CUDA-graph safe):
 *   - simple path when K % 8 != 0 or x / W are not 16-byte aligned (one thread per output);
 *   - GEMV (T ≤ gemv.maxT): a warp per `gemv.cols` output columns for all T rows, 16-byte W loads,
 *     warp-shuffle reduction (decode, memory-bound on W);
 *   - GEMM: the first of `tiles` whose maxT ≥ T (the last tile takes every larger T): tensor-core
 *     mma.sync m16n8k16, ldmatrix from XOR-swizzled shared memory, a `stages`-deep cp.async pipeline;
 *     optional split-K (`splitK`: fp32 partials in Args.workspace, then a reduce kernel with the
 *     epilogue) where the grid would leave SMs idle.
 * Weights: dense, or int4_group W4A16 (`weight`), dequantized in registers on every path.
 * int8_channel (W8A8) is not implemented: configForLinear throws naming the format.
 * The template is templates/linear.cu.hbs (+ partials/linear_epilogue.hbs, linear_weights.hbs); each
 * GEMM tile is a C++ template instantiation, so a config may carry several tiles (small-T, large-T).
 * In the emulator build (LFC_EMU) the unit also defines `int NAME_path` (the path of the last call:
 * 0 simple, 1 GEMV, 2+i tile i, + 100·splits under split-K) for tests.
 */
import type { Step } from '../../../runtime/plan.js';
import { CUDA_TYPE, TARGET_ARCH, type ActDType, type CodegenContext, type GpuTarget, type RenderedKernel } from '../kernel.js';
import { renderTemplate } from '../render.js';

export type LinearStep = Extract<Step, { kind: 'linear' }>;
export type LinearActivation = 'none' | 'relu' | 'silu' | 'gelu_tanh' | 'gelu_erf';

/** One tensor-core CTA tile. Warp tile (bm/warpsM × bn/warpsN) must be multiples of 16. */
export interface GemmTile {
  bm: number;
  bn: number;
  /** 16, 32 or 64 (k elements per pipeline stage). */
  bk: number;
  warpsM: number;
  warpsN: number;
  /** cp.async pipeline depth, 2..4. */
  stages: number;
  /** Largest T this tile serves; null = every T above the previous tiles (must be the last). */
  maxT: number | null;
}

export interface GemvConfig {
  /** Largest T the GEMV path serves (≥ 1, ≤ 16). */
  maxT: number;
  /** Output columns per warp (1, 2 or 4). */
  cols: number;
  /** Warps per block. */
  warps: number;
}

export interface LinearConfig {
  dtype: ActDType;
  activation: LinearActivation;
  gemv: GemvConfig;
  /** GEMM tiles by ascending maxT; the last has maxT null. */
  tiles: GemmTile[];
  /**
   * Weight format: dense (default, W in the activation dtype) or int4_group W4A16 (plan
   * LinearFormat; uint8 [N, K/2] low nibble first, fp32 scale and optional uint8 zero per group,
   * optional fp32 smooth [K]); dequantized in registers (fp32 on the GEMV path, rounded to the
   * activation dtype for the mma on the GEMM path). int8_channel W8A8 (int8 [N, K], fp32 scale
   * [N], optional smooth): x is quantized per token into Args.workspace (int8 [T, K] + fp32 [T],
   * so workspaceBytes grows with maxK, the largest K a launch may pass), then exact int32
   * accumulation (mma m16n8k32 s8 / int GEMV), rescaled by s_x[t]·s_w[n] before the epilogue.
   */
  weight?: { kind: 'dense' } | { kind: 'int4_group'; groupSize: number } | { kind: 'int8_channel'; maxK: number };
  /**
   * Split-K on the GEMM path (absent: never). When T ≤ maxT and N ≤ maxN the launch function
   * splits K so that the grid covers the SMs once (at most maxSplits, at least minSlices BK-slices
   * per split); partials go to Args.workspace as fp32 [splits, T, N] and a reduce kernel sums them
   * in split order (deterministic) and applies the epilogue. Workspace: workspaceBytes.
   */
  splitK?: SplitK;
}

export interface SplitK {
  maxSplits: number;
  maxT: number;
  maxN: number;
  minSlices: number;
}

const ACT_EXPR: Record<LinearActivation, string> = {
  none: 'v', relu: 'lfc::act_relu(v)', silu: 'lfc::act_silu(v)', gelu_tanh: 'lfc::act_gelu_tanh(v)', gelu_erf: 'lfc::act_gelu_erf(v)',
};

/** Dynamic shared memory of a tile in bytes (activation dtype: 2 bytes). */
export function tileSmemBytes(t: GemmTile): number {
  return t.stages * (t.bm + t.bn) * t.bk * 2;
}

export function tileThreads(t: GemmTile): number {
  return t.warpsM * t.warpsN * 32;
}

/** Throws with the reason when a config cannot be rendered. */
export function validateLinearConfig(c: LinearConfig): void {
  const where = `linear config ${JSON.stringify(c)}`;
  if (!(c.dtype in CUDA_TYPE)) throw new Error(`${where}: dtype must be float16 or bfloat16`);
  if (!(c.activation in ACT_EXPR)) throw new Error(`${where}: unknown activation '${c.activation}'`);
  const g = c.gemv;
  if (!(Number.isInteger(g.maxT) && g.maxT >= 1 && g.maxT <= 16)) throw new Error(`${where}: gemv.maxT must be 1..16`);
  if (![1, 2, 4].includes(g.cols)) throw new Error(`${where}: gemv.cols must be 1, 2 or 4`);
  if (!(Number.isInteger(g.warps) && g.warps >= 1 && g.warps <= 8)) throw new Error(`${where}: gemv.warps must be 1..8`);
  if (c.weight?.kind === 'int4_group') {
    const gs = c.weight.groupSize;
    if (!(Number.isInteger(gs) && gs >= 8 && gs % 8 === 0)) throw new Error(`${where}: int4_group group size must be a positive multiple of 8`);
  }
  if (c.weight?.kind === 'int8_channel') {
    if (!(Number.isInteger(c.weight.maxK) && c.weight.maxK >= 1)) throw new Error(`${where}: int8_channel maxK must be a positive integer`);
    if (c.splitK) throw new Error(`${where}: split-K is not available with int8_channel (the workspace holds the quantized x)`);
  }
  if (c.splitK) {
    const k = c.splitK;
    if (!(Number.isInteger(k.maxSplits) && k.maxSplits >= 2 && k.maxSplits <= 16)) throw new Error(`${where}: splitK.maxSplits must be 2..16`);
    for (const f of ['maxT', 'maxN', 'minSlices'] as const) if (!(Number.isInteger(k[f]) && k[f] >= 1)) throw new Error(`${where}: splitK.${f} must be a positive integer`);
  }
  if (c.tiles.length === 0) throw new Error(`${where}: needs at least one GEMM tile`);
  let prev = g.maxT;
  c.tiles.forEach((t, i) => {
    const last = i === c.tiles.length - 1;
    if (last !== (t.maxT === null)) throw new Error(`${where}: only the last tile has maxT null`);
    if (t.maxT !== null && !(t.maxT > prev)) throw new Error(`${where}: tile maxT must increase above gemv.maxT`);
    if (t.maxT !== null) prev = t.maxT;
    if (![16, 32, 64].includes(t.bk)) throw new Error(`${where}: tile bk must be 16, 32 or 64`);
    if (!(t.stages >= 2 && t.stages <= 4)) throw new Error(`${where}: tile stages must be 2..4`);
    if (t.bm % (16 * t.warpsM) !== 0 || t.bn % (16 * t.warpsN) !== 0) throw new Error(`${where}: warp tile must be a multiple of 16 in M and N`);
    const threads = tileThreads(t);
    if (threads < 32 || threads > 512) throw new Error(`${where}: tile threads must be 32..512`);
    if (tileSmemBytes(t) > TARGET_ARCH.a100.smemPerBlockOptin) throw new Error(`${where}: tile needs ${tileSmemBytes(t)} bytes of shared memory`);
  });
}

function tileKey(t: GemmTile): string {
  return `${t.bm}x${t.bn}x${t.bk}w${t.warpsM}x${t.warpsN}s${t.stages}${t.maxT === null ? '' : `m${t.maxT}`}`;
}

function largestPow2Dividing(n: number): number {
  let p = 1;
  while (n % (p * 2) === 0) p *= 2;
  return p;
}

/** The launch function's (and translation unit's) name: unique per config. */
export function kernelName(c: LinearConfig): string {
  const dt = c.dtype === 'bfloat16' ? 'bf16' : 'f16';
  const wf = c.weight?.kind === 'int4_group' ? `_w4g${c.weight.groupSize}` : c.weight?.kind === 'int8_channel' ? `_w8k${c.weight.maxK}` : '';
  const sk = c.splitK ? `_sk${c.splitK.maxSplits}t${c.splitK.maxT}n${c.splitK.maxN}m${c.splitK.minSlices}` : '';
  return `lfc_linear_${dt}${wf}_${c.activation}_v${c.gemv.maxT}c${c.gemv.cols}w${c.gemv.warps}_${c.tiles.map(tileKey).join('_')}${sk}`;
}

/** A tile for T above `maxT` (null: all). The tile menu the chooser and the autotuner draw from. */
export const TILE_MENU = {
  /** 256 threads, warp tile 64×32. */
  t128x128: { bm: 128, bn: 128, bk: 32, warpsM: 2, warpsN: 4 },
  /** 128 threads, warp tile 32×64. */
  t64x128: { bm: 64, bn: 128, bk: 32, warpsM: 2, warpsN: 2 },
  /** 128 threads, warp tile 32×32. */
  t64x64: { bm: 64, bn: 64, bk: 32, warpsM: 2, warpsN: 2 },
  /** 64 threads, warp tile 32×32 (small T or small N). */
  t32x64: { bm: 32, bn: 64, bk: 32, warpsM: 1, warpsN: 2 },
  /** 64 threads, warp tile 32×16 (tiny N). */
  t32x32: { bm: 32, bn: 32, bk: 32, warpsM: 1, warpsN: 2 },
} as const satisfies Record<string, Omit<GemmTile, 'maxT' | 'stages'>>;

/**
 * The config for a linear step. Heuristics (untuned; the autotuner will enumerate configs):
 *  - GEMV for T ≤ 8; columns per warp grow with N (more bytes in flight per warp on wide layers).
 *  - GEMM tiles by N: N ≤ 128 → 32×32; N ≤ 1024 → 32×64 (T ≤ 64) then 64×64; larger N →
 *    64×128 (T ≤ 128) then 128×128. Pipeline depth by K: < 256 → 2 stages, < 1024 → 3,
 *    ≥ 1024 → 4 on h100 (3 on a100 / all).
 *  - Split-K (≤ 4 splits, T ≤ 128) when N ≤ 8192 and K ≥ 1024 (7B attention / down projections).
 */
export function configForLinear(step: LinearStep, ctx: CodegenContext): LinearConfig {
  let weight: LinearConfig['weight'];
  if (step.format?.kind === 'int4_group') {
    const groupSize = step.format.groupSize ?? 128;
    if (groupSize % 8 !== 0) throw new Error(`CUDA linear: int4_group group size ${groupSize} is not a multiple of 8`);
    weight = { kind: 'int4_group', groupSize };
  } else if (step.format?.kind === 'int8_channel') {
    weight = { kind: 'int8_channel', maxK: step.K };
  } else if (step.format) {
    throw new Error(`CUDA linear: weight format ${(step.format as { kind: string }).kind} not implemented yet`);
  }
  const { N, K } = step;
  const target: GpuTarget | 'all' = ctx.target;
  const deep = K >= 1024 ? (target === 'h100' ? 4 : 3) : K >= 256 ? 3 : 2;
  const cols = N >= 8192 ? 4 : N >= 1024 ? 2 : 1;
  const gemv: GemvConfig = { maxT: 8, cols, warps: 4 };
  let tiles: GemmTile[];
  if (N <= 128) {
    tiles = [{ ...TILE_MENU.t32x32, stages: deep, maxT: null }];
  } else if (N <= 1024) {
    tiles = [{ ...TILE_MENU.t32x64, stages: deep, maxT: 64 }, { ...TILE_MENU.t64x64, stages: deep, maxT: null }];
  } else {
    tiles = [{ ...TILE_MENU.t64x128, stages: deep, maxT: 128 }, { ...TILE_MENU.t128x128, stages: deep, maxT: null }];
  }
  // Split-K where the small-T tile leaves most SMs idle: N ≤ 8192 gives ≤ 64 CTAs of 64×128 per
  // 64 rows; a long K (≥ 1024) has the slices to split. Workspace ≤ 4 × 128 × 8192 × 4 = 16 MiB.
  const splitK: SplitK | undefined = N <= 8192 && K >= 1024 && weight?.kind !== 'int8_channel' ? { maxSplits: 4, maxT: 128, maxN: N, minSlices: 4 } : undefined;
  const c: LinearConfig = { dtype: ctx.dtype, activation: step.activation ?? 'none', gemv, tiles, ...(weight ? { weight } : {}), ...(splitK ? { splitK } : {}) };
  validateLinearConfig(c);
  return c;
}

/** Render an explicit config (the autotuner's entry point as well as configForLinear's). */
export function render(c: LinearConfig): RenderedKernel {
  validateLinearConfig(c);
  const name = kernelName(c);
  const source = renderTemplate('linear.cu.hbs', {
    template: 'linear.cu.hbs', name, configJson: JSON.stringify(c), actType: CUDA_TYPE[c.dtype],
    actExpr: ACT_EXPR[c.activation],
    mmaFn: c.dtype === 'bfloat16' ? 'lfc::mma_m16n8k16_bf16' : 'lfc::mma_m16n8k16_f16',
    gemv: c.gemv,
    splitK: c.splitK ?? { maxSplits: 1, maxT: 0, maxN: 0, minSlices: 1 },
    hasSplitK: !!c.splitK,
    w4: c.weight?.kind === 'int4_group', w4Group: c.weight?.kind === 'int4_group' ? c.weight.groupSize : 0,
    w4Sub: c.weight?.kind === 'int4_group' ? Math.min(4, largestPow2Dividing(c.weight.groupSize / 8)) : 1,
    w8: c.weight?.kind === 'int8_channel', w8MaxK: c.weight?.kind === 'int8_channel' ? c.weight.maxK : 0,
    tiles: c.tiles.map((t, i) => ({
      ...t, maxT: t.maxT ?? 0, maxTText: t.maxT === null ? 'any' : String(t.maxT), last: i === c.tiles.length - 1, path: 2 + i,
    })),
  });
  const k: RenderedKernel = { family: 'linear', name, launches: [{ fn: name, args: 'LfcLinearArgs' }], source, config: c };
  const sk = c.splitK;
  if (sk) k.workspaceBytes = (limits) => sk.maxSplits * Math.min(sk.maxT, limits.maxTokens) * sk.maxN * 4;
  const w8 = c.weight?.kind === 'int8_channel' ? c.weight : undefined;
  if (w8) k.workspaceBytes = (limits) => limits.maxTokens * (w8.maxK + 4) + 16; // q_x int8 [T, K], 16-aligned, s_x fp32 [T]
  return k;
}

/**
 * The analytic time model that ranks candidates where no GPU is present: the roofline floor of the
 * problem (cost.ts with 2-byte weights, GPU_PEAKS), then what the candidate's launch shape loses:
 *
 *   - wave quantisation: the grid's CTAs over the SMs (ceil(ctas / SMs) rounds for compute-bound
 *     work, the fraction of SMs with any CTA for memory-bound work);
 *   - latency hiding: bytes in flight per SM (resident CTAs × pipeline stages × tile bytes, from
 *     the occupancy of its ptxas report) against Little's law (bandwidth × ~700 ns / SMs), and
 *     resident warps for tensor-core issue;
 *   - tile-edge waste: the padded M × N × K (partial tiles compute whole tiles);
 *   - warp-tile intensity of mma.sync (small warp tiles re-read shared memory per FLOP) and the
 *     fraction of the datasheet peak mma.sync reaches (H100's peak needs wgmma);
 *   - split-K / split-KV: fp32 partials written and read back, plus a second launch;
 *   - GEMV and attention decode on CUDA cores / memory as the paths actually run.
 *
 * It ranks; it does not predict absolute times well. Split counts follow the launch functions'
 * host logic (templates/linear.cu.hbs launch_gemm, attention.cu.hbs NAME_splits).
 */
import type { PtxasKernelReport } from '../build/cuda-build.js';
import { TARGET_ARCH, type GpuTarget } from '../codegen/kernel.js';
import * as attention from '../codegen/families/attention.js';
import * as linear from '../codegen/families/linear.js';
import { GPU_PEAKS } from '../codegen/report.js';
import { stepCost } from '../kernels/cost.js';
import { occupancy, type Occupancy } from './occupancy.js';
import { planLike, stepOf, type AttentionChoice, type AttentionProblem, type Candidate, type LinearChoice, type LinearProblem, type TuneProblem } from './spaces.js';

/** Per-target constants of the model beyond GPU_PEAKS (datasheets; the mma.sync share is an estimate). */
export const MODEL_CONSTANTS: Record<GpuTarget, { fp32Flops: number; mmaSyncFraction: number; latencyS: number; launchS: number }> = {
  a100: { fp32Flops: 19.5e12, mmaSyncFraction: 0.85, latencyS: 700e-9, launchS: 2e-6 },
  h100: { fp32Flops: 67e12, mmaSyncFraction: 0.6, latencyS: 700e-9, launchS: 2e-6 },
};

export interface Prediction {
  ms: number;
  /** Roofline floor of the problem (ms). */
  floorMs: number;
  occupancy: Occupancy;
  ctas: number;
  splits: number;
  /** Registers used for the occupancy (ptxas, else an estimate). */
  registers: number;
  estimatedRegisters: boolean;
}

/** The problem's bucket as a batch shape (T = the bucket's upper end). */
function shapeOf(p: TuneProblem) {
  if (p.family === 'linear') return { T: p.T, contextTokens: p.T, attendedKeys: p.T, L: 1 };
  if (p.mode === 'decode') return { T: p.B, contextTokens: p.B * p.context, attendedKeys: p.B * p.context, L: p.B };
  return { T: p.T, contextTokens: p.T, attendedKeys: (p.T * (p.T + 1)) / 2, L: 1 };
}

export function floorMs(p: TuneProblem, target: GpuTarget): number {
  const c = stepCost(planLike(p.dtype), stepOf(p), shapeOf(p), { weightBytes: 2 });
  const peak = GPU_PEAKS[target];
  return Math.max(c.flops / peak.bf16Flops, c.bytes / peak.bandwidth) * 1e3;
}

/** The ptxas entry of a candidate's path (mangled names carry the template arguments). */
export function entryFor(c: Candidate, reports: PtxasKernelReport[], arch: string): PtxasKernelReport | undefined {
  const on = reports.filter((r) => r.arch === arch);
  const ch = c.choice;
  let re: RegExp;
  if ('path' in ch) {
    if (ch.path === 'gemv') {
      const g = (c.config as linear.LinearConfig).gemv;
      re = new RegExp(`gemv(_w8)?_kernelILi${g.warps}ELi${g.cols}ELi${g.maxT}E`);
    } else {
      const t = ch.tile;
      re = new RegExp(`GemmTileILi${t.bm}ELi${t.bn}ELi${t.bk}ELi${t.warpsM}ELi${t.warpsN}ELi${t.stages}E`);
    }
  } else {
    const t = ch.tile;
    re = new RegExp(`attn_tileILi${t.warps}ELi${t.rowTilesPerWarp}ELi${t.kvWarps}ELi${t.blockN}ELi${t.stages}ELb`);
  }
  const hits = on.filter((r) => re.test(r.kernel));
  // Split and non-split instantiations of one attention tile: the one with more registers.
  return hits.sort((a, b) => b.registers - a.registers)[0];
}

/** Block size and dynamic shared memory of a candidate's kernel. */
export function launchShape(c: Candidate): { threads: number; dynamicSmem: number } {
  const ch = c.choice;
  if ('path' in ch) {
    if (ch.path === 'gemv') return { threads: ch.warps * 32, dynamicSmem: 0 };
    return { threads: linear.tileThreads({ ...ch.tile, maxT: null }), dynamicSmem: linear.tileSmemBytes({ ...ch.tile, maxT: null }) };
  }
  const p = c.problem as AttentionProblem;
  return { threads: ch.tile.warps * ch.tile.kvWarps * 32, dynamicSmem: attention.tileSmemBytes({ headDim: p.headDim, dtype: p.dtype }, ch.tile) };
}

function estimateRegisters(c: Candidate): number {
  const ch = c.choice;
  if ('path' in ch) {
    if (ch.path === 'gemv') return Math.min(255, 40 + 2 * Math.min(16, (c.problem as LinearProblem).T) * ch.cols);
    const wm = ch.tile.bm / ch.tile.warpsM, wn = ch.tile.bn / ch.tile.warpsN;
    return Math.min(255, 56 + (wm * wn) / 32 + (wm + wn) / 4);
  }
  const p = c.problem as AttentionProblem;
  return Math.min(255, 64 + ch.tile.rowTilesPerWarp * (p.headDim / 2 + 16));
}

/** Predicted time of a candidate on a target, from its ptxas report when given (else estimated registers). */
export function predict(c: Candidate, target: GpuTarget, reports?: PtxasKernelReport[]): Prediction {
  const arch = TARGET_ARCH[target].sm;
  const entry = reports ? entryFor(c, reports, arch) : undefined;
  const registers = entry?.registers ?? estimateRegisters(c);
  const { threads, dynamicSmem } = launchShape(c);
  const occ = occupancy({ threadsPerBlock: threads, registers, staticSmem: entry?.sharedBytes ?? 0, dynamicSmem }, arch);
  const base = { floorMs: floorMs(c.problem, target), occupancy: occ, registers, estimatedRegisters: !entry };
  if (occ.ctasPerSm === 0) return { ...base, ms: Infinity, ctas: 0, splits: 1 };
  const r = c.problem.family === 'linear'
    ? linearTime(c.problem, c.choice as LinearChoice, c.config as linear.LinearConfig, target, occ, threads)
    : attentionTime(c.problem, c.choice as AttentionChoice, target, occ, threads);
  return { ...base, ms: Math.max(r.s * 1e3, base.floorMs), ctas: r.ctas, splits: r.splits };
}

interface Machine { S: number; peak: number; bw: number; fp32: number; mma: number; needPerSm: number; launch: number }

function machine(target: GpuTarget): Machine {
  const k = MODEL_CONSTANTS[target], p = GPU_PEAKS[target], S = TARGET_ARCH[target].sms;
  return { S, peak: p.bf16Flops, bw: p.bandwidth, fp32: k.fp32Flops, mma: k.mmaSyncFraction, needPerSm: (p.bandwidth * k.latencyS) / S, launch: k.launchS };
}

/** Time of `bytes` from memory with `ctas` CTAs, `resident` per SM, `inflight` bytes per CTA. */
function memTime(m: Machine, bytes: number, ctas: number, resident: number, inflightPerCta: number): number {
  const coverage = Math.min(ctas, m.S) / m.S;
  const hiding = Math.min(1, (resident * inflightPerCta) / m.needPerSm);
  return bytes / (m.bw * coverage * Math.max(hiding, 0.05));
}

/** Tensor-core time of `flops` over `ctas` CTAs (rounds of ceil(ctas / SMs)), with `warps` resident per SM. */
function mmaTime(m: Machine, flops: number, ctas: number, warpsResident: number, intensityEff: number): number {
  const waveEff = ctas / (Math.ceil(ctas / m.S) * m.S);
  const issue = Math.min(1, warpsResident / 8);
  return flops / (m.peak * m.mma * intensityEff * waveEff * Math.max(issue, 0.05));
}

function linearTime(p: LinearProblem, ch: LinearChoice, cfg: linear.LinearConfig, target: GpuTarget, occ: Occupancy, threads: number): { s: number; ctas: number; splits: number } {
  const m = machine(target);
  const cost = stepCost(planLike(p.dtype), stepOf(p), { T: p.T, contextTokens: p.T, attendedKeys: p.T, L: 1 }, { weightBytes: 2 });
  const warps = threads / 32;
  if (ch.path === 'gemv') {
    const perBlock = ch.warps * ch.cols;
    const ctas = Math.ceil(p.N / perBlock);
    const resident = Math.min(occ.ctasPerSm, Math.ceil(ctas / m.S));
    const tMem = memTime(m, cost.bytes, ctas, resident, warps * ch.cols * 512 * 2);
    const tFma = cost.flops / (m.fp32 * (Math.min(ctas, m.S) / m.S) * Math.min(1, (resident * warps) / 16));
    return { s: Math.max(tMem, tFma) + m.launch, ctas, splits: 1 };
  }
  const t = ch.tile;
  const mt = Math.ceil(p.T / t.bm), nt = Math.ceil(p.N / t.bn), kt = Math.ceil(p.K / t.bk);
  let splits = 1;
  const sk = cfg.splitK;
  if (sk && p.T <= sk.maxT && p.N <= sk.maxN) {
    splits = Math.min(Math.ceil(m.S / (mt * nt)), sk.maxSplits, Math.floor(kt / sk.minSlices));
    if (splits > 1) { const sps = Math.ceil(kt / splits); splits = Math.ceil(kt / sps); } else splits = 1;
  }
  const ctas = mt * nt * splits;
  const resident = Math.min(occ.ctasPerSm, Math.ceil(ctas / m.S));
  const padded = 2 * (mt * t.bm) * (nt * t.bn) * (kt * t.bk);
  const wm = t.bm / t.warpsM, wn = t.bn / t.warpsN;
  const intensity = Math.min(1, (wm * wn) / (wm + wn) / 32);
  const tMma = mmaTime(m, padded, ctas, resident * warps, intensity);
  const partials = splits > 1 ? splits * p.T * p.N * 4 * 2 : 0;
  const tMem = memTime(m, cost.bytes + partials, ctas, resident, t.stages * (t.bm + t.bn) * t.bk * 2);
  return { s: Math.max(tMma, tMem) + m.launch * (splits > 1 ? 2 : 1), ctas, splits };
}

function attentionTime(p: AttentionProblem, ch: AttentionChoice, target: GpuTarget, occ: Occupancy, threads: number): { s: number; ctas: number; splits: number } {
  const m = machine(target);
  const t = ch.tile, D = p.headDim, group = p.heads / p.kvHeads;
  const BM = t.warps * t.rowTilesPerWarp * 16, keysPerTile = t.kvWarps * t.blockN;
  const warps = threads / 32;
  const cost = stepCost(planLike(p.dtype), stepOf(p), shapeOf(p), { weightBytes: 2 });
  const tileBytes = t.stages * keysPerTile * (D + 8) * 2 * 2;
  if (p.mode === 'decode') {
    const rows = group, mtiles = Math.ceil(rows / BM);
    const ctas0 = p.B * p.kvHeads * mtiles;
    let splits = 1;
    const sp = ch.split;
    if (sp) {
      const want = m.S * sp.ctasPerSm;
      if (ctas0 < want) splits = Math.max(1, Math.min(Math.ceil(want / ctas0), Math.ceil(p.context / sp.minKeysPerSplit), sp.maxSplits));
    }
    const ctas = ctas0 * splits;
    const resident = Math.min(occ.ctasPerSm, Math.ceil(ctas / m.S));
    const partials = splits > 1 ? splits * p.T * p.heads * (D + 2) * 4 * 2 : 0;
    const tMem = memTime(m, cost.bytes + partials, ctas, resident, tileBytes);
    const keys = Math.ceil(p.context / splits / keysPerTile) * keysPerTile * splits;
    const tMma = mmaTime(m, 4 * D * mtiles * BM * p.kvHeads * p.B * keys, ctas, resident * warps, 0.5);
    return { s: Math.max(tMem, tMma) + m.launch * (splits > 1 ? 2 : 1), ctas, splits: splits };
  }
  const rows = p.T * group, mtiles = Math.ceil(rows / BM);
  const ctas = p.B * p.kvHeads * mtiles;
  const resident = Math.min(occ.ctasPerSm, Math.ceil(ctas / m.S));
  // Causal: row tile i reads ~(i+1)/mtiles of the keys, rounded up to whole key tiles; the
  // longest CTAs run first, so a grid within one wave ends with the longest CTA.
  const pad = (mtiles * BM) / rows;
  const keyPad = 1 + keysPerTile / Math.max(1, p.T);
  const tail = ctas <= m.S ? (mtiles + 1) / (2 * mtiles) : 1;
  const tMma = mmaTime(m, cost.flops * pad * keyPad, ctas, resident * warps, Math.min(1, (BM / t.warps / 16) * 0.5 + (t.blockN >= 64 ? 0.25 : 0.15))) / tail;
  const tMem = memTime(m, cost.bytes, ctas, resident, tileBytes);
  return { s: Math.max(tMma, tMem) + m.launch, ctas, splits: 1 };
}

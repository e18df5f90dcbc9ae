/**
 * Markdown sections of an artifact's report.md: the ptxas resources of each kernel unit, and a
 * roofline estimate of one forward per plan step kind on A100 and H100.
 *
 * The roofline is the cost model's (compiler/kernels/cost.ts) lower bound: each step takes at
 * least max(FLOPs / peak, bytes / bandwidth); a step kind's time is the sum over its steps, and
 * it is called compute-bound when its compute-bound steps account for most of that time. These
 * are ceilings, not measurements: real kernels reach some fraction of them (scripts/gpu/baselines.py
 * measures what torch reaches on the card).
 */
import type { Plan } from '../../runtime/plan.js';
import { stepCost, type BatchShape } from '../kernels/cost.js';
import type { PtxasKernelReport } from '../build/cuda-build.js';
import type { GpuTarget } from './kernel.js';

/** Peak dense bf16/fp16 tensor-core throughput and HBM bandwidth, from the vendor datasheets. */
export interface GpuPeak {
  name: string;
  /** FLOP/s, dense (no 2:4 sparsity), bf16 inputs with fp32 accumulation. */
  bf16Flops: number;
  /** Bytes/s of device memory. */
  bandwidth: number;
  source: string;
}

export const GPU_PEAKS: Record<GpuTarget, GpuPeak> = {
  a100: {
    name: 'A100 SXM4 80GB',
    bf16Flops: 312e12,
    bandwidth: 2.039e12,
    source: 'NVIDIA A100 Tensor Core GPU datasheet: BF16 tensor core 312 TFLOPS dense (624 with sparsity), HBM2e 2,039 GB/s (80GB SXM)',
  },
  h100: {
    name: 'H100 SXM5 80GB',
    bf16Flops: 989e12,
    bandwidth: 3.35e12,
    source: 'NVIDIA H100 Tensor Core GPU datasheet: BF16 tensor core 1,979 TFLOPS with sparsity (989 dense), HBM3 3.35 TB/s (SXM)',
  },
};

// ---------------------------------------------------------------------------------------------
// Kernel table

export interface KernelRow {
  /** Kernel unit (kernels/<name>.cu). */
  name: string;
  family: string;
  config: object;
  /** ptxas report of the unit's entries, per arch (empty: not built). */
  ptxas: PtxasKernelReport[];
}

/** Readable name of an Itanium-mangled entry (its innermost identifier), else the text as is. */
export function entryName(mangled: string): string {
  if (!mangled.startsWith('_Z')) return mangled;
  let i = 2;
  const ids: string[] = [];
  const readId = (): boolean => {
    const m = /^(\d+)/.exec(mangled.slice(i));
    if (!m) return false;
    const n = Number(m[1]);
    i += m[1].length;
    ids.push(mangled.slice(i, i + n));
    i += n;
    return true;
  };
  if (mangled[i] === 'N') {
    i++;
    while (i < mangled.length && mangled[i] !== 'E' && mangled[i] !== 'I' && readId());
  } else readId();
  const named = ids.filter((s) => !s.startsWith('_GLOBAL__N'));
  return named.length ? named.join('::') : mangled;
}

const fmtConfig = (c: object): string =>
  Object.entries(c).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join(' ');

const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/**
 * One row per kernel unit, entry and arch: registers per thread, static shared memory, stack
 * frame, spill stores/loads (bytes). ⚠ marks an entry that spills or uses a stack frame.
 */
export function kernelTable(rows: KernelRow[]): string {
  const L = [
    '| kernel | family | config | entry | arch | registers | smem (B) | stack (B) | spills st/ld (B) | |',
    '|---|---|---|---|---|---:|---:|---:|---:|---|',
  ];
  let warned = 0;
  for (const r of rows) {
    const head = `| ${cell(r.name)} | ${cell(r.family)} | ${cell(fmtConfig(r.config))}`;
    if (r.ptxas.length === 0) { L.push(`${head} | — | — | — | — | — | — | not built |`); continue; }
    const sorted = [...r.ptxas].sort((a, b) => a.arch.localeCompare(b.arch) || a.kernel.localeCompare(b.kernel));
    for (const p of sorted) {
      const bad = p.spillStores > 0 || p.spillLoads > 0 || p.stackBytes > 0;
      if (bad) warned++;
      L.push(`${head} | ${cell(entryName(p.kernel))} | ${p.arch} | ${p.registers} | ${p.sharedBytes} | ${p.stackBytes} | ${p.spillStores}/${p.spillLoads} | ${bad ? '⚠' : ''} |`);
    }
  }
  L.push('', warned ? `⚠ ${warned} entr${warned === 1 ? 'y spills or uses' : 'ies spill or use'} a stack frame (local memory traffic).` : 'No entry spills or uses a stack frame.');
  return L.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Roofline

/** Step counts T of the roofline table. T = 1 is a decode step, the others one prompt's prefill. */
export const ROOFLINE_TOKENS = [1, 16, 128, 512, 4096] as const;
/** Context of the decode column (tokens already in the KV cache of the one sequence). */
export const DECODE_CONTEXT = 1024;

/** Batch shape of the roofline column for T tokens. */
export function rooflineShape(T: number): BatchShape {
  return T === 1
    ? { T: 1, contextTokens: DECODE_CONTEXT, attendedKeys: DECODE_CONTEXT, L: 1 }
    : { T, contextTokens: T, attendedKeys: (T * (T + 1)) / 2, L: 1 };
}

export interface RooflineOptions {
  /** Bytes per weight-matrix element (default: 2 for bf16/fp16 plans, as the CUDA artifact stores them; 4 for fp32). */
  weightBytes?: number;
  /** Step counts (default ROOFLINE_TOKENS). */
  tokens?: readonly number[];
  /** GPUs (default both). */
  gpus?: readonly GpuTarget[];
}

export interface KindEstimate {
  flops: number;
  bytes: number;
  /** Σ over steps of max(flops/peak, bytes/bandwidth), seconds. */
  seconds: number;
  bound: 'compute' | 'memory';
}

export interface RooflineColumn {
  T: number;
  shape: BatchShape;
  perKind: Record<string, KindEstimate>;
  /** Seconds per forward (Σ over kinds). */
  seconds: number;
  /** New tokens per second at that forward time: T / seconds. */
  tokensPerSecond: number;
}

export interface RooflineEstimate { gpu: GpuTarget; peak: GpuPeak; weightBytes: number; columns: RooflineColumn[] }

/** The numbers behind rooflineTable. */
export function roofline(plan: Plan, opts: RooflineOptions = {}): RooflineEstimate[] {
  const weightBytes = opts.weightBytes ?? (plan.dtype === 'float32' ? 4 : 2);
  return (opts.gpus ?? (['a100', 'h100'] as const)).map((gpu) => {
    const peak = GPU_PEAKS[gpu];
    const columns = (opts.tokens ?? ROOFLINE_TOKENS).map((T): RooflineColumn => {
      const shape = rooflineShape(T);
      const acc = new Map<string, { flops: number; bytes: number; compute: number; memory: number }>();
      for (const s of plan.steps) {
        const c = stepCost(plan, s, shape, { weightBytes });
        const tc = c.flops / peak.bf16Flops, tm = c.bytes / peak.bandwidth;
        const k = acc.get(s.kind) ?? { flops: 0, bytes: 0, compute: 0, memory: 0 };
        k.flops += c.flops; k.bytes += c.bytes;
        if (tc > tm) k.compute += tc; else k.memory += tm;
        acc.set(s.kind, k);
      }
      const perKind: Record<string, KindEstimate> = {};
      let seconds = 0;
      for (const [kind, k] of acc) {
        perKind[kind] = { flops: k.flops, bytes: k.bytes, seconds: k.compute + k.memory, bound: k.compute > k.memory ? 'compute' : 'memory' };
        seconds += k.compute + k.memory;
      }
      return { T, shape, perKind, seconds, tokensPerSecond: seconds > 0 ? T / seconds : Infinity };
    });
    return { gpu, peak, weightBytes, columns };
  });
}

/** Seconds → "504 ns" / "12.3 µs" / "4.56 ms" / "1.23 s". */
export function fmtTime(s: number): string {
  if (s < 1e-6) return `${(s * 1e9).toPrecision(3)} ns`;
  if (s < 1e-3) return `${(s * 1e6).toPrecision(3)} µs`;
  if (s < 1) return `${(s * 1e3).toPrecision(3)} ms`;
  return `${s.toPrecision(3)} s`;
}

/** Tokens/s with thousands separators. */
export function fmtRate(r: number): string {
  return Number.isFinite(r) ? Math.round(r).toLocaleString('en-US') : '∞';
}

/**
 * Roofline estimate per GPU: for each T, the time of each plan step kind with C (compute-bound)
 * or M (memory-bound), then the forward's total and tokens/s.
 */
export function rooflineTable(plan: Plan, opts: RooflineOptions = {}): string {
  const est = roofline(plan, opts);
  const kinds = [...new Set(plan.steps.map((s) => s.kind))];
  const L: string[] = [];
  const w = est[0]?.weightBytes ?? 2;
  L.push(`Roofline lower bounds (time ≥ max(FLOPs / peak, bytes / bandwidth) per step, summed), weight matrices at ${w} bytes/element, ` +
    `activations ${plan.dtype}. T = 1 is one decode step with ${DECODE_CONTEXT} tokens of context; larger T is the prefill of one prompt of T tokens ` +
    `(causal: T(T+1)/2 attended keys). C = compute-bound, M = memory-bound.` +
    (plan.dtype === 'float32' ? ' The peaks are bf16 tensor-core peaks; an fp32 plan would not reach them.' : ''));
  const over = (opts.tokens ?? ROOFLINE_TOKENS).filter((T) => T > plan.model.maxPositions);
  if (over.length) L.push(`T = ${over.join(', ')} exceed${over.length === 1 ? 's' : ''} the plan's maxPositions (${plan.model.maxPositions}): shown for scale only.`);
  for (const e of est) {
    L.push('', `#### ${e.peak.name}: ${(e.peak.bf16Flops / 1e12).toFixed(0)} TFLOP/s bf16 dense, ${(e.peak.bandwidth / 1e12).toFixed(2)} TB/s`, '');
    L.push(`| step kind | ${e.columns.map((c) => (c.T === 1 ? `T=1 (decode, ${DECODE_CONTEXT} ctx)` : `T=${c.T} (prefill)`)).join(' | ')} |`);
    L.push(`|---|${e.columns.map(() => '---:').join('|')}|`);
    for (const k of kinds) {
      L.push(`| ${k} | ${e.columns.map((c) => { const x = c.perKind[k]; return x ? `${fmtTime(x.seconds)} ${x.bound === 'compute' ? 'C' : 'M'}` : '—'; }).join(' | ')} |`);
    }
    L.push(`| **forward** | ${e.columns.map((c) => `**${fmtTime(c.seconds)}**`).join(' | ')} |`);
    L.push(`| **tokens/s** | ${e.columns.map((c) => `**${fmtRate(c.tokensPerSecond)}**`).join(' | ')} |`);
  }
  L.push('', 'Peaks: ' + est.map((e) => `${e.peak.source}.`).join(' '));
  return L.join('\n');
}


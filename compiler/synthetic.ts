/**
 * Synthetic LLaMA-shaped plans with seeded random weights (never zeros): the GPU check and the
 * kernel benchmarks run real model dimensions (LLaMA-2-7B, LLaMA-3-8B) without a model download,
 * and tests get small odd-shaped models. The steps are what lowering produces for a LLaMA export
 * (compiler/plan/lower.ts): embedding, per layer RMSNorm → fused QKV linear → rope q/k →
 * cache_write → attention → o_proj (+ residual via the next add_norm) → gate/up → SiLU·up → down,
 * final norm, logits (lm_head tied to the embedding table to keep weights.bin small).
 */
import { PLAN_SCHEMA, PLAN_VERSION, type BufferEntry, type Plan, type Step } from '../runtime/plan.js';
import { Tensor } from '../runtime/tensor.js';
import type { StorageDType } from '../runtime/kernels/common.js';
import { planMemory } from './plan/memory.js';
import { WeightTable } from './plan/weights.js';
import { mulberry32 as rng } from './util/random.js';

export interface LlamaShape {
  name: string;
  hidden: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
  vocab: number;
  layers: number;
  maxPositions: number;
}

/** Real dimensions (Hugging Face configs), with `layers` and `vocab` overridable by the caller. */
export const LLAMA2_7B: LlamaShape = { name: 'llama2-7b', hidden: 4096, heads: 32, kvHeads: 32, headDim: 128, intermediate: 11008, vocab: 32000, layers: 32, maxPositions: 4096 };
export const LLAMA3_8B: LlamaShape = { name: 'llama3-8b', hidden: 4096, heads: 32, kvHeads: 8, headDim: 128, intermediate: 14336, vocab: 128256, layers: 32, maxPositions: 8192 };

export function syntheticLlama(shape: LlamaShape, opts: { dtype?: StorageDType; seed?: number; blockSize?: number } = {}): { plan: Plan; weights: Uint8Array } {
  const { hidden: H, heads, kvHeads, headDim: D, intermediate: I, vocab: V, layers, maxPositions: P } = shape;
  const dtype = opts.dtype ?? 'bfloat16';
  const r = rng(opts.seed ?? 1);
  const w = new WeightTable();
  const buffers = new Map<string, number>();
  const buf = (name: string, features: number) => { buffers.set(name, features); return name; };
  // Uniform in ±a (a = 1/√fan_in keeps activations O(1) through the layers), never exactly zero.
  const mat = (name: string, rows: number, cols: number, a: number) => {
    const data = new Float32Array(rows * cols);
    for (let i = 0; i < data.length; i++) data[i] = (r() * 2 - 1) * a || a / 2;
    return w.add(name, 'synthetic', new Tensor('float32', [rows, cols], data));
  };
  const vec = (name: string, n: number, center: number, spread: number) => {
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = center + (r() * 2 - 1) * spread;
    return w.add(name, 'synthetic', new Tensor('float32', [n], data));
  };
  const R = D;
  const cos = new Float32Array(P * (R / 2)), sin = new Float32Array(P * (R / 2));
  for (let p = 0; p < P; p++) {
    for (let i = 0; i < R / 2; i++) {
      const f = Math.fround(p * Math.fround(1 / Math.pow(10000, (2 * i) / R)));
      cos[p * (R / 2) + i] = Math.cos(f);
      sin[p * (R / 2) + i] = Math.sin(f);
    }
  }
  const ropeCos = w.addShared('rope.cos', 'synthetic', new Tensor('float32', [P, R / 2], cos));
  const ropeSin = w.addShared('rope.sin', 'synthetic', new Tensor('float32', [P, R / 2], sin));

  const steps: Step[] = [];
  const embed = mat('embed_tokens', V, H, 1);
  let x = buf('embed', H);
  steps.push({ kind: 'embedding', out: x, table: embed, vocab: V, hidden: H, indices: 'tokens' });
  let pending: string | undefined; // the branch output to add to x in the next add_norm
  const eps = 1e-5;
  for (let l = 0; l < layers; l++) {
    const n1 = buf(`l${l}.norm1`, H), s1 = buf(`l${l}.sum1`, H);
    steps.push({ kind: 'add_norm', x: pending ?? x, ...(pending ? { residual: x, sumOut: s1 } : {}), out: n1, gamma: vec(`l${l}.norm1.gamma`, H, 1, 0.1), norm: 'rms', eps, hidden: H });
    if (pending) x = s1;
    const q = buf(`l${l}.q`, heads * D), k = buf(`l${l}.k`, kvHeads * D), v = buf(`l${l}.v`, kvHeads * D);
    const qkvN = (heads + 2 * kvHeads) * D;
    steps.push({
      kind: 'linear', x: n1, weight: mat(`l${l}.qkv`, qkvN, H, 1 / Math.sqrt(H)), K: H, N: qkvN,
      outs: [{ buffer: q, start: 0, end: heads * D }, { buffer: k, start: heads * D, end: (heads + kvHeads) * D }, { buffer: v, start: (heads + kvHeads) * D, end: qkvN }],
    });
    const qr = buf(`l${l}.q_rope`, heads * D), kr = buf(`l${l}.k_rope`, kvHeads * D);
    steps.push({ kind: 'rope', x: q, out: qr, heads, headDim: D, rotaryDim: R, style: 'half', cos: ropeCos, sin: ropeSin });
    steps.push({ kind: 'rope', x: k, out: kr, heads: kvHeads, headDim: D, rotaryDim: R, style: 'half', cos: ropeCos, sin: ropeSin });
    steps.push({ kind: 'cache_write', layer: l, k: kr, v });
    const att = buf(`l${l}.attn`, heads * D);
    steps.push({ kind: 'attention', layer: l, q: qr, out: att, heads, kvHeads, headDim: D, scale: 1 / Math.sqrt(D) });
    const o = buf(`l${l}.o`, H);
    steps.push({ kind: 'linear', x: att, weight: mat(`l${l}.o_proj`, H, heads * D, 1 / Math.sqrt(heads * D)), K: heads * D, N: H, outs: [{ buffer: o, start: 0, end: H }] });
    const n2 = buf(`l${l}.norm2`, H), s2 = buf(`l${l}.sum2`, H);
    steps.push({ kind: 'add_norm', x: o, residual: x, sumOut: s2, out: n2, gamma: vec(`l${l}.norm2.gamma`, H, 1, 0.1), norm: 'rms', eps, hidden: H });
    x = s2;
    const g = buf(`l${l}.gate`, I), u = buf(`l${l}.up`, I), a = buf(`l${l}.act`, I), dn = buf(`l${l}.down`, H);
    steps.push({ kind: 'linear', x: n2, weight: mat(`l${l}.gate_up`, 2 * I, H, 1 / Math.sqrt(H)), K: H, N: 2 * I, outs: [{ buffer: g, start: 0, end: I }, { buffer: u, start: I, end: 2 * I }] });
    steps.push({ kind: 'gated_act', gate: g, up: u, out: a, features: I, activation: 'silu' });
    steps.push({ kind: 'linear', x: a, weight: mat(`l${l}.down`, H, I, 1 / Math.sqrt(I)), K: I, N: H, outs: [{ buffer: dn, start: 0, end: H }] });
    pending = dn;
  }
  const nf = buf('final_norm', H), sf = buf('final_sum', H);
  steps.push({ kind: 'add_norm', x: pending ?? x, ...(pending ? { residual: x, sumOut: sf } : {}), out: nf, gamma: vec('final_norm.gamma', H, 1, 0.1), norm: 'rms', eps, hidden: H });
  steps.push({ kind: 'logits', x: nf, weight: embed, hidden: H, vocab: V });
  if (dtype !== 'float32') w.roundTo(embed, dtype);
  for (const s of steps) if (s.kind === 'linear' && dtype !== 'float32') w.roundTo(s.weight, dtype);
  const bufs: BufferEntry[] = [...buffers].map(([name, features]) => ({ name, features, column: 0 }));
  const arena = planMemory(steps, bufs);
  const plan: Plan = {
    schema: PLAN_SCHEMA, version: PLAN_VERSION,
    model: { name: shape.name, family: 'llama', vocab: V, hidden: H, layers, heads, kvHeads, headDim: D, maxPositions: P, rope: { style: 'half', rotaryDim: R } },
    dtype,
    kv: { blockSize: opts.blockSize ?? 16, dtype, layers, kvHeads, headDim: D },
    weights: w.entries(), buffers: bufs, arenaFeatures: arena, steps,
    source: { file: `synthetic:${shape.name}`, outputs: ['logits'] },
  };
  return { plan, weights: w.pack() };
}

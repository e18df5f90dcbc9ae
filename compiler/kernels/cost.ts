/**
 * The cost model of each kernel family: FLOPs and bytes moved by one plan step for a batch
 * shape, the inputs of the roofline model (time ≥ max(flops / peak, bytes / bandwidth)) that
 * tuning, the simulator and speculative decoding's back-off use. Counts are the algorithmic
 * minimum: every weight and activation byte read once, every output written once; attention
 * reads each context token's K and V once per kv head.
 *
 * Legend: T new tokens in the step, B sequences, C total context tokens (Σ contextLens),
 * L logit rows, s storage bytes per activation element, w bytes per weight element.
 */
import type { Plan, Step } from '../../runtime/plan.js';

export interface BatchShape {
  /** New tokens in the step. */
  T: number;
  /** Σ over sequences of context length after the step (keys each query block reads). */
  contextTokens: number;
  /** Σ over new tokens of their position + 1 (keys attended in total, causal). */
  attendedKeys: number;
  /** Logit rows requested. */
  L: number;
}

export interface Cost { flops: number; bytes: number }

export interface CostOptions {
  /**
   * Bytes per element of weight matrices (unquantized linear and logits weights, embedding
   * tables). Default 4: plan v1's weights.bin stores them fp32, and that is what the plan's own
   * backends read. The CUDA artifact converts them to the activation dtype, so its reports pass 2
   * for bf16/fp16 plans. Vectors (norm gammas/betas, biases, rope tables) stay fp32 either way.
   * When given, quantized linear steps count their packed bytes (int8: 1 per weight + fp32 scales;
   * int4: ½ per weight + fp32 scale and uint8 zero per group; + fp32 smoothing vector) instead of
   * fp32 matrices.
   */
  weightBytes?: number;
}

const STORAGE_BYTES = { float32: 4, float16: 2, bfloat16: 2 } as const;

export function stepCost(plan: Plan, s: Step, b: BatchShape, opts: CostOptions = {}): Cost {
  const a = STORAGE_BYTES[plan.dtype], w = 4; // weights are stored fp32 in plan v1
  const m = opts.weightBytes ?? w; // weight matrices
  const kvA = STORAGE_BYTES[plan.kv.dtype];
  switch (s.kind) {
    case 'embedding': return { flops: 0, bytes: b.T * s.hidden * (m + a) + b.T * 4 };
    case 'add': return { flops: b.T * s.features, bytes: 3 * b.T * s.features * a };
    case 'add_norm': {
      const io = (s.residual ? 4 : 2) * b.T * s.hidden * a;
      return { flops: b.T * s.hidden * (s.residual ? 5 : 4), bytes: io + s.hidden * w * (s.beta ? 2 : 1) };
    }
    case 'linear':
      return { flops: 2 * b.T * s.K * s.N, bytes: linearWeightBytes(s, opts) + b.T * (s.K + s.N * (s.residual ? 2 : 1)) * a + (s.bias ? s.N * w : 0) };
    case 'gated_act': case 'activation': {
      const ins = s.kind === 'gated_act' ? 2 : 1;
      return { flops: b.T * s.features * 8, bytes: (ins + 1) * b.T * s.features * a };
    }
    case 'rope': return { flops: b.T * s.heads * s.rotaryDim * 3, bytes: 2 * b.T * s.heads * s.headDim * a + b.T * s.rotaryDim * w };
    case 'cache_write': {
      const row = plan.kv.kvHeads * plan.kv.headDim;
      return { flops: 0, bytes: 2 * b.T * row * (a + kvA) + b.T * 4 };
    }
    case 'attention': {
      // QKᵀ and PV: 4·D FLOPs per (query head, attended key); K/V of the context read once per kv head.
      const flops = 4 * s.headDim * s.heads * b.attendedKeys;
      const bytes = 2 * b.contextTokens * s.kvHeads * s.headDim * kvA + 2 * b.T * s.heads * s.headDim * a;
      return { flops, bytes };
    }
    case 'logits': return { flops: 2 * b.L * s.hidden * s.vocab, bytes: s.hidden * s.vocab * m + b.L * (s.hidden * a + s.vocab * 4) };
  }
}

/** Bytes of a linear step's weight matrix (with its quantization scales/zeros when packed). */
function linearWeightBytes(s: Extract<Step, { kind: 'linear' }>, opts: CostOptions): number {
  if (opts.weightBytes === undefined) return s.K * s.N * 4;
  if (!s.format) return s.K * s.N * opts.weightBytes;
  const smooth = s.format.smooth ? s.K * 4 : 0;
  if (s.format.kind === 'int8_channel') return s.K * s.N + s.N * 4 + smooth;
  const groups = s.N * Math.ceil(s.K / (s.format.groupSize ?? 128));
  return (s.K * s.N) / 2 + groups * 5 + smooth;
}

export function planCost(plan: Plan, b: BatchShape, opts: CostOptions = {}): Cost & { perKind: Record<string, Cost> } {
  const perKind: Record<string, Cost> = {};
  let flops = 0, bytes = 0;
  for (const s of plan.steps) {
    const c = stepCost(plan, s, b, opts);
    flops += c.flops; bytes += c.bytes;
    const k = (perKind[s.kind] ??= { flops: 0, bytes: 0 });
    k.flops += c.flops; k.bytes += c.bytes;
  }
  return { flops, bytes, perKind };
}

/** One decode step of B sequences each with `ctx` tokens of context. */
export const decodeShape = (B: number, ctx: number): BatchShape => ({ T: B, contextTokens: B * ctx, attendedKeys: B * ctx, L: B });

/** Prefill of one prompt of n tokens. */
export const prefillShape = (n: number): BatchShape => ({ T: n, contextTokens: n, attendedKeys: (n * (n + 1)) / 2, L: 1 });

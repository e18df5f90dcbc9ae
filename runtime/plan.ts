/**
 * The Plan: the artifact contract between `lfc compile` and every backend (plan.json).
 *
 * A plan runs one `forward(RaggedBatch)` (batch.ts) as an ordered list of steps, each one kernel
 * family with its typed arguments. Activations live in buffers of `features` values per token
 * ([T, features], row-major); weights live in weights.bin at byte offsets given here; the KV
 * cache is paged, one K and one V cache per layer of [numBlocks, blockSize, kvHeads, headDim].
 * Everything position-wise runs on [T, …]; only `attention` looks across tokens, through the
 * block tables.
 *
 * Versioned: a backend refuses a plan whose `version` it does not know.
 */
import type { StorageDType } from './kernels/common.js';

export const PLAN_SCHEMA = 'lfc.plan';
export const PLAN_VERSION = 1;

export interface PlanModelInfo {
  name: string;
  family: 'llama' | 'gpt2' | 'unknown';
  vocab: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  /** Positions the rope/position tables cover. */
  maxPositions: number;
  rope?: { style: 'half' | 'interleaved'; rotaryDim: number };
  bos?: number;
  eos?: number;
}

export interface WeightEntry {
  name: string;
  /** Source initializer(s) in the ONNX graph, for reports. */
  source: string;
  /** 'int8'/'uint8': packed quantized weights (issue 11); old plans (all float32) still parse, so the plan version stays 1. */
  dtype: 'float32' | 'int8' | 'uint8';
  shape: number[];
  /** Byte offset in weights.bin (64-byte aligned). */
  offset: number;
  bytes: number;
}

/**
 * Quantized weight format of a linear step (runtime/kernels/quant.ts). The step's `weight` then names
 * the packed weight: int8 [N, K] for int8_channel, uint8 [N, K/2] (low nibble first) for int4_group.
 */
export interface LinearFormat {
  kind: 'int8_channel' | 'int4_group';
  groupSize?: number;
  /** fp32 [N] (int8_channel) or [N, K/groupSize] (int4_group). */
  scale: string;
  /** uint8 [N, K/groupSize], int4_group only. */
  zero?: string;
  /** fp32 [K] multiplier applied to x before the GEMM (SmoothQuant / AWQ 1/s). */
  smooth?: string;
}

export interface BufferEntry {
  name: string;
  /** Values per token. */
  features: number;
  /** Element offset of this buffer in the activation arena, per token of capacity (arena is [maxTokens, rowStride]). */
  column: number;
}

/** One step of the forward. Buffer and weight fields hold names from the plan's tables. */
export type Step =
  | { kind: 'embedding'; out: string; table: string; vocab: number; hidden: number; indices: 'tokens' | 'positions' }
  | { kind: 'add'; a: string; b: string; out: string; features: number }
  | { kind: 'add_norm'; x: string; residual?: string; out: string; sumOut?: string; gamma: string; beta?: string; norm: 'rms' | 'layer'; eps: number; hidden: number }
  | { kind: 'linear'; x: string; weight: string; bias?: string; outs: { buffer: string; start: number; end: number }[]; K: number; N: number; activation?: 'relu' | 'silu' | 'gelu_tanh' | 'gelu_erf'; residual?: string; format?: LinearFormat }
  | { kind: 'gated_act'; gate: string; up: string; out: string; features: number; activation: 'silu' | 'gelu_tanh' | 'gelu_erf' | 'relu' }
  | { kind: 'activation'; x: string; out: string; features: number; activation: 'silu' | 'gelu_tanh' | 'gelu_erf' | 'relu' }
  | { kind: 'rope'; x: string; out: string; heads: number; headDim: number; rotaryDim: number; style: 'half' | 'interleaved'; cos: string; sin: string }
  | { kind: 'cache_write'; layer: number; k: string; v: string }
  | { kind: 'attention'; layer: number; q: string; out: string; heads: number; kvHeads: number; headDim: number; scale: number }
  | { kind: 'logits'; x: string; weight: string; bias?: string; hidden: number; vocab: number };

export interface Plan {
  schema: typeof PLAN_SCHEMA;
  version: typeof PLAN_VERSION;
  model: PlanModelInfo;
  /** Activation storage dtype. */
  dtype: StorageDType;
  kv: { blockSize: number; dtype: StorageDType; layers: number; kvHeads: number; headDim: number };
  weights: WeightEntry[];
  buffers: BufferEntry[];
  /** Row stride of the activation arena (sum of the widest simultaneously live buffers). */
  arenaFeatures: number;
  steps: Step[];
  /** Graph outputs this plan reproduces, for verification reports. */
  source: { file: string; outputs: string[] };
}

/** Parse and check a plan.json's envelope; errors name the field. */
export function parsePlan(text: string, where = 'plan.json'): Plan {
  let p: Partial<Plan>;
  try { p = JSON.parse(text) as Partial<Plan>; } catch (e) { throw new Error(`${where}: not valid JSON (${(e as Error).message})`); }
  if (p.schema !== PLAN_SCHEMA) throw new Error(`${where}: 'schema' is ${JSON.stringify(p.schema)}, expected "${PLAN_SCHEMA}"`);
  if (p.version !== PLAN_VERSION) throw new Error(`${where}: plan version ${String(p.version)} is not supported by this runtime (supports ${PLAN_VERSION}); recompile the model`);
  for (const f of ['model', 'kv', 'weights', 'buffers', 'steps'] as const) if (!p[f]) throw new Error(`${where}: missing '${f}'`);
  const names = new Set(p.buffers!.map((b) => b.name));
  const weights = new Set(p.weights!.map((w) => w.name));
  p.steps!.forEach((s, i) => {
    for (const [k, v] of Object.entries(s)) {
      if (typeof v !== 'string' || ['kind', 'indices', 'norm', 'style', 'activation'].includes(k)) continue;
      if (!names.has(v) && !weights.has(v)) throw new Error(`${where}: step ${i} (${s.kind}) field '${k}' names unknown buffer or weight '${v}'`);
    }
    if (s.kind === 'linear' && s.format) {
      for (const k of ['scale', 'zero', 'smooth'] as const) {
        const v = s.format[k];
        if (v !== undefined && !weights.has(v)) throw new Error(`${where}: step ${i} (linear) format.${k} names unknown weight '${v}'`);
      }
    }
  });
  return p as Plan;
}

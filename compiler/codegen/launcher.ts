/**
 * Plan → CUDA sources of an artifact: one kernel unit per distinct kernel config (kernels/<name>.cu)
 * and launcher.cu, the host side with lfc's C ABI (templates/launcher.cu.hbs documents it).
 *
 * Each plan step becomes one call of its family's launch function with an lfc_abi.h argument
 * struct filled here from the step: buffers are columns of the activation arena
 * (plan.buffers[].column × max_tokens elements), weights are the device copies the launcher
 * loads from weights.bin (GEMM operands converted to the activation dtype; vectors kept fp32;
 * packed quantized weights as bytes).
 */
import type { Plan, Step } from '../../runtime/plan.js';
import { CUDA_TYPE, type ActDType, type CodegenContext, type GpuTarget, type RenderedKernel, type WorkspaceLimits } from './kernel.js';
import { renderTemplate } from './render.js';
import { bufferFields } from '../plan/memory.js';

export type KernelChooser = (step: Step, ctx: CodegenContext) => RenderedKernel;

export interface CudaSourcesOptions {
  target: GpuTarget | 'all';
  /** Upper limits the artifact is built for (lfc_create refuses more). */
  maxTokens?: number;
  maxSeqs?: number;
  /** Decode batch sizes captured as CUDA graphs. */
  buckets?: number[];
  /** Kernel unit for a step (compiler/codegen/families/index.ts). */
  kernelFor: KernelChooser;
  /** The device sampling unit run after the logits step (lfc_forward_sample); none: sampling stays on the host. */
  sampleKernelFor?: (logits: Extract<Step, { kind: 'logits' }>, ctx: CodegenContext) => RenderedKernel;
  /** The speculative verification unit (lfc_forward_verify); none: verification stays on the host. */
  verifyKernelFor?: (logits: Extract<Step, { kind: 'logits' }>, ctx: CodegenContext) => RenderedKernel;
}

export interface CudaSources {
  kernels: RenderedKernel[];
  /** Kernel unit of each plan step (by index). */
  stepKernel: string[];
  launcher: string;
  limits: WorkspaceLimits;
  workspaceBytes: number;
}

const DEFAULT_BUCKETS = [1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256];

/** Weight kinds of launcher.cu: 0 fp32 as is, 1 fp32 matrix → activation dtype, 2 packed bytes. */
function weightKinds(plan: Plan): Map<string, number> {
  const kinds = new Map<string, number>();
  for (const w of plan.weights) kinds.set(w.name, w.dtype === 'float32' ? 0 : 2);
  for (const s of plan.steps) {
    if ((s.kind === 'linear' && !s.format) || s.kind === 'logits') kinds.set(s.weight, 1);
    if (s.kind === 'embedding') kinds.set(s.table, 1);
  }
  return kinds;
}

export function generateCudaSources(plan: Plan, opts: CudaSourcesOptions): CudaSources {
  if (plan.dtype === 'float32') {
    throw new Error(`the CUDA artifact needs a bf16 or fp16 plan (this plan's dtype is float32): compile with --dtype bf16 or --dtype fp16`);
  }
  if (plan.kv.dtype !== plan.dtype) throw new Error(`plan kv.dtype ${plan.kv.dtype} differs from dtype ${plan.dtype}: not supported by the CUDA launcher`);
  const dtype = plan.dtype as ActDType;
  const maxTokens = opts.maxTokens ?? 512, maxSeqs = opts.maxSeqs ?? 64;
  const limits: WorkspaceLimits = { maxTokens, maxSeqs, maxContext: plan.model.maxPositions, numSms: 132 };
  const ctx: CodegenContext = { dtype, target: opts.target, kv: { blockSize: plan.kv.blockSize, kvHeads: plan.kv.kvHeads, headDim: plan.kv.headDim }, limits };

  const units = new Map<string, RenderedKernel>();
  const stepKernel: string[] = [];
  for (const [i, s] of plan.steps.entries()) {
    let k: RenderedKernel;
    try {
      k = opts.kernelFor(s, ctx);
    } catch (e) {
      throw new Error(`step ${i} (${s.kind}): ${(e as Error).message}`);
    }
    const have = units.get(k.name);
    if (have && have.source !== k.source) throw new Error(`kernel unit name ${k.name} is rendered with two different sources (steps of ${have.family})`);
    units.set(k.name, k);
    stepKernel.push(k.name);
  }
  const logitsStep = plan.steps.find((s): s is Extract<Step, { kind: 'logits' }> => s.kind === 'logits');
  let sampleFn = '';
  if (opts.sampleKernelFor && logitsStep) {
    const k = opts.sampleKernelFor(logitsStep, ctx);
    units.set(k.name, k);
    sampleFn = k.launches[0].fn;
  }
  let verifyFn = '';
  if (opts.verifyKernelFor && logitsStep) {
    const k = opts.verifyKernelFor(logitsStep, ctx);
    units.set(k.name, k);
    verifyFn = k.launches[0].fn;
  }
  const kernels = [...units.values()];
  const workspaceBytes = Math.max(256, ...kernels.map((k) => k.workspaceBytes?.(limits) ?? 0));

  const widx = new Map(plan.weights.map((w, i) => [w.name, i]));
  const bcol = new Map(plan.buffers.map((b) => [b.name, b.column]));
  const W = (name: string) => {
    const i = widx.get(name);
    if (i === undefined) throw new Error(`unknown weight '${name}'`);
    return `m->w[${i}]`;
  };
  const Wf = (name?: string) => (name ? `fw(m, ${widx.get(name)})` : 'nullptr');
  const B = (name?: string) => {
    if (name === undefined) return 'nullptr';
    const c = bcol.get(name);
    if (c === undefined) throw new Error(`unknown buffer '${name}'`);
    return `act_buf(m, ${c})`;
  };
  const num = (x: number) => (Number.isInteger(x) ? String(x) : `${x}f`);
  const flt = (x: number) => `${Number.isInteger(x) ? x.toFixed(1) : String(x)}f`;

  const calls = plan.steps.map((s, index) => {
    const fn = stepKernel[index];
    const kernel = units.get(fn)!;
    const launch = kernel.launches[0]?.fn ?? fn;
    const code = argsCode(s);
    const writes = bufferFields(s).writes.map((name) => ({ column: bcol.get(name)!, features: plan.buffers.find((b) => b.name === name)!.features }));
    return { index, kind: s.kind, fn: launch, code, summary: summary(s), writes };
  });

  function argsCode(s: Step): string {
    const L: string[] = [];
    const set = (type: string, fields: Record<string, string>) => {
      L.push(`    ${type} a{};`);
      for (const [k, v] of Object.entries(fields)) L.push(`    a.${k} = ${v};`);
    };
    switch (s.kind) {
      case 'embedding':
        set('LfcEmbeddingArgs', { indices: s.indices === 'tokens' ? 'b.tokens' : 'b.positions', table: W(s.table), out: B(s.out), T: 'T', V: num(s.vocab), H: num(s.hidden) });
        break;
      case 'add':
        set('LfcAddArgs', { a: B(s.a), b: B(s.b), out: B(s.out), n: `int64_t(T) * ${s.features}` });
        break;
      case 'add_norm':
        set('LfcAddNormArgs', {
          x: B(s.x), residual: B(s.residual), out: B(s.out), sum_out: B(s.sumOut), gamma: Wf(s.gamma), beta: Wf(s.beta),
          eps: flt(s.eps), T: 'T', H: num(s.hidden),
        });
        break;
      case 'linear': {
        const f: Record<string, string> = {
          x: B(s.x), w: W(s.weight), bias: Wf(s.bias), residual: B(s.residual), n_outs: String(s.outs.length), T: 'T', K: num(s.K), N: num(s.N),
          scale: s.format ? Wf(s.format.scale) : 'nullptr',
          zero: s.format?.zero ? `static_cast<const uint8_t*>(${W(s.format.zero)})` : 'nullptr',
          smooth: s.format?.smooth ? Wf(s.format.smooth) : 'nullptr',
          workspace: 'm->workspace',
        };
        if (s.outs.length > 4) throw new Error(`linear with ${s.outs.length} outputs (the ABI carries 4)`);
        s.outs.forEach((o, j) => { f[`outs[${j}]`] = `LfcLinearOut{${B(o.buffer)}, ${o.start}, ${o.end}}`; });
        set('LfcLinearArgs', f);
        break;
      }
      case 'gated_act':
        set('LfcGatedActArgs', { gate: B(s.gate), up: B(s.up), out: B(s.out), n: `int64_t(T) * ${s.features}` });
        break;
      case 'activation':
        set('LfcActivationArgs', { x: B(s.x), out: B(s.out), n: `int64_t(T) * ${s.features}` });
        break;
      case 'rope': {
        const cos = plan.weights[widx.get(s.cos)!];
        const rows = cos.shape.reduce((a, b) => a * b, 1) / (s.rotaryDim / 2);
        set('LfcRopeArgs', {
          x: B(s.x), out: B(s.out), positions: 'b.positions', cos: Wf(s.cos), sin: Wf(s.sin), T: 'T', heads: num(s.heads), head_dim: num(s.headDim),
          rotary_dim: num(s.rotaryDim), table_rows: num(rows),
        });
        break;
      }
      case 'cache_write':
        set('LfcCacheWriteArgs', {
          k: B(s.k), v: B(s.v), k_cache: `m->kc[${s.layer}]`, v_cache: `m->vc[${s.layer}]`, slot_mapping: 'b.slot_mapping', T: 'T',
          kv_heads: 'kKvHeads', head_dim: 'kHeadDim', block_size: 'kBlockSize', num_blocks: 'm->num_blocks',
        });
        break;
      case 'attention':
        set('LfcAttentionArgs', {
          q: B(s.q), out: B(s.out), k_cache: `m->kc[${s.layer}]`, v_cache: `m->vc[${s.layer}]`, batch: 'b', heads: num(s.heads), kv_heads: num(s.kvHeads),
          head_dim: num(s.headDim), block_size: 'kBlockSize', num_blocks: 'm->num_blocks', scale: flt(s.scale), workspace: 'm->workspace',
          workspace_bytes: 'm->workspace_bytes', num_sms: 'm->num_sms',
        });
        break;
      case 'logits':
        set('LfcLogitsArgs', { x: B(s.x), logit_indices: 'b.logit_indices', w: W(s.weight), bias: Wf(s.bias), out: 'm->logits', L: 'b.L', H: num(s.hidden), V: num(s.vocab) });
        break;
    }
    return L.join('\n');
  }

  const kinds = weightKinds(plan);
  const declarations = kernels.flatMap((k) => k.launches.map((l) => `cudaError_t ${l.fn}(const ${l.args}& a, cudaStream_t stream);  // ${k.family}`));
  const buckets = (opts.buckets ?? DEFAULT_BUCKETS).filter((b) => b <= maxSeqs && b <= maxTokens);
  const weightsBytes = plan.weights.reduce((m, w) => Math.max(m, w.offset + w.bytes), 0);
  const launcher = renderTemplate('launcher.cu.hbs', {
    modelName: plan.model.name, steps: plan.steps.length, numKernels: kernels.length, actName: dtype, actType: CUDA_TYPE[dtype],
    blockSize: plan.kv.blockSize, kvHeads: plan.kv.kvHeads, headDim: plan.kv.headDim, layers: plan.kv.layers, vocab: plan.model.vocab,
    maxPositions: plan.model.maxPositions, arenaFeatures: plan.arenaFeatures, weightsBytes, bucketList: buckets.join(', '),
    limitTokens: maxTokens, limitSeqs: maxSeqs, workspaceBytes, sampleFn, verifyFn,
    declarations, calls,
    weights: plan.weights.map((w) => ({ name: w.name.replace(/[\\"]/g, '_'), offset: w.offset, bytes: w.bytes, kind: kinds.get(w.name) ?? 0 })),
    numWeights: plan.weights.length,
  });
  return { kernels, stepKernel, launcher, limits, workspaceBytes };
}

function summary(s: Step): string {
  switch (s.kind) {
    case 'linear': return `linear ${s.x} [T, ${s.K}] x W[${s.N}, ${s.K}]^T -> ${s.outs.map((o) => o.buffer).join(', ')}${s.format ? ` (${s.format.kind})` : ''}`;
    case 'attention': return `attention layer ${s.layer}, ${s.heads}/${s.kvHeads} heads x ${s.headDim}`;
    case 'cache_write': return `cache_write layer ${s.layer}`;
    case 'add_norm': return `${s.norm} norm ${s.x}${s.residual ? ` + ${s.residual}` : ''} -> ${s.out}`;
    default: return `${s.kind} -> ${'out' in s ? s.out : ''}`;
  }
}

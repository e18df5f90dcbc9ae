/**
 * What a kernel family's renderer produces, and the types its typed configs share.
 *
 * A family lives in compiler/codegen/families/<family>.ts and templates/<family>.cu.hbs (plus
 * partials under templates/partials/). It exports a config type, a `configFor...` that picks the
 * config for a plan step (and a target), and `render(config)` → RenderedKernel. Logic stays in
 * TypeScript; the template holds the structure. The rendered source is one translation unit:
 *   - includes lfc_common.cuh (→ lfc_intrinsics.cuh) and lfc_abi.h (templates/common);
 *   - every __global__ kernel and device helper in an anonymous namespace (internal linkage, so
 *     two configs of one family link into one libmodel.so without clashes);
 *   - exactly the host launch functions named in `launches`, with external C++ linkage and the
 *     signature `cudaError_t NAME(const Lfc<Family>Args& a, cudaStream_t stream)` (lfc_abi.h).
 */
export type ActDType = 'float16' | 'bfloat16';

/** The C++ storage type of an activation dtype. */
export const CUDA_TYPE: Record<ActDType, string> = { float16: '__half', bfloat16: '__nv_bfloat16' };

/** GPU targets of `lfc compile --target`. */
export type GpuTarget = 'a100' | 'h100';
export const TARGET_ARCH: Record<GpuTarget, { sm: 'sm_80' | 'sm_90a'; sms: number; smemPerBlockOptin: number }> = {
  a100: { sm: 'sm_80', sms: 108, smemPerBlockOptin: 163 * 1024 },
  h100: { sm: 'sm_90a', sms: 132, smemPerBlockOptin: 227 * 1024 },
};

export interface RenderedKernel {
  /** Family, e.g. 'linear'. */
  family: string;
  /** Unique C++ identifier of this translation unit (also its file name: kernels/<name>.cu). */
  name: string;
  /** Host launch functions this unit defines, with the lfc_abi.h struct each takes. */
  launches: { fn: string; args: string }[];
  /** The CUDA source. */
  source: string;
  /** The config it was rendered from (reports, cache keys). */
  config: object;
  /** ptxas spills/stack are a build error unless the config allows them. */
  allowSpills?: boolean;
  /** Bytes of scratch the launch functions need in their Args.workspace (default none). */
  workspaceBytes?: (limits: WorkspaceLimits) => number;
  /**
   * Set when the config came from the tuning database (compiler/tune/db.ts) rather than the
   * family's chooser: 'measured' on the GPU by lfc tune, or 'model' (the analytic model's pick).
   */
  tuning?: { source: 'measured' | 'model'; gpu: string; entries: string[] };
}

/** A C++ identifier from arbitrary text (plan buffer names, config keys). */
export function cIdent(s: string): string {
  const id = s.replace(/[^A-Za-z0-9_]/g, '_');
  return /^[0-9]/.test(id) ? '_' + id : id;
}

/** What a family's `configFor…(step, ctx)` may look at besides the step. */
export interface CodegenContext {
  dtype: ActDType;
  /** Tuned for which GPU ('all': one config good on both). */
  target: GpuTarget | 'all';
  kv: { blockSize: number; kvHeads: number; headDim: number };
  /** Limits the launcher sizes its buffers for. */
  limits: WorkspaceLimits;
}

export interface WorkspaceLimits {
  /** Tokens one forward may carry (T). */
  maxTokens: number;
  /** Sequences one forward may carry (B). */
  maxSeqs: number;
  /** Longest context (positions) a sequence may reach. */
  maxContext: number;
  /** SMs of the device the workspace is sized for (upper bound over targets). */
  numSms: number;
}

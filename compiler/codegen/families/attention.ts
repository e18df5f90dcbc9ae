/**
 * attention family: paged attention over a ragged batch (prefill, chunked prefill, decode,
 * multi-token verification) in one launch function. Reference: runtime/kernels/paged-attention.ts
 * (`reference`, and `partial`/`combine` for the split-KV form).
 *
 * templates/attention.cu.hbs holds one FlashAttention-2 style tile kernel (mma.sync m16n8k16 with
 * fp32 accumulators, K/V gathered through the block table by cp.async into a `stages`-deep ring,
 * online softmax in exp2 units, the GQA group packed into the M dimension so the query heads of a
 * kv head share every K/V load), instantiated for
 *   - prefill (max_new_tokens > decode.maxNewTokens): the `prefill` tile;
 *   - decode: the `decode` tile, and when B·Hkv·rowTiles < num_sms·ctasPerSm, split-KV
 *     (flash-decoding): fp32 partials in a.workspace ([splits][T][heads][D] out, then
 *     [splits][T][heads] max, then sum; the reference's `partial` of each split's key range)
 *     plus a combine kernel.
 * The launch function (named by kernelName) picks the path from host scalars only, so a CUDA
 * graph may capture it. Head dim, dtype and tiles are compiled in; heads, kv heads (any GQA
 * ratio), block size and scale are run-time. Not supported: sliding window, logit softcap (the
 * reference has them; plan steps do not carry them).
 */
import type { Step } from '../../../runtime/plan.js';
import { CUDA_TYPE, TARGET_ARCH, type ActDType, type CodegenContext, type GpuTarget, type RenderedKernel, type WorkspaceLimits } from '../kernel.js';
import { renderTemplate } from '../render.js';

export type AttentionStep = Extract<Step, { kind: 'attention' }>;

export interface AttentionTile {
  /** Row warps per CTA; each owns 16·rowTilesPerWarp query rows. */
  warps: number;
  /**
   * KV warps per row warp (1, 2 or 4): a KV tile holds kvWarps·blockN keys, each KV warp takes
   * blockN of them with its own online-softmax state, merged through shared memory at the end.
   * The CTA has warps·kvWarps warps.
   */
  kvWarps: number;
  /** m16 row tiles per warp (1 or 2): 2 reads each K/V fragment from shared memory once for 32 rows. */
  rowTilesPerWarp: number;
  /** Keys per KV tile (multiple of 16). */
  blockN: number;
  /** K/V tiles in the cp.async ring (2 = double buffering; 3-4 keep more bytes in flight). */
  stages: number;
}

export interface DecodeTile extends AttentionTile {
  /** Batches whose max_new_tokens is at most this take the decode path. */
  maxNewTokens: number;
  /** Upper bound on KV splits (sizes the workspace). */
  maxSplits: number;
  /** A split gets at least this many keys (of max_context). */
  minKeysPerSplit: number;
  /** Split until B·Hkv·rowTiles·splits reaches num_sms·ctasPerSm. */
  ctasPerSm: number;
}

export interface AttentionConfig {
  dtype: ActDType;
  headDim: number;
  /** Query / kv heads of the step: only for workspace sizing (the kernel takes them at run time). */
  heads: number;
  kvHeads: number;
  /** Cache block size the plan uses (the kernel reads a.block_size at run time). */
  blockSize: number;
  target: GpuTarget | 'all';
  prefill: AttentionTile;
  decode: DecodeTile;
}

const SUPPORTED_HEAD_DIMS = [32, 64, 128, 256];

/** Shared memory of one tile CTA (Q tile + `stages` K and V tiles, rows padded by 8 elements). */
export function tileSmemBytes(c: Pick<AttentionConfig, 'headDim' | 'dtype'>, t: AttentionTile): number {
  const rows = t.warps * t.rowTilesPerWarp * 16;
  const ring = (rows + 2 * t.stages * t.kvWarps * t.blockN) * (c.headDim + 8) * 2;
  const merge = t.kvWarps > 1 ? t.kvWarps * rows * (c.headDim + 2) * 4 : 0;
  return Math.max(ring, merge);
}

/**
 * Tiles from head dim, GQA ratio and target. Prefill, double buffered, 4 warps × 2 m16 row tiles
 * = 128 rows × 32 keys (hdim 256: 64 rows): ptxas gives 124-133 registers at hdim 32, 168-175 at
 * 64, 247-248 at 128 without spills, i.e. 2 CTAs (8 warps) per SM, 70 KB of shared memory at
 * hdim 128 (64 × 64 tiles would take 87 KB, one CTA per A100 SM; 128 × 64 spills). Decode (memory bound: warps per SM and bytes in flight): one warp of 16
 * rows (2 warps when GQA group × maxNewTokens exceeds 16), 32-key tiles (16 for hdim ≥ 128) in a
 * 3-deep ring (2 for hdim 256), about 16-30 KB of shared memory per CTA so 5-7+ CTAs share an SM;
 * split-KV up to 4 CTAs per SM with ≥ 256 keys per split (vLLM v2 uses 512-token partitions), at
 * most 16 splits. The target does not change the choice yet: nothing here was timed on a GPU.
 */
export function configForAttention(step: AttentionStep, ctx: CodegenContext): AttentionConfig {
  const D = step.headDim;
  const group = step.heads / step.kvHeads;
  const maxNewTokens = 4;
  return {
    dtype: ctx.dtype,
    headDim: D,
    heads: step.heads,
    kvHeads: step.kvHeads,
    blockSize: ctx.kv.blockSize,
    target: ctx.target,
    prefill: { warps: 4, rowTilesPerWarp: D <= 128 ? 2 : 1, kvWarps: 1, blockN: 32, stages: 2 },
    decode: {
      warps: group * maxNewTokens > 16 ? 2 : 1,
      rowTilesPerWarp: 1,
      kvWarps: 1,
      blockN: D <= 64 ? 32 : 16,
      stages: D <= 128 ? 3 : 2,
      maxNewTokens,
      maxSplits: 16,
      minKeysPerSplit: 256,
      ctasPerSm: 4,
    },
  };
}

export function kernelName(c: AttentionConfig): string {
  const dt = c.dtype === 'bfloat16' ? 'bf16' : 'f16';
  const d = c.decode;
  const p = c.prefill;
  const tile = (t: AttentionTile) => `${t.warps}x${t.rowTilesPerWarp}x${t.kvWarps}x${t.blockN}x${t.stages}`;
  return `lfc_attention_${dt}_d${c.headDim}_p${tile(p)}_dec${tile(d)}_n${d.maxNewTokens}_s${d.maxSplits}_k${d.minKeysPerSplit}_c${d.ctasPerSm}`;
}

/**
 * fp32 partials of the split path: maxSplits × tokens × heads × (headDim + 2) × 4 bytes, where
 * tokens = min(maxTokens, maxSeqs · decode.maxNewTokens) (the split path only runs on batches of
 * at most decode.maxNewTokens new tokens per sequence).
 */
export function workspaceBytes(c: AttentionConfig, limits: WorkspaceLimits): number {
  const tokens = Math.min(limits.maxTokens, limits.maxSeqs * c.decode.maxNewTokens);
  return c.decode.maxSplits * tokens * c.heads * (c.headDim + 2) * 4;
}

function checkConfig(c: AttentionConfig): void {
  const fail = (m: string): never => { throw new Error(`attention config ${JSON.stringify(c)}: ${m}`); };
  if (!SUPPORTED_HEAD_DIMS.includes(c.headDim)) fail(`head dim ${c.headDim} not in ${SUPPORTED_HEAD_DIMS.join(', ')}`);
  if (!(c.heads >= 1 && c.kvHeads >= 1 && c.heads % c.kvHeads === 0)) fail('heads must be a multiple of kvHeads');
  for (const [what, t] of [['prefill', c.prefill], ['decode', c.decode]] as const) {
    if (!(Number.isInteger(t.warps) && t.warps >= 1 && t.warps <= 8)) fail(`${what}.warps must be 1..8`);
    if (!(Number.isInteger(t.blockN) && t.blockN >= 16 && t.blockN <= 128 && t.blockN % 16 === 0)) fail(`${what}.blockN must be 16..128, a multiple of 16`);
    if (!(Number.isInteger(t.stages) && t.stages >= 2 && t.stages <= 4)) fail(`${what}.stages must be 2..4`);
    if (!(t.rowTilesPerWarp === 1 || t.rowTilesPerWarp === 2)) fail(`${what}.rowTilesPerWarp must be 1 or 2`);
    if (!(t.kvWarps === 1 || t.kvWarps === 2 || t.kvWarps === 4)) fail(`${what}.kvWarps must be 1, 2 or 4`);
    if (t.warps * t.kvWarps > 8) fail(`${what}: warps × kvWarps must be at most 8`);
    const limit = c.target === 'all' ? Math.min(TARGET_ARCH.a100.smemPerBlockOptin, TARGET_ARCH.h100.smemPerBlockOptin) : TARGET_ARCH[c.target].smemPerBlockOptin;
    if (tileSmemBytes(c, t) > limit) fail(`${what} tile needs ${tileSmemBytes(c, t)} bytes of shared memory, ${c.target} allows ${limit}`);
  }
  const d = c.decode;
  if (!(d.maxNewTokens >= 1 && d.maxSplits >= 1 && d.minKeysPerSplit >= 1 && d.ctasPerSm >= 1)) fail('decode limits must be ≥ 1');
}

export function render(c: AttentionConfig): RenderedKernel {
  checkConfig(c);
  const name = kernelName(c);
  const source = renderTemplate('attention.cu.hbs', {
    // Only what shapes the code goes into the source, so one name always means one source.
    template: 'attention.cu.hbs', name, actType: CUDA_TYPE[c.dtype],
    configJson: JSON.stringify({ dtype: c.dtype, headDim: c.headDim, prefill: c.prefill, decode: c.decode }),
    isBf16: c.dtype === 'bfloat16', headDim: c.headDim, prefill: c.prefill, decode: c.decode,
  });
  return {
    family: 'attention', name, launches: [{ fn: name, args: 'LfcAttentionArgs' }], source, config: c,
    workspaceBytes: (limits) => workspaceBytes(c, limits),
  };
}

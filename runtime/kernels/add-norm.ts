/**
 * Add+norm family: the optional residual add that closes a block, fused with the norm that opens
 * the next one (pre-norm decoders: LLaMA's RMSNorm, GPT-2's LayerNorm).
 *
 * Legend: T tokens (rows), H hidden size (row width).
 *
 *   sum = x + residual          stored (rounded to dtype): the new residual stream
 *   y   = norm(sum)             from the STORED sum, as Hugging Face and vLLM's fused kernel do
 *     rms:   y = sum / √(mean(sum²) + eps) · gamma
 *     layer: y = (sum − mean(sum)) / √(var(sum) + eps) · gamma + beta   (biased variance)
 *
 * Layouts: x, residual, sum, y [T, H]; gamma, beta [H]. Statistics run in fp64 (two passes for
 * the variance), y is rounded once. Hugging Face's LlamaRMSNorm in fp16 rounds the normalised
 * row before multiplying by gamma; that second rounding is within an ulp and not part of the spec.
 * Gemma's (1 + gamma) is folded into gamma by the compiler.
 */
import { checkDims, checkLength, storeRounder, type StorageDType } from './common.js';

export type NormKind = 'rms' | 'layer';

export interface Args {
  x: Float32Array;
  /** When given, the norm is of x + residual, and that sum is returned as the new residual. */
  residual?: Float32Array;
  gamma: Float32Array;
  /** LayerNorm only (zero when absent). */
  beta?: Float32Array;
  kind: NormKind;
  eps: number;
  T: number;
  H: number;
  dtype: StorageDType;
}

export interface Result {
  /** norm(sum) [T, H]. */
  y: Float32Array;
  /** sum = x + residual [T, H], only when a residual was given. */
  residual?: Float32Array;
}

export function reference(a: Args): Result {
  const { T, H, kind, eps } = a;
  checkDims('addNorm', { T }, 0);
  checkDims('addNorm', { H });
  checkLength('addNorm', 'x', a.x, { T, H });
  if (a.residual) checkLength('addNorm', 'residual', a.residual, { T, H });
  checkLength('addNorm', 'gamma', a.gamma, { H });
  if (a.beta) {
    if (kind !== 'layer') throw new Error(`addNorm: beta is only for kind 'layer', not '${kind}'`);
    checkLength('addNorm', 'beta', a.beta, { H });
  }
  if (kind !== 'rms' && kind !== 'layer') throw new Error(`addNorm: unknown kind '${kind as string}'`);
  if (!(eps >= 0)) throw new Error(`addNorm: eps must be ≥ 0, got ${eps}`);
  const r = storeRounder(a.dtype);
  const { gamma, beta } = a;

  // The stored sum (or x itself): what the norm reads.
  let sum = a.x;
  if (a.residual) {
    const x = a.x, res = a.residual;
    sum = new Float32Array(T * H);
    for (let i = 0; i < sum.length; i++) {
      const v = x[i] + res[i];
      sum[i] = r ? r(v) : v;
    }
  }

  const y = new Float32Array(T * H);
  for (let t = 0; t < T; t++) {
    const o = t * H;
    let mean = 0;
    if (kind === 'layer') {
      for (let h = 0; h < H; h++) mean += sum[o + h];
      mean /= H;
    }
    let sq = 0;
    for (let h = 0; h < H; h++) { const d = sum[o + h] - mean; sq += d * d; }
    const inv = 1 / Math.sqrt(sq / H + eps);
    for (let h = 0; h < H; h++) {
      let v = (sum[o + h] - mean) * inv * gamma[h];
      if (beta) v += beta[h];
      y[o + h] = r ? r(v) : v;
    }
  }
  return a.residual ? { y, residual: sum } : { y };
}

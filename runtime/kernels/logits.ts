/**
 * Logits family: the LM head, run only on the rows that need logits (the last token of each
 * prompt, every draft position of a verification), then greedy `argmax`.
 *
 * Legend: T tokens, H hidden size, V vocabulary size, L rows that need logits.
 *
 *   logits[l, :] = hidden[logitIndices[l], :] · Wᵀ (+ bias),   then cap · tanh(logits / cap)
 *
 * Layouts: hidden [T, H] (final hidden states, already normed); W [V, H] (torch Linear layout,
 * also the tied embedding table); bias [V]; logits [L, V]. Logits are fp32 whatever the
 * activation dtype: sampling needs them unrounded, so the only rounding is fp32's own.
 */
import { checkDims, checkLength } from './common.js';
import { gemmNT } from './linear.js';

export interface Args {
  hidden: Float32Array;
  logitIndices: Int32Array;
  weight: Float32Array;
  bias?: Float32Array;
  T: number;
  H: number;
  V: number;
  /** Final logit softcap (Gemma 2): x → cap · tanh(x / cap). */
  softcap?: number;
}

/** logits[L, V] in fp32. */
export function reference(a: Args): Float32Array {
  const { T, H, V, logitIndices } = a;
  const L = logitIndices.length;
  checkDims('logits', { T }, 0);
  checkDims('logits', { H, V });
  checkLength('logits', 'hidden', a.hidden, { T, H });
  checkLength('logits', 'weight', a.weight, { V, H });
  if (a.bias) checkLength('logits', 'bias', a.bias, { V });
  const cap = a.softcap;
  if (cap !== undefined && !(cap > 0)) throw new Error(`logits: softcap must be > 0, got ${cap}`);
  const rows = new Float32Array(L * H);
  for (let l = 0; l < L; l++) {
    const t = logitIndices[l];
    if (!(t >= 0 && t < T)) throw new Error(`logits: logitIndices[${l}] is ${t}, outside 0..${T - 1}`);
    rows.set(a.hidden.subarray(t * H, (t + 1) * H), l * H);
  }
  const acc = gemmNT(rows, a.weight, 0, L, V, H);
  const bias = a.bias;
  const out = new Float32Array(L * V);
  for (let i = 0; i < out.length; i++) {
    let v = acc[i];
    if (bias) v += bias[i % V];
    if (cap !== undefined) v = cap * Math.tanh(v / cap);
    out[i] = v;
  }
  return out;
}

/**
 * Index of the largest logit of each row [L, V] → [L]; the lowest index wins ties, NaN never
 * wins (a row of NaNs gives 0).
 */
export function argmax(logits: Float32Array, V: number): Int32Array {
  checkDims('argmax', { V });
  if (logits.length % V !== 0) throw new Error(`argmax: logits has ${logits.length} elements, not a multiple of V=${V}`);
  const L = logits.length / V;
  const out = new Int32Array(L);
  for (let l = 0; l < L; l++) {
    let best = 0, bv = -Infinity;
    for (let v = 0; v < V; v++) {
      const x = logits[l * V + v];
      if (x > bv) { bv = x; best = v; }
    }
    out[l] = best;
  }
  return out;
}

/**
 * Embedding family: the first step of every forward, turning token ids into hidden rows.
 *
 * Legend: T tokens, V vocabulary size, H hidden size, P rows of the learned position table.
 *
 *   out[t, :] = (table[tokens[t], :] + positionTable[positions[t], :]) · scale
 *
 * Layouts (row-major): table [V, H]; positionTable [P, H] (GPT-2's wpe; absent for RoPE models);
 * out [T, H]. The sum and product run in fp64 and the result is rounded once to `dtype`.
 * `scale` is 1 unless given; Gemma multiplies by √H rounded to the activation dtype, so the
 * caller passes that rounded value (its graph holds it as a constant of that dtype).
 */
import { checkDims, checkLength, storeRounder, type StorageDType } from './common.js';

export interface Args {
  tokens: Int32Array;
  table: Float32Array;
  V: number;
  H: number;
  /** Learned absolute positions (GPT-2): `positions` [T] index `positionTable` [P, H]. */
  positions?: Int32Array;
  positionTable?: Float32Array;
  P?: number;
  scale?: number;
  dtype: StorageDType;
}

/** out[T, H]; throws naming the token index and id of an id outside 0..V-1. */
export function reference(a: Args): Float32Array {
  const { V, H, tokens, table } = a;
  const T = tokens.length;
  checkDims('embedding', { V, H });
  checkLength('embedding', 'table', table, { V, H });
  const pos = a.positionTable;
  if ((pos === undefined) !== (a.positions === undefined) || (pos === undefined) !== (a.P === undefined)) {
    throw new Error('embedding: positionTable, P and positions come together (learned positions) or not at all');
  }
  const P = a.P ?? 0;
  if (pos) {
    checkDims('embedding', { P });
    checkLength('embedding', 'positionTable', pos, { P, H });
    checkLength('embedding', 'positions', a.positions!, { T });
  }
  const scale = a.scale ?? 1;
  const r = storeRounder(a.dtype);
  const out = new Float32Array(T * H);
  for (let t = 0; t < T; t++) {
    const id = tokens[t];
    if (!(id >= 0 && id < V)) throw new Error(`embedding: token ${t} has id ${id}, outside the vocabulary 0..${V - 1}`);
    const src = id * H, dst = t * H;
    let p = -1;
    if (pos) {
      const at = a.positions![t];
      if (!(at >= 0 && at < P)) throw new Error(`embedding: token ${t} has position ${at}, outside the position table 0..${P - 1}`);
      p = at * H;
    }
    for (let h = 0; h < H; h++) {
      let v = table[src + h];
      if (p >= 0) v += pos![p + h];
      v *= scale;
      out[dst + h] = r ? r(v) : v;
    }
  }
  return out;
}

/**
 * Attention and rotary ops that exporters emit already fused (onnxruntime-genai, Optimum with ORT
 * fusions, torch.onnx at opset 23), so that graphs using them import, infer and run in the
 * interpreter; fuse-attention-forms.ts rewrites them into lfc.Rope / lfc.Attention. Semantics were
 * checked against onnxruntime-node 1.30's CPU kernels (test/compiler/passes/fused-attention-forms.test.ts).
 *
 *   com.microsoft RotaryEmbedding (input, position_ids, cos_cache, sin_cache)
 *                   {interleaved, rotary_embedding_dim, num_heads, scale}
 *       input [B, S, N·D] or [B, N, S, D]; position_ids [B, S] (or [1]: an offset, pos = p₀ + s);
 *       caches [maxPos, R/2]. Pairs (i, i+R/2) ('half') or (2i, 2i+1) (interleaved) of the first
 *       R dims rotate by cos/sin[pos, i]; dims R..D−1 pass through.
 *   ai.onnx RotaryEmbedding-23 (X, cos_cache, sin_cache, position_ids?) — the same rotation; without
 *       position_ids the caches are already [B, S, R/2].
 *   com.microsoft GroupQueryAttention (query, key, value, past_key?, past_value?, seqlens_k,
 *       total_sequence_length, cos_cache?, sin_cache?, position_ids?)
 *       {num_heads, kv_num_heads, scale, do_rotary, rotary_interleaved, local_window_size, softcap}
 *       query [B, S, Hq·D] (or packed Q|K|V when key is omitted), key/value [B, S, Hkv·D],
 *       past/present BNSH. Sequence b holds seqlens_k[b]+1 tokens after this step; its new tokens
 *       start at past_b = seqlens_k[b]+1−S (0 on the first prompt, S = total_sequence_length), sit at
 *       positions past_b + s (rotary), attend causally to keys j ≤ past_b + s (and, with a window
 *       w > 0, j > past_b + s − w), softcap c > 0 gives c·tanh(score/c). present = past[..past_b] then
 *       the new K/V, length max(past, total_sequence_length).
 *   com.microsoft MultiHeadAttention (query, key, value, bias?, key_padding_mask?, attention_bias?,
 *       past_key?, past_value?) {num_heads, scale, unidirectional, mask_filter_value}
 *       query [B, S, N·D], key/value [B, L, N·D] (or BNSH without past), bias [3·N·D] added to q|k|v,
 *       key_padding_mask [B, T] (0: add mask_filter_value) or [B] (valid key count),
 *       attention_bias [B|1, N|1, S, T] added; present = Concat(past, new); unidirectional: query i
 *       sees keys j ≤ P + i (P the past length, 0 without past). Checked with key as long as query;
 *       with a longer key and no past onnxruntime 1.30 masks irregularly (its last query sees all
 *       keys), which no decoder emits and the rewrite refuses.
 *   ai.onnx Attention-23 (Q, K, V, attn_mask?, past_key?, past_value?)
 *       {is_causal, q_num_heads, kv_num_heads, scale, softcap} → (Y, present_key?, present_value?)
 *       Q [B, Hq, S, D] or [B, S, Hq·D]; attn_mask bool (true: attend) or float (added), broadcast
 *       to [B, Hq, S, T]; is_causal: query i sees keys j ≤ P + i, P the past_key length (0 without
 *       past: the diagonal starts top-left, as the spec's tril does, even when K is longer than Q;
 *       onnxruntime 1.30 offsets it by the past); softcap caps the scaled scores before the mask.
 *
 * Masked scores get the fp32 minimum added (lfc.Attention's convention), so a softmax over a row
 * with some visible key equals onnxruntime's, which skips or −∞-masks them.
 */
import { Tensor } from '../../runtime/tensor.js';
import { dimAdd, dimEq, dimStr, shapeStr, type Dim } from '../ir/dim.js';
import { expectFloat } from './math-common.js';
import type { InferContext, OpContext, OpDef, OutputInfo } from './registry.js';
import { broadcastIndex, req } from './util.js';

const MS = 'com.microsoft';
const F32_MIN = -3.4028234663852886e38;
const f = Math.fround;

// ---- shared kernels -----------------------------------------------------------------------------

/** [B, S, N·D] → [B, N, S, D] (a copy). */
function bsdToBnsh(x: Tensor, N: number): Tensor {
  const [B, S, X] = x.shape;
  const D = X / N;
  const out = Tensor.zeros(x.dtype, [B, N, S, D]);
  for (let b = 0; b < B; b++) for (let s = 0; s < S; s++) for (let n = 0; n < N; n++) {
    const src = ((b * S + s) * N + n) * D, dst = ((b * N + n) * S + s) * D;
    for (let d = 0; d < D; d++) out.data[dst + d] = x.data[src + d];
  }
  return out;
}

/** [B, N, S, D] → [B, S, N·D]. */
function bnshToBsd(x: Tensor): Tensor {
  const [B, N, S, D] = x.shape;
  const out = Tensor.zeros(x.dtype, [B, S, N * D]);
  for (let b = 0; b < B; b++) for (let s = 0; s < S; s++) for (let n = 0; n < N; n++) {
    const dst = ((b * S + s) * N + n) * D, src = ((b * N + n) * S + s) * D;
    for (let d = 0; d < D; d++) out.data[dst + d] = x.data[src + d];
  }
  return out;
}

/** A slice [from, from+len) of the last axis of [B, S, X]. */
function lastAxisSlice(x: Tensor, from: number, len: number): Tensor {
  const [B, S, X] = x.shape;
  const out = Tensor.zeros(x.dtype, [B, S, len]);
  for (let r = 0; r < B * S; r++) for (let i = 0; i < len; i++) out.data[r * len + i] = x.data[r * X + from + i];
  return out;
}

/**
 * Rotate the first R dims of every head vector of x [B, N, S, D]; `cs(b, s)` gives the row offset
 * of (b, s)'s cos/sin (R/2 values each) in `cos` / `sin`.
 */
function rotate(x: Tensor, R: number, interleaved: boolean, cos: ArrayLike<number>, sin: ArrayLike<number>, cs: (b: number, s: number) => number): Tensor {
  const [B, N, S, D] = x.shape;
  const half = R / 2;
  const out = Tensor.from(x.dtype, x.shape, x.data as ArrayLike<number>);
  for (let b = 0; b < B; b++) for (let s = 0; s < S; s++) {
    const c = cs(b, s);
    for (let n = 0; n < N; n++) {
      const o = ((b * N + n) * S + s) * D;
      for (let i = 0; i < half; i++) {
        const lo = o + (interleaved ? 2 * i : i), hi = interleaved ? lo + 1 : lo + half;
        const u = x.data[lo], v = x.data[hi], co = cos[c + i], si = sin[c + i];
        out.data[lo] = f(f(u * co) - f(v * si));
        out.data[hi] = f(f(v * co) + f(u * si));
      }
    }
  }
  return out;
}

interface SdpaOptions {
  scale: number;
  softcap?: number;
  /** Whether query i of batch b may see key j (default: all). */
  visible?: (b: number, i: number, j: number) => boolean;
  /** Additive bias for (b, query head, i, j). */
  bias?: (b: number, h: number, i: number, j: number) => number;
}

/** Softmax attention of q [B, Hq, S, D] over k [B, Hkv, T, D], v [B, Hkv, T, Dv] → [B, Hq, S, Dv]. */
function sdpa(q: Tensor, k: Tensor, v: Tensor, o: SdpaOptions): Tensor {
  const [B, Hq, S, D] = q.shape;
  const [, Hkv, T] = k.shape;
  const Dv = v.shape[3];
  const out = Tensor.zeros(q.dtype, [B, Hq, S, Dv]);
  const scores = new Float64Array(T);
  const acc = new Float64Array(Dv);
  for (let b = 0; b < B; b++) for (let h = 0; h < Hq; h++) {
    const kBase = (b * Hkv + Math.floor((h * Hkv) / Hq)) * T;
    for (let i = 0; i < S; i++) {
      const qo = ((b * Hq + h) * S + i) * D;
      let max = -Infinity;
      for (let j = 0; j < T; j++) {
        let dot = 0;
        const ko = (kBase + j) * D;
        for (let e = 0; e < D; e++) dot += q.data[qo + e] * k.data[ko + e];
        let s = f(f(dot) * o.scale);
        if (o.softcap) s = f(o.softcap * Math.tanh(s / o.softcap));
        if (o.bias) s = f(s + o.bias(b, h, i, j));
        if (o.visible && !o.visible(b, i, j)) s = f(s + F32_MIN);
        scores[j] = s;
        if (s > max) max = s;
      }
      let sum = 0;
      for (let j = 0; j < T; j++) { scores[j] = Math.exp(scores[j] - max); sum += scores[j]; }
      acc.fill(0);
      for (let j = 0; j < T; j++) {
        const p = scores[j] / sum, vo = (kBase + j) * Dv;
        for (let e = 0; e < Dv; e++) acc[e] += p * v.data[vo + e];
      }
      out.data.set(acc, ((b * Hq + h) * S + i) * Dv);
    }
  }
  return out;
}

/** Concat(past, x) on the sequence axis (2) of BNSH tensors. */
function concatSeq(past: Tensor | undefined, x: Tensor): Tensor {
  if (!past) return x;
  const [B, N, P, D] = past.shape, S = x.shape[2];
  const out = Tensor.zeros(x.dtype, [B, N, P + S, D]);
  for (let bn = 0; bn < B * N; bn++) {
    out.data.set(past.data.subarray(bn * P * D, (bn + 1) * P * D) as never, bn * (P + S) * D);
    out.data.set(x.data.subarray(bn * S * D, (bn + 1) * S * D) as never, (bn * (P + S) + P) * D);
  }
  return out;
}

const intAttr = (ctx: OpContext, name: string, dflt: number): number => ctx.attrs.int(name, dflt);

function needRank(ctx: InferContext, i: number, what: string, ranks: number[]): Dim[] {
  const t = ctx.input(i);
  if (!ranks.includes(t.shape.length)) ctx.fail(`${what} must have rank ${ranks.join(' or ')}, got ${shapeStr(t.shape)}`);
  return [...t.shape];
}

/** Head count and size of a [B, S, N·D] tensor or a [B, N, S, D] one. */
function headsOf(ctx: InferContext, shape: readonly Dim[], n: number | undefined, what: string): { N: number; D: number } {
  if (shape.length === 4) {
    const [, N, , D] = shape;
    if (typeof N !== 'number' || typeof D !== 'number') ctx.fail(`${what} ${shapeStr(shape)} needs constant heads and head size`);
    return { N, D };
  }
  const X = shape[2];
  if (typeof X !== 'number' || !n || X % n !== 0) ctx.fail(`${what} ${shapeStr(shape)}: hidden ${dimStr(X)} is not a multiple of ${n ?? '(missing num_heads)'} heads`);
  return { N: n, D: X / n };
}

// ---- rotary -------------------------------------------------------------------------------------

function rotaryOp(name: string, domain: string, since: number, order: { pos: number; cos: number; sin: number }): OpDef {
  return {
    name, domain, since: [since],
    infer(ctx) {
      const x = ctx.input(0);
      expectFloat(ctx, x, 'input');
      const xs = needRank(ctx, 0, 'input', [3, 4]);
      if (ctx.attrs.int('is_packed_batching', 0)) ctx.fail('RotaryEmbedding with is_packed_batching is not supported by lfc');
      const cos = ctx.input(order.cos);
      const hasPos = !!ctx.inputs[order.pos];
      if (cos.shape.length !== (hasPos ? 2 : 3)) ctx.fail(`cos_cache must be ${hasPos ? '[max_position, rotary_dim/2]' : '[batch, sequence, rotary_dim/2] without position_ids'}, got ${shapeStr(cos.shape)}`);
      if (!dimEq(cos.shape.at(-1)!, ctx.input(order.sin).shape.at(-1)!)) ctx.fail('cos_cache and sin_cache differ in size');
      const half = cos.shape.at(-1)!;
      const R = ctx.attrs.int('rotary_embedding_dim', 0) || (typeof half === 'number' ? 2 * half : 0);
      if (typeof half === 'number' && R !== 2 * half) ctx.fail(`rotary_embedding_dim ${R} needs cos/sin caches with ${R / 2} entries per position, got ${half}`);
      if (xs.length === 3 && ctx.attrs.int('rotary_embedding_dim', 0) && !ctx.attrs.int('num_heads', 0)) ctx.fail('a 3-D input with rotary_embedding_dim needs num_heads');
      if (xs.length === 4 && typeof xs[3] === 'number' && R > xs[3]) ctx.fail(`rotary dim ${R} exceeds head size ${xs[3]}`);
      return [{ dtype: x.dtype, shape: xs }];
    },
    evaluate(ctx, inputs) {
      const x = req(ctx, inputs, 0, 'input'), cos = req(ctx, inputs, order.cos, 'cos_cache'), sin = req(ctx, inputs, order.sin, 'sin_cache');
      const pos = inputs[order.pos];
      const half = cos.shape.at(-1)!;
      const R = ctx.attrs.int('rotary_embedding_dim', 0) || 2 * half;
      // (onnxruntime reads the caches with a row stride of R/2: a wider cache is not a prefix of it)
      if (R / 2 !== half) ctx.fail(`rotary_embedding_dim ${R} needs ${R / 2} cos/sin entries per position, the cache has ${half}`);
      const heads = x.rank === 4 ? x.shape[1] : ctx.attrs.int('num_heads', 0) || x.shape[2] / R;
      if (!Number.isInteger(heads) || heads <= 0) ctx.fail(`cannot split hidden ${x.shape[2]} into heads (num_heads missing)`);
      const x4 = x.rank === 4 ? x : bsdToBnsh(x, heads);
      const [B, , S] = x4.shape;
      const interleaved = ctx.attrs.int('interleaved', 0) !== 0;
      let cs: (b: number, s: number) => number;
      if (pos) {
        const P = cos.shape[0];
        const at = pos.size === 1 && !(pos.rank === 2 && B * S === 1) ? (_b: number, s: number) => pos.data[0] + s : (b: number, s: number) => pos.data[(pos.shape[0] === 1 ? 0 : b) * S + s];
        cs = (b, s) => {
          const p = at(b, s);
          if (!(p >= 0 && p < P)) ctx.fail(`position ${p} is outside the cos/sin cache (0..${P - 1})`);
          return p * half;
        };
      } else {
        cs = (b, s) => ((cos.shape[0] === 1 ? 0 : b) * S + s) * half;
      }
      const y = rotate(x4, R, interleaved, cos.data as ArrayLike<number>, sin.data as ArrayLike<number>, cs);
      return [x.rank === 4 ? y : bnshToBsd(y)];
    },
  };
}

// ---- GroupQueryAttention ------------------------------------------------------------------------

const gqa: OpDef = {
  name: 'GroupQueryAttention', domain: MS, since: [1],
  infer(ctx) {
    const q = needRank(ctx, 0, 'query', [3]);
    expectFloat(ctx, ctx.input(0), 'query');
    const Hq = ctx.attrs.int('num_heads'), Hkv = ctx.attrs.int('kv_num_heads');
    if (Hq % Hkv !== 0) ctx.fail(`num_heads ${Hq} is not a multiple of kv_num_heads ${Hkv}`);
    for (const [i, what] of [[9, 'position_ids'], [10, 'attention_bias'], [11, 'head_sink']] as const) {
      if (ctx.inputs[i]) ctx.fail(`GroupQueryAttention with ${what} is not supported by lfc`);
    }
    if (ctx.attrs.int('smooth_softmax', 0)) ctx.fail('GroupQueryAttention with smooth_softmax is not supported by lfc');
    if (typeof q[2] !== 'number') ctx.fail(`query hidden size ${dimStr(q[2])} must be constant`);
    const X = q[2] as number;
    const packed = !ctx.inputs[1];
    const D = packed ? X / (Hq + 2 * Hkv) : X / Hq;
    if (!Number.isInteger(D)) ctx.fail(`query hidden ${X} does not split into ${Hq} heads${packed ? ` + 2×${Hkv} kv heads` : ''}`);
    if (!packed) {
      for (const i of [1, 2]) {
        const s = needRank(ctx, i, i === 1 ? 'key' : 'value', [3]);
        if (!dimEq(s[2], Hkv * D)) ctx.fail(`${i === 1 ? 'key' : 'value'} ${shapeStr(s)} is not [batch, sequence, ${Hkv}·${D}]`);
      }
    }
    let T: Dim = q[1];
    if (ctx.inputs[3]) {
      const p = needRank(ctx, 3, 'past_key', [4]);
      if (!dimEq(p[1], Hkv) || !dimEq(p[3], D)) ctx.fail(`past_key ${shapeStr(p)} is not [batch, ${Hkv}, past, ${D}]`);
      T = dimAdd(p[2], q[1]);
    }
    if (ctx.attrs.int('do_rotary', 0) && (!ctx.inputs[7] || !ctx.inputs[8])) ctx.fail('do_rotary needs cos_cache and sin_cache');
    const present: OutputInfo = { dtype: ctx.input(0).dtype, shape: [q[0], Hkv, T, D] };
    return [{ dtype: ctx.input(0).dtype, shape: [q[0], q[1], Hq * D] }, present, { ...present, shape: [...present.shape] }];
  },
  evaluate(ctx, inputs) {
    const query = req(ctx, inputs, 0, 'query');
    const Hq = ctx.attrs.int('num_heads'), Hkv = ctx.attrs.int('kv_num_heads');
    const [B, S, X] = query.shape;
    const packed = !inputs[1];
    const D = packed ? X / (Hq + 2 * Hkv) : X / Hq;
    let qx = query, kx = inputs[1], vx = inputs[2];
    if (packed) { qx = lastAxisSlice(query, 0, Hq * D); kx = lastAxisSlice(query, Hq * D, Hkv * D); vx = lastAxisSlice(query, (Hq + Hkv) * D, Hkv * D); }
    let q = bsdToBnsh(qx, Hq), k = bsdToBnsh(kx!, Hkv);
    const v = bsdToBnsh(vx!, Hkv);
    const pastK = inputs[3], pastV = inputs[4];
    const seqlens = req(ctx, inputs, 5, 'seqlens_k'), total = req(ctx, inputs, 6, 'total_sequence_length').data[0];
    const Pbuf = pastK ? pastK.shape[2] : 0;
    const first = S === total;
    const pastOf = Array.from({ length: B }, (_, b) => (first ? 0 : seqlens.data[b] + 1 - S));
    for (const p of pastOf) if (p < 0 || p > Pbuf) ctx.fail(`seqlens_k implies ${p} past tokens, past_key holds ${Pbuf}`);
    if (ctx.attrs.int('do_rotary', 0)) {
      const cos = req(ctx, inputs, 7, 'cos_cache'), sin = req(ctx, inputs, 8, 'sin_cache');
      const half = cos.shape[1], P = cos.shape[0];
      const interleaved = ctx.attrs.int('rotary_interleaved', 0) !== 0;
      const cs = (b: number, s: number): number => {
        const p = pastOf[b] + s;
        if (p >= P) ctx.fail(`position ${p} is outside the cos/sin cache (0..${P - 1})`);
        return p * half;
      };
      q = rotate(q, 2 * half, interleaved, cos.data as ArrayLike<number>, sin.data as ArrayLike<number>, cs);
      k = rotate(k, 2 * half, interleaved, cos.data as ArrayLike<number>, sin.data as ArrayLike<number>, cs);
    }
    const Tp = Math.max(Pbuf, total);
    const present = (past: Tensor | undefined, x: Tensor): Tensor => {
      const out = Tensor.zeros(x.dtype, [B, Hkv, Tp, D]);
      for (let b = 0; b < B; b++) for (let h = 0; h < Hkv; h++) {
        const bh = b * Hkv + h, pb = pastOf[b];
        if (past) out.data.set(past.data.subarray(bh * Pbuf * D, (bh * Pbuf + pb) * D) as never, bh * Tp * D);
        for (let s = 0; s < S && pb + s < Tp; s++) for (let d = 0; d < D; d++) out.data[(bh * Tp + pb + s) * D + d] = x.data[(bh * S + s) * D + d];
      }
      return out;
    };
    const pk = present(pastK, k), pv = present(pastV, v);
    const window = ctx.attrs.int('local_window_size', -1);
    const softcap = ctx.attrs.float('softcap', 0);
    const scale = ctx.attrs.float('scale', 0) || 1 / Math.sqrt(D);
    const out = sdpa(q, pk, pv, {
      scale, softcap: softcap > 0 ? softcap : undefined,
      visible: (b, i, j) => {
        const p = pastOf[b] + i;
        return j <= p && j <= seqlens.data[b] && (window <= 0 || j > p - window);
      },
    });
    return [bnshToBsd(out), pk, pv];
  },
};

// ---- MultiHeadAttention -------------------------------------------------------------------------

const mha: OpDef = {
  name: 'MultiHeadAttention', domain: MS, since: [1],
  infer(ctx) {
    const q = needRank(ctx, 0, 'query', [3]);
    expectFloat(ctx, ctx.input(0), 'query');
    const N = ctx.attrs.int('num_heads');
    const { D } = headsOf(ctx, q, N, 'query');
    if (!ctx.inputs[1] || !ctx.inputs[2]) ctx.fail('MultiHeadAttention with packed QKV (key omitted) is not supported by lfc');
    const k = needRank(ctx, 1, 'key', [3, 4]), v = needRank(ctx, 2, 'value', [3, 4]);
    const L = k.length === 4 ? k[2] : k[1];
    const Dv = headsOf(ctx, v, N, 'value').D;
    let T: Dim = L;
    if (ctx.inputs[6]) {
      if (k.length === 4) ctx.fail('past_key with a BNSH key is not supported');
      const p = needRank(ctx, 6, 'past_key', [4]);
      if (!dimEq(p[1], N) || !dimEq(p[3], D)) ctx.fail(`past_key ${shapeStr(p)} is not [batch, ${N}, past, ${D}]`);
      T = dimAdd(p[2], L);
    }
    // Masks span all T keys: tie their (often separately named) length to past + new.
    if (ctx.inputs[4]?.shape.length === 2) ctx.equate?.(ctx.inputs[4].shape[1], T);
    if (ctx.inputs[5]?.shape.length === 4) ctx.equate?.(ctx.inputs[5].shape[3], T);
    const dt = ctx.input(0).dtype;
    return [{ dtype: dt, shape: [q[0], q[1], N * Dv] }, { dtype: dt, shape: [q[0], N, T, D] }, { dtype: dt, shape: [q[0], N, T, Dv] }];
  },
  evaluate(ctx, inputs) {
    const query = req(ctx, inputs, 0, 'query');
    const N = ctx.attrs.int('num_heads');
    const [B, S, X] = query.shape;
    const D = X / N;
    let key = req(ctx, inputs, 1, 'key'), value = req(ctx, inputs, 2, 'value');
    const bias = inputs[3];
    let qx = query;
    const addBias = (t: Tensor, from: number): Tensor => {
      const w = t.shape[2];
      return Tensor.from(t.dtype, t.shape, Float64Array.from(t.data as ArrayLike<number>, (x, i) => f(x + bias!.data[from + (i % w)])));
    };
    if (bias) {
      if (key.rank !== 3) ctx.fail('bias with a BNSH key is not supported');
      qx = addBias(query, 0); key = addBias(key, X); value = addBias(value, X + key.shape[2]);
    }
    const q = bsdToBnsh(qx, N);
    const kNew = key.rank === 4 ? key : bsdToBnsh(key, N), vNew = value.rank === 4 ? value : bsdToBnsh(value, N);
    const k = concatSeq(inputs[6], kNew), v = concatSeq(inputs[7], vNew);
    const T = k.shape[2], P = inputs[6]?.shape[2] ?? 0;
    const kpm = inputs[4], ab = inputs[5];
    const filter = ctx.attrs.float('mask_filter_value', -10000);
    const causal = ctx.attrs.int('unidirectional', 0) !== 0;
    if (kpm && !(kpm.rank === 2 && kpm.shape[1] === T) && !(kpm.rank === 1 && kpm.shape[0] === B)) {
      ctx.fail(`key_padding_mask [${kpm.shape}] is neither [batch, ${T}] nor [batch]`);
    }
    if (ab && (ab.rank !== 4 || ab.shape[2] !== S || ab.shape[3] !== T)) ctx.fail(`attention_bias [${ab.shape}] is not [batch|1, heads|1, ${S}, ${T}]`);
    const abB = ab && ab.shape[0] !== 1 ? 1 : 0, abH = ab && ab.shape[1] !== 1 ? 1 : 0;
    const masked = (b: number, j: number): boolean => !!kpm && (kpm.rank === 2 ? kpm.data[b * T + j] === 0 : j >= kpm.data[b]);
    const out = sdpa(q, k, v, {
      scale: ctx.attrs.float('scale', 0) || 1 / Math.sqrt(D),
      visible: causal ? (_b, i, j) => j <= P + i : undefined,
      bias: kpm || ab ? (b, h, i, j) => (masked(b, j) ? filter : 0) + (ab ? ab.data[(((b * abB) * ab.shape[1] + h * abH) * S + i) * T + j] : 0) : undefined,
    });
    return [bnshToBsd(out), k, v];
  },
};

// ---- Attention-23 -------------------------------------------------------------------------------

const attention23: OpDef = {
  name: 'Attention', domain: '', since: [23],
  infer(ctx) {
    const q = needRank(ctx, 0, 'Q', [3, 4]), k = needRank(ctx, 1, 'K', [3, 4]), v = needRank(ctx, 2, 'V', [3, 4]);
    expectFloat(ctx, ctx.input(0), 'Q');
    if (ctx.node.outputs.length > 3) ctx.fail('Attention with qk_matmul_output is not supported by lfc');
    // (Attention-24 resolves here too: its nonpad_kv_seqlen input must not be dropped silently.)
    if (ctx.inputs[6]) ctx.fail('Attention with nonpad_kv_seqlen (opset 24) is not supported by lfc');
    const qh = headsOf(ctx, q, ctx.attrs.int('q_num_heads', 0), 'Q');
    const kh = headsOf(ctx, k, ctx.attrs.int('kv_num_heads', 0), 'K');
    const vh = headsOf(ctx, v, ctx.attrs.int('kv_num_heads', 0), 'V');
    if (qh.D !== kh.D) ctx.fail(`Q head size ${qh.D} differs from K's ${kh.D}`);
    if (qh.N % kh.N !== 0) ctx.fail(`${qh.N} query heads are not a multiple of ${kh.N} kv heads`);
    const S = q.length === 4 ? q[2] : q[1];
    let T: Dim = k.length === 4 ? k[2] : k[1];
    if (ctx.inputs[4]) {
      const p = needRank(ctx, 4, 'past_key', [4]);
      if (!dimEq(p[1], kh.N) || !dimEq(p[3], kh.D)) ctx.fail(`past_key ${shapeStr(p)} is not [batch, ${kh.N}, past, ${kh.D}]`);
      T = dimAdd(p[2], T);
    }
    const m = ctx.inputs[3];
    if (m && m.shape.length) ctx.equate?.(m.shape[m.shape.length - 1], T);
    const dt = ctx.input(0).dtype;
    const y: Dim[] = q.length === 4 ? [q[0], qh.N, S, vh.D] : [q[0], S, qh.N * vh.D];
    return [{ dtype: dt, shape: y }, { dtype: dt, shape: [q[0], kh.N, T, kh.D] }, { dtype: dt, shape: [q[0], kh.N, T, vh.D] }];
  },
  evaluate(ctx, inputs) {
    const Q = req(ctx, inputs, 0, 'Q'), K = req(ctx, inputs, 1, 'K'), V = req(ctx, inputs, 2, 'V');
    const q = Q.rank === 4 ? Q : bsdToBnsh(Q, ctx.attrs.int('q_num_heads'));
    const kNew = K.rank === 4 ? K : bsdToBnsh(K, ctx.attrs.int('kv_num_heads'));
    const vNew = V.rank === 4 ? V : bsdToBnsh(V, ctx.attrs.int('kv_num_heads'));
    const k = concatSeq(inputs[4], kNew), v = concatSeq(inputs[5], vNew);
    const [B, Hq, S, D] = q.shape, T = k.shape[2];
    const P = inputs[4]?.shape[2] ?? 0;
    const mask = inputs[3];
    let mi: Int32Array | undefined;
    if (mask) {
      if (mask.shape.at(-1) !== T) ctx.fail(`attn_mask [${mask.shape}] must end with the total sequence length ${T}`);
      mi = broadcastIndex(mask.shape, [B, Hq, S, T]);
    }
    const causal = ctx.attrs.int('is_causal', 0) !== 0;
    const softcap = ctx.attrs.float('softcap', 0);
    const isBool = mask?.dtype === 'bool';
    const out = sdpa(q, k, v, {
      scale: ctx.attrs.float('scale', 0) || 1 / Math.sqrt(D),
      softcap: softcap > 0 ? softcap : undefined,
      visible: causal ? (_b, i, j) => j <= P + i : undefined,
      bias: mask ? (b, h, i, j) => {
        const m = mask.data[mi![((b * Hq + h) * S + i) * T + j]];
        return isBool ? (m ? 0 : F32_MIN) : m;
      } : undefined,
    });
    return [Q.rank === 4 ? out : bnshToBsd(out), k, v];
  },
};

export const attentionFormOps: OpDef[] = [
  rotaryOp('RotaryEmbedding', MS, 1, { pos: 1, cos: 2, sin: 3 }),
  rotaryOp('RotaryEmbedding', '', 23, { pos: 3, cos: 1, sin: 2 }),
  gqa,
  mha,
  attention23,
];

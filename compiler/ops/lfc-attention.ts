/**
 * Graph-level attention ops of the lfc domain, produced by fuse-attention.ts. They compute
 * exactly what the subgraphs they replace computed (the reference interpreter runs them), in the
 * exporters' [batch, heads, seq, head_dim] layout; lowering to the ragged, paged form comes later.
 *
 *   lfc.Rope(x[b,H,s,D], cos[b,s,R], sin[b,s,R]) {style: 'half'}            → x rotated
 *       R ≤ D rotated dims (R = D here); 'half' is rotate_half (NeoX / HF LLaMA): pairs (i, i+R/2);
 *       'interleaved' (GPT-J): pairs (2i, 2i+1), cos/sin repeated per pair (cos[2i] = cos[2i+1])
 *   lfc.Attention(q[b,Hq,s,D], k[b,Hkv,T,D], v[b,Hkv,T,D], attention_mask[b,T]?) {scale}
 *       → out[b,Hq,s,D]; query i sits at position T−s+i and sees keys j ≤ T−s+i (causal) whose
 *       attention_mask is 1; GQA: query head h reads kv head ⌊h·Hkv/Hq⌋. Masked scores get the
 *       fp32 minimum added, as the exporters' masks do, so fully masked (padding) rows stay finite.
 */
import { Tensor } from '../../runtime/tensor.js';
import { dimEq, dimStr, dimSub, shapeStr } from '../ir/dim.js';
import type { OpDef } from './registry.js';
import { req } from './util.js';
import { attentionFormOps } from './attention-forms.js';

const F32_MIN = -3.4028234663852886e38;

const rope: OpDef = {
  name: 'Rope', domain: 'lfc', since: [1],
  infer(ctx) {
    const x = ctx.input(0), cos = ctx.input(1), sin = ctx.input(2);
    if (x.shape.length !== 4) ctx.fail(`x must be [batch, heads, seq, head_dim], got ${shapeStr(x.shape)}`);
    if (cos.shape.length !== 3 || !dimEq(cos.shape[2], sin.shape[2])) ctx.fail(`cos/sin must be [batch, seq, rotary_dim], got ${shapeStr(cos.shape)} and ${shapeStr(sin.shape)}`);
    return [{ dtype: x.dtype, shape: [...x.shape] }];
  },
  evaluate(ctx, inputs) {
    const x = req(ctx, inputs, 0, 'x'), cos = req(ctx, inputs, 1, 'cos'), sin = req(ctx, inputs, 2, 'sin');
    const [B, H, S, D] = x.shape;
    const R = cos.shape[2];
    const half = R / 2;
    const interleaved = ctx.attrs.string('style', 'half') === 'interleaved';
    const out = Tensor.zeros(x.dtype, x.shape);
    const cb = cos.shape[0] === 1 ? 0 : 1;
    for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let s = 0; s < S; s++) {
      const xo = ((b * H + h) * S + s) * D;
      const co = (b * cb * S + s) * R;
      for (let i = 0; i < R; i++) {
        const rot = interleaved ? (i % 2 === 0 ? -x.data[xo + i + 1] : x.data[xo + i - 1])
          : i < half ? -x.data[xo + i + half] : x.data[xo + i - half];
        out.data[xo + i] = Math.fround(Math.fround(x.data[xo + i] * cos.data[co + i]) + Math.fround(rot * sin.data[co + i]));
      }
      for (let i = R; i < D; i++) out.data[xo + i] = x.data[xo + i];
    }
    return [out];
  },
};

const attention: OpDef = {
  name: 'Attention', domain: 'lfc', since: [1],
  infer(ctx) {
    const q = ctx.input(0), k = ctx.input(1), v = ctx.input(2);
    for (const [n, t] of [['q', q], ['k', k], ['v', v]] as const) {
      if (t.shape.length !== 4) ctx.fail(`${n} must be [batch, heads, seq, head_dim], got ${shapeStr(t.shape)}`);
    }
    const [, hq, , d] = q.shape, [, hkv, tk, dk] = k.shape;
    if (!dimEq(d, dk)) ctx.fail(`q head_dim ${dimStr(d)} differs from k head_dim ${dimStr(dk)}`);
    if (typeof hq === 'number' && typeof hkv === 'number' && hq % hkv !== 0) ctx.fail(`${hq} query heads are not a multiple of ${hkv} kv heads`);
    if (!dimEq(tk, v.shape[2])) ctx.fail(`k has ${dimStr(tk)} positions, v ${dimStr(v.shape[2])}`);
    if (typeof dimSub(tk, q.shape[2]) === 'number' && (dimSub(tk, q.shape[2]) as number) < 0) ctx.fail('more queries than keys');
    return [{ dtype: q.dtype, shape: [q.shape[0], hq, q.shape[2], v.shape[3]] }];
  },
  evaluate(ctx, inputs) {
    const q = req(ctx, inputs, 0, 'q'), k = req(ctx, inputs, 1, 'k'), v = req(ctx, inputs, 2, 'v');
    const mask = inputs[3];
    const scale = ctx.attrs.float('scale');
    const [B, Hq, S, D] = q.shape;
    const [, Hkv, T] = k.shape;
    const Dv = v.shape[3];
    const past = T - S;
    const out = Tensor.zeros(q.dtype, [B, Hq, S, Dv]);
    const scores = new Float32Array(T);
    const acc = new Float64Array(Dv);
    for (let b = 0; b < B; b++) for (let h = 0; h < Hq; h++) {
      const kh = Math.floor((h * Hkv) / Hq);
      const kBase = (b * Hkv + kh) * T;
      for (let i = 0; i < S; i++) {
        const qo = ((b * Hq + h) * S + i) * D;
        let max = -Infinity;
        for (let j = 0; j < T; j++) {
          let dot = 0;
          const ko = (kBase + j) * D;
          for (let e = 0; e < D; e++) dot += q.data[qo + e] * k.data[ko + e];
          let s = Math.fround(Math.fround(dot) * scale);
          const masked = j > past + i || (mask !== undefined && mask.data[b * T + j] === 0);
          if (masked) s = Math.fround(s + F32_MIN);
          scores[j] = s;
          if (s > max) max = s;
        }
        let sum = 0;
        for (let j = 0; j < T; j++) { scores[j] = Math.exp(scores[j] - max); sum += scores[j]; }
        acc.fill(0);
        for (let j = 0; j < T; j++) {
          const p = scores[j] / sum;
          const vo = (kBase + j) * Dv;
          for (let e = 0; e < Dv; e++) acc[e] += p * v.data[vo + e];
        }
        const oo = ((b * Hq + h) * S + i) * Dv;
        for (let e = 0; e < Dv; e++) out.data[oo + e] = acc[e];
      }
    }
    return [out];
  },
};

export const lfcAttentionOps: OpDef[] = [rope, attention, ...attentionFormOps];

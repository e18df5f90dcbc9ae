/**
 * Already-fused attention forms → lfc.Rope / lfc.Attention + Concat(past, new), so that lowering
 * (compiler/plan/lower.ts) handles them with the rules it has for torch.onnx's decomposed form:
 *
 *   com.microsoft RotaryEmbedding(x, position_ids, cos_cache, sin_cache)
 *   RotaryEmbedding-23(x, cos_cache, sin_cache, position_ids?)
 *       → [Reshape [0,0,N,D] → Transpose 0213] → lfc.Rope(x4, cos, sin){style} → [Transpose → Reshape]
 *       cos = Gather(cos_cache, position_ids) [b, s, R/2], widened to lfc.Rope's [b, s, R]:
 *       Concat(c, c) for 'half', Reshape(Concat(Reshape(c, [0,0,R/2,1]) ×2), [0,0,R]) for 'interleaved'
 *       (a function of position_ids alone: lowering tabulates it).
 *   com.microsoft GroupQueryAttention(q, k, v, past_k, past_v, seqlens_k, total_sequence_length, cos, sin)
 *       → heads(q) [b,Hq,s,D], heads(k), heads(v) [b,Hkv,s,D]; do_rotary: lfc.Rope on q and k with
 *       the caches gathered by the graph's position_ids; present = Concat(past, new, axis 2);
 *       lfc.Attention(q, present_k, present_v, attention_mask){scale} → merge heads.
 *       seqlens_k and total_sequence_length must be computed from attention_mask (proved by
 *       evaluation: seqlens_k = Σ attention_mask − 1, total = its length): lfc.Attention's causal +
 *       padding semantics then stand for them (identical for unpadded batches; with left padding
 *       onnxruntime's GQA, which assumes right padding, differs from the graph's intent and lfc
 *       follows the intent). Sliding windows, softcap, packed QKV and fixed-length (shared) past
 *       buffers are reported, not rewritten.
 *   com.microsoft MultiHeadAttention(q, k, v, bias?, key_padding_mask?, attention_bias?, past_k?, past_v?)
 *       → the same, Hkv = Hq; bias (a constant) added to q|k|v in front (fuse-linear folds it into
 *       the projections); causal from unidirectional=1 or from an attention_bias proved causal
 *       (fuse-attention's mask proof); key_padding_mask must be attention_mask (or its Cast).
 *   Attention-23(Q, K, V, attn_mask?, past_key?, past_value?) → the same, 3-D or 4-D Q/K/V; causal
 *       from is_causal=1 or a float attn_mask proved causal.
 *
 * The pass runs right after canonicalisation, before fuse-linear, so that MatMul + bias Add in front
 * of the rewritten ops fuse as in any other export.
 */
import { Tensor } from '../../runtime/tensor.js';
import { dimEq, dimStr, type Dim } from '../ir/dim.js';
import { addConstant, addNode, ancestors, replaceAllUses } from '../ir/edit.js';
import { Graph, type AttrValue, type Node, type Value } from '../ir/graph.js';
import { run } from '../ir/interpret.js';
import { rewritePass, type Pass, type PassContext, type Rule } from './driver.js';
import { proveMask } from './fuse-attention.js';
import { constValue, ensureLfc, missOnce } from './fuse-util.js';

const PASS = 'fuse-attention-forms';
const MS = 'com.microsoft';

// ---- small graph-building helpers ---------------------------------------------------------------

interface Ctx { g: Graph; before: Node; name: string }

function op(c: Ctx, opType: string, inputs: (Value | undefined)[], attrs: [string, AttrValue][] = [], domain = ''): Value {
  if (domain === 'lfc') ensureLfc(c.g);
  return addNode(c.g, opType, domain, inputs, attrs, `${c.name}/${opType}`, { before: c.before }).outputs[0];
}

const ints = (c: Ctx, xs: number[]): Value => addConstant(c.g, Tensor.from('int64', [xs.length], xs), `${c.name}/shape`);

/** [b, s, H·D] → [b, H, s, D]. */
const splitHeads = (c: Ctx, x: Value, H: number, D: number): Value =>
  op(c, 'Transpose', [op(c, 'Reshape', [x, ints(c, [0, 0, H, D])])], [['perm', [0, 2, 1, 3]]]);

/** [b, H, s, D] → [b, s, H·D]. */
const mergeHeads = (c: Ctx, x: Value, width: number): Value =>
  op(c, 'Reshape', [op(c, 'Transpose', [x], [['perm', [0, 2, 1, 3]]]), ints(c, [0, 0, width])]);

/** lfc.Rope's [b, s, R] cos or sin from a [b, s, R/2] table (per pair frequency). */
function widen(c: Ctx, t: Value, half: number, interleaved: boolean): Value {
  if (!interleaved) return op(c, 'Concat', [t, t], [['axis', -1]]);
  const col = op(c, 'Reshape', [t, ints(c, [0, 0, half, 1])]);
  return op(c, 'Reshape', [op(c, 'Concat', [col, col], [['axis', -1]]), ints(c, [0, 0, 2 * half])]);
}

const tableMemo = new WeakMap<Graph, Map<string, [Value, Value]>>();
/** cos/sin [b, s, R] for lfc.Rope from caches [maxPos, R/2] gathered at `pos`, or from [b, s, R/2] tables. */
function ropeTables(c: Ctx, cos: Value, sin: Value, pos: Value | undefined, interleaved: boolean): [Value, Value] {
  let memo = tableMemo.get(c.g);
  if (!memo) tableMemo.set(c.g, (memo = new Map()));
  const key = `${cos.name}\u0001${sin.name}\u0001${pos?.name ?? ''}\u0001${interleaved}`;
  const hit = memo.get(key);
  if (hit && !hit[0].producer?.removed) return hit;
  const half = cos.type!.shape.at(-1) as number;
  const tc: Ctx = { ...c, name: `${c.name}/rope_tables` };
  const res = [cos, sin].map((t) => widen(tc, pos ? op(tc, 'Gather', [t, pos], [['axis', 0]]) : t, half, interleaved)) as [Value, Value];
  memo.set(key, res);
  return res;
}


/** Why `v` is not a function of position_ids (and constants) alone, or undefined. */
function notPositional(g: Graph, v: Value): string | undefined {
  const other = ancestors(g, [v]).inputs.find((i) => i.name !== 'position_ids');
  return other ? `'${v.name}' depends on graph input '${other.name}', not on position_ids alone` : undefined;
}

/**
 * Proof by evaluation that GQA's seqlens_k = ReduceSum(attention_mask) − 1 and total_sequence_length
 * = attention_mask's length, for batches with and without (left) padding, with and without past.
 */
function proveSeqlens(g: Graph, seqlens: Value, total: Value): string | undefined {
  const { nodes, inputs } = ancestors(g, [seqlens, total]);
  const am = inputs.find((i) => i.name === 'attention_mask');
  if (!am) return `seqlens_k '${seqlens.name}' and total_sequence_length '${total.name}' are not computed from attention_mask`;
  const sub = new Graph();
  sub.nodes.push(...nodes);
  sub.inputs.push(...inputs);
  sub.outputs.push(seqlens, total);
  for (const c of [{ B: 2, P: 0, S: 3, pad: [0, 0] }, { B: 2, P: 2, S: 3, pad: [2, 0] }, { B: 1, P: 4, S: 1, pad: [1] }, { B: 2, P: 5, S: 2, pad: [0, 3] }]) {
    const T = c.P + c.S;
    const feeds = new Map<string, Tensor>();
    for (const i of inputs) {
      const shape = i.type!.shape;
      if (i === am) feeds.set(i.name, Tensor.from('int64', [c.B, T], Array.from({ length: c.B * T }, (_, k) => (k % T < c.pad[Math.floor(k / T)] ? 0 : 1))));
      else if (i.name === 'input_ids' || i.name === 'position_ids') feeds.set(i.name, Tensor.from('int64', [c.B, c.S], Array.from({ length: c.B * c.S }, (_, k) => c.P + (k % c.S))));
      else if (i.name.startsWith('past') && shape.length === 4) feeds.set(i.name, Tensor.zeros(i.type!.dtype, shape.map((d, k) => (k === 0 ? c.B : k === 2 ? c.P : typeof d === 'number' ? d : 1))));
      else return `seqlens_k or total_sequence_length depends on graph input '${i.name}'`;
    }
    let out: Map<string, Tensor>;
    try { out = run(sub, feeds); } catch (e) { return `seqlens_k/total_sequence_length failed to evaluate: ${(e as Error).message}`; }
    const sl = out.get(seqlens.name)!, tot = out.get(total.name)!;
    const what = `past ${c.P}, ${c.S} new, left padding ${c.pad.join('/')}`;
    if (tot.size !== 1 || tot.data[0] !== T) return `total_sequence_length is ${tot.toArray().join(',')} for ${what}, expected ${T} (the length of attention_mask)`;
    for (let b = 0; b < c.B; b++) {
      const want = T - c.pad[b] - 1;
      if (sl.data[b] !== want) return `seqlens_k[${b}] is ${sl.data[b]} for ${what}, expected Σ attention_mask − 1 = ${want}`;
    }
  }
  return undefined;
}

/** attention_mask when `v` is it or a Cast of it. */
function attentionMaskOf(g: Graph, v: Value): Value | undefined {
  let x: Value | undefined = v;
  while (x?.producer && x.producer.opType === 'Cast' && x.producer.domain === '') x = x.producer.inputs[0];
  return x && g.inputs.includes(x) && x.name === 'attention_mask' ? x : undefined;
}

/** Point each replaced output's uses at its new value. */
function replaceOutputs(g: Graph, n: Node, news: (Value | undefined)[]): void {
  n.outputs.forEach((o, i) => {
    if (!news[i]) return;
    if (o.consumers.length || g.outputs.includes(o)) replaceAllUses(g, o, news[i]!);
  });
}

const shapeOf = (v: Value | undefined): Dim[] | undefined => v?.type?.shape;
/** Inputs produced by a rewrite earlier this round are typed only after it: try again next round. */
const untyped = (n: Node): boolean => n.inputs.some((i) => i && !i.type);
const miss = (ctx: PassContext, rule: string, n: Node, why: string): false => missOnce(ctx, PASS, rule, n, why);

// ---- rotary -------------------------------------------------------------------------------------

function rotaryRule(name: string, domain: string, order: { pos: number; cos: number; sin: number }): Rule {
  return {
    name, ops: ['RotaryEmbedding'], domain,
    apply(g, n, ctx) {
      if (domain === '' && n.opset < 23) return false;
      if (untyped(n)) return false;
      const x = n.inputs[0]!, pos = n.inputs[order.pos], cos = n.inputs[order.cos]!, sin = n.inputs[order.sin]!;
      const xs = shapeOf(x), cs = shapeOf(cos);
      if (!xs || !cs) return false;
      const half = cs.at(-1);
      if (typeof half !== 'number') return miss(ctx, name, n, 'cos_cache has no constant width');
      const R = 2 * half;
      if (pos && shapeOf(pos)?.length !== 2) return miss(ctx, name, n, `position_ids '${pos.name}' is not [batch, sequence] (a position offset is not supported)`);
      for (const t of pos ? [pos, cos, sin] : [cos, sin]) {
        const why = notPositional(g, t);
        if (why) return miss(ctx, name, n, why);
      }
      const c: Ctx = { g, before: n, name: n.name || `/${name}` };
      let x4 = x, H = 0, D = 0;
      if (xs.length === 3) {
        const X = xs[2];
        if (typeof X !== 'number') return miss(ctx, name, n, 'input hidden size is not constant');
        H = n.attrs.has('num_heads') && (n.attrs.get('num_heads') as number) > 0 ? (n.attrs.get('num_heads') as number) : X / R;
        D = X / H;
        if (!Number.isInteger(D)) return miss(ctx, name, n, `hidden ${X} does not split into ${H} heads`);
        x4 = splitHeads(c, x, H, D);
      }
      const interleaved = ((n.attrs.get('interleaved') as number | undefined) ?? 0) !== 0;
      const [ct, st] = ropeTables(c, cos, sin, pos, interleaved);
      let y = op(c, 'Rope', [x4, ct, st], [['style', interleaved ? 'interleaved' : 'half']], 'lfc');
      if (xs.length === 3) y = mergeHeads(c, y, H * D);
      replaceOutputs(g, n, [y]);
      ctx.fused(PASS, name, n, `${domain || 'ai.onnx'} RotaryEmbedding → lfc.Rope (${interleaved ? 'interleaved' : 'half'}, rotary dim ${R})`);
      return true;
    },
  };
}

// ---- attention ----------------------------------------------------------------------------------

interface AttnParts {
  q: Value; k: Value; v: Value;
  pastK?: Value; pastV?: Value;
  mask?: Value;
  scale: number;
  /** Width of the merged output, or undefined to keep [b, H, s, D]. */
  mergeWidth?: number;
}

/** Concat with past, lfc.Attention, merge heads; returns (output, present_k, present_v). */
function buildAttention(c: Ctx, p: AttnParts): [Value, Value, Value] {
  const pk = p.pastK ? op(c, 'Concat', [p.pastK, p.k], [['axis', 2]]) : p.k;
  const pv = p.pastV ? op(c, 'Concat', [p.pastV, p.v], [['axis', 2]]) : p.v;
  let y = op(c, 'Attention', [p.q, pk, pv, p.mask], [['scale', p.scale]], 'lfc');
  if (p.mergeWidth !== undefined) y = mergeHeads(c, y, p.mergeWidth);
  return [y, pk, pv];
}

const int = (n: Node, a: string, d: number): number => (n.attrs.get(a) as number | undefined) ?? d;

/** The additive mask's proof (causal, with padding from attention_mask or not). */
function maskInput(g: Graph, n: Node, ctx: PassContext, rule: string, mask: Value, batch: Dim, S: Dim, T: Dim): { ok: boolean; am?: Value } {
  const proof = proveMask(g, mask, S, T, batch);
  if (!proof.ok) { miss(ctx, rule, n, `${proof.reason} (mask '${mask.name}')`); return { ok: false }; }
  if (proof.reason) miss(ctx, `${rule}-padding`, n, proof.reason);
  return { ok: true, am: proof.usesAttentionMask ? g.inputs.find((i) => i.name === 'attention_mask') : undefined };
}

const gqaRule: Rule = {
  name: 'group-query-attention', ops: ['GroupQueryAttention'], domain: MS,
  apply(g, n, ctx) {
    const name = this.name;
    if (untyped(n)) return false;
    const [query, key, value, pastK, pastV, seqlens, total, cos, sin] = n.inputs;
    if (!key || !value) return miss(ctx, name, n, 'packed QKV (key and value omitted) is not supported');
    if (!seqlens || !total) return miss(ctx, name, n, 'seqlens_k and total_sequence_length are required');
    if (!!pastK !== !!pastV) return miss(ctx, name, n, 'past_key and past_value must come together');
    const window = int(n, 'local_window_size', -1);
    if (window > 0) return miss(ctx, name, n, `sliding-window attention (local_window_size=${window}) is not supported by lfc.Attention`);
    const softcap = (n.attrs.get('softcap') as number | undefined) ?? 0;
    if (softcap > 0) return miss(ctx, name, n, `attention logit softcap (${softcap}) is not supported by lfc.Attention`);
    const pastLen = shapeOf(pastK)?.[2];
    if (typeof pastLen === 'number') return miss(ctx, name, n, `past_key has a fixed length ${pastLen}: a past/present buffer shared up to a maximum length is not supported (past must grow as Concat(past, new))`);
    const why = proveSeqlens(g, seqlens, total);
    if (why) return miss(ctx, name, n, why);
    const Hq = int(n, 'num_heads', 0), Hkv = int(n, 'kv_num_heads', 0);
    const D = (shapeOf(query)![2] as number) / Hq;
    const pos = g.inputs.find((i) => i.name === 'position_ids');
    const rotary = int(n, 'do_rotary', 0) !== 0;
    if (rotary) {
      if (!pos) return miss(ctx, name, n, 'do_rotary needs the graph input position_ids (the positions GQA derives from seqlens_k)');
      for (const t of [cos!, sin!]) { const w = notPositional(g, t); if (w) return miss(ctx, name, n, w); }
    }
    // Checks done: from here on the rule rewrites.
    const c: Ctx = { g, before: n, name: n.name || '/gqa' };
    let q = splitHeads(c, query!, Hq, D), k = splitHeads(c, key, Hkv, D);
    const v = splitHeads(c, value, Hkv, D);
    let rot = '';
    if (rotary && pos) {
      const interleaved = int(n, 'rotary_interleaved', 0) !== 0;
      const [ct, st] = ropeTables(c, cos!, sin!, pos, interleaved);
      const style: [string, AttrValue][] = [['style', interleaved ? 'interleaved' : 'half']];
      q = op(c, 'Rope', [q, ct, st], style, 'lfc');
      k = op(c, 'Rope', [k, ct, st], style, 'lfc');
      rot = `, rotary (${interleaved ? 'interleaved' : 'half'}, dim ${2 * (shapeOf(cos)!.at(-1) as number)})`;
    }
    const am = g.inputs.find((i) => i.name === 'attention_mask');
    const scale = ((n.attrs.get('scale') as number | undefined) ?? 0) || 1 / Math.sqrt(D);
    replaceOutputs(g, n, buildAttention(c, { q, k, v, pastK, pastV, mask: am, scale, mergeWidth: Hq * D }));
    ctx.fused(PASS, name, n, `GroupQueryAttention → lfc.Attention ${Hq} query heads / ${Hkv} kv heads, head_dim ${D}, scale ${+scale.toPrecision(6)}${rot}, causal + padding from attention_mask (seqlens_k proved)`);
    return true;
  },
};

const mhaRule: Rule = {
  name: 'multi-head-attention', ops: ['MultiHeadAttention'], domain: MS,
  apply(g, n, ctx) {
    const name = this.name;
    if (untyped(n)) return false;
    const [query, key, value, bias, kpm, ab, pastK, pastV] = n.inputs;
    if (!key || !value || shapeOf(key)?.length !== 3 || shapeOf(value)?.length !== 3) return miss(ctx, name, n, 'key/value are not [batch, sequence, hidden] (packed or cross-attention form)');
    if (!!pastK !== !!pastV) return miss(ctx, name, n, 'past_key and past_value must come together');
    const N = int(n, 'num_heads', 0);
    const X = shapeOf(query)![2] as number, D = X / N, Dv = (shapeOf(value)![2] as number) / N;
    const c: Ctx = { g, before: n, name: n.name || '/mha' };
    let am: Value | undefined;
    if (kpm) {
      am = attentionMaskOf(g, kpm);
      if (!am || shapeOf(kpm)?.length !== 2) return miss(ctx, name, n, `key_padding_mask '${kpm.name}' is not the graph's attention_mask [batch, total_sequence_length]`);
    }
    const b = bias && constValue(bias);
    if (bias && !b) return miss(ctx, name, n, `bias '${bias.name}' is not a constant`);
    const causal = int(n, 'unidirectional', 0) !== 0;
    if (!dimEq(shapeOf(query)![1], shapeOf(key)![1])) return miss(ctx, name, n, `key has ${dimStr(shapeOf(key)![1])} new positions for ${dimStr(shapeOf(query)![1])} queries: not decoder self-attention`);
    let how = causal ? 'unidirectional' : '';
    if (ab) {
      const T = shapeOf(n.outputs[1])?.[2] ?? shapeOf(ab)!.at(-1)!;
      const m = maskInput(g, n, ctx, name, ab, shapeOf(query)![0], shapeOf(query)![1], T);
      if (!m.ok) return false;
      am ??= m.am;
      how = 'causal attention_bias';
    } else if (!causal) {
      return miss(ctx, name, n, 'attention is not causal (unidirectional=0 and no attention_bias)');
    }
    // Checks done: from here on the rule rewrites.
    let qx = query!, kx = key, vx = value;
    if (b) {
      const part = (from: number, len: number) => addConstant(g, Tensor.from(b.dtype, [len], Array.from(b.data as ArrayLike<number>).slice(from, from + len)), `${c.name}/bias`);
      qx = op(c, 'Add', [query, part(0, X)]);
      kx = op(c, 'Add', [key, part(X, X)]);
      vx = op(c, 'Add', [value, part(2 * X, N * Dv)]);
    }
    const q = splitHeads(c, qx, N, D), k = splitHeads(c, kx, N, D), v = splitHeads(c, vx, N, Dv);
    const scale = ((n.attrs.get('scale') as number | undefined) ?? 0) || 1 / Math.sqrt(D);
    replaceOutputs(g, n, buildAttention(c, { q, k, v, pastK, pastV, mask: am, scale, mergeWidth: N * Dv }));
    ctx.fused(PASS, name, n, `MultiHeadAttention → lfc.Attention ${N} heads, head_dim ${D}, scale ${+scale.toPrecision(6)}, ${how}${am ? ' + padding from attention_mask' : ''}${bias ? ', bias added to the projections' : ''}`);
    return true;
  },
};

const attention23Rule: Rule = {
  name: 'attention-23', ops: ['Attention'], domain: '',
  apply(g, n, ctx) {
    const name = this.name;
    if (untyped(n)) return false;
    if (n.opset < 23) return false;
    const [Q, K, V, mask, pastK, pastV] = n.inputs;
    const softcap = (n.attrs.get('softcap') as number | undefined) ?? 0;
    if (softcap) return miss(ctx, name, n, `attention logit softcap (${softcap}) is not supported by lfc.Attention`);
    if (!!pastK !== !!pastV) return miss(ctx, name, n, 'past_key and past_value must come together');
    const c: Ctx = { g, before: n, name: n.name || '/attention' };
    const qs = shapeOf(Q)!, ks = shapeOf(K)!, vs = shapeOf(V)!;
    const heads = (t: Value, s: Dim[], h: number): { x: Value; H: number; D: number } => {
      if (s.length === 4) return { x: t, H: s[1] as number, D: s[3] as number };
      const D = (s[2] as number) / h;
      return { x: splitHeads(c, t, h, D), H: h, D };
    };
    const causal = int(n, 'is_causal', 0) !== 0;
    const sq = qs.length === 4 ? qs[2] : qs[1], sk = ks.length === 4 ? ks[2] : ks[1];
    if (!dimEq(sq, sk)) return miss(ctx, name, n, `K has ${dimStr(sk)} new positions for ${dimStr(sq)} queries: not decoder self-attention`);
    let am: Value | undefined;
    if (mask) {
      if (mask.type?.dtype === 'bool') return miss(ctx, name, n, `boolean attn_mask '${mask.name}' is not supported (only an additive mask proved causal)`);
      const T = shapeOf(n.outputs[1])?.[2] ?? shapeOf(mask)!.at(-1)!;
      const m = maskInput(g, n, ctx, name, mask, qs[0], qs.length === 4 ? qs[2] : qs[1], T);
      if (!m.ok) return false;
      am = m.am;
    } else if (!causal) {
      return miss(ctx, name, n, 'attention is not causal (is_causal=0 and no attn_mask)');
    }
    // Checks done: from here on the rule rewrites.
    const q = heads(Q!, qs, int(n, 'q_num_heads', 0)), k = heads(K!, ks, int(n, 'kv_num_heads', 0)), v = heads(V!, vs, int(n, 'kv_num_heads', 0));
    const scale = ((n.attrs.get('scale') as number | undefined) ?? 0) || 1 / Math.sqrt(q.D);
    replaceOutputs(g, n, buildAttention(c, { q: q.x, k: k.x, v: v.x, pastK, pastV, mask: am, scale, mergeWidth: qs.length === 3 ? q.H * v.D : undefined }));
    ctx.fused(PASS, name, n, `Attention-23 → lfc.Attention ${q.H} query heads / ${k.H} kv heads, head_dim ${q.D}, scale ${+scale.toPrecision(6)}, ${mask ? 'causal attn_mask' : 'is_causal'}${am ? ' + padding from attention_mask' : ''}`);
    return true;
  },
};

export const fuseAttentionForms: Pass = rewritePass(PASS, 'already-fused attention forms (GQA, MHA, Attention-23, RotaryEmbedding) → lfc.Rope / lfc.Attention + Concat(past, new)', [
  rotaryRule('ms-rotary-embedding', MS, { pos: 1, cos: 2, sin: 3 }),
  rotaryRule('rotary-embedding-23', '', { pos: 3, cos: 1, sin: 2 }),
  gqaRule, mhaRule, attention23Rule,
]);

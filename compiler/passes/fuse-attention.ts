/**
 * Attention fusion: rotary embeddings and scaled-dot-product attention into lfc.Rope and
 * lfc.Attention (compiler/ops/lfc-attention.ts), in every form torch.onnx emits for HF-style
 * LLaMA and GPT-2 decoders.
 *
 *   rope      Add(Mul(x, Unsqueeze(cos)), Mul(Concat(Neg(Slice(x, D/2:)), Slice(x, :D/2)), Unsqueeze(sin)))
 *   attention Softmax(Add(Div|Mul(MatMul(q, Transpose(repeat_kv(k))), c), mask)) · repeat_kv(v)
 *             repeat_kv = Reshape(Expand(Unsqueeze(x, 2))) (GQA) or nothing
 *
 * The mask is not matched by its shape (exporters build it a dozen ways: Trilu, Range/Less,
 * sliced bool constants, Where chains over the dtype minimum). It is proved by evaluation: its
 * subgraph is run for several (past, new) lengths with full and left-padded attention masks and
 * must be exactly 0 where a query may attend (key position ≤ query position, attention_mask 1)
 * and ≤ -1e30 elsewhere. A mask that fails is reported with the case and element that differ.
 */
import { Tensor } from '../../runtime/tensor.js';
import { bareSymbol, dimEq, dimSub, evalDim, isSym, shapeStr, type Dim } from '../ir/dim.js';
import { addNode, ancestors, replaceAllUses } from '../ir/edit.js';
import { Graph, type Node, type Value } from '../ir/graph.js';
import { run } from '../ir/interpret.js';
import { scalarOf } from './canonicalize.js';
import { rewritePass, type Pass, type PassContext, type Rule } from './driver.js';
import { axisOf, constInts, contained, producer } from './match.js';

const PASS = 'fuse-attention';

function ensureLfc(g: Graph): void { if (!g.opsets.has('lfc')) g.opsets.set('lfc', 1); }

// ---- RoPE ---------------------------------------------------------------------------------

/** x when `r` is rotate_half(x) = Concat(Neg(Slice(x, h:)), Slice(x, :h)) on the last axis. */
function rotateHalfOf(r: Value): { x: Value; nodes: Node[] } | undefined {
  const cat = producer(r, 'Concat');
  if (!cat || cat.inputs.length !== 2 || !r.type) return undefined;
  const rank = r.type.shape.length;
  if (axisOf(cat.attrs.get('axis') as number, rank) !== rank - 1) return undefined;
  const neg = producer(cat.inputs[0], 'Neg');
  const hi = producer(neg?.inputs[0], 'Slice');
  const lo = producer(cat.inputs[1], 'Slice');
  if (!neg || !hi || !lo || hi.inputs[0] !== lo.inputs[0]) return undefined;
  const x = hi.inputs[0]!;
  const D = x.type?.shape[rank - 1];
  if (typeof D !== 'number') return undefined;
  const sl = (s: Node) => ({ start: constInts(s.inputs[1])?.[0], end: constInts(s.inputs[2])?.[0], axis: constInts(s.inputs[3])?.[0] ?? 0, step: constInts(s.inputs[4])?.[0] ?? 1 });
  const a = sl(lo), b = sl(hi);
  const lastAxis = (ax: number) => axisOf(ax, rank) === rank - 1;
  const half = D / 2;
  const okLo = a.start === 0 && a.end === half && lastAxis(a.axis) && a.step === 1;
  const okHi = b.start === half && (b.end ?? 0) >= D && lastAxis(b.axis) && b.step === 1;
  if (!okLo || !okHi) return undefined;
  return { x, nodes: [cat, neg, hi, lo] };
}

/** cos/sin table value behind Unsqueeze(t, 1) broadcast over heads. */
function unsqueezedOnHeads(v: Value): { t: Value; node: Node } | undefined {
  const u = producer(v, 'Unsqueeze');
  if (!u) return undefined;
  const axes = constInts(u.inputs[1]) ?? (u.attrs.get('axes') as number[] | undefined);
  return axes?.length === 1 && axisOf(axes[0], 4) === 1 ? { t: u.inputs[0]!, node: u } : undefined;
}

const ropeRule: Rule = {
  name: 'rope-rotate-half', ops: ['Add'],
  apply(g, add, ctx) {
    const muls = add.inputs.map((v) => producer(v, 'Mul'));
    if (!muls[0] || !muls[1]) return false;
    for (const [mc, ms] of [[muls[0], muls[1]], [muls[1], muls[0]]]) {
      for (const [ri, si] of [[0, 1], [1, 0]]) {
        const rot = rotateHalfOf(ms.inputs[ri]!);
        if (!rot) continue;
        const x = rot.x;
        const ci = mc.inputs[0] === x ? 1 : mc.inputs[1] === x ? 0 : -1;
        if (ci < 0) { ctx.missed(PASS, this.name, add, `rotate_half(${x.name}) is paired with a Mul that does not multiply ${x.name}`); return false; }
        const cos = unsqueezedOnHeads(mc.inputs[ci]!), sin = unsqueezedOnHeads(ms.inputs[si]!);
        if (!cos || !sin || x.type?.shape.length !== 4) {
          ctx.missed(PASS, this.name, add, 'cos/sin are not [batch, seq, dim] tables unsqueezed on the head axis');
          return false;
        }
        const pattern = [add, mc, ms, ...rot.nodes];
        const escaped = contained(g, [mc.outputs[0], ms.outputs[0], ...rot.nodes.map((n) => n.outputs[0])], pattern);
        if (escaped) { ctx.missed(PASS, this.name, add, `intermediate '${escaped.name}' is used outside the rotary pattern`); return false; }
        ensureLfc(g);
        const r = addNode(g, 'Rope', 'lfc', [x, cos.t, sin.t], [['style', 'half']], `${add.name}/lfc_rope`, { before: add });
        replaceAllUses(g, add.outputs[0], r.outputs[0]);
        ctx.fused(PASS, this.name, add, `rotary embedding (rotate_half) on ${x.name} ${shapeStr(x.type.shape)}`);
        return true;
      }
    }
    return false;
  },
};

// ---- attention ----------------------------------------------------------------------------

/** Undo repeat_kv (Unsqueeze(2) → Expand → Reshape) to the [b, Hkv, T, D] cache value. */
function unrepeat(v: Value): { base: Value; nodes: Node[] } {
  const r = producer(v, 'Reshape');
  const e = producer(r?.inputs[0], 'Expand');
  const u = producer(e?.inputs[0], 'Unsqueeze');
  if (r && e && u) {
    const axes = constInts(u.inputs[1]) ?? (u.attrs.get('axes') as number[] | undefined);
    const base = u.inputs[0]!;
    if (axes?.length === 1 && axisOf(axes[0], 5) === 2 && base.type?.shape.length === 4) return { base, nodes: [r, e, u] };
  }
  return { base: v, nodes: [] };
}

interface MaskProof { ok: boolean; usesAttentionMask: boolean; reason?: string }
const proofs = new WeakMap<Value, MaskProof>();


/**
 * Prove by evaluation that `mask` is the causal (+ padding) additive mask for queries of length
 * `s` against `T = past + s` keys.
 */
export function proveMask(g: Graph, mask: Value, sDim: Dim, tDim: Dim, bDim: Dim): MaskProof {
  const cached = proofs.get(mask);
  if (cached) return cached;
  const { nodes, inputs } = ancestors(g, mask);
  const sub = new Graph();
  sub.nodes.push(...nodes);
  sub.inputs.push(...inputs);
  sub.outputs.push(mask);
  const pastDim = dimSub(tDim, sDim);
  const amInput = inputs.find((i) => i.name === 'attention_mask') ??
    inputs.find((i) => i.type!.dtype !== 'float32' && i.type!.shape.length === 2 && dimEq(i.type!.shape[1], tDim));
  const sSym = bareSymbol(sDim), pSym = bareSymbol(pastDim), bSym = bareSymbol(bDim);
  const cases: { past: number; s: number; pad: number[] }[] = [{ past: 0, s: 3, pad: [0, 0] }];
  if (pSym) cases.push({ past: 2, s: 3, pad: [0, 0] }, { past: 4, s: 1, pad: [0, 0] });
  const padCases = amInput ? [{ past: 0, s: 4, pad: [2, 0] }, ...(pSym ? [{ past: 2, s: 2, pad: [1, 0] }] : [])] : [];
  const check = (c: { past: number; s: number; pad: number[] }, withPad: boolean): string | undefined => {
    const env = new Map<string, number>();
    if (sSym) env.set(sSym, c.s); else if (sDim !== c.s) return 'query length is not symbolic';
    if (pSym) env.set(pSym, c.past);
    if (bSym) env.set(bSym, 2); else if (bDim !== 2 && typeof bDim === 'number') env.set('__batch', bDim);
    const B = bSym ? 2 : (bDim as number);
    const T = c.past + c.s;
    const feeds = new Map<string, Tensor>();
    for (const inp of inputs) {
      let shape: number[];
      try { shape = inp.type!.shape.map((d) => evalDim(d, env)); } catch (e) { return `input '${inp.name}': ${(e as Error).message}`; }
      const t = Tensor.zeros(inp.type!.dtype, shape);
      if (inp === amInput) for (let b = 0; b < B; b++) for (let j = 0; j < T; j++) t.data[b * T + j] = j < (withPad ? c.pad[b] ?? 0 : 0) ? 0 : 1;
      else if (inp.name === 'position_ids') for (let k = 0; k < t.size; k++) t.data[k] = c.past + (k % c.s);
      feeds.set(inp.name, t);
    }
    let m: Tensor;
    try { m = run(sub, feeds).get(mask.name)!; } catch (e) { return `mask subgraph failed to evaluate: ${(e as Error).message}`; }
    const [mb, mh, ms, mt] = m.shape.length === 4 ? m.shape : [1, 1, ...m.shape.slice(-2)];
    if (ms !== c.s || mt !== T) return `mask has shape [${m.shape}] for ${c.s} queries and ${T} keys`;
    for (let b = 0; b < B; b++) for (let h = 0; h < mh; h++) for (let i = 0; i < c.s; i++) for (let j = 0; j < T; j++) {
      const val = m.data[(((mb === 1 ? 0 : b) * mh + h) * c.s + i) * T + j];
      const blocked = j > c.past + i || (withPad && j < (c.pad[b] ?? 0));
      if (blocked ? !(val <= -1e30) : val !== 0) {
        return `past ${c.past}, ${c.s} new${withPad ? `, left padding ${c.pad.join('/')}` : ''}: element [b${b}, q${i}, k${j}] is ${val}, expected ${blocked ? 'a large negative value' : '0'}`;
      }
    }
    return undefined;
  };
  let proof: MaskProof = { ok: true, usesAttentionMask: false };
  for (const c of cases) {
    const why = check(c, false);
    if (why) { proof = { ok: false, usesAttentionMask: false, reason: `mask is not causal: ${why}` }; break; }
  }
  if (proof.ok && padCases.length) {
    const why = padCases.map((c) => check(c, true)).find((x) => x);
    proof = why ? { ok: true, usesAttentionMask: false, reason: `padding from attention_mask is not applied (${why}); fused as causal only` } : { ok: true, usesAttentionMask: true };
  }
  proofs.set(mask, proof);
  return proof;
}

const attentionRule: Rule = {
  name: 'sdpa', ops: ['Softmax'],
  apply(g, sm, ctx: PassContext) {
    const rank = sm.inputs[0]?.type?.shape.length ?? 0;
    if (rank !== 4 || axisOf((sm.attrs.get('axis') as number | undefined) ?? -1, 4) !== 3) return false;
    const pv = sm.outputs[0].consumers.length === 1 ? sm.outputs[0].consumers[0] : undefined;
    if (!pv || pv.opType !== 'MatMul' || pv.inputs[0] !== sm.outputs[0]) { ctx.missed(PASS, this.name, sm, 'softmax output is not only multiplied by V'); return false; }
    let x = sm.inputs[0]!;
    const inner: Node[] = [sm, pv];
    let mask: Value | undefined;
    const add = producer(x, 'Add');
    let mm: Node | undefined;
    if (add) {
      for (const k of [0, 1]) {
        const other = add.inputs[1 - k]!;
        const cand = add.inputs[k]!;
        if (producer(cand, 'Div', 'Mul', 'MatMul')) { mask = other; x = cand; break; }
      }
      if (!mask) { ctx.missed(PASS, this.name, sm, `Add at node ${add.name} before softmax has no scaled QKᵀ operand`); return false; }
      inner.push(add);
    }
    let scale = 1;
    const sc = producer(x, 'Div', 'Mul');
    if (sc) {
      const c = scalarOf(sc.inputs[1]);
      if (c === undefined || c === 0) { ctx.missed(PASS, this.name, sm, `scale at node ${sc.name} is not a constant scalar`); return false; }
      scale = sc.opType === 'Div' ? 1 / c : c;
      inner.push(sc);
      x = sc.inputs[0]!;
    }
    mm = producer(x, 'MatMul');
    if (!mm) { ctx.missed(PASS, this.name, sm, 'softmax input is not a scaled MatMul'); return false; }
    inner.push(mm);
    // Kᵀ = Transpose(X, p). Exporters may compose the head split and the Kᵀ swap into one
    // permutation (e.g. [0,2,3,1] on [b,s,h,d]): K is then Transpose(X, p with its last two swapped).
    const kt = producer(mm.inputs[1], 'Transpose');
    const perm = kt?.attrs.get('perm') as number[] | undefined;
    if (!kt || !perm || perm.length !== 4) { ctx.missed(PASS, this.name, sm, `K operand of ${mm.name} is not a transposed [b, heads, seq, head_dim] tensor`); return false; }
    inner.push(kt);
    const q = mm.inputs[0]!;
    const kPerm = [perm[0], perm[1], perm[3], perm[2]];
    let kSrc = kt.inputs[0]!;
    if (kPerm.join() !== '0,1,2,3') {
      if (kSrc.consumers.length !== 1) { ctx.missed(PASS, this.name, sm, `K operand of ${mm.name} uses permutation [${perm}] on a shared value`); return false; }
      const src = kSrc;
      kSrc = addNode(g, 'Transpose', '', [src], [['perm', kPerm]], `${kt.name}/k`, { before: kt }).outputs[0];
      kSrc.type = { dtype: src.type!.dtype, shape: kPerm.map((i) => src.type!.shape[i]) };
    }
    const k = unrepeat(kSrc);
    const v = unrepeat(pv.inputs[1]!);
    inner.push(...k.nodes, ...v.nodes);
    const qs = q.type!.shape, ks = k.base.type!.shape;
    if (qs.length !== 4 || ks.length !== 4 || !dimEq(qs[3], ks[3])) { ctx.missed(PASS, this.name, sm, `q ${shapeStr(qs)} and k ${shapeStr(ks)} are not [b, heads, seq, head_dim]`); return false; }
    let amValue: Value | undefined;
    if (mask) {
      const proof = proveMask(g, mask, qs[2], ks[2], qs[0]);
      if (!proof.ok) { ctx.missed(PASS, this.name, sm, `${proof.reason} (mask '${mask.name}')`); return false; }
      if (proof.reason) ctx.missed(PASS, 'sdpa-padding', sm, proof.reason);
      if (proof.usesAttentionMask) amValue = g.inputs.find((i) => i.name === 'attention_mask');
    } else if (!isSym(qs[2]) && qs[2] !== 1) {
      ctx.missed(PASS, this.name, sm, 'attention without a mask over several queries is not causal');
      return false;
    }
    const escaped = contained(g, inner.filter((n) => n !== pv).map((n) => n.outputs[0]), inner);
    if (escaped) { ctx.missed(PASS, this.name, sm, `intermediate '${escaped.name}' is used outside the attention pattern`); return false; }
    ensureLfc(g);
    const node = addNode(g, 'Attention', 'lfc', [q, k.base, v.base, amValue], [['scale', scale]], `${sm.name}/lfc_attention`, { before: pv });
    replaceAllUses(g, pv.outputs[0], node.outputs[0]);
    const hq = qs[1], hkv = ks[1];
    ctx.fused(PASS, this.name, sm, `attention ${String(hq)} query heads / ${String(hkv)} kv heads, head_dim ${String(qs[3])}, scale ${+scale.toPrecision(6)}, causal${amValue ? ' + padding mask' : ''}`);
    return true;
  },
};

export const fuseRope: Pass = rewritePass('fuse-rope', 'rotary embeddings → lfc.Rope', [ropeRule]);
export const fuseAttention: Pass = rewritePass(PASS, 'scaled-dot-product attention with causal mask and GQA → lfc.Attention', [attentionRule]);

/**
 * Linear fusion: every product of activations with a constant weight becomes lfc.Linear
 * (x[..., K] · W[K, N] + b[N], W in ONNX MatMul layout), then Linears share work.
 *
 *   fuse-linear      matmul      MatMul(x, W const) → [Add(b const [N], either side)]
 *                    gemm        Gemm(A, B const, C?) {transB, alpha, beta}: B transposed, α and β
 *                                folded into the constants at compile time; the Reshape pair
 *                                exporters put around it ([..., K] → [M, K] … [M, N] → [..., N])
 *                                is absorbed so the Linear works on x's own shape
 *   fuse-linear-act  epilogue    Linear → lfc.Activation, the Linear's only use → Linear{activation}
 *   merge-qkv        qkv         three Linears on the same x (Q, K, V projections) → one Linear
 *                                with concatenated weights + ONNX Split on the last axis, so later
 *                                passes still see three values (GPT-2's c_attn already is one)
 *
 * MatMuls of two activations (attention scores) are left alone and not reported.
 */
import { Tensor } from '../../runtime/tensor.js';
import { dimEq, dimProduct, shapeStr, type Dim } from '../ir/dim.js';
import { addConstant, addNode, replaceAllUses } from '../ir/edit.js';
import type { Graph, Node, Value } from '../ir/graph.js';
import type { Pass, Rule } from './driver.js';
import {
  constValue, dropNode, ensureLfc, fusePass, isConstant, isOnnx, missOnce, producedBy, rankOf, replacePattern, soleConsumer, vname,
} from './fuse-util.js';

const LINEAR = 'fuse-linear';
const EPILOGUE = 'fuse-linear-act';
const QKV = 'merge-qkv';

/** A bias of N channels from a constant of shape [N], [1, …, N] or a scalar (broadcast), else undefined. */
function biasTensor(v: Value | undefined, n: Dim, maxRank: number, scale = 1): Tensor | undefined {
  const t = constValue(v);
  if (!t || typeof n !== 'number' || t.rank > maxRank) return undefined;
  let data: number[];
  if (t.size === 1) data = new Array<number>(n).fill(t.data[0]);
  else if (t.size === n && t.shape[t.rank - 1] === n) data = t.toArray();
  else return undefined;
  return Tensor.from(t.dtype, [n], data.map((d) => d * scale));
}

/** Reuse `v` when it already is the [N] bias; else a new constant holding `t`. */
function biasValue(g: Graph, v: Value, t: Tensor, name: string): Value {
  const same = v.type?.shape.length === 1 && constValue(v)!.toArray().every((d, i) => d === t.data[i]);
  return same ? v : addConstant(g, t, name);
}

const matmulRule: Rule = {
  name: 'matmul',
  ops: ['MatMul'],
  apply(g, mm, ctx) {
    const [x, w] = mm.inputs;
    if (!x || !w || !w.initializer || isConstant(x)) return false;
    const miss = (why: string): false => missOnce(ctx, LINEAR, 'matmul', mm, why);
    const ws = w.type!.shape;
    if (ws.length !== 2) return miss(`${mm.label} multiplies by constant ${vname(w)} of shape ${shapeStr(ws)}, not a [K, N] matrix`);
    if (rankOf(x) < 1) return false;
    const n = ws[1];
    const out = mm.outputs[0];
    const add = soleConsumer(g, out);
    let bias: { v: Value; t: Tensor; node: Node } | undefined;
    if (isOnnx(add, 'Add')) {
      const other = add.inputs[0] === out ? add.inputs[1] : add.inputs[0];
      const t = biasTensor(other, n, rankOf(out));
      if (other && t && dimEq(dimProduct(add.outputs[0].type!.shape), dimProduct(out.type!.shape))) bias = { v: other, t, node: add };
    }
    const nodes = new Set<Node>([mm, ...(bias ? [bias.node] : [])]);
    replacePattern(g, ctx, {
      pass: LINEAR, rule: 'matmul', root: mm, nodes, op: 'Linear',
      inputs: [x, w, ...(bias ? [biasValue(g, bias.v, bias.t, `${mm.name}/bias`)] : [])], attrs: [],
      replaces: [bias ? bias.node.outputs[0] : out],
      detail: `Linear ${shapeStr(ws)}${bias ? ` + bias from ${bias.node.label}` : ''}`,
    });
    return true;
  },
};

/** [rows, cols] of a constant matrix, transposed and scaled as Gemm's B would be. */
function gemmWeight(b: Tensor, transB: boolean, alpha: number): Tensor {
  const [r, c] = b.shape;
  if (!transB && alpha === 1) return b;
  const out = Tensor.zeros(b.dtype, transB ? [c, r] : [r, c]);
  for (let i = 0; i < r; i++) {
    for (let j = 0; j < c; j++) out.data[transB ? j * r + i : i * c + j] = alpha * b.data[i * c + j];
  }
  return Tensor.from(b.dtype, out.shape, out.data);
}

const gemmRule: Rule = {
  name: 'gemm',
  ops: ['Gemm'],
  apply(g, gm, ctx) {
    const [a, b, c] = gm.inputs;
    if (!a || !b || !b.initializer || isConstant(a)) return false;
    const miss = (why: string): false => missOnce(ctx, LINEAR, 'gemm', gm, why);
    const attr = (k: string, d: number): number => (gm.attrs.get(k) as number | undefined) ?? d;
    if (attr('transA', 0) !== 0) return miss(`${gm.label} has transA=1 (the activation is transposed)`);
    const transB = attr('transB', 0) !== 0, alpha = attr('alpha', 1), beta = attr('beta', 1);
    const out = gm.outputs[0];
    const n = out.type!.shape[1];
    let bias: Tensor | undefined;
    if (c && beta !== 0) {
      bias = biasTensor(c, n, 2, beta);
      if (!bias) return miss(`${gm.label} adds C ${vname(c)} ${shapeStr(c.type?.shape ?? [])}, not a constant [N] bias`);
    }
    // The flatten/unflatten Reshape pair around it, when it only re-rows x.
    let x = a, replaced = out;
    const nodes = new Set<Node>([gm]);
    const pre = producedBy(a, 'Reshape'), x0 = pre?.inputs[0], post = soleConsumer(g, out);
    if (pre && x0?.type && soleConsumer(g, a) === gm && isOnnx(post, 'Reshape') && post.outputs[0].type) {
      const xs = x0.type.shape, ys = post.outputs[0].type.shape, as = a.type!.shape;
      const lead = xs.slice(0, -1);
      if (xs.length >= 2 && dimEq(xs[xs.length - 1], as[1]) && dimEq(dimProduct(lead), as[0])
        && ys.length === xs.length && lead.every((d, i) => dimEq(d, ys[i])) && dimEq(ys[ys.length - 1], n)) {
        x = x0;
        replaced = post.outputs[0];
        nodes.add(pre).add(post);
      }
    }
    const w = gemmWeight(constValue(b)!, transB, alpha);
    const wv = w === constValue(b) ? b : addConstant(g, w, `${gm.name}/weight`);
    const inputs = [x, wv, ...(bias && c ? [biasValue(g, c, bias, `${gm.name}/bias`)] : [])];
    replacePattern(g, ctx, {
      pass: LINEAR, rule: 'gemm', root: gm, nodes, op: 'Linear', inputs, attrs: [], replaces: [replaced],
      detail: `Linear [${w.shape.join(', ')}]${bias ? ' + bias' : ''} from Gemm${transB ? ' (weight transposed)' : ''}`
        + `${alpha !== 1 ? `, alpha ${alpha} folded` : ''}${nodes.size > 1 ? ', Reshape pair absorbed' : ''}`,
    });
    return true;
  },
};

const epilogueRule: Rule = {
  name: 'epilogue',
  ops: ['Activation'],
  domain: 'lfc',
  apply(g, act, ctx) {
    const lin = act.inputs[0]?.producer;
    if (!lin || lin.domain !== 'lfc' || lin.opType !== 'Linear' || lin.attrs.has('activation')) return false;
    if (soleConsumer(g, lin.outputs[0]) !== act) return false;
    const kind = act.attrs.get('kind') as string;
    lin.attrs.set('activation', kind);
    replaceAllUses(g, act.outputs[0], lin.outputs[0]);
    dropNode(g, act);
    g.values.set(lin.outputs[0].name, lin.outputs[0]);
    ctx.fused(EPILOGUE, 'epilogue', act, `${kind} applied in the epilogue of ${lin.label}`);
    return true;
  },
};

const qkvRule: Rule = {
  name: 'qkv',
  ops: ['Linear'],
  domain: 'lfc',
  apply(g, lin, ctx) {
    const x = lin.inputs[0];
    if (!x) return false;
    const sibs = x.consumers.filter((c) => c.domain === 'lfc' && c.opType === 'Linear' && c.inputs[0] === x);
    if (sibs.length !== 3) return false;
    sibs.sort((p, q) => g.nodes.indexOf(p) - g.nodes.indexOf(q));
    if (sibs[0] !== lin) return false;
    const miss = (why: string): false => missOnce(ctx, QKV, 'qkv', lin, why);
    const acted = sibs.find((s) => s.attrs.has('activation'));
    if (acted) return miss(`${acted.label} on ${vname(x)} has an activation epilogue`);
    const ws = sibs.map((s) => constValue(s.inputs[1]));
    if (ws.some((w) => !w)) return miss(`a Linear on ${vname(x)} has a non-constant weight`);
    const dtype = ws[0]!.dtype, k = ws[0]!.shape[0];
    if (ws.some((w) => w!.dtype !== dtype || w!.shape[0] !== k)) return miss(`the Linears on ${vname(x)} differ in weight dtype or K`);
    const ns = ws.map((w) => w!.shape[1]), total = ns.reduce((p, q) => p + q, 0);
    const w = Tensor.zeros(dtype, [k, total]);
    for (let r = 0; r < k; r++) {
      let off = 0;
      ws.forEach((wi, i) => { w.data.set(wi!.data.subarray(r * ns[i], (r + 1) * ns[i]), r * total + off); off += ns[i]; });
    }
    const withBias = sibs.some((s) => s.inputs[2]);
    const bias = withBias ? Tensor.zeros(dtype, [total]) : undefined;
    if (bias) {
      let off = 0;
      sibs.forEach((s, i) => { const b = constValue(s.inputs[2]); if (b) bias.data.set(b.data, off); off += ns[i]; });
    }
    ensureLfc(g);
    const prefix = lin.name.replace(/\/[^/]*\/[^/]*$/, '') || lin.name;
    const inputs = [x, addConstant(g, w, `${prefix}/qkv_weight`), ...(bias ? [addConstant(g, bias, `${prefix}/qkv_bias`)] : [])];
    const merged = addNode(g, 'Linear', 'lfc', inputs, [], `${prefix}/qkv/Linear`, { before: lin });
    const outT = sibs[0].outputs[0].type!;
    const rank = outT.shape.length;
    merged.outputs[0].type = { dtype: outT.dtype, shape: [...outT.shape.slice(0, -1), total] };
    const opset = g.opsets.get('') ?? 13;
    const sizes = Tensor.from('int64', [3], ns);
    const split = opset >= 13
      ? addNode(g, 'Split', '', [merged.outputs[0], addConstant(g, sizes, `${prefix}/qkv_split`)], [['axis', rank - 1]], `${prefix}/qkv/Split`, { outputs: 3, before: lin })
      : addNode(g, 'Split', '', [merged.outputs[0]], [['axis', rank - 1], ['split', ns]], `${prefix}/qkv/Split`, { outputs: 3, before: lin });
    sibs.forEach((s, i) => {
      const o = split.outputs[i], old = s.outputs[0];
      o.type = { dtype: old.type!.dtype, shape: [...old.type!.shape] };
      replaceAllUses(g, old, o);
      dropNode(g, s);
      g.values.set(o.name, o);
    });
    ctx.fused(QKV, 'qkv', lin, `${sibs.map((s) => s.name).join(', ')} merged into one Linear [${k}, ${total}] + Split [${ns.join(', ')}]`);
    return true;
  },
};

export const fuseLinear: Pass = fusePass(LINEAR, 'MatMul/Gemm by a constant weight (+ bias) into lfc.Linear', [matmulRule, gemmRule]);
export const fuseLinearAct: Pass = fusePass(EPILOGUE, 'an Activation that is a Linear\'s only use into the Linear\'s epilogue', [epilogueRule]);
export const mergeQkv: Pass = fusePass(QKV, 'three Linears on one input (Q/K/V) into one Linear + Split', [qkvRule]);


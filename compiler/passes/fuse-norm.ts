/**
 * Norm fusion: RMSNorm and LayerNorm in every form exporters emit, then the residual Add in front
 * of a norm (the residual stream) into AddNorm.
 *
 *   fuse-norm      rms-norm      ReduceMean(Pow(x, 2) | Mul(x, x)) over the last axis, keepdims
 *                                → Add(ε) → Sqrt → Reciprocal | Div(1, ·) → Mul(x, ·)
 *                                         | Sqrt → Div(x, ·) | Pow(·, −0.5) → Mul(x, ·)
 *                                → [Cast] → [Mul(γ)]   (γ either side; Casts to/from fp32 around
 *                                the whole, as Hugging Face emits for fp16 models)
 *                 layer-norm     ReduceMean(x) → Sub(x, μ) → d; ReduceMean(Pow(d, 2)) → the same
 *                                inverse-std chain on d → [Cast] → [Mul(γ)] → [Add(β)]
 *                 layer-norm-op  LayerNormalization(x, γ, β) normalising the last axis only
 *                 rms-norm-op    RMSNormalization-23 over the last axis; com.microsoft
 *                 simplified-…   SimplifiedLayerNormalization likewise
 *   fuse-add-norm  add-norm      Add(a, b) → RMSNorm | LayerNorm, where the sum otherwise only
 *                                feeds other residual Adds: AddNorm(x, residual, γ, β) → (y, sum)
 *                 skip-norm-op   com.microsoft Skip(Simplified)LayerNormalization (a bias becomes an
 *                                Add in front; its sum output becomes AddNorm's)
 *
 * Every intermediate must stay inside the pattern; a near miss reports which node broke it.
 */
import { isFloat, type DType } from '../../runtime/dtype.js';
import { castTensor, Tensor } from '../../runtime/tensor.js';
import { dimEq, shapeEq, type Dim } from '../ir/dim.js';
import { addNode } from '../ir/edit.js';
import type { Graph, Node, Value } from '../ir/graph.js';
import type { Pass, PassContext, Rule } from './driver.js';
import {
  constant, constValue, escapeProblem, fusePass, isConstant, isOnnx, lastAxisReduceProblem, missOnce, producedBy, rankOf,
  replacePattern, scalarOf, soleConsumer, vname,
} from './fuse-util.js';

const NORM = 'fuse-norm';
/** A float attribute as the model meant it (1e-5 read from fp32 prints as 0.00001). */
const fmt = (v: number): string => String(+v.toPrecision(7));
const ADD_NORM = 'fuse-add-norm';

/** The consumer of `v` that `accept`s, when it is v's only use; else why not. */
function step(g: Graph, v: Value, accept: (n: Node) => boolean, expect: string): Node | string {
  const from = v.producer ? ` of ${v.producer.label}` : '';
  if (g.outputs.includes(v)) return `intermediate '${v.name}'${from} is a graph output`;
  const ok = v.consumers.filter(accept);
  if (ok.length === 0) {
    const uses = v.consumers.map((c) => c.label).join(', ') || 'nothing';
    return `'${v.name}'${from} feeds ${uses}, expected ${expect}`;
  }
  if (v.consumers.length > 1) {
    return `intermediate '${v.name}'${from} is also used by ${v.consumers.filter((c) => c !== ok[0]).map((c) => c.label).join(', ')}`;
  }
  return ok[0];
}

/** x·x or x²: the squared value, else undefined. */
function squared(n: Node | undefined): Value | undefined {
  if (isOnnx(n, 'Pow') && scalarOf(n.inputs[1]) === 2) return n.inputs[0];
  if (isOnnx(n, 'Mul') && n.inputs[0] && n.inputs[0] === n.inputs[1]) return n.inputs[0];
  return undefined;
}

interface InvStd { eps: number; normed: Value; nodes: Node[] }

/**
 * From a variance (mean of squares, last axis) to `c` scaled by 1/sqrt(variance + ε):
 * Add(ε) → Sqrt → Reciprocal | Div(1, ·) → Mul(c, ·); Sqrt → Div(c, ·); Pow(·, −0.5) → Mul(c, ·).
 */
function matchInvStd(g: Graph, variance: Value, c: Value): InvStd | string {
  const add = step(g, variance, (n) => isOnnx(n, 'Add'), 'Add of the epsilon');
  if (typeof add === 'string') return add;
  const epsV = add.inputs[0] === variance ? add.inputs[1] : add.inputs[0];
  const eps = scalarOf(epsV);
  if (eps === undefined) return `${add.label} adds ${vname(epsV)}, not a constant epsilon`;
  if (!(eps >= 0)) return `${add.label} adds epsilon ${eps}, which is negative`;
  const nodes: Node[] = [add];
  const scaleOf = (inv: Value): InvStd | string => {
    const m = step(g, inv, (n) => isOnnx(n, 'Mul'), `Mul by ${vname(c)}`);
    if (typeof m === 'string') return m;
    const other = m.inputs[0] === inv ? m.inputs[1] : m.inputs[0];
    if (other !== c) return `${m.label} scales ${vname(other)}, not the normalised input ${vname(c)}`;
    nodes.push(m);
    return { eps, normed: m.outputs[0], nodes };
  };
  const next = step(g, add.outputs[0], (n) => isOnnx(n, 'Sqrt') || isOnnx(n, 'Pow'), 'Sqrt, or Pow(·, -0.5)');
  if (typeof next === 'string') return next;
  nodes.push(next);
  if (next.opType === 'Pow') {
    const e = scalarOf(next.inputs[1]);
    if (e !== -0.5) return `${next.label} raises to ${e ?? vname(next.inputs[1])}, not -0.5`;
    return scaleOf(next.outputs[0]);
  }
  const s = next.outputs[0];
  const after = step(g, s, (n) => isOnnx(n, 'Reciprocal') || isOnnx(n, 'Div'), `Reciprocal, Div(1, ·) or Div(${c.name}, ·)`);
  if (typeof after === 'string') return after;
  nodes.push(after);
  if (after.opType === 'Reciprocal') return scaleOf(after.outputs[0]);
  if (after.inputs[1] !== s) return `${after.label} divides by '${s.name}' instead of dividing it`;
  if (after.inputs[0] === c) return { eps, normed: after.outputs[0], nodes };
  if (scalarOf(after.inputs[0]) === 1) return scaleOf(after.outputs[0]);
  return `${after.label} divides ${vname(after.inputs[0])}, not the normalised input ${vname(c)}`;
}

/** A per-channel constant of size h (shape [h] or [1, …, h]) as a [h] tensor, else undefined. */
function channelConst(v: Value | undefined, h: Dim, outRank: number): Tensor | undefined {
  const t = constValue(v);
  if (!t || typeof h !== 'number' || t.size !== h || t.rank > outRank) return undefined;
  if (t.rank === 0 ? h !== 1 : t.shape[t.rank - 1] !== h) return undefined;
  return t.reshape([h]);
}

interface Param { t: Tensor; v: Value }
interface Tail { gamma?: Param; beta?: Param; out: Value; nodes: Node[] }

/** After the normalisation: an optional Cast to another float type, Mul(γ) and (LayerNorm) Add(β). */
function matchTail(g: Graph, normed: Value, h: Dim, withBeta: boolean): Tail {
  const tail: Tail = { out: normed, nodes: [] };
  const cast = soleConsumer(g, normed);
  if (isOnnx(cast, 'Cast') && cast.outputs[0].type && isFloat(cast.outputs[0].type.dtype)) {
    tail.nodes.push(cast);
    tail.out = cast.outputs[0];
  }
  const affine = (op: string): Param | undefined => {
    const n = soleConsumer(g, tail.out);
    if (!isOnnx(n, op)) return undefined;
    const other = n.inputs[0] === tail.out ? n.inputs[1] : n.inputs[0];
    const t = channelConst(other, h, rankOf(tail.out));
    if (!t || !n.outputs[0].type || !tail.out.type || !shapeEq(n.outputs[0].type.shape, tail.out.type.shape)) return undefined;
    tail.nodes.push(n);
    tail.out = n.outputs[0];
    return { t, v: other! };
  };
  tail.gamma = affine('Mul');
  if (withBeta && tail.gamma) tail.beta = affine('Add');
  return tail;
}

/**
 * The norm's input: x, or the fp16/bf16 tensor x was cast up from when the cast serves only the
 * pattern and the norm's result returns to that dtype (then the fused op computes in fp32 itself).
 */
function normInput(x: Value, inside: ReadonlySet<Node>, outDtype: DType | undefined): { x: Value; cast?: Node } {
  const cast = producedBy(x, 'Cast');
  const src = cast?.inputs[0];
  if (!cast || !src?.type || !isFloat(src.type.dtype) || src.type.dtype !== outDtype) return { x };
  if (!x.consumers.every((c) => inside.has(c))) return { x };
  return { x: src, cast };
}

interface NormMatch {
  kind: 'rms' | 'layer';
  root: Node;
  rule: string;
  x: Value;
  eps: number;
  tail: Tail;
  nodes: Set<Node>;
}

/** Build the lfc norm node for a match (γ defaults to ones; a dtype change becomes a Cast). */
function emitNorm(g: Graph, ctx: PassContext, m: NormMatch): boolean {
  const miss = (why: string): false => missOnce(ctx, NORM, m.rule, m.root, why);
  const outNode = m.tail.out.producer!;
  const esc = escapeProblem(g, m.nodes, outNode);
  if (esc) return miss(esc);
  const xt = m.x.type, outT = m.tail.out.type;
  if (!xt || !outT) return false;
  const h = xt.shape[xt.shape.length - 1];
  if (typeof h !== 'number') return miss(`the normalised axis of ${vname(m.x)} has symbolic size ${String(h)}`);
  const dtype = xt.dtype;
  const prefix = m.root.name.replace(/\/[^/]*$/, '') || m.root.name;
  const param = (p: Param | undefined, fill: number, name: string): Value => {
    const vt = p?.v.type;
    if (p && vt && vt.dtype === dtype && vt.shape.length === 1) return p.v; // already a [h] vector
    return constant(g, castTensor(p?.t ?? Tensor.from(dtype, [h], new Array<number>(h).fill(fill)), dtype), `${prefix}/${name}`);
  };
  const op = m.kind === 'rms' ? 'RMSNorm' : 'LayerNorm';
  const inputs = [m.x, param(m.tail.gamma, 1, 'gamma')];
  if (m.tail.beta) inputs.push(param(m.tail.beta, 0, 'beta'));
  const parts = [m.tail.gamma ? 'γ' : 'no γ (ones)', ...(m.kind === 'layer' ? [m.tail.beta ? 'β' : 'no β'] : [])];
  const castTo = outT.dtype !== dtype ? outT.dtype : undefined;
  replacePattern(g, ctx, {
    pass: NORM, rule: m.rule, root: m.root, nodes: m.nodes, op, inputs,
    attrs: [['epsilon', m.eps]], replaces: [m.tail.out], castTo,
    detail: `${op} over ${h} (epsilon ${fmt(m.eps)}, ${parts.join(', ')}${castTo ? `, result cast to ${castTo}` : ''}) from ${m.nodes.size} nodes`,
  });
  return true;
}

const rmsNormRule: Rule = {
  name: 'rms-norm',
  ops: ['ReduceMean'],
  apply(g, r, ctx) {
    const sq = r.inputs[0]?.producer;
    const xf = squared(sq);
    if (!sq || !xf) return false;
    const miss = (why: string): false => missOnce(ctx, NORM, 'rms-norm', r, why);
    const axis = lastAxisReduceProblem(r, rankOf(xf));
    if (axis) return miss(axis);
    const inv = matchInvStd(g, r.outputs[0], xf);
    if (typeof inv === 'string') return miss(inv);
    const h = xf.type!.shape[rankOf(xf) - 1];
    const tail = matchTail(g, inv.normed, h, false);
    const nodes = new Set<Node>([sq, r, ...inv.nodes, ...tail.nodes]);
    const { x, cast } = normInput(xf, nodes, tail.out.type?.dtype);
    if (cast) nodes.add(cast);
    return emitNorm(g, ctx, { kind: 'rms', root: r, rule: 'rms-norm', x, eps: inv.eps, tail, nodes });
  },
};

const layerNormRule: Rule = {
  name: 'layer-norm',
  ops: ['ReduceMean'],
  apply(g, m1, ctx) {
    const xf = m1.inputs[0], mean = m1.outputs[0];
    const sub = mean.consumers.find((c) => isOnnx(c, 'Sub') && c.inputs[0] === xf && c.inputs[1] === mean);
    if (!xf || !sub) return false;
    const miss = (why: string): false => missOnce(ctx, NORM, 'layer-norm', m1, why);
    const axis = lastAxisReduceProblem(m1, rankOf(xf));
    if (axis) return miss(axis);
    const d = sub.outputs[0];
    const sq = d.consumers.find((c) => squared(c) === d);
    if (!sq) return miss(`the centred value '${d.name}' of ${sub.label} is not squared (no Pow(·, 2) or Mul(·, ·) of it)`);
    const r2 = step(g, sq.outputs[0], (n) => isOnnx(n, 'ReduceMean'), 'ReduceMean (the variance)');
    if (typeof r2 === 'string') return miss(r2);
    const axis2 = lastAxisReduceProblem(r2, rankOf(xf));
    if (axis2) return miss(axis2);
    const inv = matchInvStd(g, r2.outputs[0], d);
    if (typeof inv === 'string') return miss(inv);
    const h = xf.type!.shape[rankOf(xf) - 1];
    const tail = matchTail(g, inv.normed, h, true);
    const nodes = new Set<Node>([m1, sub, sq, r2, ...inv.nodes, ...tail.nodes]);
    const { x, cast } = normInput(xf, nodes, tail.out.type?.dtype);
    if (cast) nodes.add(cast);
    return emitNorm(g, ctx, { kind: 'layer', root: m1, rule: 'layer-norm', x, eps: inv.eps, tail, nodes });
  },
};

/** A [h] view of a LayerNormalization parameter: itself when [h], a reshaped constant, or undefined. */
function paramVector(g: Graph, v: Value | undefined, h: Dim, name: string): Value | undefined {
  if (!v?.type) return undefined;
  if (v.type.shape.length === 1 && dimEq(v.type.shape[0], h)) return v;
  const t = channelConst(v, h, Infinity);
  return t && constant(g, t, name);
}

/**
 * A norm op over the last axis into the lfc op: LayerNormalization (→ LayerNorm),
 * RMSNormalization-23 and com.microsoft SimplifiedLayerNormalization (→ RMSNorm).
 */
function normOpRule(name: string, opType: string, domain: string, kind: 'rms' | 'layer'): Rule {
  return {
    name, ops: [opType], domain,
    apply(g, n, ctx) {
      const miss = (why: string): false => missOnce(ctx, NORM, name, n, why);
      const x = n.inputs[0];
      const rank = rankOf(x);
      if (!x || rank < 1) return false;
      const axis = (n.attrs.get('axis') as number | undefined) ?? -1;
      if ((axis < 0 ? axis + rank : axis) !== rank - 1) return miss(`${n.label} normalises from axis ${axis}, not the last axis only`);
      for (const o of n.outputs.slice(1)) {
        if (o.consumers.length || g.outputs.includes(o)) return miss(`${n.label} has its statistics output '${o.name}' used`);
      }
      const h = x.type!.shape[rank - 1];
      const gamma = paramVector(g, n.inputs[1], h, `${n.name}/gamma`);
      if (!gamma) return miss(`${n.label} has scale ${vname(n.inputs[1])} that is not a [${String(h)}] vector`);
      const beta = kind === 'layer' && n.inputs[2] ? paramVector(g, n.inputs[2], h, `${n.name}/beta`) : undefined;
      if (kind === 'layer' && n.inputs[2] && !beta) return miss(`${n.label} has B ${vname(n.inputs[2])} that is not a [${String(h)}] vector`);
      const eps = (n.attrs.get('epsilon') as number | undefined) ?? 1e-5;
      const op = kind === 'rms' ? 'RMSNorm' : 'LayerNorm';
      replacePattern(g, ctx, {
        pass: NORM, rule: name, root: n, nodes: new Set([n]), op,
        inputs: beta ? [x, gamma, beta] : [x, gamma], attrs: [['epsilon', eps]], replaces: [n.outputs[0]],
        detail: `${op} over ${String(h)} (epsilon ${fmt(eps)}) from the ${n.opType} op`,
      });
      return true;
    },
  };
}

/**
 * com.microsoft Skip(Simplified)LayerNormalization → AddNorm. A bias becomes an Add in front of
 * the AddNorm (sum = input + bias + skip); the op's own sum output becomes AddNorm's.
 */
const skipNormRule: Rule = {
  name: 'skip-norm-op',
  ops: ['SkipSimplifiedLayerNormalization', 'SkipLayerNormalization'],
  domain: 'com.microsoft',
  apply(g, n, ctx) {
    const miss = (why: string): false => missOnce(ctx, ADD_NORM, 'skip-norm-op', n, why);
    const rms = n.opType === 'SkipSimplifiedLayerNormalization';
    const [x, skip] = n.inputs;
    if (!x?.type || !skip?.type) return false;
    if (!shapeEq(x.type.shape, skip.type.shape)) return miss(`${n.label} broadcasts skip ${vname(skip)} against ${vname(x)}`);
    for (const o of [n.outputs[1], n.outputs[2]]) {
      if (o && (o.consumers.length || g.outputs.includes(o))) return miss(`${n.label} has its statistics output '${o.name}' used`);
    }
    const h = x.type.shape[x.type.shape.length - 1];
    const gamma = paramVector(g, n.inputs[2], h, `${n.name}/gamma`);
    const beta = !rms && n.inputs[3] ? paramVector(g, n.inputs[3], h, `${n.name}/beta`) : undefined;
    const biasIn = n.inputs[rms ? 3 : 4];
    const bias = biasIn && paramVector(g, biasIn, h, `${n.name}/bias`);
    if (!gamma || (!rms && n.inputs[3] && !beta) || (biasIn && !bias)) return miss(`${n.label} has a gamma, beta or bias that is not a [${String(h)}] vector`);
    let xin = x;
    if (bias) {
      const add = addNode(g, 'Add', '', [x, bias], [], `${n.name}/bias_add`, { before: n });
      add.outputs[0].type = { dtype: x.type.dtype, shape: [...x.type.shape] };
      xin = add.outputs[0];
    }
    const eps = (n.attrs.get('epsilon') as number | undefined) ?? 1e-12;
    const kind = rms ? 'rms' : 'layer';
    const sum = n.outputs[3];
    replacePattern(g, ctx, {
      pass: ADD_NORM, rule: 'skip-norm-op', root: n, nodes: new Set([n]), op: 'AddNorm',
      inputs: [xin, skip, gamma, ...(beta ? [beta] : [])], attrs: [['kind', kind], ['epsilon', eps]],
      replaces: [n.outputs[0], sum], types: [undefined, x.type],
      detail: `AddNorm (${kind}, epsilon ${fmt(eps)}) from the ${n.opType} op${bias ? ', bias added in front' : ''}`,
    });
    return true;
  },
};

const addNormRule: Rule = {
  name: 'add-norm',
  ops: ['RMSNorm', 'LayerNorm'],
  domain: 'lfc',
  apply(g, norm, ctx) {
    const s = norm.inputs[0];
    const add = producedBy(s, 'Add');
    if (!s || !add) return false;
    const [a, b] = add.inputs;
    if (!a || !b || isConstant(a) || isConstant(b)) return false; // a bias, not a residual
    const miss = (why: string): false => missOnce(ctx, ADD_NORM, 'add-norm', norm, why);
    const st = s.type!;
    if (!a.type || !b.type || !shapeEq(a.type.shape, st.shape) || !shapeEq(b.type.shape, st.shape)) {
      return miss(`${add.label} broadcasts its operands, so it is not a residual Add`);
    }
    if (g.outputs.includes(s)) return miss(`the residual sum '${s.name}' of ${add.label} is a graph output`);
    const other = s.consumers.find((c) => c !== norm && !(isOnnx(c, 'Add') && !isConstant(c.inputs[0]) && !isConstant(c.inputs[1])));
    if (other) return miss(`the residual sum '${s.name}' of ${add.label} is also used by ${other.label} (only the norm and residual Adds may use it)`);
    // The residual stream: a previous AddNorm's sum, else the operand with other uses, else the first.
    const stream = (v: Value): number => (v.producer?.opType === 'AddNorm' && v.producer.outputs[1] === v ? 2 : v.consumers.length > 1 ? 1 : 0);
    const [x, residual] = stream(b) > stream(a) ? [a, b] : [b, a];
    const kind = norm.opType === 'RMSNorm' ? 'rms' : 'layer';
    const eps = (norm.attrs.get('epsilon') as number | undefined) ?? 1e-5;
    replacePattern(g, ctx, {
      pass: ADD_NORM, rule: 'add-norm', root: norm, nodes: new Set([add, norm]), op: 'AddNorm',
      inputs: [x, residual, ...norm.inputs.slice(1)], attrs: [['kind', kind], ['epsilon', eps]],
      replaces: [norm.outputs[0], s],
      detail: `AddNorm (${kind}, epsilon ${fmt(eps)}) of ${add.label}; the sum feeds ${s.consumers.length - 1} residual Add(s)`,
    });
    return true;
  },
};

export const fuseNorm: Pass = fusePass(NORM, 'RMSNorm and LayerNorm (op and decomposed forms) into lfc norms', [
  layerNormRule, rmsNormRule,
  normOpRule('layer-norm-op', 'LayerNormalization', '', 'layer'),
  normOpRule('rms-norm-op', 'RMSNormalization', '', 'rms'),
  normOpRule('simplified-layer-norm-op', 'SimplifiedLayerNormalization', 'com.microsoft', 'rms'),
  normOpRule('simplified-layer-norm-op', 'SimplifiedLayerNormalization', '', 'rms'),
]);
export const fuseAddNorm: Pass = fusePass(ADD_NORM, 'residual Add + norm into lfc.AddNorm (the sum as a second output)', [addNormRule, skipNormRule]);

/**
 * MLP fusion: activations written out in elementwise ops become lfc.Activation, and an activation
 * multiplied by a second projection becomes lfc.GatedAct (SwiGLU, GeGLU).
 *
 *   fuse-activation  activation  rooted at Tanh, Erf or Sigmoid t = f(u). The expression around it
 *                                is read as a polynomial in x and t (Add, Sub, Mul, Div by a
 *                                constant, Neg, Pow by a small integer, scalar constants), so
 *                                every association order matches:
 *                                  gelu_tanh  0.5·x + 0.5·x·t,  u = c·x + c·a·x³, c ≈ √(2/π), a ≈ 0.044715
 *                                  gelu_erf   0.5·x + 0.5·x·t,  u = x/√2 (Div by 1.4142135 or Mul by 0.70710678)
 *                                  silu       x·t,              u = x
 *                                Constants match within 1e-6 relative (fp32), or the rounding
 *                                error of the model's fp16/bf16 constants.
 *                    relu        the Relu op (so it can join a Linear's epilogue)
 *                    gelu-op     Gelu-20 {approximate}; com.microsoft Gelu, FastGelu, BiasGelu
 *   fuse-gated-mlp   gated       Mul(Activation(gate), up), gate and up of one shape → GatedAct
 *
 * A near miss names the node and the term or constant that differs.
 */
import { shapeEq } from '../ir/dim.js';
import { addNode } from '../ir/edit.js';
import type { Graph, Node, Value } from '../ir/graph.js';
import type { Pass, Rule } from './driver.js';
import {
  constTolerance, escapeProblem, fusePass, isConstant, missOnce, near, replacePattern, scalarOf, soleConsumer, vname,
} from './fuse-util.js';

const ACT = 'fuse-activation';
const GATED = 'fuse-gated-mlp';

// ---- Polynomials in one or two atoms (x, and t = f(u)) --------------------------------------------

/** Monomial exponents joined by ',' → coefficient. */
type Poly = Map<string, number>;

const ARITH = new Set(['Add', 'Sub', 'Mul', 'Div', 'Neg', 'Pow']);
const MAX_DEPTH = 16;

function mono(exps: number[], c: number): Poly { return new Map([[exps.join(','), c]]); }

function combine(p: Poly, q: Poly, sign: number): Poly {
  const r = new Map(p);
  for (const [k, c] of q) r.set(k, (r.get(k) ?? 0) + sign * c);
  return r;
}

function product(p: Poly, q: Poly): Poly {
  const r: Poly = new Map();
  for (const [a, ca] of p) {
    for (const [b, cb] of q) {
      const ea = a.split(',').map(Number), eb = b.split(',').map(Number);
      const k = ea.map((e, i) => e + eb[i]).join(',');
      r.set(k, (r.get(k) ?? 0) + ca * cb);
    }
  }
  return r;
}

const scaled = (p: Poly, s: number): Poly => new Map([...p].map(([k, c]) => [k, c * s]));

/** Drop terms that cancelled. */
function tidy(p: Poly): Poly {
  const r: Poly = new Map();
  for (const [k, c] of p) if (Math.abs(c) > 1e-12) r.set(k, c);
  return r;
}

/**
 * `v` as a polynomial in `atoms`, adding every node it reads through to `seen`; or why it is not
 * one (naming the node that is not arithmetic on the atoms).
 */
function polyOf(v: Value | undefined, atoms: readonly Value[], seen: Set<Node>, depth = 0): Poly | string {
  if (!v) return 'a missing operand';
  const zero = atoms.map(() => 0);
  const i = atoms.indexOf(v);
  if (i >= 0) return mono(zero.map((_, j) => (j === i ? 1 : 0)), 1);
  const s = scalarOf(v);
  if (s !== undefined) return mono(zero, s);
  const p = v.producer;
  const names = atoms.map((a) => `'${a.name}'`).join(' and ');
  if (!p || p.domain !== '' || !ARITH.has(p.opType) || depth > MAX_DEPTH) {
    return `'${v.name}'${p ? ` (from ${p.label})` : ''} is neither ${names} nor a constant`;
  }
  const sub = (k: number): Poly | string => polyOf(p.inputs[k], atoms, seen, depth + 1);
  let r: Poly | string;
  const a = sub(0);
  if (typeof a === 'string') return a;
  switch (p.opType) {
    case 'Neg': r = scaled(a, -1); break;
    case 'Pow': {
      const e = scalarOf(p.inputs[1]);
      if (e === undefined || !Number.isInteger(e) || e < 0 || e > 4) return `${p.label} raises to ${e ?? vname(p.inputs[1])}, not a small integer power`;
      r = mono(zero, 1);
      for (let k = 0; k < e; k++) r = product(r, a);
      break;
    }
    case 'Div': {
      const d = scalarOf(p.inputs[1]);
      if (d === undefined || d === 0) return `${p.label} divides by ${vname(p.inputs[1])}, not a non-zero constant`;
      r = scaled(a, 1 / d);
      break;
    }
    default: {
      const b = sub(1);
      if (typeof b === 'string') return b;
      r = p.opType === 'Mul' ? product(a, b) : combine(a, b, p.opType === 'Add' ? 1 : -1);
    }
  }
  seen.add(p);
  return tidy(r);
}

function polyStr(p: Poly, names: readonly string[]): string {
  if (p.size === 0) return '0';
  const degree = (k: string): number => k.split(',').reduce((a, e) => a + Number(e), 0);
  const terms = [...p].sort(([a], [b]) => degree(a) - degree(b) || (a < b ? -1 : a > b ? 1 : 0));
  return terms.map(([k, c]) => {
    const f = k.split(',').map(Number).flatMap((e, i) => (e === 0 ? [] : [e === 1 ? names[i] : `${names[i]}^${e}`]));
    return [String(+c.toPrecision(7)), ...f].join('·');
  }).join(' + ');
}

// ---- Activation forms ----------------------------------------------------------------------------

type Kind = 'gelu_tanh' | 'gelu_erf' | 'silu';
const KIND: Record<string, Kind> = { Tanh: 'gelu_tanh', Erf: 'gelu_erf', Sigmoid: 'silu' };
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const GELU_A = 0.044715;

/** Check the polynomials against the kind's form; undefined when they match, else what differs. */
function formProblem(kind: Kind, outer: Poly, inner: Poly, tol: number, fname: string): string | undefined {
  const only = (p: Poly, keys: string[]): boolean => p.size === keys.length && keys.every((k) => p.has(k));
  const ok = (v: number | undefined, ref: number): boolean => v !== undefined && near(v, ref, tol);
  const outerStr = polyStr(outer, ['x', fname]);
  if (kind === 'silu') {
    if (!only(outer, ['1,1']) || !ok(outer.get('1,1'), 1)) return `computes ${outerStr}, expected x·sigmoid(x)`;
    if (!only(inner, ['1']) || !ok(inner.get('1'), 1)) return `takes sigmoid of ${polyStr(inner, ['x'])}, expected sigmoid(x)`;
    return undefined;
  }
  if (!only(outer, ['1,0', '1,1']) || !ok(outer.get('1,0'), 0.5) || !ok(outer.get('1,1'), 0.5)) {
    return `computes ${outerStr}, expected 0.5·x + 0.5·x·${fname} (0.5·x·(1 + ${fname}(u)))`;
  }
  const innerStr = polyStr(inner, ['x']);
  if (kind === 'gelu_erf') {
    if (!only(inner, ['1']) || !ok(inner.get('1'), Math.SQRT1_2)) return `takes erf of ${innerStr}, expected x/√2 = 0.7071068·x`;
    return undefined;
  }
  if (!only(inner, ['1', '3'])) return `takes tanh of ${innerStr}, expected √(2/π)·(x + 0.044715·x^3)`;
  const c = inner.get('1')!, a = inner.get('3')! / c;
  if (!ok(c, SQRT_2_OVER_PI)) return `scales the tanh argument by ${+c.toPrecision(9)}, expected √(2/π) = 0.7978845608`;
  if (!ok(a, GELU_A)) return `has x^3 coefficient ${+a.toPrecision(9)} inside tanh, expected 0.044715`;
  return undefined;
}

/** Non-constant values of an expression (breadth first), not descending into `stop`. */
function operands(root: Node, stop: Value): Value[] {
  const out: Value[] = [];
  const queue = [...root.inputs];
  while (queue.length) {
    const v = queue.shift();
    if (!v || v === stop || out.includes(v) || scalarOf(v) !== undefined) continue;
    out.push(v);
    const p = v.producer;
    if (p && p.domain === '' && ARITH.has(p.opType) && out.length < 32) queue.push(...p.inputs);
  }
  return out;
}

const activationRule: Rule = {
  name: 'activation',
  ops: ['Tanh', 'Erf', 'Sigmoid'],
  apply(g, f, ctx) {
    const t = f.outputs[0], u = f.inputs[0];
    const kind = KIND[f.opType];
    if (!u) return false;
    const miss = (why: string): false => missOnce(ctx, ACT, 'activation', f, why);
    // Candidate roots: the chain of single-use arithmetic above t, tried largest first.
    const roots: Node[] = [];
    for (let cur = t; roots.length < 6;) {
      const c = soleConsumer(g, cur);
      if (!c || c.domain !== '' || !ARITH.has(c.opType)) break;
      roots.push(c);
      cur = c.outputs[0];
    }
    if (roots.length === 0) {
      const arith = t.consumers.filter((c) => c.domain === '' && ARITH.has(c.opType));
      if (arith.length && t.consumers.length > 1) return miss(`'${t.name}' is used by ${t.consumers.map((c) => c.label).join(', ')}; an activation uses it once`);
      return false;
    }
    const tol = constTolerance(u.type?.dtype);
    const fname = f.opType.toLowerCase();
    let best = { level: -1, why: '' };
    const note = (level: number, why: string): void => { if (level > best.level) best = { level, why }; };
    for (const root of [...roots].reverse()) {
      for (const x of operands(root, t)) {
        const seen = new Set<Node>();
        const outer = polyOf(root.outputs[0], [x, t], seen);
        if (typeof outer === 'string') { note(0, `${root.label}: ${outer}`); continue; }
        const seenIn = new Set<Node>();
        const inner = polyOf(u, [x], seenIn);
        if (typeof inner === 'string') {
          if (kind === 'silu' && outer.size === 1 && outer.has('1,1')) {
            note(1, `${f.label} takes ${vname(u)}, not the tensor ${vname(x)} its result multiplies in ${root.label} (SiLU is x·sigmoid(x))`);
          } else {
            note(1, `${f.label}'s argument is not a polynomial in ${vname(x)}: ${inner}`);
          }
          continue;
        }
        const why = formProblem(kind, outer, inner, tol, fname);
        if (why) { note(2, `${kind} around ${f.label} with x = ${vname(x)} ${why}`); continue; }
        const nodes = new Set<Node>([...seen, ...seenIn, f]);
        const esc = escapeProblem(g, nodes, root);
        if (esc) return miss(esc);
        const xt = x.type, yt = root.outputs[0].type;
        if (!xt || !yt || xt.dtype !== yt.dtype || !shapeEq(xt.shape, yt.shape)) {
          return miss(`${root.label}: the constants broadcast ${vname(x)} to another shape`);
        }
        replacePattern(g, ctx, {
          pass: ACT, rule: 'activation', root: f, nodes, op: 'Activation', inputs: [x], attrs: [['kind', kind]],
          replaces: [root.outputs[0]], detail: `${kind} of ${vname(x)} from ${nodes.size} nodes`,
        });
        return true;
      }
    }
    return miss(best.why);
  },
};

/** The ONNX Relu op, so that it can join a Linear's epilogue like the other activations. */
const reluRule: Rule = {
  name: 'relu',
  ops: ['Relu'],
  apply(g, n, ctx) {
    if (!n.inputs[0]) return false;
    replacePattern(g, ctx, {
      pass: ACT, rule: 'relu', root: n, nodes: new Set([n]), op: 'Activation', inputs: [n.inputs[0]],
      attrs: [['kind', 'relu']], replaces: [n.outputs[0]], detail: `relu of ${vname(n.inputs[0])}`,
    });
    return true;
  },
};

/** Gelu-20 {approximate} and com.microsoft Gelu / FastGelu(X, bias?) / BiasGelu(A, B): a bias becomes an Add. */
function geluOpRule(name: string, ops: string[], domain: string): Rule {
  return {
    name, ops, domain,
    apply(g, n, ctx) {
      const x = n.inputs[0];
      if (!x?.type) return false;
      const kind = n.opType === 'FastGelu' || (n.attrs.get('approximate') ?? 'none') === 'tanh' ? 'gelu_tanh' : 'gelu_erf';
      let input = x;
      const bias = n.opType === 'Gelu' ? undefined : n.inputs[1];
      if (bias) {
        const add = addNode(g, 'Add', '', [x, bias], [], `${n.name}/bias_add`, { before: n });
        add.outputs[0].type = { dtype: x.type.dtype, shape: [...x.type.shape] };
        input = add.outputs[0];
      }
      replacePattern(g, ctx, {
        pass: ACT, rule: name, root: n, nodes: new Set([n]), op: 'Activation', inputs: [input],
        attrs: [['kind', kind]], replaces: [n.outputs[0]], detail: `${kind} from the ${n.opType} op${bias ? ', bias added in front' : ''}`,
      });
      return true;
    },
  };
}

// ---- Gated MLP -----------------------------------------------------------------------------------

const isActivation = (n: Node | undefined): n is Node => !!n && n.domain === 'lfc' && n.opType === 'Activation';

/** Whether gate and up are Linears on one input (the gated-MLP shape, for the report). */
function sameInputLinears(gate: Value, up: Value): boolean {
  const p = gate.producer, q = up.producer;
  return !!p && !!q && p.opType === 'Linear' && q.opType === 'Linear' && p.inputs[0] === q.inputs[0];
}

const gatedRule: Rule = {
  name: 'gated',
  ops: ['Mul'],
  apply(g: Graph, mul, ctx) {
    for (const i of [0, 1]) {
      const a = mul.inputs[i], up = mul.inputs[1 - i];
      const act = a?.producer;
      if (!a || !up || !isActivation(act) || isConstant(up)) continue;
      const miss = (why: string): false => missOnce(ctx, GATED, 'gated', mul, why);
      if (soleConsumer(g, a) !== mul) {
        return miss(`the activation '${a.name}' of ${act.label} is also used by ${a.consumers.filter((c) => c !== mul).map((c) => c.label).join(', ') || 'a graph output'}`);
      }
      const out = mul.outputs[0].type, ut = up.type, at = a.type;
      if (!out || !ut || !at || !shapeEq(at.shape, out.shape) || !shapeEq(ut.shape, out.shape)) {
        return miss(`${mul.label} broadcasts ${vname(a)} against ${vname(up)}`);
      }
      const gate = act.inputs[0]!;
      const kind = act.attrs.get('kind') as string;
      replacePattern(g, ctx, {
        pass: GATED, rule: 'gated', root: mul, nodes: new Set([act, mul]), op: 'GatedAct',
        inputs: [gate, up], attrs: [['kind', kind]], replaces: [mul.outputs[0]],
        detail: `GatedAct ${kind}(${vname(gate)}) · ${vname(up)}${sameInputLinears(gate, up) ? ' (gated MLP: gate and up project one input)' : ''}`,
      });
      return true;
    }
    return false;
  },
};

export const fuseActivation: Pass = fusePass(ACT, 'GELU (tanh, erf) and SiLU written in elementwise ops, and Relu, into lfc.Activation', [
  activationRule, reluRule,
  geluOpRule('gelu-op', ['Gelu'], ''),
  geluOpRule('ms-gelu-op', ['Gelu', 'FastGelu', 'BiasGelu'], 'com.microsoft'),
]);
export const fuseGatedMlp: Pass = fusePass(GATED, 'Mul(Activation(gate), up) into lfc.GatedAct', [gatedRule]);

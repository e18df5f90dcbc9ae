/**
 * Canonicalisation: make equivalent graphs look the same before fusion matches them.
 *
 *   fold-constants   nodes whose outputs inference already knows (shape arithmetic over symbolic
 *                    dims stays symbolic in `known`; only numeric results fold), and nodes computing
 *                    from constants only (e.g. RoPE inv_freq, causal mask tables) become initializers
 *   strip-noops      Identity, Dropout (inference), Cast to the same type, Reshape/Expand/Transpose
 *                    that do not change the tensor
 *   normalize        Div(1, y) → Reciprocal(y); Mul(x, x) → Pow(x, 2); commutative ops put a
 *                    constant operand second
 *   cse              identical nodes (same op, attributes, inputs) computed once
 */
import { Tensor, sizeOf } from '../../runtime/tensor.js';
import { addConstant, addNode, replaceAllUses } from '../ir/edit.js';
import { shapeEq, isSym } from '../ir/dim.js';
import type { AttrValue, Graph, Node, Value } from '../ir/graph.js';
import { opContext, opFor } from '../ir/infer.js';
import { rewritePass, type Pass, type Rule } from './driver.js';

/** Largest constant (elements) folding may materialise. */
const FOLD_LIMIT = 1 << 22;

const isConst = (v: Value | undefined): boolean => !v || !!v.initializer;
const NONDETERMINISTIC = new Set(['RandomNormal', 'RandomUniform', 'RandomNormalLike', 'RandomUniformLike', 'Bernoulli', 'Multinomial']);

export function constValue(v: Value | undefined): Tensor | undefined {
  if (!v) return undefined;
  if (v.initializer) return v.initializer.load();
  if (v.known && v.type && !v.type.shape.some(isSym) && v.known.every((d) => typeof d === 'number')) {
    return Tensor.from(v.type.dtype, v.type.shape as number[], v.known as number[]);
  }
  return undefined;
}

/** The single numeric value of a constant with one element, else undefined. */
export function scalarOf(v: Value | undefined): number | undefined {
  const t = constValue(v);
  return t && t.size === 1 ? t.data[0] : undefined;
}

const foldRule: Rule = {
  name: 'fold',
  ops: [], // matched by the pass directly (every op)
  apply(g, node) {
    if (NONDETERMINISTIC.has(node.opType)) return false;
    const outsKnown = node.outputs.every((o) => o.consumers.length === 0 || (o.type && !o.type.shape.some(isSym) && o.known?.every((d) => typeof d === 'number')));
    const insConst = node.inputs.every(isConst) && node.inputs.some((v) => v);
    if (!outsKnown && !insConst) return false;
    if (!node.outputs.every((o) => o.type && !o.type.shape.some(isSym) && sizeOf(o.type.shape as number[]) <= FOLD_LIMIT)) return false;
    let results: Tensor[];
    if (outsKnown) {
      results = node.outputs.map((o) => constValue(o) ?? Tensor.zeros(o.type!.dtype, o.type!.shape as number[]));
    } else {
      const ins = node.inputs.map((v) => constValue(v));
      results = opFor(node).evaluate(opContext(node), ins);
    }
    node.outputs.forEach((o, i) => {
      if (o.consumers.length === 0 && !g.outputs.includes(o)) return;
      replaceAllUses(g, o, addConstant(g, results[i], `${node.name}:const${i}`));
    });
    return true;
  },
};

export const foldConstants: Pass = {
  name: 'fold-constants',
  description: 'evaluate nodes whose results are known at compile time into initializers',
  run(g, ctx) {
    let n = 0;
    for (const node of [...g.nodes]) if (!node.removed && foldRule.apply(g, node, ctx)) n++;
    return n;
  },
};

/** Forward `node`'s output `i` to `v` (the node becomes dead). */
function forward(g: Graph, node: Node, v: Value, i = 0): boolean {
  replaceAllUses(g, node.outputs[i], v);
  return true;
}

const sameType = (a: Value | undefined, b: Value | undefined): boolean =>
  !!a?.type && !!b?.type && a.type.dtype === b.type.dtype && shapeEq(a.type.shape, b.type.shape);

const noopRules: Rule[] = [
  { name: 'identity', ops: ['Identity'], apply: (g, n) => forward(g, n, n.inputs[0]!) },
  {
    name: 'dropout', ops: ['Dropout'],
    apply: (g, n) => {
      if (n.outputs[1]?.consumers.length || (n.outputs[1] && g.outputs.includes(n.outputs[1]))) return false;
      const training = n.inputs[2];
      if (training && scalarOf(training) !== 0) return false;
      return forward(g, n, n.inputs[0]!);
    },
  },
  { name: 'cast-same-type', ops: ['Cast', 'CastLike'], apply: (g, n) => sameType(n.inputs[0], n.outputs[0]) && forward(g, n, n.inputs[0]!) },
  { name: 'reshape-same-shape', ops: ['Reshape', 'Expand', 'Squeeze', 'Unsqueeze', 'Flatten'], apply: (g, n) => sameType(n.inputs[0], n.outputs[0]) && forward(g, n, n.inputs[0]!) },
  {
    name: 'transpose-identity', ops: ['Transpose'],
    apply: (g, n) => {
      const perm = n.attrs.get('perm') as number[] | undefined;
      return !!perm && perm.every((p, i) => p === i) && forward(g, n, n.inputs[0]!);
    },
  },
];

export const stripNoops: Pass = rewritePass('strip-noops', 'remove Identity, inference Dropout, same-type Cast, shape ops that change nothing', noopRules);

const COMMUTATIVE = new Set(['Add', 'Mul', 'Max', 'Min', 'Equal', 'And', 'Or', 'Sum']);
const normalizeRules: Rule[] = [
  {
    name: 'div-one-to-reciprocal', ops: ['Div'],
    apply(g, n) {
      if (scalarOf(n.inputs[0]) !== 1 || !sameType(n.inputs[1], n.outputs[0])) return false;
      const r = addNode(g, 'Reciprocal', '', [n.inputs[1]], [], `${n.name}/reciprocal`);
      return forward(g, n, r.outputs[0]);
    },
  },
  {
    name: 'mul-self-to-pow', ops: ['Mul'],
    apply(g, n) {
      if (n.inputs[0] !== n.inputs[1] || !n.inputs[0]?.type) return false;
      const two = addConstant(g, Tensor.scalar(n.inputs[0].type.dtype, 2), `${n.name}/two`);
      const p = addNode(g, 'Pow', '', [n.inputs[0], two], [], `${n.name}/pow`);
      return forward(g, n, p.outputs[0]);
    },
  },
  {
    name: 'constant-second', ops: [...COMMUTATIVE],
    apply(_g, n) {
      if (n.inputs.length !== 2 || !isConst(n.inputs[0]) || isConst(n.inputs[1])) return false;
      n.inputs.reverse();
      return true;
    },
  },
];

export const normalize: Pass = rewritePass('normalize', 'canonical forms: Reciprocal for 1/y, Pow for x·x, constants second', normalizeRules);

let nextGraphId = 0;
const graphIds = new WeakMap<object, number>();
function attrKey(a: AttrValue): string {
  if (a instanceof Tensor) return `T${a.dtype}[${a.shape}]${a.toArray().join(',')}`;
  if (typeof a === 'object' && !Array.isArray(a)) { // a subgraph (If branch): never equal to another node's
    if (!graphIds.has(a)) graphIds.set(a, nextGraphId++);
    return `G${graphIds.get(a)}`;
  }
  return JSON.stringify(a);
}

export const cse: Pass = {
  name: 'cse',
  description: 'compute identical nodes once',
  run(g) {
    const ids = new Map<Value, number>();
    let next = 0;
    const id = (v: Value | undefined): string => {
      if (!v) return '_';
      if (!ids.has(v)) ids.set(v, next++);
      return String(ids.get(v));
    };
    const seen = new Map<string, Node>();
    let merged = 0;
    for (const n of [...g.nodes]) {
      if (NONDETERMINISTIC.has(n.opType)) continue;
      const key = `${n.domain}.${n.opType}(${n.inputs.map(id).join(',')}){${[...n.attrs].sort(([a], [b]) => a.localeCompare(b)).map(([k, a]) => `${k}=${attrKey(a)}`).join(';')}}`;
      const prev = seen.get(key);
      if (prev && prev.outputs.length === n.outputs.length) {
        n.outputs.forEach((o, i) => replaceAllUses(g, o, prev.outputs[i]));
        merged++;
      } else {
        seen.set(key, n);
      }
    }
    return merged;
  },
};

export const CANONICALIZE: readonly Pass[] = [foldConstants, stripNoops, normalize, cse, foldConstants];

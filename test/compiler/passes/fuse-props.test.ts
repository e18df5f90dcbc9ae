/**
 * Property tests of the activation and norm matchers: random but equivalent spellings of GELU
 * (tanh and erf), SiLU and RMSNorm (operand order, association, how x³ and the constants are
 * written, where 0.5 is applied) always fuse and compute the same values; the same expressions
 * with one constant off by 1% never fuse and report a near miss.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Value } from '../../../compiler/ir/graph.js';
import { mulberry32 } from '../../helpers/decoder.js';
import { Builder, countOps, fuse, fuseAndCompare, missed, sym } from './fuse-helpers.js';

const X = [sym('b'), 6];
const C = Math.sqrt(2 / Math.PI);

/** A random binary tree of `op` over the given operands (shuffled). */
function tree(b: Builder, op: 'Mul' | 'Add', xs: Value[], rnd: () => number): Value {
  const items = [...xs];
  for (let i = items.length - 1; i > 0; i--) { const j = Math.floor(rnd() * (i + 1)); [items[i], items[j]] = [items[j], items[i]]; }
  while (items.length > 1) {
    const i = Math.floor(rnd() * (items.length - 1));
    items.splice(i, 2, b.op(op, [items[i], items[i + 1]]));
  }
  return items[0];
}

interface Consts { half: number; a: number; c: number; sqrt2: number }
const EXACT: Consts = { half: 0.5, a: 0.044715, c: C, sqrt2: Math.SQRT2 };

/** x³ in one of the ways exporters write it. */
function cube(b: Builder, x: Value, rnd: () => number): Value {
  const k = Math.floor(rnd() * 3);
  if (k === 0) return b.op('Pow', [x, b.c(3)]);
  if (k === 1) return tree(b, 'Mul', [x, x, x], rnd);
  return b.op('Mul', [b.op('Pow', [x, b.c(2)]), x]);
}

/** 0.5·x·(1 + t): as a product in random order, or distributed as 0.5·x + 0.5·x·t. */
function outer(b: Builder, x: Value, t: Value, half: number, rnd: () => number): Value {
  if (rnd() < 0.25) return b.op('Add', [b.op('Mul', [x, b.c(half)]), tree(b, 'Mul', [x, t, b.c(half)], rnd)]);
  const onePlus = rnd() < 0.5 ? b.op('Add', [t, b.c(1)]) : b.op('Add', [b.c(1), t]);
  if (rnd() < 0.2) return b.op('Div', [tree(b, 'Mul', [x, onePlus], rnd), b.c(1 / half)]);
  return tree(b, 'Mul', [x, onePlus, b.c(half)], rnd);
}

function geluTanh(k: Consts, seed: number) {
  const rnd = mulberry32(seed);
  const b = new Builder();
  const x = b.input('x', X);
  const x3 = cube(b, x, rnd);
  let u: Value;
  const form = Math.floor(rnd() * 3);
  if (form === 0) u = tree(b, 'Mul', [tree(b, 'Add', [x, tree(b, 'Mul', [x3, b.c(k.a)], rnd)], rnd), b.c(k.c)], rnd);
  else if (form === 1) u = tree(b, 'Add', [tree(b, 'Mul', [x, b.c(k.c)], rnd), tree(b, 'Mul', [x3, b.c(k.c * k.a)], rnd)], rnd);
  else u = b.op('Div', [b.op('Add', [x, b.op('Mul', [x3, b.c(k.a)])]), b.c(1 / k.c)]);
  return b.output(outer(b, x, b.op('Tanh', [u]), k.half, rnd));
}

function geluErf(k: Consts, seed: number) {
  const rnd = mulberry32(seed);
  const b = new Builder();
  const x = b.input('x', X);
  const u = rnd() < 0.5 ? b.op('Div', [x, b.c(k.sqrt2)]) : tree(b, 'Mul', [x, b.c(1 / k.sqrt2)], rnd);
  return b.output(outer(b, x, b.op('Erf', [u]), k.half, rnd));
}

/** One of the constants, perturbed by 1%. */
const perturbed = (which: number): Consts => {
  const k = { ...EXACT };
  const key = (['half', 'a', 'c', 'sqrt2'] as const)[which];
  k[key] *= 1.01;
  return k;
};

describe('activation matcher properties', () => {
  it('every spelling of GELU (tanh) fuses and computes the same', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 1e9 }), (seed) => {
      const { g, events } = fuseAndCompare(() => geluTanh(EXACT, seed));
      expect(g.nodes.map((n) => n.opType)).toEqual(['Activation']);
      expect(g.nodes[0].attrs.get('kind')).toBe('gelu_tanh');
      expect(missed(events)).toEqual([]);
    }), { numRuns: 60 });
  });

  it('every spelling of GELU (erf) fuses and computes the same', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 1e9 }), (seed) => {
      const { g } = fuseAndCompare(() => geluErf(EXACT, seed));
      expect(g.nodes.map((n) => `${n.opType}/${String(n.attrs.get('kind'))}`)).toEqual(['Activation/gelu_erf']);
    }), { numRuns: 40 });
  });

  it('a constant off by 1% never fuses and is reported', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 1e9 }), fc.integer({ min: 0, max: 2 }), fc.boolean(), (seed, which, tanh) => {
      const g = tanh ? geluTanh(perturbed(which), seed) : geluErf(perturbed(which === 0 ? 0 : 3), seed);
      const ev = fuse(g);
      expect(countOps(g, 'lfc.Activation')).toBe(0);
      expect(missed(ev).length).toBe(1);
      expect(missed(ev)[0].detail).toMatch(/expected/);
    }), { numRuns: 60 });
  });

  it('SiLU fuses with any operand order, and not when Sigmoid reads another tensor', () => {
    fc.assert(fc.property(fc.boolean(), fc.boolean(), (swap, other) => {
      const make = () => {
        const b = new Builder();
        const x = b.input('x', X), y = b.input('y', X);
        const s = b.op('Sigmoid', [other ? y : x]);
        return b.output(b.op('Mul', swap ? [s, x] : [x, s]));
      };
      const { g, events } = fuseAndCompare(make);
      expect(countOps(g, 'lfc.Activation')).toBe(other ? 0 : 1);
      expect(missed(events).length).toBe(other ? 1 : 0);
    }));
  });
});

describe('norm matcher properties', () => {
  it('RMSNorm spellings (square, inverse, operand orders, γ side) fuse and compute the same', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 1e9 }), (seed) => {
      const make = () => {
        const rnd = mulberry32(seed);
        const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)];
        const b = new Builder();
        const x = b.input('x', [sym('t'), 8]);
        const sq = pick([() => b.op('Pow', [x, b.c(2)]), () => b.op('Mul', [x, x])])();
        const v = b.op('ReduceMean', [sq], { axes: [pick([-1, 1])] });
        const eps = b.c(1e-6);
        const ve = b.op('Add', rnd() < 0.5 ? [v, eps] : [eps, v]);
        const n = pick([
          () => b.op('Div', [x, b.op('Sqrt', [ve])]),
          () => tree(b, 'Mul', [x, b.op('Reciprocal', [b.op('Sqrt', [ve])])], rnd),
          () => b.op('Mul', [b.op('Div', [b.c(1), b.op('Sqrt', [ve])]), x]),
          () => b.op('Mul', [x, b.op('Pow', [ve, b.c(-0.5)])]),
        ])();
        const gamma = b.rand([8], 3);
        return b.output(b.op('Mul', rnd() < 0.5 ? [n, gamma] : [gamma, n]));
      };
      const { g } = fuseAndCompare(make);
      expect(g.nodes.map((n) => n.opType)).toEqual(['RMSNorm']);
    }), { numRuns: 40 });
  });
});

/**
 * fuse-activation and fuse-gated-mlp: GELU (tanh, erf) in its association orders and constant
 * spellings, SiLU either way round, gated MLPs; near misses (a constant off by 1e-2, Sigmoid of
 * another tensor, an escaping intermediate) are reported with the node and leave the graph as is.
 */
import { describe, expect, it } from 'vitest';
import type { Value } from '../../../compiler/ir/graph.js';
import type { DType } from '../../../runtime/dtype.js';
import { Builder, countOps, fuse, fuseAndCompare, missed, sym } from './fuse-helpers.js';

const X = [sym('b'), sym('s'), 16];
const C = Math.sqrt(2 / Math.PI);

type Expr = (b: Builder, x: Value, dt: DType) => Value;

/** A graph computing expr(x), x = Relu-free input (so the activation is the whole graph). */
function graphOf(expr: Expr, dt: DType = 'float32', extra?: (b: Builder, x: Value, y: Value) => Value[]) {
  const b = new Builder();
  const x = b.input('x', X, dt);
  const y = expr(b, x, dt);
  return b.output(y, ...(extra ? extra(b, x, y) : []));
}

/** GPT-2 (HF NewGELU): 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) as Mul(Mul(x, 0.5), Add(Tanh, 1)). */
const geluGpt2 = (a = 0.044715, c = C): Expr => (b, x, dt) => {
  const half = b.op('Mul', [x, b.c(0.5, dt)]);
  const cube = b.op('Pow', [x, b.c(3, dt)]);
  const inner = b.op('Add', [x, b.op('Mul', [cube, b.c(a, dt)])]);
  const t = b.op('Tanh', [b.op('Mul', [inner, b.c(c, dt)])], {}, '/mlp/Tanh');
  return b.op('Mul', [half, b.op('Add', [t, b.c(1, dt)])]);
};

/** x·(0.5·(1 + tanh(c·x + c·a·x·x·x))), expanded inner product, 0.5 applied to the bracket. */
const geluExpanded: Expr = (b, x) => {
  const x3 = b.op('Mul', [x, b.op('Mul', [x, x])]);
  const u = b.op('Add', [b.op('Mul', [b.c(C), x]), b.op('Mul', [x3, b.c(C * 0.044715)])]);
  const t = b.op('Tanh', [u]);
  return b.op('Mul', [x, b.op('Mul', [b.c(0.5), b.op('Add', [b.c(1), t])])]);
};

/** (x·(1 + tanh(…)))·0.5 with the polynomial as x·(1 + a·x²)·c. */
const geluHalfLast: Expr = (b, x) => {
  const x2 = b.op('Pow', [x, b.c(2)]);
  const u = b.op('Mul', [b.op('Mul', [x, b.op('Add', [b.c(1), b.op('Mul', [x2, b.c(0.044715)])])]), b.c(C)]);
  return b.op('Mul', [b.op('Mul', [x, b.op('Add', [b.op('Tanh', [u]), b.c(1)])]), b.c(0.5)]);
};

const geluErfDiv = (sqrt2 = 1.4142135): Expr => (b, x) =>
  b.op('Mul', [b.op('Mul', [x, b.op('Add', [b.op('Erf', [b.op('Div', [x, b.c(sqrt2)])], {}, '/mlp/Erf'), b.c(1)])]), b.c(0.5)]);

const geluErfMul: Expr = (b, x) =>
  b.op('Mul', [b.op('Mul', [b.c(0.5), x]), b.op('Add', [b.c(1), b.op('Erf', [b.op('Mul', [x, b.c(0.70710678)])])])]);

const silu: Expr = (b, x) => b.op('Mul', [x, b.op('Sigmoid', [x])]);
const siluSwapped: Expr = (b, x) => b.op('Mul', [b.op('Sigmoid', [x]), x]);

describe('activation', () => {
  it.each<[string, Expr, string]>([
    ['GELU tanh, GPT-2 order', geluGpt2(), 'gelu_tanh'],
    ['GELU tanh, expanded argument, x·x·x, 0.5 on the bracket', geluExpanded, 'gelu_tanh'],
    ['GELU tanh, x·(1 + a·x²)·c, 0.5 last', geluHalfLast, 'gelu_tanh'],
    ['GELU erf, Div by 1.4142135', geluErfDiv(), 'gelu_erf'],
    ['GELU erf, Mul by 0.70710678', geluErfMul, 'gelu_erf'],
    ['SiLU x·sigmoid(x)', silu, 'silu'],
    ['SiLU sigmoid(x)·x', siluSwapped, 'silu'],
  ])('fuses %s', (_, expr, kind) => {
    const { g, events } = fuseAndCompare(() => graphOf(expr));
    expect(g.nodes.map((n) => `${n.domain}.${n.opType}`)).toEqual(['lfc.Activation']);
    expect(g.nodes[0].attrs.get('kind')).toBe(kind);
    expect(g.nodes[0].inputs[0]!.name).toBe('x');
    expect(missed(events)).toEqual([]);
  });

  it('matches fp16 constants within their rounding error', () => {
    const { g } = fuseAndCompare(() => graphOf(geluGpt2(), 'float16'), 5e-3);
    expect(countOps(g, 'lfc.Activation')).toBe(1);
  });

  it('reports a GELU constant off by 1e-2', () => {
    const g = graphOf(geluGpt2(0.054715));
    const ev = fuse(g);
    expect(countOps(g, 'lfc.Activation')).toBe(0);
    expect(countOps(g, 'Tanh')).toBe(1);
    expect(missed(ev).length).toBe(1);
    expect(missed(ev)[0].node).toBe('/mlp/Tanh');
    expect(missed(ev)[0].detail).toMatch(/gelu_tanh around Tanh node '\/mlp\/Tanh' with x = 'x' has x\^3 coefficient 0\.054715\d* inside tanh, expected 0\.044715/);
  });

  it('reports a √(2/π) off by 1e-2 and a √2 off by 1e-2', () => {
    let ev = fuse(graphOf(geluGpt2(0.044715, C + 0.01)));
    expect(missed(ev)[0].detail).toMatch(/scales the tanh argument by 0\.80788\d*, expected √\(2\/π\)/);
    ev = fuse(graphOf(geluErfDiv(1.4242135)));
    expect(missed(ev)[0].detail).toMatch(/takes erf of 0\.70\d*·x, expected x\/√2/);
  });

  it('reports a wrong outer factor', () => {
    const expr: Expr = (b, x) => b.op('Mul', [b.op('Mul', [x, b.c(0.6)]), b.op('Add', [b.op('Tanh', [x]), b.c(1)])]);
    expect(missed(fuse(graphOf(expr)))[0].detail).toMatch(/computes 0\.6·x \+ 0\.6·x·tanh, expected 0\.5·x \+ 0\.5·x·tanh/);
  });

  it('reports SiLU whose Sigmoid takes a different tensor', () => {
    const b = new Builder();
    const x = b.input('x', X), y = b.input('y', X);
    const g = b.output(b.op('Mul', [y, b.op('Sigmoid', [x], {}, '/act/Sigmoid')], {}, '/act/Mul'));
    const ev = fuse(g);
    expect(countOps(g, 'lfc.Activation')).toBe(0);
    expect(missed(ev)[0].detail).toBe("Sigmoid node '/act/Sigmoid' takes 'x', not the tensor 'y' its result multiplies in Mul node '/act/Mul' (SiLU is x·sigmoid(x))");
  });

  it('reports an intermediate used elsewhere', () => {
    const g = graphOf(geluGpt2(), 'float32', (b, _x, y) => {
      const tanh = y.producer!.inputs[1]!.producer!.inputs[0]!;
      return [b.op('Neg', [tanh])];
    });
    const ev = fuse(g);
    expect(countOps(g, 'lfc.Activation')).toBe(0);
    expect(missed(ev)[0].detail).toMatch(/'\/mlp\/Tanh:0' is used by .*Add node.*Neg node/);
  });

  it('reports an intermediate inside the pattern used elsewhere', () => {
    const g = graphOf(geluGpt2(), 'float32', (b, x) => {
      const cube = x.consumers.find((c) => c.opType === 'Pow')!.outputs[0];
      return [b.op('Neg', [cube])];
    });
    const ev = fuse(g);
    expect(countOps(g, 'lfc.Activation')).toBe(0);
    expect(missed(ev)[0].detail).toMatch(/intermediate '.*Pow.*' of Pow node .* is also used by Neg node/);
  });

  it('leaves a Tanh that is no GELU without a fusion', () => {
    const g = graphOf((b, x) => b.op('Tanh', [x]));
    expect(fuse(g)).toEqual([]);
  });

  it('turns Relu into an Activation', () => {
    const { g } = fuseAndCompare(() => graphOf((b, x) => b.op('Relu', [x])));
    expect(g.nodes[0].attrs.get('kind')).toBe('relu');
  });
});

describe('gated MLP', () => {
  /** down(act(x·Wg) · (x·Wu)) with the activation written out. */
  function gated(act: Expr, opts: { escape?: boolean } = {}) {
    const b = new Builder();
    const x = b.input('x', X);
    const gate = b.op('MatMul', [x, b.rand([16, 32], 1)], {}, '/mlp/gate_proj/MatMul');
    const up = b.op('MatMul', [x, b.rand([16, 32], 2)], {}, '/mlp/up_proj/MatMul');
    const a = act(b, gate, 'float32');
    const h = b.op('Mul', [a, up], {}, '/mlp/Mul_1');
    const y = b.op('MatMul', [h, b.rand([32, 16], 3)], {}, '/mlp/down_proj/MatMul');
    return b.output(y, ...(opts.escape ? [b.op('Neg', [a])] : []));
  }

  it.each<[string, Expr, string]>([['SwiGLU', silu, 'silu'], ['GeGLU (tanh)', geluGpt2(), 'gelu_tanh'], ['GeGLU (erf)', geluErfMul, 'gelu_erf']])(
    'fuses %s', (_, act, kind) => {
      const { g, events } = fuseAndCompare(() => gated(act));
      expect(g.nodes.map((n) => `${n.domain}.${n.opType}`).sort()).toEqual(['lfc.GatedAct', 'lfc.Linear', 'lfc.Linear', 'lfc.Linear']);
      const ga = g.nodes.find((n) => n.opType === 'GatedAct')!;
      expect(ga.attrs.get('kind')).toBe(kind);
      expect(ga.inputs.map((v) => v!.producer!.name)).toEqual(['/mlp/gate_proj/Linear', '/mlp/up_proj/Linear']);
      expect(events.find((e) => e.rule === 'gated')!.detail).toMatch(/gated MLP/);
      expect(missed(events)).toEqual([]);
    },
  );

  it('fuses a merged gate_up projection split in two (Phi-3 style)', () => {
    const { g } = fuseAndCompare(() => {
      const b = new Builder();
      const x = b.input('x', X);
      const gu = b.op('MatMul', [x, b.rand([16, 64], 1)]);
      const [gate, up] = b.ops('Split', [gu, b.c([32, 32], 'int64')], { axis: -1 }, 2);
      return b.output(b.op('Mul', [up, silu(b, gate, 'float32')]));
    });
    expect(g.nodes.map((n) => n.opType)).toEqual(['Linear', 'Split', 'GatedAct']);
  });

  it('reports an activation also used outside the gate', () => {
    const { g, events } = fuseAndCompare(() => gated(silu, { escape: true }));
    expect(countOps(g, 'lfc.GatedAct')).toBe(0);
    // The activation still joins the gate projection's epilogue.
    expect(g.nodes.filter((n) => n.attrs.get('activation') === 'silu').map((n) => n.name)).toEqual(['/mlp/gate_proj/Linear']);
    expect(missed(events)[0].detail).toMatch(/the activation '.*' of Activation node .* is also used by Neg node/);
  });
});

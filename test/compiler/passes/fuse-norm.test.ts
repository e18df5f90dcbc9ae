/**
 * fuse-norm and fuse-add-norm: every exporter form of RMSNorm / LayerNorm fuses and computes the
 * same values; near misses (wrong axis, escaping intermediates, wrong operand) are reported with
 * the node and the reason, and leave the graph unchanged.
 */
import { describe, expect, it } from 'vitest';
import type { Value } from '../../../compiler/ir/graph.js';
import { ONNX_DTYPE_CODE } from '../../../runtime/dtype.js';
import { Builder, countOps, fuse, fuseAndCompare, missed, sym } from './fuse-helpers.js';

const H = 8;
const X = [sym('b'), sym('s'), H];

interface RmsOpts {
  square?: 'pow' | 'mul';
  axes?: number[];
  /** ReduceMean-18 with axes as an input. */
  axesInput?: boolean;
  keepdims?: number;
  inv?: 'reciprocal' | 'div1' | 'div' | 'pow';
  epsFirst?: boolean;
  gamma?: 'right' | 'left' | 'none';
  /** Value the normalising Mul scales (default x). */
  scaled?: (b: Builder, x: Value) => Value;
  /** Make an intermediate escape: 'sqrt' also becomes a graph output, 'pow' feeds another node. */
  escape?: 'sqrt' | 'pow';
}

/** An RMSNorm written out the way exporters do, with knobs for each variant. */
function rms(o: RmsOpts = {}) {
  const b = new Builder(o.axesInput ? 18 : 17);
  const x = b.input('x', X);
  const sq = o.square === 'mul' ? b.op('Mul', [x, x]) : b.op('Pow', [x, b.c(2)]);
  const axes = o.axes ?? [-1];
  const mean = o.axesInput
    ? b.op('ReduceMean', [sq, b.c(axes, 'int64')], { keepdims: o.keepdims ?? 1 }, '/t/ReduceMean')
    : b.op('ReduceMean', [sq], { axes, keepdims: o.keepdims ?? 1 }, '/t/ReduceMean');
  const eps = b.c(1e-5);
  const ve = b.op('Add', o.epsFirst ? [eps, mean] : [mean, eps]);
  const src = o.scaled ? o.scaled(b, x) : x;
  let n: Value, sqrt: Value | undefined;
  if (o.inv === 'pow') {
    n = b.op('Mul', [src, b.op('Pow', [ve, b.c(-0.5)])]);
  } else {
    sqrt = b.op('Sqrt', [ve]);
    n = o.inv === 'div' ? b.op('Div', [src, sqrt])
      : o.inv === 'div1' ? b.op('Mul', [src, b.op('Div', [b.c(1), sqrt])])
        : b.op('Mul', [src, b.op('Reciprocal', [sqrt])]);
  }
  const gamma = b.rand([H], 3);
  const y = o.gamma === 'none' ? n : o.gamma === 'left' ? b.op('Mul', [gamma, n]) : b.op('Mul', [n, gamma]);
  const outs = [y];
  if (o.escape === 'sqrt' && sqrt) outs.push(sqrt);
  if (o.escape === 'pow') outs.push(b.op('Neg', [sq]));
  return b.output(...outs);
}

describe('rms-norm', () => {
  const forms: [string, RmsOpts][] = [
    ['Hugging Face: Pow, ReduceMean(-1), Add, Sqrt, Reciprocal, Mul, Mul(γ)', {}],
    ['Mul(x, x), Div(1, ·), γ on the left, axis given as 2', { square: 'mul', inv: 'div1', gamma: 'left', axes: [2] }],
    ['Div(x, Sqrt(·)), epsilon first', { inv: 'div', epsFirst: true }],
    ['Pow(·, -0.5)', { inv: 'pow' }],
    ['opset 18: axes as an input', { axesInput: true }],
    ['no γ', { gamma: 'none' }],
  ];
  it.each(forms)('fuses %s', (_, o) => {
    const { g, events } = fuseAndCompare(() => rms(o));
    expect(countOps(g, 'lfc.RMSNorm')).toBe(1);
    expect(g.nodes.length).toBe(1);
    expect(missed(events)).toEqual([]);
    expect(events.find((e) => e.rule === 'rms-norm')?.detail).toMatch(/RMSNorm over 8 \(epsilon 0\.00001/);
  });

  it('reports a reduction over another axis', () => {
    const g = rms({ axes: [1] });
    const ev = fuse(g);
    expect(countOps(g, 'lfc.RMSNorm')).toBe(0);
    expect(missed(ev).map((e) => e.detail)).toContain("ReduceMean node '/t/ReduceMean' reduces axis 1, not the last axis (2 of rank 3)");
    expect(missed(ev)[0].node).toBe('/t/ReduceMean');
  });

  it('reports keepdims=0', () => {
    const ev = fuse(rms({ axes: [-1], keepdims: 0, gamma: 'none', inv: 'div' }));
    expect(missed(ev).map((e) => e.detail).join()).toMatch(/keepdims=0/);
  });

  it('reports an intermediate that escapes (graph output, other use)', () => {
    let g = rms({ escape: 'sqrt' });
    let ev = fuse(g);
    expect(countOps(g, 'lfc.RMSNorm')).toBe(0);
    expect(missed(ev)[0].detail).toMatch(/intermediate '.*Sqrt.*' of Sqrt node .* is a graph output/);
    g = rms({ escape: 'pow' });
    ev = fuse(g);
    expect(countOps(g, 'lfc.RMSNorm')).toBe(0);
    expect(missed(ev)[0].detail).toMatch(/intermediate '.*Pow.*' of Pow node .* is also used by Neg node/);
  });

  it('reports a normalising Mul that scales another tensor', () => {
    const g = rms({ scaled: (b) => b.input('y', X) });
    const ev = fuse(g);
    expect(countOps(g, 'lfc.RMSNorm')).toBe(0);
    expect(missed(ev)[0].detail).toMatch(/Mul node .* scales 'y', not the normalised input 'x'/);
  });

  it('reports a non-constant epsilon', () => {
    const b = new Builder();
    const x = b.input('x', X), e = b.input('e', [1]);
    const v = b.op('ReduceMean', [b.op('Pow', [x, b.c(2)])], { axes: [-1] });
    const g = b.output(b.op('Mul', [x, b.op('Reciprocal', [b.op('Sqrt', [b.op('Add', [v, e])])])]));
    expect(missed(fuse(g))[0].detail).toMatch(/adds 'e', not a constant epsilon/);
  });

  it('absorbs the fp32 Casts Hugging Face puts around an fp16 RMSNorm', () => {
    const make = () => {
      const b = new Builder();
      const x = b.input('x', X, 'float16');
      const xf = b.op('Cast', [x], { to: ONNX_DTYPE_CODE.float32 });
      const v = b.op('ReduceMean', [b.op('Pow', [xf, b.c(2)])], { axes: [-1] });
      const n = b.op('Mul', [xf, b.op('Reciprocal', [b.op('Sqrt', [b.op('Add', [v, b.c(1e-6)])])])]);
      const n16 = b.op('Cast', [n], { to: ONNX_DTYPE_CODE.float16 });
      return b.output(b.op('Mul', [b.rand([H], 4, 'float16'), n16]));
    };
    const { g } = fuseAndCompare(make, 2e-3);
    expect(g.nodes.map((n) => `${n.domain}.${n.opType}`)).toEqual(['lfc.RMSNorm']);
    expect(g.nodes[0].inputs[0]!.name).toBe('x');
    expect(g.outputs[0].type!.dtype).toBe('float16');
  });

  it('keeps the up-cast outside when the fp32 copy has other uses, and casts a narrowed result', () => {
    const make = () => {
      const b = new Builder();
      const x = b.input('x', X, 'float16');
      const xf = b.op('Cast', [x], { to: ONNX_DTYPE_CODE.float32 });
      const v = b.op('ReduceMean', [b.op('Pow', [xf, b.c(2)])], { axes: [-1] });
      const n = b.op('Mul', [xf, b.op('Reciprocal', [b.op('Sqrt', [b.op('Add', [v, b.c(1e-6)])])])]);
      const n16 = b.op('Cast', [n], { to: ONNX_DTYPE_CODE.float16 });
      return b.output(b.op('Mul', [n16, b.rand([H], 4, 'float16')]), b.op('Neg', [xf]));
    };
    const { g } = fuseAndCompare(make, 2e-3);
    const norm = g.nodes.find((n) => n.opType === 'RMSNorm')!;
    expect(norm.inputs[0]!.type!.dtype).toBe('float32');
    expect(norm.outputs[0].consumers.map((c) => c.opType)).toEqual(['Cast']);
  });
});

interface LnOpts { varAxes?: number[]; inv?: 'div' | 'reciprocal'; beta?: boolean; castUp?: boolean }

function layerNorm(o: LnOpts = {}) {
  const b = new Builder();
  const x = b.input('x', X);
  const mean = b.op('ReduceMean', [x], { axes: [-1] }, '/ln/ReduceMean');
  const d = b.op('Sub', [x, mean]);
  const v = b.op('ReduceMean', [b.op('Pow', [d, b.c(2)])], { axes: o.varAxes ?? [-1] }, '/ln/ReduceMean_1');
  const s = b.op('Sqrt', [b.op('Add', [v, b.c(1e-5)])]);
  const n = o.inv === 'reciprocal' ? b.op('Mul', [d, b.op('Reciprocal', [s])]) : b.op('Div', [d, s]);
  const y = b.op('Mul', [n, b.rand([H], 5)]);
  return b.output(o.beta === false ? y : b.op('Add', [y, b.rand([H], 6)]));
}

describe('layer-norm', () => {
  it.each<[string, LnOpts]>([
    ['ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul(γ), Add(β)', {}],
    ['Reciprocal + Mul, no β', { inv: 'reciprocal', beta: false }],
  ])('fuses %s', (_, o) => {
    const { g, events } = fuseAndCompare(() => layerNorm(o));
    expect(g.nodes.map((n) => `${n.domain}.${n.opType}`)).toEqual(['lfc.LayerNorm']);
    expect(g.nodes[0].inputs.length).toBe(o.beta === false ? 2 : 3);
    expect(missed(events)).toEqual([]);
  });

  it('absorbs the fp32 up-cast of an fp16 input (result back in fp16)', () => {
    const make = () => {
      const b = new Builder();
      const x = b.input('x', X, 'float16');
      const xf = b.op('Cast', [x], { to: ONNX_DTYPE_CODE.float32 });
      const d = b.op('Sub', [xf, b.op('ReduceMean', [xf], { axes: [-1] })]);
      const v = b.op('ReduceMean', [b.op('Pow', [d, b.c(2)])], { axes: [-1] });
      const n = b.op('Div', [d, b.op('Sqrt', [b.op('Add', [v, b.c(1e-5)])])]);
      return b.output(b.op('Cast', [n], { to: ONNX_DTYPE_CODE.float16 }));
    };
    const { g } = fuseAndCompare(make, 2e-3);
    expect(g.nodes.map((n) => n.opType)).toEqual(['LayerNorm']);
    expect(g.nodes[0].inputs[0]!.name).toBe('x');
  });

  it('reports a variance over another axis', () => {
    const g = layerNorm({ varAxes: [1] });
    const ev = fuse(g);
    expect(countOps(g, 'lfc.LayerNorm')).toBe(0);
    expect(missed(ev).map((e) => e.detail)).toContain("ReduceMean node '/ln/ReduceMean_1' reduces axis 1, not the last axis (2 of rank 3)");
  });

  it('fuses the LayerNormalization op over the last axis', () => {
    const make = () => {
      const b = new Builder();
      const x = b.input('x', X);
      return b.output(b.op('LayerNormalization', [x, b.rand([H], 1), b.rand([H], 2)], { axis: -1, epsilon: 1e-5 }));
    };
    const { g } = fuseAndCompare(make);
    expect(g.nodes.map((n) => `${n.domain}.${n.opType}`)).toEqual(['lfc.LayerNorm']);
  });

  it('reports a LayerNormalization over more than the last axis', () => {
    const b = new Builder();
    const x = b.input('x', [2, 3, 4]);
    const g = b.output(b.op('LayerNormalization', [x, b.rand([3, 4], 1)], { axis: 1 }, '/ln'));
    const ev = fuse(g);
    expect(missed(ev)[0].detail).toBe("LayerNormalization node '/ln' normalises from axis 1, not the last axis only");
  });
});

describe('add-norm', () => {
  /** h = a + b → RMSNorm; then `use` decides what else reads the sum. */
  function residual(use: 'residual' | 'output' | 'other' | 'bias') {
    const b = new Builder();
    const a = b.input('a', X), r = b.input('r', X);
    const s = use === 'bias' ? b.op('Add', [a, b.rand([H], 9)]) : b.op('Add', [r, a], {}, '/l/Add');
    const v = b.op('ReduceMean', [b.op('Pow', [s, b.c(2)])], { axes: [-1] });
    const y = b.op('Mul', [b.op('Mul', [s, b.op('Reciprocal', [b.op('Sqrt', [b.op('Add', [v, b.c(1e-5)])])])]), b.rand([H], 7)]);
    const outs = [y];
    if (use === 'residual') outs.push(b.op('Add', [s, b.op('Relu', [y])]));
    if (use === 'output') outs.push(s);
    if (use === 'other') outs.push(b.op('Mul', [s, y]));
    return b.output(...outs);
  }

  it('fuses the residual Add into AddNorm with the sum as the second output', () => {
    const { g, events } = fuseAndCompare(() => residual('residual'));
    const an = g.nodes.filter((n) => n.opType === 'AddNorm');
    expect(an.length).toBe(1);
    expect(an[0].attrs.get('kind')).toBe('rms');
    expect(an[0].outputs[1].consumers.map((c) => c.opType)).toEqual(['Add']);
    expect(an[0].inputs.slice(0, 2).map((v) => v!.name).sort()).toEqual(['a', 'r']);
    expect(countOps(g, 'lfc.RMSNorm')).toBe(0);
    expect(missed(events)).toEqual([]);
  });

  it('fuses when the sum feeds only the norm (here the LayerNormalization op)', () => {
    const { g } = fuseAndCompare(() => {
      const b = new Builder();
      const a = b.input('a', X), r = b.input('r', X);
      return b.output(b.op('LayerNormalization', [b.op('Add', [a, r]), b.rand([H], 1), b.rand([H], 2)], { epsilon: 1e-6 }));
    });
    expect(g.nodes.map((n) => n.opType)).toEqual(['AddNorm']);
    expect(g.nodes[0].attrs.get('kind')).toBe('layer');
    expect(g.nodes[0].attrs.get('epsilon')).toBeCloseTo(1e-6, 12);
  });

  it.each([
    ['output', /residual sum '\/l\/Add:0' of Add node '\/l\/Add' is a graph output/],
    ['other', /residual sum '\/l\/Add:0' of Add node '\/l\/Add' is also used by Mul node/],
  ] as const)('reports a sum also used as %s', (use, why) => {
    const { g, events } = fuseAndCompare(() => residual(use));
    expect(countOps(g, 'lfc.AddNorm')).toBe(0);
    expect(countOps(g, 'lfc.RMSNorm')).toBe(1);
    expect(missed(events).map((e) => e.detail).join('\n')).toMatch(why);
  });

  it('leaves a bias Add alone without reporting it', () => {
    const { g, events } = fuseAndCompare(() => residual('bias'));
    expect(countOps(g, 'lfc.AddNorm')).toBe(0);
    expect(missed(events)).toEqual([]);
  });
});

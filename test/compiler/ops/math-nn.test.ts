/**
 * MatMul, Gemm, LayerNormalization and Einsum (compiler/ops/nn.ts, einsum.ts): numpy MatMul
 * semantics (1-D operands, batch broadcasting, symbolic shapes), Gemm's attributes, LayerNorm's
 * three outputs, Einsum's equation forms. Expected values are hand-computed from the ONNX spec.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Tensor } from '../../../runtime/tensor.js';
import { dimAdd, dimStr, shapeStr, type Dim } from '../../../compiler/ir/dim.js';
import { eval1, evalOp, expectClose, f32, i64, inferOp, info, sym } from './math-harness.js';

const b = sym('batch'), s = sym('seq');
const A23 = (): Tensor => f32([2, 3], [1, 2, 3, 4, 5, 6]);
const B32 = (): Tensor => f32([3, 2], [7, 8, 9, 10, 11, 12]);

describe('MatMul', () => {
  it('multiplies 2-D matrices', () => {
    const y = eval1('MatMul', [A23(), B32()]);
    expect(y.shape).toEqual([2, 2]);
    expect(y.toArray()).toEqual([58, 64, 139, 154]);
  });

  it('promotes 1-D operands and drops the added axis', () => {
    expect(eval1('MatMul', [f32([3], [1, 2, 3]), B32()]).shape).toEqual([2]);
    expect(eval1('MatMul', [f32([3], [1, 2, 3]), B32()]).toArray()).toEqual([58, 64]);
    expect(eval1('MatMul', [A23(), f32([3], [1, 0, -1])]).toArray()).toEqual([-2, -2]);
    const dot = eval1('MatMul', [f32([3], [1, 2, 3]), f32([3], [4, 5, 6])]);
    expect(dot.shape).toEqual([]);
    expect(dot.toArray()).toEqual([32]);
  });

  it('broadcasts batch dims', () => {
    const a = f32([2, 1, 2, 3], [1, 2, 3, 4, 5, 6, 0, 0, 0, 1, 1, 1]);
    const y = eval1('MatMul', [a, f32([3, 3, 2], [...B32().toArray(), ...B32().toArray().map((v) => -v), ...new Array(6).fill(1)])]);
    expect(y.shape).toEqual([2, 3, 2, 2]);
    expect(y.toArray().slice(0, 4)).toEqual([58, 64, 139, 154]);
    expect(y.toArray().slice(4, 8)).toEqual([-58, -64, -139, -154]);
    expect(y.toArray().slice(20, 24)).toEqual([0, 0, 3, 3]);
  });

  it('infers symbolic shapes and names mismatched inner dims', () => {
    expect(shapeStr(inferOp('MatMul', [info('float32', [b, s, 64]), info('float32', [64, 128])])[0].shape)).toBe('[batch, seq, 128]');
    expect(shapeStr(inferOp('MatMul', [info('float32', [b, 8, s, 64]), info('float32', [b, 8, 64, s])])[0].shape)).toBe('[batch, 8, seq, seq]');
    expect(shapeStr(inferOp('MatMul', [info('float32', [64]), info('float32', [b, 64, 10])])[0].shape)).toBe('[batch, 10]');
    expect(() => inferOp('MatMul', [info('float32', [2, 64]), info('float32', [32, 8])])).toThrow(/MatMul node .*inner dims 64 vs 32/);
  });

  it('tells inference that symbolic inner dims must agree', () => {
    const total = sym('total'), past = sym('past');
    const seen: string[] = [];
    const equate = (x: Dim, y: Dim): Dim => { seen.push(`${dimStr(x)} = ${dimStr(y)}`); return x; };
    const [o] = inferOp('MatMul', [info('float32', [b, 8, s, dimAdd(past, s)]), info('float32', [b, 8, total, 64])], { equate });
    expect(shapeStr(o.shape)).toBe('[batch, 8, seq, 64]');
    expect(seen).toEqual(['past + seq = total']);
  });

  it('agrees with a naive triple loop (property)', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 5 }), (m, k, n) => {
      const av = Array.from({ length: m * k }, (_, i) => (i % 7) - 3), bv = Array.from({ length: k * n }, (_, i) => (i % 5) - 2);
      const y = eval1('MatMul', [f32([m, k], av), f32([k, n], bv)]).toArray();
      for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
        let acc = 0;
        for (let t = 0; t < k; t++) acc += av[i * k + t] * bv[t * n + j];
        expect(y[i * n + j]).toBe(acc);
      }
    }));
  });

});

describe('Det', () => {
  it('computes determinants of a batch, with pivoting and singular matrices', () => {
    const x = f32([4, 2, 2], [1, 2, 3, 4, 0, 1, 1, 0, 1, 2, 2, 4, 2, 0, 0, 3]);
    const d = eval1('Det', [x]);
    expect(d.shape).toEqual([4]);
    expectClose(d.toArray(), [-2, -1, 0, 6]);
    expectClose(eval1('Det', [f32([3, 3], [2, -3, 1, 2, 0, -1, 1, 4, 5])]).toArray(), [49]);
  });
});

describe('Gemm', () => {
  it('computes alpha*A*B + beta*C with transposes and C broadcast', () => {
    const y = eval1('Gemm', [A23(), B32(), f32([2], [1, -1])], { attrs: { alpha: 2, beta: 10 } });
    expect(y.toArray()).toEqual([126, 118, 288, 298]);
    const at = f32([3, 2], [1, 4, 2, 5, 3, 6]), bt = f32([2, 3], [7, 9, 11, 8, 10, 12]);
    expect(eval1('Gemm', [at, bt], { attrs: { transA: 1, transB: 1 } }).toArray()).toEqual([58, 64, 139, 154]);
    expect(eval1('Gemm', [A23(), B32(), f32([], [1])]).toArray()).toEqual([59, 65, 140, 155]);
  });

  it('agrees with MatMul for every transpose combination and row count (property)', () => {
    const tr = (t: Tensor): Tensor => eval1('Einsum', [t], { attrs: { equation: 'ij->ji' } });
    fc.assert(fc.property(fc.integer({ min: 1, max: 7 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 6 }), fc.boolean(), fc.boolean(), (m, k, n, ta, tb) => {
      const a = f32([m, k], Array.from({ length: m * k }, (_, i) => (i % 5) - 2));
      const bm = f32([k, n], Array.from({ length: k * n }, (_, i) => (i % 3) - 1));
      const want = eval1('MatMul', [a, bm]).toArray();
      const y = eval1('Gemm', [ta ? tr(a) : a, tb ? tr(bm) : bm], { attrs: { transA: +ta, transB: +tb } });
      expect(y.toArray()).toEqual(want);
      expect(eval1('Einsum', [a, bm], { attrs: { equation: 'ik,kj->ij' } }).toArray()).toEqual(want);
    }));
  });

  it('checks shapes again at run time', () => {
    expect(() => eval1('Gemm', [A23(), B32(), f32([3], [1, 2, 3])])).toThrow(/C \[3\] does not broadcast to \[2,2\]/);
    expect(() => evalOp('LayerNormalization', [A23(), f32([2], [1, 1])])).toThrow(/Scale \[2\] does not broadcast to \[3\]/);
    const x = f32([1, 2, 1], [1, 2]);
    expect(() => eval1('InstanceNormalization', [x, f32([3], [1, 1, 1]), f32([2], [0, 0])])).toThrow(/scale has 3 values but the input has 2 channels/);
    expect(() => eval1('MatMul', [A23(), A23()])).toThrow(/inner dims 3 vs 2/);
  });

  it('infers [M, N] and checks C', () => {
    expect(shapeStr(inferOp('Gemm', [info('float32', [s, 64]), info('float32', [32, 64])], { attrs: { transB: 1 } })[0].shape)).toBe('[seq, 32]');
    expect(() => inferOp('Gemm', [info('float32', [4, 3]), info('float32', [3, 5]), info('float32', [4, 4])])).toThrow(/broadcast|5 vs 4|4 vs 5/);
  });
});

describe('LayerNormalization', () => {
  it('normalises over the trailing axes, with scale, bias, mean and inverse std', () => {
    const inv = 1 / Math.sqrt(2 / 3 + 1e-5);
    const [y, mean, invStd] = evalOp('LayerNormalization', [f32([2, 3], [1, 2, 3, 2, 2, 2]), f32([3], [1, 2, 3]), f32([3], [0, 0, 1])]);
    expectClose(y.toArray(), [-inv, 0, 3 * inv + 1, 0, 0, 1]);
    expect(mean.shape).toEqual([2, 1]);
    expectClose(mean.toArray(), [2, 2]);
    expectClose(invStd.toArray(), [inv, 1 / Math.sqrt(1e-5)], 1e-4);
  });

  it('supports axis < rank-1 and symbolic shapes', () => {
    const [y] = evalOp('LayerNormalization', [f32([1, 2, 2], [0, 2, 4, 6]), f32([2, 2], [1, 1, 1, 1])], { attrs: { axis: 1, epsilon: 0 } });
    const sd = Math.sqrt(5);
    expectClose(y.toArray(), [-3 / sd, -1 / sd, 1 / sd, 3 / sd]);
    const outs = inferOp('LayerNormalization', [info('float16', [b, s, 64]), info('float16', [64]), info('float16', [64])]);
    expect(outs.map((o) => `${o.dtype}${shapeStr(o.shape)}`)).toEqual(['float16[batch, seq, 64]', 'float32[batch, seq, 1]', 'float32[batch, seq, 1]']);
    expect(() => inferOp('LayerNormalization', [info('float32', [b, 64]), info('float32', [32])])).toThrow(/\[64\] and \[32\]/);
  });
});

describe('Einsum', () => {
  const run = (eq: string, ...xs: Tensor[]): Tensor => eval1('Einsum', xs, { attrs: { equation: eq } });

  it('matrix product, transpose, trace, diagonal, outer product', () => {
    expect(run('ij,jk->ik', A23(), B32()).toArray()).toEqual([58, 64, 139, 154]);
    expect(run('ij, jk', A23(), B32()).toArray()).toEqual([58, 64, 139, 154]);
    const t = run('ij->ji', A23());
    expect(t.shape).toEqual([3, 2]);
    expect(t.toArray()).toEqual([1, 4, 2, 5, 3, 6]);
    const m = f32([3, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(run('ii', m).toArray()).toEqual([15]);
    expect(run('ii->i', m).toArray()).toEqual([1, 5, 9]);
    const o = run('i,j', f32([2], [1, 2]), f32([3], [1, 10, 100]));
    expect(o.shape).toEqual([2, 3]);
    expect(o.toArray()).toEqual([1, 10, 100, 2, 20, 200]);
    expect(run('ij->', A23()).toArray()).toEqual([21]);
  });

  it('ellipsis broadcasting, batch matmul and three operands', () => {
    const x = f32([2, 2, 3], [1, 2, 3, 4, 5, 6, 1, 0, 0, 0, 1, 0]);
    const y = run('...ij,...jk->...ik', x, B32());
    expect(y.shape).toEqual([2, 2, 2]);
    expect(y.toArray()).toEqual([58, 64, 139, 154, 7, 8, 9, 10]);
    expect(run('bij->bji', x).shape).toEqual([2, 3, 2]);
    expect(run('...ij->...ji', x).toArray().slice(0, 6)).toEqual([1, 4, 2, 5, 3, 6]);
    const i2 = f32([2, 2], [1, 0, 0, 1]);
    expect(run('ij,jk,kl->il', A23(), B32(), i2).toArray()).toEqual([58, 64, 139, 154]);
  });

  it('infers symbolic shapes and rejects bad equations', () => {
    const eq = { attrs: { equation: 'bhqd,bhkd->bhqk' } };
    expect(shapeStr(inferOp('Einsum', [info('float32', [b, 8, s, 64]), info('float32', [b, 8, s, 64])], eq)[0].shape)).toBe('[batch, 8, seq, seq]');
    expect(() => inferOp('Einsum', [info('float32', [2, 3])], { attrs: { equation: 'ijk->i' } })).toThrow(/rank 2/);
    expect(() => inferOp('Einsum', [info('float32', [2, 3]), info('float32', [4, 5])], { attrs: { equation: 'ij,jk->ik' } })).toThrow(/label 'j'/);
  });
});

describe('other normalisations, pools and losses', () => {
  it('BatchNormalization uses the given statistics, or the batch ones in training mode', () => {
    const x = f32([2, 2, 1, 1], [1, 2, 3, 6]);
    const ones = f32([2], [1, 1]), zeros = f32([2], [0, 0]);
    const y = eval1('BatchNormalization', [x, ones, zeros, f32([2], [0, 2]), f32([2], [1, 4])], { opset: 15, attrs: { epsilon: 0 } });
    expect(y.toArray()).toEqual([1, 0, 3, 2]);
    // Batch stats: channel 0 {1, 3} mean 2 var 1; channel 1 {2, 6} mean 4 var 4.
    const [yt, rm, rv] = evalOp('BatchNormalization', [x, ones, zeros, zeros, ones], { opset: 15, attrs: { epsilon: 0, training_mode: 1, momentum: 0.5 } });
    expect(yt.toArray()).toEqual([-1, -1, 1, 1]);
    expect(rm.toArray()).toEqual([1, 2]);
    expect(rv.toArray()).toEqual([1, 2.5]);
  });

  it('RMSNormalization-23 divides by the root mean square', () => {
    const r = Math.sqrt(12.5);
    const y = eval1('RMSNormalization', [f32([2, 2], [3, 4, 0, 0]), f32([2], [1, 2])], { opset: 23, attrs: { epsilon: 0 } });
    expectClose(y.toArray().slice(0, 2), [3 / r, 8 / r]);
    expect(shapeStr(inferOp('RMSNormalization', [info('float32', [b, s, 64]), info('float16', [64])], { opset: 23 })[0].shape)).toBe('[batch, seq, 64]');
  });

  it('InstanceNormalization, MeanVarianceNormalization, Global pools', () => {
    const x = f32([1, 2, 2], [0, 2, 5, 5]);
    expectClose(eval1('InstanceNormalization', [x, f32([2], [1, 2]), f32([2], [0, 1])], { attrs: { epsilon: 1e-12 } }).toArray(), [-1, 1, 1, 1]);
    expectClose(eval1('MeanVarianceNormalization', [x], { attrs: { axes: [2] } }).toArray(), [-1, 1, 0, 0]);
    const p = f32([1, 1, 2, 2], [1, 2, 3, 6]);
    const avg = eval1('GlobalAveragePool', [p]);
    expect(avg.shape).toEqual([1, 1, 1, 1]);
    expect(avg.toArray()).toEqual([3]);
    expect(eval1('GlobalMaxPool', [p]).toArray()).toEqual([6]);
  });

  it('NegativeLogLikelihoodLoss with weights, ignore_index and reductions', () => {
    const logp = f32([2, 3], [-1, -2, -3, -4, -5, -6]);
    const target = i64([2], [0, 2]);
    expect(eval1('NegativeLogLikelihoodLoss', [logp, target]).toArray()).toEqual([3.5]);
    expect(eval1('NegativeLogLikelihoodLoss', [logp, target], { attrs: { reduction: 'none' } }).toArray()).toEqual([1, 6]);
    expect(eval1('NegativeLogLikelihoodLoss', [logp, target], { attrs: { reduction: 'sum' } }).toArray()).toEqual([7]);
    // Weighted mean divides by the weights used: (1*2 + 6*0.5) / 2.5.
    expect(eval1('NegativeLogLikelihoodLoss', [logp, target, f32([3], [2, 1, 0.5])]).toArray()).toEqual([2]);
    expect(eval1('NegativeLogLikelihoodLoss', [logp, target], { attrs: { ignore_index: 2 } }).toArray()).toEqual([1]);
    expect(() => eval1('NegativeLogLikelihoodLoss', [logp, i64([2], [0, 3])])).toThrow(/target 3 .* \[0, 3\)/);
  });

  it('SoftmaxCrossEntropyLoss of uniform scores is ln C, with log_prob output', () => {
    const [loss, logp] = evalOp('SoftmaxCrossEntropyLoss', [f32([2, 4], new Array(8).fill(7)), i64([2], [1, 3])]);
    expectClose(loss.toArray(), [Math.log(4)]);
    expectClose(logp.toArray(), new Array(8).fill(-Math.log(4)));
    const outs = inferOp('SoftmaxCrossEntropyLoss', [info('float32', [b, 10, s]), info('int64', [b, s])], { attrs: { reduction: 'none' } });
    expect(outs.map((o) => shapeStr(o.shape))).toEqual(['[batch, seq]', '[batch, 10, seq]']);
  });
});

/**
 * Reductions and per-axis ops (compiler/ops/reduce.ts): axes as attribute vs input across opsets,
 * keepdims/noop_with_empty_axes, float64 accumulation, ArgMax/ArgMin, CumSum, and the two Softmax
 * semantics (2-D coercion before opset 13, per-axis from 13). Expected values are hand-computed.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Tensor } from '../../../runtime/tensor.js';
import { dimStr, shapeStr } from '../../../compiler/ir/dim.js';
import { eval1, expectClose, f32, i64, inferOp, info, sym } from './math-harness.js';

const b = sym('batch'), s = sym('seq');
const x22 = (): Tensor => f32([2, 2], [1, 2, 3, 4]);

describe('Reduce*', () => {
  it('ReduceSum-13 takes axes as an input; ReduceMean-11 as an attribute', () => {
    const y = eval1('ReduceSum', [x22(), i64([1], [1])], { opset: 13 });
    expect(y.shape).toEqual([2, 1]);
    expect(y.toArray()).toEqual([3, 7]);
    const m = eval1('ReduceMean', [x22()], { opset: 11, attrs: { axes: [0], keepdims: 0 } });
    expect(m.shape).toEqual([2]);
    expect(m.toArray()).toEqual([2, 3]);
    const m18 = eval1('ReduceMean', [x22(), i64([1], [-1])], { opset: 18, attrs: { keepdims: 0 } });
    expect(m18.toArray()).toEqual([1.5, 3.5]);
  });

  it('no axes reduces everything, unless noop_with_empty_axes', () => {
    const all = eval1('ReduceSum', [x22(), undefined], { opset: 13 });
    expect(all.shape).toEqual([1, 1]);
    expect(all.toArray()).toEqual([10]);
    const noop = eval1('ReduceSum', [x22(), i64([0], [])], { opset: 13, attrs: { noop_with_empty_axes: 1 } });
    expect(noop.shape).toEqual([2, 2]);
    expect(noop.toArray()).toEqual([1, 2, 3, 4]);
  });

  it('computes each reduction by its definition', () => {
    const v = f32([4], [1, -2, 3, 4]);
    const r = (op: string, t = v): number[] => eval1(op, [t], { opset: 11, attrs: { keepdims: 0 } }).toArray();
    expect(r('ReduceMax')).toEqual([4]);
    expect(r('ReduceMin')).toEqual([-2]);
    expect(r('ReduceProd')).toEqual([-24]);
    expect(r('ReduceL1')).toEqual([10]);
    expect(r('ReduceSumSquare')).toEqual([30]);
    expect(r('ReduceL2', f32([2], [3, 4]))).toEqual([5]);
    expectClose(r('ReduceLogSum', f32([2], [1, 2])), [Math.log(3)]);
    // Stable for large inputs: log(e^1000 + e^1000) = 1000 + ln 2.
    expectClose(r('ReduceLogSumExp', f32([2], [1000, 1000])), [1000 + Math.LN2]);
  });

  it('accumulates float16 in float64 and rounds once', () => {
    // fp16 accumulation would stick at 2048 (2049 is not representable); 2050 is.
    const h = Tensor.from('float16', [3], [2048, 1, 1]);
    const y = eval1('ReduceSum', [h, undefined], { opset: 13, attrs: { keepdims: 0 } });
    expect(y.dtype).toBe('float16');
    expect(y.toArray()).toEqual([2050]);
  });

  it('infers symbolic shapes; keepdims over a symbolic axis gives 1', () => {
    const x = info('float32', [b, s, 64]);
    expect(shapeStr(inferOp('ReduceMean', [x], { opset: 13, attrs: { axes: [1] } })[0].shape)).toBe('[batch, 1, 64]');
    expect(shapeStr(inferOp('ReduceMean', [x], { opset: 13, attrs: { axes: [-1], keepdims: 0 } })[0].shape)).toBe('[batch, seq]');
    expect(shapeStr(inferOp('ReduceSum', [x, info('int64', [1], [1])], { opset: 13 })[0].shape)).toBe('[batch, 1, 64]');
    // Axes fed at run time: the rank is known, the dims are fresh symbols.
    const [rt] = inferOp('ReduceSum', [x, info('int64', [1])], { opset: 13, attrs: { keepdims: 0 } });
    expect(rt.shape.length).toBe(2);
    expect(() => inferOp('ReduceMax', [x], { opset: 13, attrs: { axes: [3] } })).toThrow(/axis 3 is out of range for rank 3/);
  });

  it('ReduceProd/ReduceMax of a known shape stay symbolic', () => {
    const [p] = inferOp('ReduceProd', [info('int64', [2], [b, s])], { opset: 13, attrs: { keepdims: 0 } });
    expect(p.known!.map(dimStr)).toEqual(['batch*seq']);
    const [m] = inferOp('ReduceMax', [info('int64', [2], [s, 1])], { opset: 13, attrs: { keepdims: 0 } });
    expect(m.known!.map(dimStr)).toEqual(['max(seq,1)']);
    const [m2] = inferOp('ReduceMax', [info('int64', [2], [s, 0])], { opset: 13, attrs: { keepdims: 0 } });
    expect(m2.known!.map(dimStr)).toEqual(['seq']);
  });
});

describe('ArgMax / ArgMin', () => {
  it('index along an axis, keepdims and select_last_index', () => {
    const x = f32([2, 2], [2, 1, 3, 10]);
    const a0 = eval1('ArgMax', [x], { attrs: { axis: 0 } });
    expect(a0.dtype).toBe('int64');
    expect(a0.shape).toEqual([1, 2]);
    expect(a0.toArray()).toEqual([1, 1]);
    expect(eval1('ArgMax', [x], { attrs: { axis: 1, keepdims: 0 } }).toArray()).toEqual([0, 1]);
    expect(eval1('ArgMin', [x], { attrs: { axis: -1, keepdims: 0 } }).toArray()).toEqual([1, 0]);
    const ties = f32([3], [5, 5, 1]);
    expect(eval1('ArgMax', [ties], { attrs: { keepdims: 0 } }).toArray()).toEqual([0]);
    expect(eval1('ArgMax', [ties], { attrs: { keepdims: 0, select_last_index: 1 } }).toArray()).toEqual([1]);
    expect(shapeStr(inferOp('ArgMax', [info('float32', [b, s, 10])], { attrs: { axis: -1, keepdims: 0 } })[0].shape)).toBe('[batch, seq]');
  });
});

describe('CumSum', () => {
  const v = f32([3], [1, 2, 3]);
  const axis0 = Tensor.scalar('int32', 0);
  it('inclusive, exclusive, reverse', () => {
    expect(eval1('CumSum', [v, axis0]).toArray()).toEqual([1, 3, 6]);
    expect(eval1('CumSum', [v, axis0], { attrs: { exclusive: 1 } }).toArray()).toEqual([0, 1, 3]);
    expect(eval1('CumSum', [v, axis0], { attrs: { reverse: 1 } }).toArray()).toEqual([6, 5, 3]);
    expect(eval1('CumSum', [v, axis0], { attrs: { reverse: 1, exclusive: 1 } }).toArray()).toEqual([5, 3, 0]);
  });
  it('along any axis of a 2-D tensor', () => {
    const m = f32([2, 3], [1, 2, 3, 4, 5, 6]);
    expect(eval1('CumSum', [m, i64([], [0])]).toArray()).toEqual([1, 2, 3, 5, 7, 9]);
    expect(eval1('CumSum', [m, i64([], [-1])]).toArray()).toEqual([1, 3, 6, 4, 9, 15]);
  });
});

describe('Softmax family', () => {
  // [1, 2, 2] = [[[0, 0], [ln 3, 0]]]
  const x = (): Tensor => f32([1, 2, 2], [0, 0, Math.log(3), 0]);

  it('Softmax-13 normalises along one axis', () => {
    expectClose(eval1('Softmax', [x()], { opset: 13, attrs: { axis: 1 } }).toArray(), [0.25, 0.5, 0.75, 0.5]);
  });

  it('Softmax-11 coerces to 2-D at axis', () => {
    expectClose(eval1('Softmax', [x()], { opset: 11, attrs: { axis: 1 } }).toArray(), [1 / 6, 1 / 6, 1 / 2, 1 / 6]);
    // Default axis is 1 before opset 13, -1 from 13.
    expectClose(eval1('Softmax', [x()], { opset: 11 }).toArray(), [1 / 6, 1 / 6, 1 / 2, 1 / 6]);
    expectClose(eval1('Softmax', [x()], { opset: 13 }).toArray(), [0.5, 0.5, 0.75, 0.25]);
  });

  it('LogSoftmax and Hardmax', () => {
    expectClose(eval1('LogSoftmax', [x()], { opset: 13, attrs: { axis: 1 } }).toArray(), [0.25, 0.5, 0.75, 0.5].map(Math.log));
    expectClose(eval1('LogSoftmax', [f32([2], [1000, 1000])], { opset: 13 }).toArray(), [-Math.LN2, -Math.LN2]);
    expect(eval1('Hardmax', [f32([3], [1, 3, 3])], { opset: 13 }).toArray()).toEqual([0, 1, 0]);
  });

  it('rows sum to 1 (property)', () => {
    fc.assert(fc.property(fc.array(fc.float({ min: -50, max: 50, noNaN: true }), { minLength: 6, maxLength: 6 }), (vals) => {
      const y = eval1('Softmax', [f32([2, 3], vals)], { opset: 13 }).toArray();
      expect(y[0] + y[1] + y[2]).toBeCloseTo(1, 5);
      expect(y[3] + y[4] + y[5]).toBeCloseTo(1, 5);
      expect(y.every((p) => p >= 0 && p <= 1)).toBe(true);
    }));
  });
});

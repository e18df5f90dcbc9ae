/**
 * Shape, Size, Reshape, Flatten, Unsqueeze, Squeeze, Expand, ConstantOfShape, Constant, Range:
 * symbolic inference with known-value propagation, and evaluation. Expectations are worked out by
 * hand from the ONNX operator spec.
 */
import { describe, expect, it } from 'vitest';
import { dimAdd, dimFloorDiv, dimMul, type Dim } from '../../../compiler/ir/dim.js';
import { Tensor } from '../../../runtime/tensor.js';
import {
  act, b, evaluate, expectOut, f32, i64, infer, info, ints, iota, past, s, scalar, str,
} from './shape-helpers.js';

describe('Shape and Size', () => {
  it('Shape knows the symbolic shape, sliced by start/end (opset 15)', () => {
    expectOut(infer('Shape', [act(b, s, 512)])[0], [3], [b, s, 512]);
    expectOut(infer('Shape', [act(b, s, 512)], { opset: 15, attrs: { start: 1, end: -1 } })[0], [1], [s]);
    expectOut(infer('Shape', [act(b, s, 512)], { opset: 15, attrs: { start: -10 } })[0], [3], [b, s, 512]);
    expectOut(infer('Shape', [act(b, s, 512)], { opset: 15, attrs: { start: 2, end: 1 } })[0], [0], []);
    expect(infer('Shape', [act(b)])[0].dtype).toBe('int64');
    expect(evaluate('Shape', [iota([2, 3, 4])], { opset: 15, attrs: { start: -2 } })[0].toArray()).toEqual([3, 4]);
  });
  it('Size knows the symbolic element count', () => {
    expectOut(infer('Size', [act(b, s, 512)])[0], [], [dimMul(dimMul(b, s), 512)]);
    const t = evaluate('Size', [iota([2, 3, 4])])[0];
    expect([t.dtype, t.shape, t.toArray()]).toEqual(['int64', [], [24]]);
  });
});

describe('Reshape', () => {
  it('copies dims for 0 and keeps symbols', () => {
    expectOut(infer('Reshape', [act(b, s, 512), ints(0, 0, 8, 64)])[0], [b, s, 8, 64]);
  });
  it('takes a symbolic target from known contents', () => {
    expectOut(infer('Reshape', [act(b, s, 8, 64), ints(b, s, 512)])[0], [b, s, 512]);
  });
  it('infers -1 symbolically', () => {
    expectOut(infer('Reshape', [act(b, s, 8, 64), ints(0, 0, -1)])[0], [b, s, 512]);
    expectOut(infer('Reshape', [act(b, s, 8, 64), ints(-1, 512)])[0], [dimMul(b, s), 512]);
    expectOut(infer('Reshape', [act(b, s, 768), ints(dimMul(b, s), -1)])[0], [dimMul(b, s), 768]);
    expectOut(infer('Reshape', [act(b, s, 12, 64), ints(b, -1, 768)])[0], [b, s, 768]);
  });
  it('allowzero keeps a 0 as a 0 (opset 14)', () => {
    expectOut(infer('Reshape', [act(0, 3, 4), ints(3, 4, 0)], { attrs: { allowzero: 1 } })[0], [3, 4, 0]);
    expectOut(infer('Reshape', [act(2, 3, 4), ints(0, -1)])[0], [2, 12]);
  });
  it('passes known contents through', () => {
    expectOut(infer('Reshape', [ints(b, s), ints(2, 1)])[0], [2, 1], [b, s]);
    expectOut(infer('Reshape', [scalar(s), ints(1)])[0], [1], [s]);
  });
  it('takes the shape attribute at opset 1', () => {
    expectOut(infer('Reshape', [act(2, 3, 4)], { opset: 1, attrs: { shape: [4, -1] } })[0], [4, 6]);
  });
  it('fails clearly', () => {
    expect(() => infer('Reshape', [act(b, s, 512), info('int64', [3])])).toThrow(
      "Reshape node 'Reshape_0': target shape is data-dependent (input 'in1' not known at compile time)",
    );
    expect(() => infer('Reshape', [act(2, 3), ints(4, 2)])).toThrow(/cannot reshape \[2, 3\] \(6 elements\)/);
    expect(() => infer('Reshape', [act(2, 3), ints(-1, -1)])).toThrow(/more than one -1/);
    expect(() => infer('Reshape', [act(2, 3), ints(5, -1)])).toThrow(/cannot reshape/);
  });
  it('gives a target fed at run time fresh dims', () => {
    const o = infer('Reshape', [act(2, 3), { ...info('int64', [3]), fed: true }])[0];
    expect(str(o.shape)).toEqual(['out0.d0', 'out0.d1', 'out0.d2']);
  });
  it('evaluates', () => {
    const y = evaluate('Reshape', [iota([2, 3, 4]), i64([3], [4, 0, -1])])[0];
    expect(y.shape).toEqual([4, 3, 2]);
    expect(y.toArray()).toEqual(iota([24]).toArray());
  });
});

describe('Flatten', () => {
  it('multiplies the dims before and after axis', () => {
    expectOut(infer('Flatten', [act(b, s, 8, 64)], { attrs: { axis: 2 } })[0], [dimMul(b, s), 512]);
    expectOut(infer('Flatten', [act(b, s, 8)], { attrs: { axis: 0 } })[0], [1, dimMul(dimMul(b, s), 8)]);
    expectOut(infer('Flatten', [act(2, 3, 4)], { attrs: { axis: -1 } })[0], [6, 4]);
    expectOut(infer('Flatten', [act(2, 3, 4)], { attrs: { axis: 3 } })[0], [24, 1]);
    expectOut(infer('Flatten', [act(2, 3, 4)])[0], [2, 12]);
    expect(evaluate('Flatten', [iota([2, 3, 4])], { attrs: { axis: 2 } })[0].shape).toEqual([6, 4]);
  });
});

describe('Unsqueeze and Squeeze', () => {
  it('Unsqueeze-13 reads axes from an input and passes known through', () => {
    expectOut(infer('Unsqueeze', [scalar(s), ints(0)])[0], [1], [s]);
    expectOut(infer('Unsqueeze', [act(b, s), ints(1, -1)])[0], [b, 1, s, 1]);
    expectOut(infer('Unsqueeze', [act(2, 3), ints(3, 1)])[0], [2, 1, 3, 1]);
    expect(evaluate('Unsqueeze', [iota([2, 3]), i64([2], [0, -1])])[0].shape).toEqual([1, 2, 3, 1]);
  });
  it('Unsqueeze-1/11 read the axes attribute', () => {
    expectOut(infer('Unsqueeze', [act(b, s)], { opset: 11, attrs: { axes: [-1] } })[0], [b, s, 1]);
    expectOut(infer('Unsqueeze', [act(3)], { opset: 1, attrs: { axes: [0, 2] } })[0], [1, 3, 1]);
    expect(() => infer('Unsqueeze', [act(3)], { opset: 11, attrs: { axes: [0, 0] } })).toThrow(/repeat an axis/);
  });
  it('Squeeze drops given axes, or all 1s', () => {
    expectOut(infer('Squeeze', [ints(s), ints(0)])[0], [], [s]);
    expectOut(infer('Squeeze', [act(b, 1, s, 1), ints(-1, 1)])[0], [b, s]);
    expectOut(infer('Squeeze', [act(1, 3, 1, 5)], { opset: 11 })[0], [3, 5]);
    expectOut(infer('Squeeze', [act(b, 1, s)], { opset: 11, attrs: { axes: [1] } })[0], [b, s]);
    expect(() => infer('Squeeze', [act(b, 1)], { opset: 11 })).toThrow(/depends on whether batch is 1/);
    expect(() => infer('Squeeze', [act(2, 3), ints(0)])).toThrow(/its dim is not 1/);
    expect(evaluate('Squeeze', [iota([1, 3, 1])])[0].shape).toEqual([3]);
  });
});

describe('Expand', () => {
  it('broadcasts both ways against a known, possibly symbolic, shape', () => {
    expectOut(infer('Expand', [act(1, s), ints(b, 1)])[0], [b, s]);
    expectOut(infer('Expand', [act(3, 1), ints(2, 1, 6)])[0], [2, 3, 6]);
    expectOut(infer('Expand', [act(b, 1, 1, s), ints(1, 1, s, 1)])[0], [b, 1, s, s]);
  });
  it('passes known contents through', () => {
    expectOut(infer('Expand', [scalar(s), ints(3)])[0], [3], [s, s, s]);
  });
  it('evaluates', () => {
    const y = evaluate('Expand', [f32([3, 1], [1, 2, 3]), i64([3], [2, 1, 2])])[0];
    expect(y.shape).toEqual([2, 3, 2]);
    expect(y.toArray()).toEqual([1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3]);
  });
});

describe('ConstantOfShape and Constant', () => {
  const one = Tensor.scalar('int64', 1);
  it('ConstantOfShape takes a symbolic shape and the value dtype', () => {
    const o = infer('ConstantOfShape', [ints(b, s)], { attrs: { value: Tensor.from('int64', [1], [1]) } })[0];
    expect(o.dtype).toBe('int64');
    expectOut(o, [b, s]);
    expect(o.known).toBeUndefined();
    expect(infer('ConstantOfShape', [ints(2)])[0].dtype).toBe('float32');
  });
  it('ConstantOfShape of a small known shape knows its contents', () => {
    expectOut(infer('ConstantOfShape', [ints(2, 3)], { attrs: { value: one } })[0], [2, 3], [1, 1, 1, 1, 1, 1]);
    expectOut(infer('ConstantOfShape', [ints()], { attrs: { value: one } })[0], [], [1]);
    const y = evaluate('ConstantOfShape', [i64([2], [2, 2])], { attrs: { value: Tensor.from('float32', [1], [0.5]) } })[0];
    expect([y.dtype, y.shape, y.toArray()]).toEqual(['float32', [2, 2], [0.5, 0.5, 0.5, 0.5]]);
  });
  it('Constant reads value, value_float(s), value_int(s)', () => {
    expectOut(infer('Constant', [], { attrs: { value_ints: [0, -1, 64] } })[0], [3], [0, -1, 64]);
    const f = infer('Constant', [], { attrs: { value_float: 0.5 } })[0];
    expect([f.dtype, f.shape, f.known]).toEqual(['float32', [], [0.5]]);
    expect(infer('Constant', [], { attrs: { value_int: 7 } })[0]).toEqual({ dtype: 'int64', shape: [], known: [7] });
    expect(infer('Constant', [], { attrs: { value: f32([2], [1, 2]) } })[0].known).toEqual([1, 2]);
    expect(evaluate('Constant', [], { attrs: { value_floats: [1, 2] } })[0].toArray()).toEqual([1, 2]);
    expect(() => infer('Constant', [], { attrs: { value_string: 'x' } })).toThrow(/string constants/);
  });
});

describe('Range', () => {
  it('has a symbolic length when limit is symbolic', () => {
    expectOut(infer('Range', [scalar(0), scalar(s), scalar(1)])[0], [s]);
    expectOut(infer('Range', [scalar(past), scalar(dimAdd(past, s)), scalar(1)])[0], [s]);
    // ceil((s - 0) / 2) = floor((s + 1) / 2)
    expectOut(infer('Range', [scalar(0), scalar(s), scalar(2)])[0], [dimFloorDiv(dimAdd(s, 1), 2)]);
    expectOut(infer('Range', [scalar(s), scalar(0), scalar(-1)])[0], [s]);
  });
  it('knows small contents, symbolic ones too', () => {
    expectOut(infer('Range', [scalar(3), scalar(10), scalar(3)])[0], [3], [3, 6, 9]);
    expectOut(infer('Range', [scalar(10), scalar(4), scalar(-3)])[0], [2], [10, 7]);
    expectOut(infer('Range', [scalar(5), scalar(1), scalar(1)])[0], [0], []);
    const p1: Dim = dimAdd(past, 1);
    expectOut(infer('Range', [scalar(past), scalar(dimAdd(past, 2)), scalar(1)])[0], [2], [past, p1]);
  });
  it('evaluates, floats included', () => {
    const y = evaluate('Range', [f32([], [1]), f32([], [5]), f32([], [2])])[0];
    expect([y.dtype, y.shape, y.toArray()]).toEqual(['float32', [2], [1, 3]]);
    const z = evaluate('Range', [Tensor.scalar('int32', 10), Tensor.scalar('int32', 6), Tensor.scalar('int32', -3)])[0];
    expect([z.dtype, z.toArray()]).toEqual(['int32', [10, 7]]);
    expect(() => evaluate('Range', [i64([], [0]), i64([], [3]), i64([], [0])])).toThrow(/delta must not be 0/);
  });
  it('gives a data-dependent length a fresh symbol', () => {
    expect(str(infer('Range', [info('int64', []), scalar(4), scalar(1)])[0].shape)).toEqual(['out0.d0']);
  });
});

/**
 * Transpose, Concat, Slice, Split, Gather, GatherND, ScatterND, Tile, Trilu: symbolic inference,
 * known-value propagation and evaluation, with expectations worked out by hand from the ONNX spec.
 */
import { describe, expect, it } from 'vitest';
import { dimAdd, dimFloorDiv, dimMin, dimMul, dimSub } from '../../../compiler/ir/dim.js';
import { Tensor } from '../../../runtime/tensor.js';
import {
  act, b, evaluate, expectOut, f32, i64, infer, info, INT64_MAX, INT64_MIN, ints, iota, past, s,
  scalar, str, sym,
} from './shape-helpers.js';

const h = sym('heads'), d = sym('head_dim');

describe('Transpose', () => {
  it('permutes symbolic dims; default reverses', () => {
    expectOut(infer('Transpose', [act(b, 8, s, 64)], { attrs: { perm: [0, 2, 1, 3] } })[0], [b, s, 8, 64]);
    expectOut(infer('Transpose', [act(b, s, 3)])[0], [3, s, b]);
    expect(() => infer('Transpose', [act(b, s)], { attrs: { perm: [0, 0] } })).toThrow(/repeat an axis/);
  });
  it('evaluates', () => {
    const y = evaluate('Transpose', [f32([2, 3], [1, 2, 3, 4, 5, 6])])[0];
    expect([y.shape, y.toArray()]).toEqual([[3, 2], [1, 4, 2, 5, 3, 6]]);
    // [2,2,2] perm [1,2,0]: y[j,k,i] = x[i,j,k]
    const z = evaluate('Transpose', [iota([2, 2, 2])], { attrs: { perm: [1, 2, 0] } })[0];
    expect(z.toArray()).toEqual([0, 4, 1, 5, 2, 6, 3, 7]);
  });
  it('passes known contents through', () => {
    expectOut(infer('Transpose', [info('int64', [2, 2], [b, s, 1, 2])])[0], [2, 2], [b, 1, s, 2]);
  });
});

describe('Concat', () => {
  it('concatenates known shape pieces', () => {
    expectOut(infer('Concat', [ints(b), ints(s), ints(-1)], { attrs: { axis: 0 } })[0], [3], [b, s, -1]);
    expectOut(infer('Concat', [ints(b, s), ints(8, 64)], { attrs: { axis: -1 } })[0], [4], [b, s, 8, 64]);
  });
  it('adds dims along the axis (KV cache)', () => {
    expectOut(infer('Concat', [act(b, 8, past, 64), act(b, 8, s, 64)], { attrs: { axis: -2 } })[0], [b, 8, dimAdd(past, s), 64]);
    expectOut(infer('Concat', [act(b, 8, 0, 64), act(b, 8, s, 64)], { attrs: { axis: 2 } })[0], [b, 8, s, 64]);
    expectOut(infer('Concat', [act(b, 3), act(2, 4)], { attrs: { axis: 1 } })[0], [2, 7]);
    expect(() => infer('Concat', [act(2, 3), act(3, 3)], { attrs: { axis: 1 } })).toThrow(/differ on axis 0 \(2 vs 3\)/);
  });
  it('evaluates', () => {
    const y = evaluate('Concat', [f32([2, 1], [1, 2]), f32([2, 2], [3, 4, 5, 6])], { attrs: { axis: 1 } })[0];
    expect([y.shape, y.toArray()]).toEqual([[2, 3], [1, 3, 4, 2, 5, 6]]);
    const z = evaluate('Concat', [i64([1], [1]), i64([0], []), i64([2], [2, 3])], { attrs: { axis: 0 } })[0];
    expect([z.dtype, z.toArray()]).toEqual(['int64', [1, 2, 3]]);
  });
});

describe('Slice', () => {
  const axes = (...a: number[]) => ints(...a);
  it('slices a cached table to a symbolic length', () => {
    expectOut(infer('Slice', [act(2048, 64), ints(0), ints(s), axes(0)])[0], [s, 64]);
    expectOut(infer('Slice', [act(2048, 64), ints(past), ints(dimAdd(past, s)), axes(0)])[0], [s, 64]);
  });
  it('takes the last element of a symbolic axis', () => {
    expectOut(infer('Slice', [act(b, h, s, d), ints(-1), ints(INT64_MAX), axes(2)])[0], [b, h, 1, d]);
    expectOut(infer('Slice', [act(b, s, 259), ints(-1), ints(INT64_MAX), axes(1), ints(1)])[0], [b, 1, 259]);
  });
  it('slices a symbolic axis from the end (negative symbolic start)', () => {
    const keep = sym('keep');
    expectOut(infer('Slice', [act(b, s, 64), ints(dimMul(keep, -1)), ints(INT64_MAX), axes(1)])[0], [b, keep, 64]);
  });
  it('clamps where bounds are provable, else gives min/max atoms', () => {
    expectOut(infer('Slice', [act(b, s), ints(0), ints(INT64_MAX), axes(-1)])[0], [b, s]);
    expectOut(infer('Slice', [act(b, dimAdd(past, s)), ints(past), ints(INT64_MAX), axes(1)])[0], [b, s]);
    expectOut(infer('Slice', [act(b, s), ints(0), ints(1), axes(1)])[0], [b, dimMin(1, s)]);
    expectOut(infer('Slice', [act(b, s), ints(2), ints(INT64_MAX), axes(1)])[0], [b, dimSub(s, dimMin(2, s))]);
    expectOut(infer('Slice', [act(b, s, 64), ints(0), ints(32), axes(2)])[0], [b, s, 32]);
    expectOut(infer('Slice', [act(b, s, 64), ints(32), ints(100), axes(-1), ints(2)])[0], [b, s, 16]);
  });
  it('handles negative steps', () => {
    expectOut(infer('Slice', [act(10), ints(-1), ints(INT64_MIN), axes(0), ints(-1)])[0], [10]);
    expectOut(infer('Slice', [act(10), ints(8), ints(1), axes(0), ints(-3)])[0], [3]); // 8, 5, 2
    expectOut(infer('Slice', [act(b, s), ints(-1), ints(INT64_MIN), axes(1), ints(-1)])[0], [b, s]);
  });
  it('propagates known contents (slicing a shape)', () => {
    expectOut(infer('Slice', [ints(b, s, 768), ints(-1), ints(INT64_MAX), axes(0)])[0], [1], [768]);
    expectOut(infer('Slice', [ints(b, s, 12, 64), ints(0), ints(2)])[0], [2], [b, s]);
    expectOut(infer('Slice', [ints(1, 2, 3, 4, 5), ints(-1), ints(INT64_MIN), axes(0), ints(-2)])[0], [3], [5, 3, 1]);
  });
  it('evaluates the spec examples', () => {
    const data = f32([2, 4], [1, 2, 3, 4, 5, 6, 7, 8]);
    const y = evaluate('Slice', [data, i64([2], [1, 0]), i64([2], [2, 3]), i64([2], [0, 1]), i64([2], [1, 2])])[0];
    expect([y.shape, y.toArray()]).toEqual([[1, 2], [5, 7]]);
    const z = evaluate('Slice', [data, i64([2], [0, 1]), i64([2], [-1, 1000])])[0];
    expect([z.shape, z.toArray()]).toEqual([[1, 3], [2, 3, 4]]);
    const w = evaluate('Slice', [data, i64([2], [1, -1]), i64([2], [0, 0]), i64([2], [0, 1]), i64([2], [-1, -2])])[0];
    expect([w.shape, w.toArray()]).toEqual([[1, 2], [8, 6]]);
  });
  it('reads attributes at opset 1', () => {
    const y = evaluate('Slice', [iota([3, 4])], { opset: 1, attrs: { starts: [1], ends: [INT64_MAX], axes: [1] } })[0];
    expect([y.shape, y.toArray()]).toEqual([[3, 3], [1, 2, 3, 5, 6, 7, 9, 10, 11]]);
    expectOut(infer('Slice', [act(b, s, 64)], { opset: 1, attrs: { starts: [0], ends: [16], axes: [2] } })[0], [b, s, 16]);
  });
  it('gives axes sliced by parameters fed at run time fresh dims', () => {
    const fed = { ...info('int64', [1]), fed: true };
    expect(str(infer('Slice', [act(b, s, 64), fed, fed, axes(1)])[0].shape)).toEqual(['batch', 'out0.d1', 64]);
    expect(str(infer('Slice', [act(b, 4), fed, fed])[0].shape)).toEqual(['out0.d0', 'out0.d1']);
  });
  it('fails clearly on data-dependent or bad parameters', () => {
    expect(() => infer('Slice', [act(b, s), info('int64', [1]), ints(1)])).toThrow(/starts is data-dependent/);
    expect(() => infer('Slice', [act(b, s), ints(0), ints(1), axes(0), ints(0)])).toThrow(/step 0/);
    expect(() => infer('Slice', [act(b, s), ints(0, 0), ints(1)])).toThrow(/ends has 1/);
  });
});

describe('Split', () => {
  it('splits equally, symbolically too', () => {
    const outs = infer('Split', [act(b, s, 2304)], { attrs: { axis: 2 }, outputs: 3 });
    for (const o of outs) expectOut(o, [b, s, 768]);
    const halves = infer('Split', [act(b, dimMul(s, 2))], { attrs: { axis: 1 }, outputs: 2 });
    expectOut(halves[1], [b, s]);
    expectOut(infer('Split', [act(b, s)], { attrs: { axis: 1 }, outputs: 2 })[0], [b, dimFloorDiv(s, 2)]);
  });
  it('takes split as an input (13) or attribute (2, 11)', () => {
    const o13 = infer('Split', [act(b, 6), ints(2, 4)], { attrs: { axis: -1 }, outputs: 2 });
    expectOut(o13[0], [b, 2]);
    expectOut(o13[1], [b, 4]);
    const o11 = infer('Split', [act(6, b)], { opset: 11, attrs: { split: [1, 5] }, outputs: 2 });
    expectOut(o11[1], [5, b]);
    expect(() => infer('Split', [act(6)], { opset: 11, attrs: { split: [1, 4] }, outputs: 2 })).toThrow(/does not partition/);
  });
  it('propagates known contents', () => {
    const [x, y] = infer('Split', [ints(b, s, 12, 64), ints(2, 2)], { outputs: 2 });
    expectOut(x, [2], [b, s]);
    expectOut(y, [2], [12, 64]);
  });
  it('evaluates', () => {
    const ys = evaluate('Split', [iota([2, 3]), i64([2], [1, 2])], { attrs: { axis: 1 }, outputs: 2 });
    expect(ys.map((y) => [y.shape, y.toArray()])).toEqual([[[2, 1], [0, 3]], [[2, 2], [1, 2, 4, 5]]]);
    const zs = evaluate('Split', [iota([6])], { opset: 11, outputs: 3 });
    expect(zs.map((z) => z.toArray())).toEqual([[0, 1], [2, 3], [4, 5]]);
  });
});

describe('Gather', () => {
  it('picks dims out of a known shape', () => {
    expectOut(infer('Gather', [ints(b, s, 512), scalar(0)])[0], [], [b]);
    expectOut(infer('Gather', [ints(b, s, 512), scalar(-1)])[0], [], [512]);
    expectOut(infer('Gather', [ints(b, s, 512), ints(1, 0)])[0], [2], [s, b]);
    expect(() => infer('Gather', [ints(b, s), scalar(2)])).toThrow(/index 2 is out of range for a dim of 2/);
  });
  it('shapes embedding lookups', () => {
    expectOut(infer('Gather', [act(50257, 768), info('int64', [b, s])])[0], [b, s, 768]);
    expectOut(infer('Gather', [act(b, s, 768), scalar(-1)], { attrs: { axis: 1 } })[0], [b, 768]);
  });
  it('evaluates (rows, columns, negative indices)', () => {
    const data = f32([3, 2], [1, 2, 3, 4, 5, 6]);
    const y = evaluate('Gather', [data, i64([1, 2], [0, 2])])[0];
    expect([y.shape, y.toArray()]).toEqual([[1, 2, 2], [1, 2, 5, 6]]);
    const z = evaluate('Gather', [data, i64([1], [-1])], { attrs: { axis: 1 } })[0];
    expect([z.shape, z.toArray()]).toEqual([[3, 1], [2, 4, 6]]);
    expect(() => evaluate('Gather', [data, i64([1], [3])])).toThrow(/out of range/);
  });
});

describe('GatherND', () => {
  it('evaluates the spec examples', () => {
    const g = (data: Tensor, idx: Tensor, batch_dims = 0): [number[], number[]] => {
      const y = evaluate('GatherND', [data, idx], { attrs: { batch_dims } })[0];
      return [[...y.shape], y.toArray()];
    };
    expect(g(i64([2, 2], [0, 1, 2, 3]), i64([2, 2], [0, 0, 1, 1]))).toEqual([[2], [0, 3]]);
    expect(g(i64([2, 2], [0, 1, 2, 3]), i64([2, 1], [1, 0]))).toEqual([[2, 2], [2, 3, 0, 1]]);
    expect(g(i64([2, 2, 2], [0, 1, 2, 3, 4, 5, 6, 7]), i64([2, 2], [0, 1, 1, 0]))).toEqual([[2, 2], [2, 3, 4, 5]]);
    expect(g(i64([2, 2, 2], [0, 1, 2, 3, 4, 5, 6, 7]), i64([2, 1, 2], [0, 1, 1, 0]))).toEqual([[2, 1, 2], [2, 3, 4, 5]]);
    expect(g(i64([2, 2, 2], [0, 1, 2, 3, 4, 5, 6, 7]), i64([2, 1], [1, 0]), 1)).toEqual([[2, 2], [2, 3, 4, 5]]);
  });
  it('infers shapes with batch_dims', () => {
    expectOut(infer('GatherND', [act(b, s, 64), info('int64', [b, 3, 1])], { attrs: { batch_dims: 1 } })[0], [b, 3, 64]);
    expectOut(infer('GatherND', [act(4, 5, 6), info('int64', [b, 2])])[0], [b, 6]);
  });
});

describe('ScatterND', () => {
  const data = () => f32([8], [1, 2, 3, 4, 5, 6, 7, 8]);
  const idx = i64([4, 1], [4, 3, 1, 7]);
  const upd = f32([4], [9, 10, 11, 12]);
  it('evaluates the spec example and reductions', () => {
    expect(evaluate('ScatterND', [data(), idx, upd])[0].toArray()).toEqual([1, 11, 3, 10, 9, 6, 7, 12]);
    const dup = i64([2, 1], [0, 0]);
    expect(evaluate('ScatterND', [f32([2], [1, 1]), dup, f32([2], [2, 3])], { attrs: { reduction: 'add' } })[0].toArray()).toEqual([6, 1]);
    expect(evaluate('ScatterND', [f32([2], [1, 1]), dup, f32([2], [2, 3])], { attrs: { reduction: 'mul' } })[0].toArray()).toEqual([6, 1]);
  });
  it('scatters slices', () => {
    const y = evaluate('ScatterND', [f32([2, 2], [0, 0, 0, 0]), i64([1, 1], [1]), f32([1, 2], [5, 6])])[0];
    expect(y.toArray()).toEqual([0, 0, 5, 6]);
    expectOut(infer('ScatterND', [act(b, 4), info('int64', [3, 1]), act(3, 4)])[0], [b, 4]);
  });
});

describe('Tile', () => {
  it('multiplies dims by known repeats', () => {
    expectOut(infer('Tile', [act(b, 2), ints(1, 3)])[0], [b, 6]);
    expectOut(infer('Tile', [act(1, s), ints(b, 1)])[0], [b, s]);
    expectOut(infer('Tile', [ints(s), ints(3)])[0], [3], [s, s, s]);
  });
  it('evaluates', () => {
    const y = evaluate('Tile', [f32([2, 2], [1, 2, 3, 4]), i64([2], [2, 2])])[0];
    expect([y.shape, y.toArray()]).toEqual([[4, 4], [1, 2, 1, 2, 3, 4, 3, 4, 1, 2, 1, 2, 3, 4, 3, 4]]);
    const z = evaluate('Tile', [f32([1, 3], [1, 2, 3]), i64([2], [2, 1])])[0];
    expect([z.shape, z.toArray()]).toEqual([[2, 3], [1, 2, 3, 1, 2, 3]]);
  });
});

describe('Trilu', () => {
  const m = f32([3, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  it('keeps the upper or lower triangle relative to diagonal k', () => {
    expect(evaluate('Trilu', [m])[0].toArray()).toEqual([1, 2, 3, 0, 5, 6, 0, 0, 9]);
    expect(evaluate('Trilu', [m, i64([], [1])])[0].toArray()).toEqual([0, 2, 3, 0, 0, 6, 0, 0, 0]);
    expect(evaluate('Trilu', [m, i64([], [-1])], { attrs: { upper: 0 } })[0].toArray()).toEqual([0, 0, 0, 4, 0, 0, 7, 8, 0]);
    expect(evaluate('Trilu', [m], { attrs: { upper: 0 } })[0].toArray()).toEqual([1, 0, 0, 4, 5, 0, 7, 8, 9]);
    expectOut(infer('Trilu', [act(b, s, s)])[0], [b, s, s]);
  });
});

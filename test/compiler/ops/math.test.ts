/**
 * Elementwise math ops (compiler/ops/elementwise*.ts): reference values computed by hand from the
 * ONNX operator spec, integer semantics, narrow-float rounding, symbolic shape inference and the
 * `known` shape arithmetic exporters rely on, plus broadcasting properties.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ONNX_DTYPE_CODE } from '../../../runtime/dtype.js';
import { Tensor } from '../../../runtime/tensor.js';
import { dimStr, shapeStr } from '../../../compiler/ir/dim.js';
import { eval1, expectClose, f32, i64, inferOp, info, sym } from './math-harness.js';

const b = sym('batch'), s = sym('seq');

describe('binary arithmetic', () => {
  it('Add broadcasts [2,3] + [3]', () => {
    const y = eval1('Add', [f32([2, 3], [1, 2, 3, 4, 5, 6]), f32([3], [10, 20, 30])]);
    expect(y.shape).toEqual([2, 3]);
    expect(y.toArray()).toEqual([11, 22, 33, 14, 25, 36]);
  });

  it('Add commutes under broadcasting (property)', () => {
    const shapes = fc.constantFrom<[number[], number[]]>([[2, 3], [3]], [[2, 1], [1, 4]], [[1], [3, 2]], [[], [2, 2]]);
    fc.assert(fc.property(shapes, fc.array(fc.integer({ min: -100, max: 100 }), { minLength: 12, maxLength: 12 }), ([sa, sb], vals) => {
      const na = sa.reduce((x, y) => x * y, 1), nb = sb.reduce((x, y) => x * y, 1);
      const A = f32(sa, vals.slice(0, na)), B = f32(sb, vals.slice(0, nb));
      const ab = eval1('Add', [A, B]), ba = eval1('Add', [B, A]);
      expect(ab.shape).toEqual(ba.shape);
      expect(ab.toArray()).toEqual(ba.toArray());
    }));
  });

  it('integer Div truncates toward zero', () => {
    expect(eval1('Div', [i64([4], [7, -7, 7, -7]), i64([4], [2, 2, -2, -2])]).toArray()).toEqual([3, -3, -3, 3]);
    const y = eval1('Div', [Tensor.from('int32', [2], [9, -9]), Tensor.from('int32', [1], [4])]);
    expect(y.dtype).toBe('int32');
    expect(y.toArray()).toEqual([2, -2]);
  });

  it('narrow integer types wrap like C', () => {
    expect(eval1('Sub', [Tensor.from('uint8', [1], [1]), Tensor.from('uint8', [1], [2])]).toArray()).toEqual([255]);
    expect(eval1('Mul', [Tensor.from('int32', [1], [65536]), Tensor.from('int32', [1], [65537])]).toArray()).toEqual([65536]);
    expect(eval1('Add', [Tensor.from('uint32', [1], [4294967295]), Tensor.from('uint32', [1], [2])]).toArray()).toEqual([1]);
  });

  it('Pow keeps the base type, including mixed int/float', () => {
    expect(eval1('Pow', [i64([3], [2, 3, 4]), i64([3], [10, 2, 0])]).toArray()).toEqual([1024, 9, 1]);
    const y = eval1('Pow', [Tensor.from('int32', [2], [4, 2]), f32([2], [0.5, 3])]);
    expect(y.dtype).toBe('int32');
    expect(y.toArray()).toEqual([2, 8]);
    expectClose(eval1('Pow', [f32([2], [2, 9]), f32([1], [0.5])]).toArray(), [Math.SQRT2, 3]);
  });

  it('Mod: sign of the divisor by default, of the dividend with fmod', () => {
    const a = i64([4], [-4, 4, -4, 5]), d = i64([4], [3, -3, -3, 5]);
    expect(eval1('Mod', [a, d]).toArray()).toEqual([2, -2, -1, 0]);
    expect(eval1('Mod', [a, d], { attrs: { fmod: 1 } }).toArray()).toEqual([-1, 1, -1, 0]);
    expectClose(eval1('Mod', [f32([2], [-4.5, 4.5]), f32([1], [2])], { attrs: { fmod: 1 } }).toArray(), [-0.5, 0.5]);
  });

  it('float16 results are rounded to float16 (ties to even)', () => {
    const one = Tensor.from('float16', [1], [1]);
    // 2^-11 is half an ulp of 1 in fp16: 1 + 2^-11 rounds to 1 (even), 1 + 3*2^-11 to 1 + 2^-9.
    expect(eval1('Add', [one, Tensor.from('float16', [1], [2 ** -11])]).toArray()).toEqual([1]);
    expect(eval1('Add', [one, Tensor.from('float16', [1], [3 * 2 ** -11])]).toArray()).toEqual([1 + 2 ** -9]);
  });

  it('PRelu and comparisons', () => {
    expect(eval1('PRelu', [f32([2, 2], [-2, 1, -4, 3]), f32([2], [0.5, 0.25])]).toArray()).toEqual([-1, 1, -2, 3]);
    const lt = eval1('Less', [f32([3], [1, 2, 3]), f32([1], [2])]);
    expect(lt.dtype).toBe('bool');
    expect(lt.toArray()).toEqual([1, 0, 0]);
    expect(eval1('GreaterOrEqual', [f32([3], [1, 2, 3]), f32([1], [2])]).toArray()).toEqual([0, 1, 1]);
    expect(eval1('Equal', [i64([3], [1, 2, 3]), i64([3], [1, 0, 3])]).toArray()).toEqual([1, 0, 1]);
    const t = Tensor.from('bool', [4], [1, 1, 0, 0]), u = Tensor.from('bool', [4], [1, 0, 1, 0]);
    expect(eval1('And', [t, u]).toArray()).toEqual([1, 0, 0, 0]);
    expect(eval1('Or', [t, u]).toArray()).toEqual([1, 1, 1, 0]);
    expect(eval1('Xor', [t, u]).toArray()).toEqual([0, 1, 1, 0]);
    expect(eval1('Not', [t]).toArray()).toEqual([0, 0, 1, 1]);
    expect(eval1('BitwiseAnd', [i64([3], [12, -1, 5]), i64([3], [10, 7, -2])], { opset: 18 }).toArray()).toEqual([8, 7, 4]);
    expect(eval1('BitwiseNot', [Tensor.from('uint8', [2], [0, 5])], { opset: 18 }).toArray()).toEqual([255, 250]);
    expect(eval1('BitwiseNot', [i64([2], [0, 2 ** 40])], { opset: 18 }).toArray()).toEqual([-1, -(2 ** 40) - 1]);
  });

  it('rejects mixed input types and unbroadcastable shapes, naming them', () => {
    expect(() => inferOp('Add', [info('int64', [2]), info('float32', [2])])).toThrow(/A is int64 but B is float32/);
    expect(() => inferOp('Mul', [info('float32', [2, 3]), info('float32', [4])])).toThrow(/3 vs 4/);
  });
});

describe('unary ops', () => {
  it('Erf matches reference values', () => {
    const y = eval1('Erf', [Tensor.from('float64', [5], [0, 0.5, 1, -2, 1e-4])]);
    expectClose(y.toArray(), [0, 0.5204998778130465, 0.8427007929497149, -0.9953222650189527, 1.1283791633342484e-4], 1e-12);
  });

  it('Round is half to even; Sign, Abs, Neg, Relu on ints', () => {
    expect(eval1('Round', [f32([6], [0.5, 1.5, 2.5, -0.5, -1.5, 2.6])]).toArray()).toEqual([0, 2, 2, -0, -2, 3]);
    expect(eval1('Sign', [i64([3], [-5, 0, 7])]).toArray()).toEqual([-1, 0, 1]);
    expect(eval1('Abs', [Tensor.from('int8', [2], [-5, 5])]).toArray()).toEqual([5, 5]);
    expect(eval1('Neg', [i64([2], [3, -4])]).toArray()).toEqual([-3, 4]);
    expect(eval1('Relu', [Tensor.from('int32', [3], [-3, 0, 2])]).toArray()).toEqual([0, 0, 2]);
  });

  it('activations follow their spec formulas', () => {
    const x = f32([3], [-1, 0, 2]);
    expectClose(eval1('Sigmoid', [f32([3], [-1000, 0, 1000])]).toArray(), [0, 0.5, 1]);
    expectClose(eval1('LeakyRelu', [x], { attrs: { alpha: 0.1 } }).toArray(), [-0.1, 0, 2]);
    expectClose(eval1('Elu', [x]).toArray(), [Math.exp(-1) - 1, 0, 2]);
    expectClose(eval1('HardSigmoid', [x]).toArray(), [0.3, 0.5, 0.9]);
    expectClose(eval1('Softplus', [f32([3], [-1, 0, 100])]).toArray(), [Math.log(1 + Math.exp(-1)), Math.log(2), 100]);
    expectClose(eval1('Tanh', [x]).toArray(), [Math.tanh(-1), 0, Math.tanh(2)]);
    expectClose(eval1('Gelu', [x], { opset: 20 }).toArray(), [-0.15865525393145707, 0, 1.9544997361036416]);
    const nan = eval1('IsNaN', [f32([3], [NaN, 0, Infinity])]);
    expect(nan.dtype).toBe('bool');
    expect(nan.toArray()).toEqual([1, 0, 0]);
    expect(eval1('IsInf', [f32([3], [-Infinity, 0, Infinity])], { attrs: { detect_negative: 0 } }).toArray()).toEqual([0, 0, 1]);
  });

  it('float-only ops reject integer inputs', () => {
    expect(() => inferOp('Sqrt', [info('int64', [2])])).toThrow(/floating|float/);
  });
});

describe('Clip, Where, Max/Min/Sum/Mean, Cast, Identity', () => {
  it('Clip-6 reads attributes, Clip-11+ reads inputs', () => {
    const x = f32([4], [-5, 0, 5, 10]);
    expect(eval1('Clip', [x], { opset: 6, attrs: { min: -1, max: 6 } }).toArray()).toEqual([-1, 0, 5, 6]);
    expect(eval1('Clip', [x, f32([], [-1]), undefined], { opset: 13 }).toArray()).toEqual([-1, 0, 5, 10]);
    expect(eval1('Clip', [x, undefined, f32([], [1])], { opset: 13 }).toArray()).toEqual([-5, 0, 1, 1]);
    const i8 = Tensor.from('int8', [3], [-128, 0, 127]);
    expect(eval1('Clip', [i8, Tensor.scalar('int8', -1), Tensor.scalar('int8', 1)], { opset: 13 }).toArray()).toEqual([-1, 0, 1]);
  });

  it('Where picks elementwise with broadcasting', () => {
    const c = Tensor.from('bool', [2, 1], [1, 0]);
    const y = eval1('Where', [c, f32([2], [1, 2]), f32([1], [9])]);
    expect(y.shape).toEqual([2, 2]);
    expect(y.toArray()).toEqual([1, 2, 9, 9]);
  });

  it('variadic Max/Min/Sum/Mean broadcast all inputs', () => {
    const a = f32([3], [1, 5, 3]), b2 = f32([1], [2]), c = f32([2, 1], [0, 4]);
    expect(eval1('Max', [a, b2, c]).toArray()).toEqual([2, 5, 3, 4, 5, 4]);
    expect(eval1('Min', [a, b2]).toArray()).toEqual([1, 2, 2]);
    expect(eval1('Sum', [a, b2, c]).toArray()).toEqual([3, 7, 5, 7, 11, 9]);
    expect(eval1('Mean', [a, f32([3], [3, 1, 3])]).toArray()).toEqual([2, 3, 3]);
    expect(eval1('Max', [a]).toArray()).toEqual([1, 5, 3]);
  });

  it('Cast truncates to int, rounds to fp16, tests != 0 for bool', () => {
    const x = f32([4], [1.9, -1.9, 0, 65519]);
    expect(eval1('Cast', [x], { attrs: { to: ONNX_DTYPE_CODE.int64 } }).toArray()).toEqual([1, -1, 0, 65519]);
    expect(eval1('Cast', [x], { attrs: { to: ONNX_DTYPE_CODE.bool } }).toArray()).toEqual([1, 1, 0, 1]);
    const h = eval1('Cast', [x], { attrs: { to: ONNX_DTYPE_CODE.float16 } });
    expect(h.dtype).toBe('float16');
    expect(h.toArray()).toEqual([1.900390625, -1.900390625, 0, 65504]);
    expect(eval1('CastLike', [x, i64([1], [0])]).dtype).toBe('int64');
    expect(eval1('Identity', [x]).toArray()).toEqual(x.toArray());
  });
});

describe('symbolic shapes and known contents', () => {
  it('broadcast shapes stay symbolic', () => {
    const [o] = inferOp('Add', [info('float32', [b, 1, 64]), info('float32', [s, 1])]);
    expect(shapeStr(o.shape)).toBe('[batch, seq, 64]');
    const [w] = inferOp('Where', [info('bool', [1, 1, s, s]), info('float32', [b, 8, s, s]), info('float32', [])]);
    expect(shapeStr(w.shape)).toBe('[batch, 8, seq, seq]');
  });

  it('propagates shape arithmetic: Div(Gather(Shape), 64), Mul, Sub, Neg', () => {
    const dims = info('int64', [3], [b, s, 768]);
    const [q] = inferOp('Div', [dims, info('int64', [], [64])]);
    expect(q.known!.map(dimStr)).toEqual(['floor(batch/64)', 'floor(seq/64)', '12']);
    const [m] = inferOp('Mul', [info('int64', [2], [b, s]), info('int64', [1], [8])]);
    expect(m.known!.map(dimStr)).toEqual(['8*batch', '8*seq']);
    const [d] = inferOp('Sub', [info('int64', [1], [s]), info('int64', [1], [1])]);
    expect(d.known!.map(dimStr)).toEqual(['seq - 1']);
    const [n] = inferOp('Neg', [info('int64', [1], [s])]);
    expect(n.known!.map(dimStr)).toEqual(['-seq']);
    const [half] = inferOp('Mul', [info('float32', [2], [s, 4]), info('float32', [], [0.5])]);
    expect(half.known).toBeUndefined(); // seq/2 is not a dim
    const [a] = inferOp('Abs', [info('int64', [1], [s])]);
    expect(a.known!.map(dimStr)).toEqual(['seq']);
  });

  it('Equal decides only what is decidable; Where then selects', () => {
    const shape = info('int64', [3], [b, s, -1]);
    const [e] = inferOp('Equal', [shape, info('int64', [], [-1])]);
    expect(e.dtype).toBe('bool');
    expect(e.known).toEqual([0, 0, 1]);
    const [u] = inferOp('Equal', [info('int64', [1], [s]), info('int64', [], [4])]);
    expect(u.known).toBeUndefined();
    const [w] = inferOp('Where', [info('bool', [3], e.known), info('int64', [3], [1, 1, 1]), shape]);
    expect(w.known!.map(dimStr)).toEqual(['batch', 'seq', '1']);
    const [lt] = inferOp('Less', [info('int64', [2], [s, -1]), info('int64', [], [0])]);
    expect(lt.known).toEqual([0, 1]);
  });

  it('Cast, Identity, Max and Clip carry symbolic contents', () => {
    const x = info('int64', [2], [b, s]);
    const [c] = inferOp('Cast', [x], { attrs: { to: ONNX_DTYPE_CODE.int32 } });
    expect(c.dtype).toBe('int32');
    expect(c.known!.map(dimStr)).toEqual(['batch', 'seq']);
    const [h] = inferOp('Cast', [x], { attrs: { to: ONNX_DTYPE_CODE.float16 } });
    expect(h.known).toBeUndefined();
    expect(inferOp('Identity', [x])[0].known!.map(dimStr)).toEqual(['batch', 'seq']);
    const [mx] = inferOp('Max', [info('int64', [1], [s]), info('int64', [1], [0])]);
    expect(mx.known!.map(dimStr)).toEqual(['seq']);
    const [cl] = inferOp('Clip', [info('int64', [1], [s]), info('int64', [], [0]), undefined], { opset: 13 });
    expect(cl.known!.map(dimStr)).toEqual(['seq']);
  });
});

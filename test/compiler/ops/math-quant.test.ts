/**
 * Quantization ops (compiler/ops/quant.ts): the ONNX spec's own examples for QuantizeLinear,
 * DequantizeLinear, DynamicQuantizeLinear and MatMulInteger, per-axis parameters, rounding half
 * to even with saturation, and the quantize → dequantize round trip bound.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Tensor } from '../../../runtime/tensor.js';
import { shapeStr } from '../../../compiler/ir/dim.js';
import { eval1, evalOp, expectClose, f32, inferOp, info, sym } from './math-harness.js';

describe('QuantizeLinear / DequantizeLinear', () => {
  it('per tensor, uint8: round half to even, then saturate', () => {
    const x = f32([6], [0, 2, 3, 1000, -254, -1000]);
    const y = eval1('QuantizeLinear', [x, f32([], [2]), Tensor.scalar('uint8', 128)], { opset: 13 });
    expect(y.dtype).toBe('uint8');
    expect(y.toArray()).toEqual([128, 129, 130, 255, 1, 0]);
  });

  it('int8 zero point, and uint8 when the zero point is omitted', () => {
    const x = f32([5], [-300, -2.5, 2.5, 3.5, 300]);
    expect(eval1('QuantizeLinear', [x, f32([], [1]), Tensor.scalar('int8', 0)]).toArray()).toEqual([-128, -2, 2, 4, 127]);
    const u = eval1('QuantizeLinear', [x, f32([], [1])]);
    expect(u.dtype).toBe('uint8');
    expect(u.toArray()).toEqual([0, 0, 2, 4, 255]);
  });

  it('per axis (opset 13)', () => {
    // x [1, 3, 2]; one scale/zero point per channel on axis 1.
    const x = f32([1, 3, 2], [-162, 10, -100, 232, -20, -50]);
    const scale = f32([3], [2, 4, 5]), zp = Tensor.from('uint8', [3], [84, 24, 196]);
    expect(eval1('QuantizeLinear', [x, scale, zp], { opset: 13 }).toArray()).toEqual([3, 89, 0, 82, 192, 186]);
    const q = Tensor.from('uint8', [1, 3, 2], [3, 89, 34, 200, 74, 59]);
    expect(eval1('DequantizeLinear', [q, scale, zp], { opset: 13 }).toArray()).toEqual([-162, 10, 40, 704, -610, -685]);
    expect(() => eval1('QuantizeLinear', [x, f32([2], [1, 1])], { opset: 13 })).toThrow(/2 values but axis 1 of x has 3/);
  });

  it('dequantizes per tensor, and int32 without zero point', () => {
    const x = Tensor.from('uint8', [4], [0, 3, 128, 255]);
    expect(eval1('DequantizeLinear', [x, f32([], [2]), Tensor.scalar('uint8', 128)]).toArray()).toEqual([-256, -250, 0, 254]);
    expect(eval1('DequantizeLinear', [Tensor.from('int32', [2], [-7, 9]), f32([], [0.5])]).toArray()).toEqual([-3.5, 4.5]);
    const [o] = inferOp('DequantizeLinear', [info('int8', [sym('n'), 4]), info('float32', []), info('int8', [])]);
    expect(`${o.dtype}${shapeStr(o.shape)}`).toBe('float32[n, 4]');
  });

  it('round trip error is at most scale/2 inside the representable range (property)', () => {
    fc.assert(fc.property(
      fc.float({ min: Math.fround(0.01), max: 10, noNaN: true }),
      fc.integer({ min: 0, max: 255 }),
      fc.array(fc.float({ min: -1, max: 1, noNaN: true }), { minLength: 1, maxLength: 16 }),
      (scale, zp, unit) => {
        // Values inside [(0 - zp) * scale, (255 - zp) * scale].
        const xs = unit.map((u) => ((u + 1) / 2) * 255 * scale - zp * scale);
        const x = f32([xs.length], xs);
        const q = eval1('QuantizeLinear', [x, f32([], [scale]), Tensor.scalar('uint8', zp)]);
        const d = eval1('DequantizeLinear', [q, f32([], [scale]), Tensor.scalar('uint8', zp)]);
        // Plus fp32 rounding of x and of the dequantized value.
        d.toArray().forEach((v, i) => expect(Math.abs(v - x.data[i])).toBeLessThanOrEqual(scale / 2 + 1e-6 * Math.max(1, Math.abs(v))));
      },
    ));
  });
});

describe('DynamicQuantizeLinear', () => {
  it('derives scale and zero point from the range including 0 (spec example)', () => {
    const [y, scale, zp] = evalOp('DynamicQuantizeLinear', [f32([6], [0, 2, -3, -2.5, 1.34, 0.5])]);
    expectClose(scale.toArray(), [5 / 255], 1e-6);
    expect(zp.toArray()).toEqual([153]);
    expect(y.toArray()).toEqual([153, 255, 0, 26, 221, 179]);
    expect(scale.shape).toEqual([]);
    const [y2, , zp2] = evalOp('DynamicQuantizeLinear', [f32([4], [1, 2.1, 1.3, 2.5])]);
    expect(zp2.toArray()).toEqual([0]);
    expect(y2.toArray()).toEqual([102, 214, 133, 255]);
  });
});

describe('MatMulInteger', () => {
  it('subtracts zero points and accumulates in int32 (spec example)', () => {
    const a = Tensor.from('uint8', [4, 3], [11, 7, 3, 10, 6, 2, 9, 5, 1, 8, 4, 0]);
    const b = Tensor.from('uint8', [3, 2], [1, 4, 2, 5, 3, 6]);
    const y = eval1('MatMulInteger', [a, b, Tensor.scalar('uint8', 12), Tensor.scalar('uint8', 0)]);
    expect(y.dtype).toBe('int32');
    expect(y.toArray()).toEqual([-38, -83, -44, -98, -50, -113, -56, -128]);
  });

  it('per-row and per-column zero points', () => {
    const a = Tensor.from('int8', [2, 2], [1, 2, 3, 4]);
    const b = Tensor.from('int8', [2, 2], [1, 0, 0, 1]);
    const y = eval1('MatMulInteger', [a, b, Tensor.from('int8', [2], [1, 3]), Tensor.from('int8', [2], [0, 1])]);
    // A - [[1],[3]] = [[0,1],[0,1]]; B - [0,1] = [[1,-1],[0,0]].
    expect(y.toArray()).toEqual([0, 0, 0, 0]);
    const [o] = inferOp('MatMulInteger', [info('uint8', [sym('t'), 64]), info('int8', [64, 32])]);
    expect(`${o.dtype}${shapeStr(o.shape)}`).toBe('int32[t, 32]');
  });
});

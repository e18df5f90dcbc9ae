/**
 * Linear quantization ONNX ops: QuantizeLinear and DequantizeLinear (per-tensor, and per-axis
 * from opset 13), DynamicQuantizeLinear (uint8, scale and zero point from the data's range),
 * MatMulInteger (int32 accumulation with optional per-tensor/per-row/per-column zero points) and
 * QLinearMatMul. Quantization divides in fp32 as the ONNX reference does, rounds half to even and
 * saturates to the output type's range.
 */
import { intRange, type DType } from '../../runtime/dtype.js';
import { storeRounded, Tensor } from '../../runtime/tensor.js';
import { axisView, expectFloat, roundHalfEven } from './math-common.js';
import { matmul, matmulShape } from './nn.js';
import type { InferContext, OpContext, OpDef } from './registry.js';
import { mapBroadcast, normAxis, req } from './util.js';

const QTYPES: readonly DType[] = ['uint8', 'int8', 'uint16', 'int16', 'int32', 'uint4', 'int4'];

/**
 * For a scale/zero-point tensor applied to `x`, the parameter index of each element of x: 0 for a
 * per-tensor (one-element) parameter, the coordinate along `axis` for a per-axis (1-D) one.
 */
function paramIndex(ctx: OpContext, x: Tensor, p: Tensor, what: string): (i: number) => number {
  if (p.size === 1) return () => 0;
  if (ctx.opset < 13 || p.rank !== 1) ctx.fail(`${what} must be a scalar${ctx.opset >= 13 ? ' or 1-D' : ''}, got [${p.shape.join(',')}]`);
  const axis = normAxis(ctx, ctx.attrs.int('axis', 1), x.rank);
  if (p.size !== x.shape[axis]) ctx.fail(`${what} has ${p.size} values but axis ${axis} of x has ${x.shape[axis]}`);
  const v = axisView(x.shape, axis);
  return (i) => Math.floor(i / v.inner) % v.len;
}

/** Check scale (and zero point) shapes at inference: scalars, or 1-D along the axis. */
function inferParams(ctx: InferContext, scaleIdx: number): void {
  const x = ctx.input(0);
  if (ctx.attrs.int('block_size', 0) !== 0) ctx.fail('blocked quantization (block_size, opset 21) is not supported');
  for (const i of [scaleIdx, scaleIdx + 1]) {
    const p = ctx.inputs[i];
    if (!p || p.shape.length === 0 || (p.shape.length === 1 && p.shape[0] === 1)) continue;
    if (ctx.opset < 13 || p.shape.length !== 1) ctx.fail(`input ${i} must be a scalar or 1-D, got rank ${p.shape.length}`);
    normAxis(ctx, ctx.attrs.int('axis', 1), x.shape.length);
  }
}

/** Round half to even and clamp to `dtype`'s range. */
function saturate(dtype: DType): (v: number) => number {
  const [lo, hi] = intRange(dtype);
  return (v) => Math.min(hi, Math.max(lo, roundHalfEven(v)));
}

const quantizeOp: OpDef = {
  name: 'QuantizeLinear',
  since: [10, 13],
  infer(ctx) {
    const x = ctx.input(0), zp = ctx.inputs[2];
    expectFloat(ctx, x, 'x');
    inferParams(ctx, 1);
    const dtype = zp?.dtype ?? 'uint8';
    if (!QTYPES.includes(dtype)) ctx.fail(`y_zero_point type ${dtype} is not a supported quantized type`);
    return [{ dtype, shape: [...x.shape] }];
  },
  evaluate(ctx, inputs) {
    const x = req(ctx, inputs, 0, 'x'), scale = req(ctx, inputs, 1, 'y_scale'), zp = inputs[2];
    const dtype = zp?.dtype ?? 'uint8';
    const si = paramIndex(ctx, x, scale, 'y_scale'), zi = zp ? paramIndex(ctx, x, zp, 'y_zero_point') : undefined;
    const sat = saturate(dtype);
    const out = Tensor.zeros(dtype, x.shape);
    for (let i = 0; i < x.size; i++) {
      const z = zp && zi ? zp.data[zi(i)] : 0;
      out.data[i] = sat(roundHalfEven(Math.fround(x.data[i] / scale.data[si(i)])) + z);
    }
    return [out];
  },
};

const dequantizeOp: OpDef = {
  name: 'DequantizeLinear',
  since: [10, 13],
  infer(ctx) {
    const x = ctx.input(0), scale = ctx.input(1), zp = ctx.inputs[2];
    expectFloat(ctx, scale, 'x_scale');
    if (zp && zp.dtype !== x.dtype) ctx.fail(`x is ${x.dtype} but x_zero_point is ${zp.dtype}`);
    inferParams(ctx, 1);
    return [{ dtype: scale.dtype, shape: [...x.shape] }];
  },
  evaluate(ctx, inputs) {
    const x = req(ctx, inputs, 0, 'x'), scale = req(ctx, inputs, 1, 'x_scale'), zp = inputs[2];
    const si = paramIndex(ctx, x, scale, 'x_scale'), zi = zp ? paramIndex(ctx, x, zp, 'x_zero_point') : undefined;
    const out = Tensor.zeros(scale.dtype, x.shape);
    for (let i = 0; i < x.size; i++) {
      const z = zp && zi ? zp.data[zi(i)] : 0;
      out.data[i] = (x.data[i] - z) * scale.data[si(i)];
    }
    return [storeRounded(out)];
  },
};

const dynamicQuantizeOp: OpDef = {
  name: 'DynamicQuantizeLinear',
  since: [11],
  infer(ctx) {
    const x = ctx.input(0);
    if (x.dtype !== 'float32') ctx.fail(`x must be float32, got ${x.dtype}`);
    return [{ dtype: 'uint8', shape: [...x.shape] }, { dtype: 'float32', shape: [] }, { dtype: 'uint8', shape: [] }];
  },
  evaluate(ctx, inputs) {
    const x = req(ctx, inputs, 0, 'x');
    let lo = 0, hi = 0;
    for (let i = 0; i < x.size; i++) { lo = Math.min(lo, x.data[i]); hi = Math.max(hi, x.data[i]); }
    // fp32 arithmetic throughout, as the ONNX reference (numpy float32) computes it.
    const scale = Math.fround(Math.fround(hi - lo) / 255);
    const sat = saturate('uint8');
    const zp = scale === 0 ? 0 : sat(-Math.fround(lo / scale));
    const y = Tensor.zeros('uint8', x.shape);
    if (scale !== 0) for (let i = 0; i < x.size; i++) y.data[i] = sat(roundHalfEven(Math.fround(x.data[i] / scale)) + zp);
    return [y, Tensor.scalar('float32', scale), Tensor.scalar('uint8', zp)];
  },
};

/**
 * `t - zp` as int32, with a zero point that is a scalar, per-row of A (1-D of length M, applied
 * along axis -2) or per-column of B (1-D of length N, along axis -1).
 */
function shifted(ctx: OpContext, t: Tensor, zp: Tensor | undefined, rowwise: boolean): Tensor {
  if (!zp) return t;
  const z = rowwise && zp.rank === 1 && zp.size > 1 ? zp.reshape([zp.size, 1]) : zp;
  return mapBroadcast(ctx, [t, z], 'int32', (a, b) => a - b);
}

const INT8S: readonly DType[] = ['int8', 'uint8'];

const matmulIntegerOp: OpDef = {
  name: 'MatMulInteger',
  since: [10],
  infer(ctx) {
    const a = ctx.input(0), b = ctx.input(1);
    for (const [t, n] of [[a, 'A'], [b, 'B']] as const) {
      if (!INT8S.includes(t.dtype)) ctx.fail(`${n} must be int8 or uint8, got ${t.dtype}`);
    }
    for (const [zi, ti] of [[2, 0], [3, 1]]) {
      const z = ctx.inputs[zi];
      if (z && z.dtype !== ctx.input(ti).dtype) ctx.fail(`zero point ${zi} is ${z.dtype} but its matrix is ${ctx.input(ti).dtype}`);
    }
    return [{ dtype: 'int32', shape: matmulShape(ctx, a.shape, b.shape) }];
  },
  evaluate(ctx, inputs) {
    const a = shifted(ctx, req(ctx, inputs, 0, 'A'), inputs[2], true);
    const b = shifted(ctx, req(ctx, inputs, 1, 'B'), inputs[3], false);
    return [matmul(ctx, a, b, 'int32')];
  },
};

const qlinearMatmulOp: OpDef = {
  name: 'QLinearMatMul',
  since: [10],
  infer(ctx) {
    const a = ctx.input(0), b = ctx.input(3), yzp = ctx.input(7);
    if (!INT8S.includes(yzp.dtype)) ctx.fail(`y_zero_point must be int8 or uint8, got ${yzp.dtype}`);
    return [{ dtype: yzp.dtype, shape: matmulShape(ctx, a.shape, b.shape) }];
  },
  evaluate(ctx, inputs) {
    const [a, as, azp, b, bs, bzp, ys, yzp] = inputs.map((t, i) => t ?? ctx.fail(`input ${i} is required`));
    const acc = matmul(ctx, shifted(ctx, a, azp, true), shifted(ctx, b, bzp, false), 'float64');
    // Scale each product by a_scale·b_scale (per-tensor, per-row of A or per-column of B).
    const scaled = mapBroadcast(ctx, [acc, as.rank === 1 && as.size > 1 ? as.reshape([as.size, 1]) : as, bs], 'float64',
      (v, sa, sb) => v * Math.fround(sa * sb));
    const sat = saturate(yzp.dtype);
    return [mapBroadcast(ctx, [scaled, ys, yzp], yzp.dtype, (v, s, z) => sat(roundHalfEven(Math.fround(v / s)) + z))];
  },
};

export const quantOps: OpDef[] = [quantizeOp, dequantizeOp, dynamicQuantizeOp, matmulIntegerOp, qlinearMatmulOp];

/**
 * Host tensors: a dtype, a concrete shape and a typed array (see dtype.ts for the storage rules).
 * This is the value type of every CPU reference in lfc, from ONNX op evaluation to kernel
 * references; it carries no graph or ONNX knowledge.
 */
import { arrayFor, isFloat, type DType, type TypedArray } from './dtype.js';
import { roundBf16, roundFp16, roundFp8e4m3, roundFp8e5m2 } from './floats.js';

export class Tensor {
  constructor(
    readonly dtype: DType,
    readonly shape: readonly number[],
    readonly data: TypedArray,
  ) {
    const n = sizeOf(shape);
    if (data.length !== n) {
      throw new Error(`Tensor: shape [${shape.join(',')}] holds ${n} elements but data has ${data.length}`);
    }
  }

  get size(): number { return this.data.length; }
  get rank(): number { return this.shape.length; }

  /** A new tensor of `dtype` and `shape` filled with zeros. */
  static zeros(dtype: DType, shape: readonly number[]): Tensor {
    return new Tensor(dtype, [...shape], arrayFor(dtype, sizeOf(shape)));
  }

  /** Build from plain numbers, rounding/wrapping each to `dtype`. */
  static from(dtype: DType, shape: readonly number[], values: ArrayLike<number>): Tensor {
    const t = Tensor.zeros(dtype, shape);
    if (values.length !== t.size) {
      throw new Error(`Tensor.from: shape [${shape.join(',')}] needs ${t.size} values, got ${values.length}`);
    }
    for (let i = 0; i < values.length; i++) t.data[i] = values[i];
    storeRounded(t);
    return t;
  }

  static scalar(dtype: DType, v: number): Tensor { return Tensor.from(dtype, [], [v]); }

  /** Same data, another shape with the same element count. */
  reshape(shape: readonly number[]): Tensor { return new Tensor(this.dtype, [...shape], this.data); }

  /** Plain numbers (a copy). */
  toArray(): number[] { return Array.from(this.data as ArrayLike<number>); }

  toString(): string {
    const head = this.toArray().slice(0, 8).map((v) => +v.toPrecision(6)).join(', ');
    return `Tensor<${this.dtype}>[${this.shape.join(',')}](${head}${this.size > 8 ? ', …' : ''})`;
  }
}

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) { s[i] = acc; acc *= shape[i]; }
  return s;
}

/** The rounding function a narrow float dtype applies to an fp32/fp64 value, or undefined. */
export function rounderFor(dtype: DType): ((x: number) => number) | undefined {
  switch (dtype) {
    case 'float16': return roundFp16;
    case 'bfloat16': return roundBf16;
    case 'float8e4m3fn': return (x) => roundFp8e4m3(x, true);
    case 'float8e5m2': return (x) => roundFp8e5m2(x, true);
    default: return undefined;
  }
}

/**
 * After writing raw numbers into a tensor's array, make each element a value of its dtype:
 * narrow floats are rounded (RNE), int64 truncated toward zero, 4-bit and bool wrapped.
 * (Typed arrays already wrap/truncate int8..int32 and round to fp32.)
 */
export function storeRounded(t: Tensor): Tensor {
  const r = rounderFor(t.dtype);
  const a = t.data;
  if (r) {
    for (let i = 0; i < a.length; i++) a[i] = r(a[i]);
  } else if (t.dtype === 'int64' || t.dtype === 'uint64' || t.dtype === 'uint32') {
    for (let i = 0; i < a.length; i++) a[i] = Math.trunc(a[i]);
  } else if (t.dtype === 'int4') {
    for (let i = 0; i < a.length; i++) a[i] = ((a[i] & 0xf) << 28) >> 28;
  } else if (t.dtype === 'uint4') {
    for (let i = 0; i < a.length; i++) a[i] = a[i] & 0xf;
  } else if (t.dtype === 'bool') {
    for (let i = 0; i < a.length; i++) a[i] = a[i] ? 1 : 0;
  }
  return t;
}

/**
 * Convert `src` to `dtype` as ONNX Cast does: float→int truncates toward zero, →bool is `!= 0`,
 * →narrow float rounds to nearest even (fp8 saturating).
 */
export function castTensor(src: Tensor, dtype: DType): Tensor {
  const out = Tensor.zeros(dtype, src.shape);
  const a = src.data, o = out.data;
  if (dtype === 'bool') {
    for (let i = 0; i < a.length; i++) o[i] = a[i] !== 0 ? 1 : 0;
    return out;
  }
  if (!isFloat(dtype) && isFloat(src.dtype)) {
    for (let i = 0; i < a.length; i++) o[i] = Number.isFinite(a[i]) ? Math.trunc(a[i]) : 0;
  } else {
    for (let i = 0; i < a.length; i++) o[i] = a[i];
  }
  return storeRounded(out);
}

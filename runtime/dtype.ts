/**
 * Element types lfc understands, their ONNX codes, and their storage in host memory.
 *
 * Every tensor that lfc computes with on the CPU lives in a typed array. Floating types narrower
 * than fp32 (fp16, bf16, fp8) are held in a Float32Array whose values are already rounded to the
 * narrow type, so references compute in fp32 and round where a GPU kernel would store. 64-bit
 * integers are held in a Float64Array: exact up to 2^53, which covers every shape, index and token
 * id a decoder graph holds; larger sentinels (INT64_MAX in Slice ends) round to ±2^63 and keep
 * their meaning ("past the end").
 */

export type DType =
  | 'float32' | 'float64' | 'float16' | 'bfloat16' | 'float8e4m3fn' | 'float8e5m2'
  | 'int64' | 'int32' | 'int16' | 'int8' | 'uint64' | 'uint32' | 'uint16' | 'uint8'
  | 'int4' | 'uint4' | 'bool' | 'string';

/** ONNX TensorProto.DataType code of each dtype (onnx.proto3, up to IR version 10). */
export const ONNX_DTYPE_CODE: Record<DType, number> = {
  float32: 1, uint8: 2, int8: 3, uint16: 4, int16: 5, int32: 6, int64: 7, string: 8, bool: 9,
  float16: 10, float64: 11, uint32: 12, uint64: 13, bfloat16: 16, float8e4m3fn: 17,
  float8e5m2: 19, uint4: 21, int4: 22,
};

const CODE_TO_DTYPE = new Map<number, DType>(
  Object.entries(ONNX_DTYPE_CODE).map(([k, v]) => [v, k as DType]),
);

/** Names ONNX gives codes lfc does not support, for error messages. */
const UNSUPPORTED_CODES: Record<number, string> = {
  0: 'UNDEFINED', 14: 'COMPLEX64', 15: 'COMPLEX128', 18: 'FLOAT8E4M3FNUZ', 20: 'FLOAT8E5M2FNUZ',
  23: 'FLOAT4E2M1',
};

export function dtypeFromOnnx(code: number, where: string): DType {
  const d = CODE_TO_DTYPE.get(code);
  if (d === undefined) {
    const name = UNSUPPORTED_CODES[code];
    throw new Error(`${where}: unsupported element type ${code}${name ? ` (${name})` : ''}`);
  }
  return d;
}

export type TypedArray =
  | Float32Array | Float64Array | Int32Array | Int16Array | Int8Array
  | Uint32Array | Uint16Array | Uint8Array;

/** Storage of one dtype in host memory. `string` tensors are not supported for compute. */
export function arrayFor(dtype: DType, n: number): TypedArray {
  switch (dtype) {
    case 'float32': case 'float16': case 'bfloat16': case 'float8e4m3fn': case 'float8e5m2':
      return new Float32Array(n);
    case 'float64': case 'int64': case 'uint64': case 'uint32':
      return new Float64Array(n);
    case 'int32': return new Int32Array(n);
    case 'int16': return new Int16Array(n);
    case 'int8': case 'int4': return new Int8Array(n);
    case 'uint16': return new Uint16Array(n);
    case 'uint8': case 'uint4': case 'bool': return new Uint8Array(n);
    case 'string': throw new Error('string tensors are not supported');
  }
}

/** Bytes one element takes in an ONNX raw_data buffer (int4/uint4: 0.5). */
export function byteSize(dtype: DType): number {
  switch (dtype) {
    case 'float64': case 'int64': case 'uint64': return 8;
    case 'float32': case 'int32': case 'uint32': return 4;
    case 'float16': case 'bfloat16': case 'int16': case 'uint16': return 2;
    case 'int4': case 'uint4': return 0.5;
    case 'string': return 0;
    default: return 1;
  }
}

export const isFloat = (d: DType): boolean =>
  d === 'float32' || d === 'float64' || d === 'float16' || d === 'bfloat16' ||
  d === 'float8e4m3fn' || d === 'float8e5m2';

export const isInteger = (d: DType): boolean => !isFloat(d) && d !== 'bool' && d !== 'string';

export const isSigned = (d: DType): boolean =>
  isFloat(d) || d === 'int64' || d === 'int32' || d === 'int16' || d === 'int8' || d === 'int4';

/** Inclusive value range of an integer dtype (int64 within float64's exact range). */
export function intRange(d: DType): [number, number] {
  switch (d) {
    case 'int8': return [-128, 127];
    case 'uint8': return [0, 255];
    case 'int16': return [-32768, 32767];
    case 'uint16': return [0, 65535];
    case 'int32': return [-2147483648, 2147483647];
    case 'uint32': return [0, 4294967295];
    case 'int4': return [-8, 7];
    case 'uint4': return [0, 15];
    case 'bool': return [0, 1];
    case 'int64': return [-(2 ** 63), 2 ** 63];
    case 'uint64': return [0, 2 ** 64];
    default: throw new Error(`intRange: ${d} is not an integer type`);
  }
}

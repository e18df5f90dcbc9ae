/**
 * What every kernel reference shares: the storage dtypes a plan's activations may have, the
 * rounding applied where a GPU kernel stores to memory, and argument checks whose errors name the
 * family and the argument ("linear: weight has 12 elements, expected 16 ([N=4, K=4])").
 *
 * Conventions of runtime/kernels/*.ts: data is row-major in Float32Array, narrow values are held
 * as already-rounded floats (dtype.ts), arithmetic runs in JS numbers (fp64, at least as exact as
 * the GPU's fp32 accumulators), and an output is rounded to its storage dtype exactly once, when
 * it is stored.
 */

/** The activation storage dtypes of a plan. fp32 storage needs no rounding beyond Float32Array's. */
export type StorageDType = 'float32' | 'float16' | 'bfloat16';

/**
 * The rounding a store to `dtype` applies, or undefined for fp32 (Float32Array rounds itself).
 * Bit-identical to floats.ts's roundFp16 / roundBf16 (test/runtime/kernels/common.test.ts), but
 * done on fp32 bits: references round every stored element, so this is on their hot path.
 */
export function storeRounder(dtype: StorageDType): ((x: number) => number) | undefined {
  switch (dtype) {
    case 'float32': return undefined;
    case 'float16': return storeFp16;
    case 'bfloat16': return storeBf16;
    default: throw new Error(`unsupported storage dtype '${dtype as string}' (float32, float16 or bfloat16)`);
  }
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const TWO_POW_52 = 2 ** 52;

/** x → fp32 → fp16 (round to nearest even, overflow to ±Inf), as a number. */
export function storeFp16(x: number): number {
  f32[0] = x;
  const b = u32[0];
  const abs = b & 0x7fffffff;
  if (abs >= 0x7f800000) return f32[0]; // ±Inf, NaN
  if (abs >= 0x38800000) { // ≥ 2^-14: fp16 normal range, keep 10 of fp32's 23 mantissa bits
    const r = (abs + 0xfff + ((abs >>> 13) & 1)) & ~0x1fff;
    if (r > 0x477fe000) return b & 0x80000000 ? -Infinity : Infinity; // past 65504
    u32[0] = (b & 0x80000000) | r;
    return f32[0];
  }
  // subnormal: multiples of 2^-24; adding 2^52 rounds the (exact, < 2^10) scaled value to even
  const q = (Math.abs(f32[0]) * 16777216 + TWO_POW_52 - TWO_POW_52) / 16777216;
  return b & 0x80000000 ? -q : q;
}

/** x → fp32 → bf16 (round to nearest even), as a number. */
export function storeBf16(x: number): number {
  f32[0] = x;
  const b = u32[0];
  if ((b & 0x7fffffff) > 0x7f800000) return NaN;
  u32[0] = (b + 0x7fff + ((b >>> 16) & 1)) & 0xffff0000;
  return f32[0];
}

/** Round every element of `a` in place to `dtype` (a no-op for fp32). */
export function roundInPlace(a: Float32Array, dtype: StorageDType): Float32Array {
  const r = storeRounder(dtype);
  if (r) for (let i = 0; i < a.length; i++) a[i] = r(a[i]);
  return a;
}

/** Throw unless each named dimension is an integer ≥ `min` (1 unless given). */
export function checkDims(family: string, dims: Record<string, number>, min = 1): void {
  for (const [name, v] of Object.entries(dims)) {
    if (!Number.isInteger(v) || v < min) throw new Error(`${family}: ${name} must be an integer ≥ ${min}, got ${v}`);
  }
}

/**
 * Throw unless `a` holds exactly the elements of `shape` (given as name=size pairs, so the
 * message shows where the expected count comes from).
 */
export function checkLength(family: string, arg: string, a: ArrayLike<number>, shape: Record<string, number>): void {
  let n = 1;
  for (const d of Object.values(shape)) n *= d;
  if (a.length !== n) {
    const dims = Object.entries(shape).map(([k, v]) => `${k}=${v}`).join(', ');
    throw new Error(`${family}: ${arg} has ${a.length} elements, expected ${n} ([${dims}])`);
  }
}

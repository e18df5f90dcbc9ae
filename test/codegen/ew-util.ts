/**
 * Shared helpers of the elementwise/norm/rope/logits/sampling kernel tests: storage encode/decode
 * for bf16/fp16, poisoned output buffers and a one-rounding tolerance check.
 */
import { expect } from 'vitest';
import type { ActDType, RenderedKernel } from '../../compiler/codegen/kernel.js';
import { bf16Decode, bf16Encode, fp16Decode, fp16Encode } from '../../runtime/floats.js';

export const DTYPES: ActDType[] = ['bfloat16', 'float16'];

export function encode(dtype: ActDType, xs: ArrayLike<number>): Uint16Array {
  const enc = dtype === 'bfloat16' ? bf16Encode : fp16Encode;
  const out = new Uint16Array(xs.length);
  for (let i = 0; i < xs.length; i++) out[i] = enc(xs[i]);
  return out;
}

export function decode(dtype: ActDType, hs: Uint16Array): Float32Array {
  const dec = dtype === 'bfloat16' ? bf16Decode : fp16Decode;
  const out = new Float32Array(hs.length);
  for (let i = 0; i < hs.length; i++) out[i] = dec(hs[i]);
  return out;
}

/** Values already representable in `dtype` (what a buffer of that dtype holds). */
export function stored(dtype: ActDType, xs: ArrayLike<number>): Float32Array {
  return decode(dtype, encode(dtype, xs));
}

/** A NaN-filled storage buffer (any element the kernel forgets to write fails the check). */
export function poisoned(n: number): Uint16Array {
  return new Uint16Array(n).fill(0x7fff);
}

/** Relative width of one ulp at worst (bf16: 8 bits of mantissa; fp16: 11). */
export const ULP: Record<ActDType, number> = { bfloat16: 2 ** -7, float16: 2 ** -10 };

/**
 * got (storage) vs ref (fp64-computed, rounded once): within one ulp of the storage dtype (the
 * kernel's fp32 math may land on the other side of a rounding boundary) plus `atol`.
 */
export function expectClose(dtype: ActDType, got: Float32Array, ref: ArrayLike<number>, what: string, atol = 1e-6, ulps = 1): void {
  expect(got.length).toBe(ref.length);
  let bad = -1;
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i] - ref[i]);
    if (!(d <= ulps * ULP[dtype] * Math.abs(ref[i]) + atol)) { bad = i; break; }
  }
  if (bad >= 0) expect.fail(`${what}: element ${bad} is ${got[bad]}, expected ${ref[bad]} (${dtype})`);
}

export const dtTag = (d: ActDType): string => (d === 'bfloat16' ? 'bf16' : 'f16');

/** extern "C" entry points (flat arguments) for the embedding / add_norm / activation / gated_act launch functions of `ks`. */
export function wrapper(ks: RenderedKernel[]): string {
  const lines = ['#include "lfc_abi.h"'];
  for (const k of ks) {
    const fn = k.launches[0];
    lines.push(`cudaError_t ${fn.fn}(const ${fn.args}&, cudaStream_t);`);
    if (fn.args === 'LfcEmbeddingArgs') lines.push(`extern "C" int run_${fn.fn}(const int* idx, const void* table, void* out, int T, int V, int H) {
  LfcEmbeddingArgs a{idx, table, out, T, V, H}; return ${fn.fn}(a, nullptr); }`);
    if (fn.args === 'LfcAddNormArgs') lines.push(`extern "C" int run_${fn.fn}(const void* x, const void* r, void* o, void* s, const float* g, const float* b, float eps, int T, int H) {
  LfcAddNormArgs a{x, r, o, s, g, b, eps, T, H}; return ${fn.fn}(a, nullptr); }`);
    if (fn.args === 'LfcActivationArgs') lines.push(`extern "C" int run_${fn.fn}(const void* x, void* o, long n) {
  LfcActivationArgs a{x, o, n}; return ${fn.fn}(a, nullptr); }`);
    if (fn.args === 'LfcGatedActArgs') lines.push(`extern "C" int run_${fn.fn}(const void* g, const void* u, void* o, long n) {
  LfcGatedActArgs a{g, u, o, n}; return ${fn.fn}(a, nullptr); }`);
  }
  return lines.join('\n') + '\n';
}

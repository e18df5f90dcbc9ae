/**
 * Narrow floating formats: bit-exact encode/decode and round-to-nearest-even.
 *
 * fp16 (IEEE binary16), bf16 (top half of binary32), fp8 e4m3fn (no infinities, one NaN pattern
 * S.1111.111, max 448) and fp8 e5m2 (IEEE-like, max 57344). `round*` returns the nearest value the
 * format holds as a JS number, which is how lfc keeps narrow tensors in Float32Arrays.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Round a number to fp32 bits (RNE), returned as uint32. */
function f32Bits(x: number): number { f32[0] = x; return u32[0]; }
function fromF32Bits(b: number): number { u32[0] = b >>> 0; return f32[0]; }

// ---- bfloat16 -------------------------------------------------------------------------------
export function bf16Encode(x: number): number {
  const b = f32Bits(x);
  if ((b & 0x7fffffff) > 0x7f800000) return ((b >>> 16) | 0x40) & 0xffff; // quiet NaN
  const rounded = b + 0x7fff + ((b >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}
export function bf16Decode(h: number): number { return fromF32Bits((h & 0xffff) << 16); }
export const roundBf16 = (x: number): number => bf16Decode(bf16Encode(x));

// ---- generic minifloat --------------------------------------------------------------------
interface MiniFloat {
  expBits: number; manBits: number; bias: number;
  /** e4m3fn: no infinities, NaN only at all-ones. */
  fn: boolean;
}
const FP16: MiniFloat = { expBits: 5, manBits: 10, bias: 15, fn: false };
const E4M3: MiniFloat = { expBits: 4, manBits: 3, bias: 7, fn: true };
const E5M2: MiniFloat = { expBits: 5, manBits: 2, bias: 15, fn: false };

function maxFinite(f: MiniFloat): number {
  const maxExp = (1 << f.expBits) - 1 - (f.fn ? 0 : 1) - f.bias;
  // e4m3fn: top mantissa pattern at top exponent is NaN, so the largest mantissa is 110.
  const manMax = f.fn ? (1 << f.manBits) - 2 : (1 << f.manBits) - 1;
  return 2 ** maxExp * (1 + manMax / (1 << f.manBits));
}

/**
 * Encode with round-to-nearest-even. `saturate` (ONNX Cast's default for fp8) clamps finite
 * overflow to ±max; otherwise overflow becomes Inf (or NaN for fn formats).
 */
function miniEncode(f: MiniFloat, x: number, saturate: boolean): number {
  const signBit = 1 << (f.expBits + f.manBits);
  const expMask = (1 << f.expBits) - 1;
  const nanBits = f.fn ? (expMask << f.manBits) | ((1 << f.manBits) - 1) : (expMask << f.manBits) | (1 << (f.manBits - 1));
  const infBits = expMask << f.manBits;
  if (Number.isNaN(x)) return nanBits;
  const sign = x < 0 || Object.is(x, -0) ? signBit : 0;
  let a = Math.abs(x);
  const max = maxFinite(f);
  if (a === Infinity) return saturate ? sign | encodeAbs(f, max) : sign | (f.fn ? nanBits : infBits);
  a = Math.fround(a); // inputs are fp32 values
  const minNormalExp = 1 - f.bias;
  const quantum = 2 ** (minNormalExp - f.manBits); // spacing of subnormals
  let q: number;
  if (a < 2 ** minNormalExp) {
    q = rne(a / quantum) * quantum;
  } else {
    const e = Math.floor(Math.log2(a));
    const ee = 2 ** e > a ? e - 1 : (2 ** (e + 1) <= a ? e + 1 : e);
    const step = 2 ** (ee - f.manBits);
    q = rne(a / step) * step;
  }
  if (q > max) {
    // Values above max but within half an ulp of max round to max under RNE only when the
    // next representable value would be max+ulp; IEEE says overflow → Inf.
    if (saturate) return sign | encodeAbs(f, max);
    return sign | (f.fn ? nanBits : infBits);
  }
  return sign | encodeAbs(f, q);
}

function rne(v: number): number {
  const fl = Math.floor(v);
  const d = v - fl;
  if (d > 0.5) return fl + 1;
  if (d < 0.5) return fl;
  return fl % 2 === 0 ? fl : fl + 1;
}

/** Bits of an exactly representable non-negative value. */
function encodeAbs(f: MiniFloat, a: number): number {
  if (a === 0) return 0;
  const minNormalExp = 1 - f.bias;
  if (a < 2 ** minNormalExp) return Math.round(a / 2 ** (minNormalExp - f.manBits));
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  const man = Math.round((a / 2 ** e - 1) * (1 << f.manBits));
  return ((e + f.bias) << f.manBits) | man;
}

function miniDecode(f: MiniFloat, bits: number): number {
  const signBit = 1 << (f.expBits + f.manBits);
  const expMask = (1 << f.expBits) - 1;
  const manMask = (1 << f.manBits) - 1;
  const s = bits & signBit ? -1 : 1;
  const e = (bits >> f.manBits) & expMask;
  const m = bits & manMask;
  if (f.fn) {
    if (e === expMask && m === manMask) return NaN;
  } else if (e === expMask) {
    return m === 0 ? s * Infinity : NaN;
  }
  if (e === 0) return s * m * 2 ** (1 - f.bias - f.manBits);
  return s * (1 + m / (1 << f.manBits)) * 2 ** (e - f.bias);
}

export const fp16Encode = (x: number): number => miniEncode(FP16, x, false);
export const fp16Decode = (h: number): number => miniDecode(FP16, h);
export const roundFp16 = (x: number): number => fp16Decode(fp16Encode(x));

export const fp8e4m3Encode = (x: number, saturate = true): number => miniEncode(E4M3, x, saturate);
export const fp8e4m3Decode = (b: number): number => miniDecode(E4M3, b);
export const roundFp8e4m3 = (x: number, saturate = true): number => fp8e4m3Decode(fp8e4m3Encode(x, saturate));

export const fp8e5m2Encode = (x: number, saturate = true): number => miniEncode(E5M2, x, saturate);
export const fp8e5m2Decode = (b: number): number => miniDecode(E5M2, b);
export const roundFp8e5m2 = (x: number, saturate = true): number => fp8e5m2Decode(fp8e5m2Encode(x, saturate));

/**
 * Activation family: the scalar activation functions every epilogue uses (linear.ts applies them
 * after its GEMM), an elementwise `reference`, and `gatedActivation` for gated MLPs whose gate and
 * up projections come out of one merged GEMM (SwiGLU, GeGLU).
 *
 * Legend: T tokens, I intermediate size (the width of the gated output; the input is 2I wide).
 *
 * Exact formulas, evaluated in fp64:
 *   relu(x)      = max(x, 0)
 *   silu(x)      = x / (1 + e^-x)
 *   gelu_tanh(x) = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
 *   gelu_erf(x)  = 0.5·x·(1 + erf(x/√2))        erf accurate to ~1e-15, see `erf`
 */
import { checkDims, checkLength, storeRounder, type StorageDType } from './common.js';

export type Activation = 'none' | 'relu' | 'silu' | 'gelu_tanh' | 'gelu_erf';
/** The activations a gated MLP applies to its gate half. */
export type GateActivation = Exclude<Activation, 'none'>;

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const INV_SQRT_2 = Math.SQRT1_2;
const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);
const INV_SQRT_PI = 1 / Math.sqrt(Math.PI);

export const relu = (x: number): number => (x > 0 || Number.isNaN(x) ? x : 0);
export const silu = (x: number): number => x / (1 + Math.exp(-x));
export const geluTanh = (x: number): number => 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
export const geluErf = (x: number): number => 0.5 * x * (1 + erf(x * INV_SQRT_2));

/**
 * The error function to ~1e-15 absolute (far below fp32's 6e-8 ulp at 1, which is what the
 * CUDA kernels' erff is held to). Two textbook expansions, neither an empirical fit:
 *   |x| < 2.5:  erf(x) = 2/√π · e^{-x²} · Σₙ 2ⁿ x^{2n+1} / (1·3·…·(2n+1))   (all terms positive)
 *   |x| ≥ 2.5:  erfc(x) = e^{-x²}/√π · 1/(x + ½/(x + 1/(x + 3/2/(x + 2/(x + …)))))
 *               (Laplace's continued fraction, evaluated by modified Lentz)
 */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const a = Math.abs(x);
  if (a >= 6) return x > 0 ? 1 : -1; // erfc(6) ≈ 2e-17
  if (a < 2.5) {
    const x2 = 2 * a * a;
    let term = a, sum = a;
    for (let n = 1; n < 200 && term > 1e-17 * sum; n++) {
      term *= x2 / (2 * n + 1);
      sum += term;
    }
    const r = TWO_OVER_SQRT_PI * Math.exp(-a * a) * sum;
    return x < 0 ? -r : r;
  }
  const r = 1 - erfcLarge(a);
  return x < 0 ? -r : r;
}

/** erfc(a) for a ≥ 2.5 by Laplace's continued fraction (modified Lentz, ~30 terms at a = 2.5). */
function erfcLarge(a: number): number {
  const tiny = 1e-300;
  let f = a, c = a, d = 0;
  for (let n = 1; n < 500; n++) {
    const an = n / 2;
    d = a + an * d;
    d = d === 0 ? 1 / tiny : 1 / d;
    c = a + an / c;
    if (c === 0) c = tiny;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return (Math.exp(-a * a) * INV_SQRT_PI) / f;
}

/** The scalar function of an activation ('none' is the identity). */
export function activationFn(kind: Activation): (x: number) => number {
  switch (kind) {
    case 'none': return (x) => x;
    case 'relu': return relu;
    case 'silu': return silu;
    case 'gelu_tanh': return geluTanh;
    case 'gelu_erf': return geluErf;
    default: throw new Error(`activation: unknown activation '${kind as string}'`);
  }
}

export interface Args {
  /** Any shape, row-major; read only. */
  x: Float32Array;
  activation: Activation;
  dtype: StorageDType;
}

/** out[i] = act(x[i]), rounded to `dtype`. */
export function reference(a: Args): Float32Array {
  const f = activationFn(a.activation);
  const r = storeRounder(a.dtype);
  const x = a.x, out = new Float32Array(x.length);
  if (r) for (let i = 0; i < x.length; i++) out[i] = r(f(x[i]));
  else for (let i = 0; i < x.length; i++) out[i] = f(x[i]);
  return out;
}

export interface GatedArgs {
  /** [T, 2I]: each row is the gate half (columns 0..I-1) then the up half (I..2I-1). */
  input: Float32Array;
  T: number;
  I: number;
  activation: GateActivation;
  dtype: StorageDType;
}

/** out[T, I] = act(gate) · up, computed in fp64 from the stored halves and rounded once. */
export function gatedActivation(a: GatedArgs): Float32Array {
  const { T, I } = a;
  checkDims('gatedActivation', { T, I }, 0);
  checkLength('gatedActivation', 'input', a.input, { T, '2I': 2 * I });
  const f = activationFn(a.activation);
  const r = storeRounder(a.dtype);
  const x = a.input, out = new Float32Array(T * I);
  for (let t = 0; t < T; t++) {
    const g = t * 2 * I, o = t * I;
    for (let i = 0; i < I; i++) {
      const v = f(x[g + i]) * x[g + I + i];
      out[o + i] = r ? r(v) : v;
    }
  }
  return out;
}

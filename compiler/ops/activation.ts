/**
 * The activation functions lfc's fused ops apply (lfc.Activation, lfc.GatedAct, Linear epilogues,
 * and the already-fused GELU forms), as float64 scalar functions.
 */
import { erf } from './elementwise-unary.js';

export const ACTIVATIONS = ['silu', 'gelu_tanh', 'gelu_erf', 'relu'] as const;
export type ActivationKind = (typeof ACTIVATIONS)[number];

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** The scalar function of an activation kind (float64). */
export function activationFn(kind: ActivationKind): (x: number) => number {
  switch (kind) {
    case 'silu': return (x) => x / (1 + Math.exp(-x));
    case 'gelu_tanh': return (x) => 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
    case 'gelu_erf': return (x) => 0.5 * x * (1 + erf(x / Math.SQRT2));
    case 'relu': return (x) => (x > 0 ? x : 0);
  }
}

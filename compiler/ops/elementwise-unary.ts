/**
 * Unary elementwise ONNX ops: arithmetic (Neg, Abs, Sqrt, Reciprocal, Floor, Ceil, Round, Sign),
 * transcendental (Exp, Log, Erf, trigonometric and hyperbolic), activations (Relu, Sigmoid, Tanh,
 * LeakyRelu, Elu, Selu, Celu, HardSigmoid, HardSwish, Softplus, Softsign, ThresholdedRelu, Shrink,
 * Mish, Gelu), predicates (IsNaN, IsInf, Not) and BitwiseNot. Each is one table row: since-versions,
 * the scalar function (built from the node's attributes and dtype), and what input types it
 * accepts. Output shape is the input's; output dtype the input's, or bool for predicates.
 */
import { isFloat, isInteger, type DType } from '../../runtime/dtype.js';
import { dimNeg, dimNonNegative, type Dim } from '../ir/dim.js';
import type { Attrs } from '../ir/attrs.js';
import { roundHalfEven, symKnown } from './math-common.js';
import { bitwise } from './elementwise-binary.js';
import type { OpDef } from './registry.js';
import { mapBroadcast, req } from './util.js';

type Accepts = 'float' | 'numeric' | 'bool' | 'int';

interface UnarySpec {
  since: number[];
  /** Scalar function, built once per evaluation from the node's attributes. */
  fn: (attrs: Attrs, dtype: DType) => (x: number) => number;
  accepts?: Accepts;
  /** Output dtype when it is not the input's. */
  out?: DType;
  /** Contents of a symbolic known input (shape arithmetic), when decidable. */
  sym?: (d: Dim) => Dim | undefined;
}

function unary(name: string, spec: UnarySpec): OpDef {
  const accepts = spec.accepts ?? 'float';
  return {
    name,
    since: spec.since,
    infer(ctx) {
      const x = ctx.input(0);
      const ok = accepts === 'bool' ? x.dtype === 'bool' : accepts === 'int' ? isInteger(x.dtype)
        : accepts === 'float' ? isFloat(x.dtype) : x.dtype !== 'bool' && x.dtype !== 'string';
      if (!ok) ctx.fail(`input must be ${accepts === 'numeric' ? 'a numeric' : `a ${accepts}`} tensor, got ${x.dtype}`);
      const known = spec.sym ? symKnown(ctx, [x], spec.sym) : undefined;
      return [{ dtype: spec.out ?? x.dtype, shape: [...x.shape], ...(known ? { known } : {}) }];
    },
    evaluate(ctx, inputs) {
      const x = req(ctx, inputs, 0, 'X');
      return [mapBroadcast(ctx, [x], spec.out ?? x.dtype, spec.fn(ctx.attrs, x.dtype))];
    },
  };
}

const fixed = (f: (x: number) => number) => (): ((x: number) => number) => f;

/** erf to ~1e-15 for |x| < 4 (Taylor series); beyond, 1 - erfc(x) rounds to ±1 in fp32. */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (Math.abs(x) >= 4) return Math.sign(x);
  const x2 = x * x;
  let term = x, sum = x;
  for (let n = 1; n < 200; n++) {
    term *= -x2 / n;
    const t = term / (2 * n + 1);
    sum += t;
    if (Math.abs(t) < 1e-17 * Math.abs(sum)) break;
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

const sigmoid = (x: number): number => {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
};
const softplus = (x: number): number => (x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x)));

const absSym = (d: Dim): Dim | undefined =>
  dimNonNegative(d) ? d : dimNonNegative(dimNeg(d)) ? dimNeg(d) : undefined;

export const unaryOps: OpDef[] = [
  unary('Neg', { since: [6, 13], accepts: 'numeric', fn: fixed((x) => -x), sym: dimNeg }),
  unary('Abs', { since: [6, 13], accepts: 'numeric', fn: fixed(Math.abs), sym: absSym }),
  unary('Sign', { since: [9, 13], accepts: 'numeric', fn: fixed(Math.sign) }),
  unary('Relu', { since: [6, 13, 14], accepts: 'numeric', fn: fixed((x) => (x > 0 ? x : x < 0 ? 0 : x)) }),
  unary('Sqrt', { since: [6, 13], fn: fixed(Math.sqrt) }),
  unary('Reciprocal', { since: [6, 13], fn: fixed((x) => 1 / x) }),
  unary('Floor', { since: [6, 13], fn: fixed(Math.floor) }),
  unary('Ceil', { since: [6, 13], fn: fixed(Math.ceil) }),
  unary('Round', { since: [11], fn: fixed(roundHalfEven) }),
  unary('Exp', { since: [6, 13], fn: fixed(Math.exp) }),
  unary('Log', { since: [6, 13], fn: fixed(Math.log) }),
  unary('Erf', { since: [9, 13], accepts: 'numeric', fn: fixed(erf) }),
  unary('Sin', { since: [7], fn: fixed(Math.sin) }),
  unary('Cos', { since: [7], fn: fixed(Math.cos) }),
  unary('Tan', { since: [7], fn: fixed(Math.tan) }),
  unary('Asin', { since: [7], fn: fixed(Math.asin) }),
  unary('Acos', { since: [7], fn: fixed(Math.acos) }),
  unary('Atan', { since: [7], fn: fixed(Math.atan) }),
  unary('Sinh', { since: [9], fn: fixed(Math.sinh) }),
  unary('Cosh', { since: [9], fn: fixed(Math.cosh) }),
  unary('Asinh', { since: [9], fn: fixed(Math.asinh) }),
  unary('Acosh', { since: [9], fn: fixed(Math.acosh) }),
  unary('Atanh', { since: [9], fn: fixed(Math.atanh) }),
  unary('Tanh', { since: [6, 13], fn: fixed(Math.tanh) }),
  unary('Sigmoid', { since: [6, 13], fn: fixed(sigmoid) }),
  unary('Softplus', { since: [1], fn: fixed(softplus) }),
  unary('Softsign', { since: [1], fn: fixed((x) => x / (1 + Math.abs(x))) }),
  unary('Mish', { since: [18], fn: fixed((x) => x * Math.tanh(softplus(x))) }),
  unary('HardSwish', { since: [14], fn: fixed((x) => x * Math.max(0, Math.min(1, x / 6 + 0.5))) }),
  unary('LeakyRelu', {
    since: [6, 16],
    fn: (a) => { const alpha = a.float('alpha', 0.01); return (x) => (x < 0 ? alpha * x : x); },
  }),
  unary('Elu', {
    since: [6],
    fn: (a) => { const alpha = a.float('alpha', 1); return (x) => (x < 0 ? alpha * (Math.exp(x) - 1) : x); },
  }),
  unary('Selu', {
    since: [6],
    fn: (a) => {
      const alpha = a.float('alpha', 1.67326319217681884765625);
      const gamma = a.float('gamma', 1.05070102214813232421875);
      return (x) => gamma * (x <= 0 ? alpha * (Math.exp(x) - 1) : x);
    },
  }),
  unary('Celu', {
    since: [12],
    fn: (a) => {
      const alpha = a.float('alpha', 1);
      return (x) => Math.max(0, x) + Math.min(0, alpha * (Math.exp(x / alpha) - 1));
    },
  }),
  unary('ThresholdedRelu', {
    since: [10],
    fn: (a) => { const alpha = a.float('alpha', 1); return (x) => (x > alpha ? x : 0); },
  }),
  unary('HardSigmoid', {
    since: [6],
    fn: (a) => {
      const alpha = a.float('alpha', 0.2), beta = a.float('beta', 0.5);
      return (x) => Math.max(0, Math.min(1, alpha * x + beta));
    },
  }),
  unary('Shrink', {
    since: [9],
    accepts: 'numeric',
    fn: (a) => {
      const bias = a.float('bias', 0), lambd = a.float('lambd', 0.5);
      return (x) => (x < -lambd ? x + bias : x > lambd ? x - bias : 0);
    },
  }),
  unary('Gelu', {
    since: [20],
    fn: (a) => {
      if (a.string('approximate', 'none') === 'tanh') {
        const c = Math.sqrt(2 / Math.PI);
        return (x) => 0.5 * x * (1 + Math.tanh(c * (x + 0.044715 * x * x * x)));
      }
      return (x) => 0.5 * x * (1 + erf(x / Math.SQRT2));
    },
  }),
  unary('IsNaN', { since: [9, 13], out: 'bool', fn: fixed((x) => (Number.isNaN(x) ? 1 : 0)) }),
  unary('IsInf', {
    since: [10],
    out: 'bool',
    fn: (a) => {
      const neg = a.int('detect_negative', 1) !== 0, pos = a.int('detect_positive', 1) !== 0;
      return (x) => ((x === Infinity && pos) || (x === -Infinity && neg) ? 1 : 0);
    },
  }),
  unary('Not', { since: [1], accepts: 'bool', fn: fixed((x) => (x ? 0 : 1)) }),
  unary('BitwiseNot', { since: [18], accepts: 'int', fn: (_a, d) => { const f = bitwise(d, (x) => ~x, (x) => ~x); return (x) => f(x, 0); } }),
];

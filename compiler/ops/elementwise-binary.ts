/**
 * Binary elementwise ONNX ops with multidirectional broadcasting: arithmetic (Add, Sub, Mul, Div,
 * Pow, Mod, PRelu, BitShift), comparisons (Equal, Less, LessOrEqual, Greater, GreaterOrEqual →
 * bool), logic (And, Or, Xor) and bitwise ops (BitwiseAnd/Or/Xor). Integer semantics follow C: Div truncates toward zero, int32
 * products wrap. Add/Sub/Mul/Div and the comparisons also compute symbolic `known` contents, for
 * the shape arithmetic exporters emit (`Div(Gather(Shape(x), 2), 64)`, `Equal(shape, -1)`).
 */
import { isFloat, isInteger, type DType } from '../../runtime/dtype.js';
import { storeRounded, Tensor } from '../../runtime/tensor.js';
import { dimAdd, dimFloorDiv, dimMul, dimSub, type Dim } from '../ir/dim.js';
import { dimBounds, sameDtype, symKnown } from './math-common.js';
import type { OpContext, OpDef } from './registry.js';
import { broadcastShapes, mapBroadcast, req } from './util.js';

type Accepts = 'numeric' | 'bool' | 'any' | 'uint' | 'int';

interface BinarySpec {
  since: number[];
  /** Scalar function for the inputs' dtype, built once per evaluation. */
  fn: (ctx: OpContext, dtype: DType) => (a: number, b: number) => number;
  accepts?: Accepts;
  /** Output dtype when it is not input A's. */
  out?: DType;
  /** Whether B may have another dtype than A (Pow). */
  mixed?: boolean;
  /** Only B broadcasts to A's shape (PRelu). */
  unidirectional?: boolean;
  /** Contents of symbolic known inputs (shape arithmetic), when decidable. */
  sym?: (dtype: DType) => (a: Dim, b: Dim) => Dim | undefined;
}

function accepted(accepts: Accepts, d: DType): boolean {
  switch (accepts) {
    case 'numeric': return d !== 'bool' && d !== 'string';
    case 'bool': return d === 'bool';
    case 'uint': return d === 'uint8' || d === 'uint16' || d === 'uint32' || d === 'uint64';
    case 'int': return isInteger(d);
    case 'any': return d !== 'string';
  }
}

/**
 * mapBroadcast for two inputs, with direct loops for the common cases of a decoder graph (equal
 * shapes, and a one-element B of no higher rank) that need no index arrays.
 */
function map2(ctx: OpContext, a: Tensor, b: Tensor, dtype: DType, f: (x: number, y: number) => number): Tensor {
  const same = a.rank === b.rank && a.shape.every((d, i) => d === b.shape[i]);
  if (!same && !(b.size === 1 && b.rank <= a.rank)) return mapBroadcast(ctx, [a, b], dtype, f);
  const out = Tensor.zeros(dtype, a.shape);
  const A = a.data, B = b.data, o = out.data;
  if (same) for (let i = 0; i < o.length; i++) o[i] = f(A[i], B[i]);
  else for (let i = 0, y = B[0]; i < o.length; i++) o[i] = f(A[i], y);
  return storeRounded(out);
}

function binary(name: string, spec: BinarySpec): OpDef {
  const accepts = spec.accepts ?? 'numeric';
  return {
    name,
    since: spec.since,
    infer(ctx) {
      const a = ctx.input(0), b = ctx.input(1);
      const dtype = spec.mixed ? a.dtype : sameDtype(ctx, [a, b], ['A', 'B']);
      for (const [info, n] of [[a, 'A'], [b, 'B']] as const) {
        if (!accepted(accepts, info.dtype)) ctx.fail(`input ${n} has unsupported type ${info.dtype}`);
      }
      const shape = broadcastShapes(ctx, [a.shape, b.shape]);
      if (spec.unidirectional && shape.length !== a.shape.length) {
        ctx.fail(`slope of rank ${b.shape.length} does not broadcast to X of rank ${a.shape.length}`);
      }
      const known = spec.sym ? symKnown(ctx, [a, b], spec.sym(dtype)) : undefined;
      return [{ dtype: spec.out ?? dtype, shape, ...(known ? { known } : {}) }];
    },
    evaluate(ctx, inputs) {
      const a = req(ctx, inputs, 0, 'A'), b = req(ctx, inputs, 1, 'B');
      return [map2(ctx, a, b, spec.out ?? a.dtype, spec.fn(ctx, a.dtype))];
    },
  };
}

/** Wrap an unsigned integer held in a float64 (uint32/uint64 storage) to its width. */
function wrapUnsigned(dtype: DType): (x: number) => number {
  if (dtype === 'uint32') return (x) => ((x % 2 ** 32) + 2 ** 32) % 2 ** 32;
  if (dtype === 'uint64') return (x) => (x < 0 ? x + 2 ** 64 : x >= 2 ** 64 ? x % 2 ** 64 : x);
  return (x) => x;
}

/** An arithmetic function, wrapped for unsigned 32/64-bit storage. */
const arith = (f: (a: number, b: number) => number) => (_ctx: OpContext, d: DType) => {
  const w = wrapUnsigned(d);
  return d === 'uint32' || d === 'uint64' ? (a: number, b: number) => w(f(a, b)) : f;
};

function intDiv(a: number, b: number): number {
  return b === 0 ? 0 : Math.trunc(a / b);
}

/** Comparisons of symbolic dims: decided from bounds on a - b (symbols are sizes, ≥ 0). */
type Cmp = (lo: number, hi: number) => boolean | undefined;
const cmpSym = (test: Cmp, swap = false) => () => (a: Dim, b: Dim): Dim | undefined => {
  const { lo, hi } = dimBounds(swap ? dimSub(b, a) : dimSub(a, b));
  const r = test(lo, hi);
  return r === undefined ? undefined : r ? 1 : 0;
};
const eqCmp: Cmp = (lo, hi) => (lo === 0 && hi === 0 ? true : lo > 0 || hi < 0 ? false : undefined);
const ltCmp: Cmp = (lo, hi) => (hi < 0 ? true : lo >= 0 ? false : undefined);
const leCmp: Cmp = (lo, hi) => (hi <= 0 ? true : lo > 0 ? false : undefined);

const compare = (name: string, since: number[], f: (a: number, b: number) => boolean, sym: Cmp, swap = false): OpDef =>
  binary(name, {
    since, accepts: name === 'Equal' ? 'any' : 'numeric', out: 'bool',
    fn: () => (a, b) => (f(a, b) ? 1 : 0),
    sym: cmpSym(sym, swap),
  });

const logic = (name: string, f: (a: boolean, b: boolean) => boolean): OpDef =>
  binary(name, { since: [7], accepts: 'bool', fn: () => (a, b) => (f(a !== 0, b !== 0) ? 1 : 0) });

/**
 * A bitwise operation for an integer dtype: JS's 32-bit operators where storage is 32 bits or
 * narrower (the typed array wraps the result), BigInt at 64-bit width for the float64-held types.
 */
export function bitwise(d: DType, small: (a: number, b: number) => number, wide: (a: bigint, b: bigint) => bigint): (a: number, b: number) => number {
  if (d === 'int64') return (a, b) => Number(BigInt.asIntN(64, wide(BigInt(a), BigInt(b))));
  if (d === 'uint64' || d === 'uint32') {
    const bits = d === 'uint64' ? 64 : 32;
    return (a, b) => Number(BigInt.asUintN(bits, wide(BigInt(a), BigInt(b))));
  }
  return small;
}

const bitwiseOp = (name: string, small: (a: number, b: number) => number, wide: (a: bigint, b: bigint) => bigint): OpDef =>
  binary(name, { since: [18], accepts: 'int', fn: (_ctx, d) => bitwise(d, small, wide) });

export const binaryOps: OpDef[] = [
  binary('Add', { since: [7, 13, 14], fn: arith((a, b) => a + b), sym: () => dimAdd }),
  binary('Sub', { since: [7, 13, 14], fn: arith((a, b) => a - b), sym: () => dimSub }),
  binary('Mul', {
    since: [7, 13, 14],
    fn: (ctx, d) => (d === 'int32' ? Math.imul : d === 'uint32' ? (a, b) => Math.imul(a, b) >>> 0
      : arith((a, b) => a * b)(ctx, d)),
    sym: () => dimMul,
  }),
  binary('Div', {
    since: [7, 13, 14],
    fn: (_ctx, d) => (isFloat(d) ? (a, b) => a / b : intDiv),
    sym: (d) => (a, b) => (isFloat(d) ? (b === 1 ? a : undefined) : b === 0 ? undefined : dimFloorDiv(a, b)),
  }),
  binary('Pow', {
    since: [7, 12, 13, 15], mixed: true,
    fn: (_ctx, d) => (isFloat(d) ? Math.pow : (a, b) => Math.trunc(a ** b)),
  }),
  binary('Mod', {
    since: [10, 13],
    fn: (ctx, d) => {
      if (ctx.attrs.int('fmod', 0) !== 0) return isFloat(d) ? (a, b) => a % b : (a, b) => (b === 0 ? 0 : a % b);
      if (isFloat(d)) ctx.fail(`fmod must be 1 for floating inputs (${d})`);
      return arith((a, b) => {
        if (b === 0) return 0;
        const r = a % b;
        return r !== 0 && (r < 0) !== (b < 0) ? r + b : r;
      })(ctx, d);
    },
  }),
  binary('PRelu', {
    since: [7, 9, 16], unidirectional: true,
    fn: () => (x, slope) => (x < 0 ? slope * x : x),
  }),
  binary('BitShift', {
    since: [11], accepts: 'uint',
    fn: (ctx, d) => {
      const dir = ctx.attrs.string('direction');
      if (dir !== 'LEFT' && dir !== 'RIGHT') ctx.fail(`direction must be LEFT or RIGHT, got '${dir}'`);
      const bits = d === 'uint8' ? 8 : d === 'uint16' ? 16 : d === 'uint32' ? 32 : 64;
      return dir === 'LEFT'
        ? (a, b) => (b >= bits ? 0 : (a * 2 ** b) % 2 ** bits)
        : (a, b) => (b >= bits ? 0 : Math.floor(a / 2 ** b));
    },
  }),
  compare('Equal', [7, 11, 13], (a, b) => a === b, eqCmp),
  compare('Less', [7, 9, 13], (a, b) => a < b, ltCmp),
  compare('LessOrEqual', [12, 16], (a, b) => a <= b, leCmp),
  compare('Greater', [7, 9, 13], (a, b) => a > b, ltCmp, true),
  compare('GreaterOrEqual', [12, 16], (a, b) => a >= b, leCmp, true),
  logic('And', (a, b) => a && b),
  logic('Or', (a, b) => a || b),
  logic('Xor', (a, b) => a !== b),
  bitwiseOp('BitwiseAnd', (a, b) => a & b, (a, b) => a & b),
  bitwiseOp('BitwiseOr', (a, b) => a | b, (a, b) => a | b),
  bitwiseOp('BitwiseXor', (a, b) => a ^ b, (a, b) => a ^ b),
];

/**
 * Neural-network ONNX ops. Here: MatMul (numpy semantics: 1-D operands are promoted and the added
 * axis dropped, batch dims broadcast), Gemm (transA/transB, alpha, beta, C broadcast to [M, N])
 * and Det; `matmul` is the one batched product loop, shared with MatMulInteger. Einsum lives in
 * einsum.ts, the normalisations (LayerNormalization, BatchNormalization, ...) in nn-norm.ts, the
 * losses in nn-loss.ts; all are exported together as `nnOps`.
 *
 * Legend: M rows of A, K the contracted dim, N columns of B.
 */
import { arrayFor, type DType, type TypedArray } from '../../runtime/dtype.js';
import { sizeOf, storeRounded, Tensor } from '../../runtime/tensor.js';
import { dimEq, dimStr, isSym, shapeStr, type Dim } from '../ir/dim.js';
import { einsumOp } from './einsum.js';
import { lossOps } from './nn-loss.js';
import { normOps } from './nn-norm.js';
import { broadcastTo, expectFloat, sameDtype } from './math-common.js';
import type { OpContext, OpDef } from './registry.js';
import { broadcastConcrete, broadcastIndex, broadcastShapes, req } from './util.js';

/**
 * Fail unless the contracted dims can agree: equal, or one of them symbolic, in which case they
 * must be equal at run time and inference is told so (e.g. total_sequence_length against
 * past_sequence_length + sequence_length in attention).
 */
function checkInner(ctx: OpContext, k1: Dim, k2: Dim, a: readonly Dim[], b: readonly Dim[]): void {
  if (dimEq(k1, k2)) return;
  if (!isSym(k1) && !isSym(k2)) ctx.fail(`inner dims ${dimStr(k1)} vs ${dimStr(k2)} (A ${shapeStr(a)}, B ${shapeStr(b)})`);
  ctx.equate?.(k1, k2);
}

/** MatMul output shape, symbolic: [...broadcast(batchA, batchB), M?, N?]. */
export function matmulShape(ctx: OpContext, a: readonly Dim[], b: readonly Dim[]): Dim[] {
  if (a.length === 0 || b.length === 0) ctx.fail(`operands must have rank ≥ 1 (A ${shapeStr(a)}, B ${shapeStr(b)})`);
  const a2 = a.length === 1 ? [1, a[0]] : a, b2 = b.length === 1 ? [b[0], 1] : b;
  checkInner(ctx, a2[a2.length - 1], b2[b2.length - 2], a, b);
  const batch = broadcastShapes(ctx, [a2.slice(0, -2), b2.slice(0, -2)]);
  return [...batch, ...(a.length > 1 ? [a2[a2.length - 2]] : []), ...(b.length > 1 ? [b2[b2.length - 1]] : [])];
}

/** Where one matrix operand lives in a flat array: element [r, c] is at off + r*rs + c*cs. */
interface MatView { data: TypedArray; off: number; rs: number; cs: number }

/**
 * One M×K by K×N product in float64, handing each finished output row to `emit` (the row array is
 * reused). It runs i-k-j, four k at a time so each pass over the row does four multiply-adds; a
 * B stored transposed is first copied row-major, unless there are only a few rows (decode), which
 * run as dot products.
 */
function productRows(a: MatView, b: MatView, M: number, K: number, N: number, emit: (i: number, row: Float64Array) => void): void {
  if (b.cs !== 1 && N > 1 && M >= 4) {
    // Several rows to compute: make B row-major once, then use the fast i-k-j loop.
    const rm = new (b.data.constructor as new (n: number) => TypedArray)(K * N); // same element type: monomorphic loads
    for (let k = 0; k < K; k++) for (let j = 0; j < N; j++) rm[k * N + j] = b.data[b.off + k * b.rs + j * b.cs];
    b = { data: rm, off: 0, rs: N, cs: 1 };
  }
  const A = a.data, B = b.data, row = new Float64Array(N);
  const { rs: brs, cs: bcs } = b;
  for (let i = 0; i < M; i++) {
    const ai = a.off + i * a.rs, acs = a.cs;
    if (bcs === 1 || N === 1) {
      row.fill(0);
      let k = 0;
      for (; k + 3 < K; k += 4) {
        const x0 = A[ai + k * acs], x1 = A[ai + (k + 1) * acs], x2 = A[ai + (k + 2) * acs], x3 = A[ai + (k + 3) * acs];
        const b0 = b.off + k * brs, b1 = b0 + brs, b2 = b1 + brs, b3 = b2 + brs;
        for (let j = 0; j < N; j++) row[j] += x0 * B[b0 + j] + x1 * B[b1 + j] + x2 * B[b2 + j] + x3 * B[b3 + j];
      }
      for (; k < K; k++) {
        const x = A[ai + k * acs], bk = b.off + k * brs;
        for (let j = 0; j < N; j++) row[j] += x * B[bk + j];
      }
    } else {
      for (let j = 0; j < N; j++) {
        const bj = b.off + j * bcs;
        let s0 = 0, s1 = 0;
        let k = 0;
        for (; k + 1 < K; k += 2) {
          s0 += A[ai + k * acs] * B[bj + k * brs];
          s1 += A[ai + (k + 1) * acs] * B[bj + (k + 1) * brs];
        }
        if (k < K) s0 += A[ai + k * acs] * B[bj + k * brs];
        row[j] = s0 + s1;
      }
    }
    emit(i, row);
  }
}

/**
 * Batched matrix product with numpy MatMul semantics, accumulating in float64, rounded to `dtype`
 * at the end.
 */
export function matmul(ctx: OpContext, a: Tensor, b: Tensor, dtype: DType): Tensor {
  const shape = matmulShape(ctx, a.shape, b.shape) as number[];
  const as = a.rank === 1 ? [1, a.shape[0]] : a.shape, bs = b.rank === 1 ? [b.shape[0], 1] : b.shape;
  const M = as[as.length - 2], K = as[as.length - 1], N = bs[bs.length - 1];
  const aBatch = as.slice(0, -2), bBatch = bs.slice(0, -2);
  const batch = broadcastConcrete(ctx, [aBatch, bBatch]);
  const ia = broadcastIndex(aBatch, batch), ib = broadcastIndex(bBatch, batch);
  const out = new Tensor(dtype, shape, arrayFor(dtype, sizeOf(shape)));
  const C = out.data;
  for (let t = 0; t < ia.length; t++) {
    const cOff = t * M * N;
    productRows(
      { data: a.data, off: ia[t] * M * K, rs: K, cs: 1 }, { data: b.data, off: ib[t] * K * N, rs: N, cs: 1 }, M, K, N,
      (i, row) => { C.set(row, cOff + i * N); },
    );
  }
  return storeRounded(out);
}

const matmulOp: OpDef = {
  name: 'MatMul',
  since: [1, 9, 13],
  infer(ctx) {
    const a = ctx.input(0), b = ctx.input(1);
    const dtype = sameDtype(ctx, [a, b], ['A', 'B']);
    if (dtype === 'bool' || dtype === 'string') ctx.fail(`inputs must be numeric, got ${dtype}`);
    return [{ dtype, shape: matmulShape(ctx, a.shape, b.shape) }];
  },
  evaluate(ctx, inputs) {
    const a = req(ctx, inputs, 0, 'A'), b = req(ctx, inputs, 1, 'B');
    return [matmul(ctx, a, b, a.dtype)];
  },
};

/** Gemm's [M, K] and [K, N] views of A and B after the transposes, as dims. */
function gemmDims<T extends Dim>(ctx: OpContext, a: readonly T[], b: readonly T[]): { M: T; N: T; K: T } {
  if (a.length !== 2 || b.length !== 2) ctx.fail(`A and B must be 2-D, got A ${shapeStr(a)}, B ${shapeStr(b)}`);
  const ta = ctx.attrs.int('transA', 0) !== 0, tb = ctx.attrs.int('transB', 0) !== 0;
  const [M, K]: T[] = ta ? [a[1], a[0]] : [a[0], a[1]];
  const [K2, N]: T[] = tb ? [b[1], b[0]] : [b[0], b[1]];
  checkInner(ctx, K, K2, a, b);
  return { M, N, K };
}

const gemmOp: OpDef = {
  name: 'Gemm',
  since: [7, 9, 11, 13],
  infer(ctx) {
    const a = ctx.input(0), b = ctx.input(1), c = ctx.inputs[2];
    const dtype = sameDtype(ctx, [a, b, c], ['A', 'B', 'C']);
    const { M, N } = gemmDims(ctx, a.shape, b.shape);
    if (c) {
      const bc = broadcastShapes(ctx, [[M, N], c.shape]);
      if (c.shape.length > 2 || !dimEq(bc[0], M) || !dimEq(bc[1], N)) {
        ctx.fail(`C ${shapeStr(c.shape)} does not broadcast to [M, N] = ${shapeStr([M, N])}`);
      }
    }
    return [{ dtype, shape: [M, N] }];
  },
  evaluate(ctx, inputs) {
    const a = req(ctx, inputs, 0, 'A'), b = req(ctx, inputs, 1, 'B'), c = inputs[2];
    const { M, N, K } = gemmDims(ctx, a.shape, b.shape);
    const alpha = ctx.attrs.float('alpha', 1), beta = ctx.attrs.float('beta', 1);
    const ta = ctx.attrs.int('transA', 0) !== 0, tb = ctx.attrs.int('transB', 0) !== 0;
    const out = Tensor.zeros(a.dtype, [M, N]);
    const Y = out.data;
    const ci = c ? broadcastTo(ctx, c, [M, N], 'C') : undefined;
    productRows(
      { data: a.data, off: 0, rs: ta ? 1 : K, cs: ta ? M : 1 }, { data: b.data, off: 0, rs: tb ? 1 : N, cs: tb ? K : 1 }, M, K, N,
      (i, row) => {
        for (let j = 0; j < N; j++) {
          const p = i * N + j;
          Y[p] = alpha * row[j] + (c && ci ? beta * c.data[ci[p]] : 0);
        }
      },
    );
    return [storeRounded(out)];
  },
};

/** Det-11: determinants of [..., M, M] by LU decomposition with partial pivoting (float64). */
const detOp: OpDef = {
  name: 'Det',
  since: [11],
  infer(ctx) {
    const x = ctx.input(0);
    expectFloat(ctx, x, 'X');
    const r = x.shape.length;
    if (r < 2 || !dimEq(x.shape[r - 1], x.shape[r - 2])) ctx.fail(`X must be [..., M, M], got ${shapeStr(x.shape)}`);
    return [{ dtype: x.dtype, shape: x.shape.slice(0, -2) }];
  },
  evaluate(ctx, inputs) {
    const x = req(ctx, inputs, 0, 'X');
    const n = x.shape[x.rank - 1];
    const out = Tensor.zeros(x.dtype, x.shape.slice(0, -2));
    const m = new Float64Array(n * n);
    for (let t = 0; t < out.size; t++) {
      m.set(x.data.subarray(t * n * n, (t + 1) * n * n));
      let det = 1;
      for (let c = 0; c < n && det !== 0; c++) {
        let p = c;
        for (let r = c + 1; r < n; r++) if (Math.abs(m[r * n + c]) > Math.abs(m[p * n + c])) p = r;
        if (m[p * n + c] === 0) { det = 0; break; }
        if (p !== c) {
          for (let k = 0; k < n; k++) { const tmp = m[c * n + k]; m[c * n + k] = m[p * n + k]; m[p * n + k] = tmp; }
          det = -det;
        }
        det *= m[c * n + c];
        for (let r = c + 1; r < n; r++) {
          const f = m[r * n + c] / m[c * n + c];
          for (let k = c; k < n; k++) m[r * n + k] -= f * m[c * n + k];
        }
      }
      out.data[t] = det;
    }
    return [storeRounded(out)];
  },
};

export const nnOps: OpDef[] = [matmulOp, gemmOp, detOp, einsumOp, ...normOps, ...lossOps];

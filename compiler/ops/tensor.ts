/**
 * Ops that move tensor data without arithmetic: Transpose, Concat, Slice (slice.ts), Split,
 * Gather, GatherND, ScatterND, Tile, Trilu.
 *
 * Each describes its data movement once, as an index map (movement.ts; Concat as blocks), used by
 * `evaluate` on typed arrays and by `infer` on `known` contents, so shape arithmetic flowing
 * through these ops (Gather(Shape(x), 0), Concat of dims, Slice of a shape) keeps its symbolic
 * values.
 */
import { arrayFor } from '../../runtime/dtype.js';
import { sizeOf, storeRounded, stridesOf, Tensor } from '../../runtime/tensor.js';
import { dimAdd, dimEq, dimFloorDiv, dimMul, dimStr, isSym, shapeStr, type Dim } from '../ir/dim.js';
import {
  carriesKnown, concatFlat, fedAtRunTime, freshDims, isConcrete, knownDims, moved, normAxes,
  optKnownInts, optTensorInts, takeTensor, tensorInts, transposeIndex,
} from './movement.js';
import type { OpContext, OpDef, OutputInfo } from './registry.js';
import { slice, sliceIndex } from './slice.js';
import { normAxis, req } from './util.js';

// ---- Transpose ----------------------------------------------------------------------------------

function permOf(ctx: OpContext, rank: number): number[] {
  const perm = ctx.attrs.optInts('perm') ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
  if (perm.length !== rank) ctx.fail(`perm [${perm.join(', ')}] does not match rank ${rank}`);
  normAxes(ctx, perm, rank, 'perm entry');
  if (perm.some((p) => p < 0)) ctx.fail(`perm [${perm.join(', ')}] holds a negative axis`);
  return perm;
}

const transpose: OpDef = {
  name: 'Transpose',
  since: [1, 13],
  infer(ctx) {
    const x = ctx.input(0);
    const perm = permOf(ctx, x.shape.length);
    return [moved(x, perm.map((p) => x.shape[p]), (inShape) => transposeIndex(inShape, perm))];
  },
  evaluate(ctx, inputs) {
    const x = req(ctx, inputs, 0, 'data');
    const perm = permOf(ctx, x.rank);
    return [takeTensor(x, perm.map((p) => x.shape[p]), transposeIndex(x.shape, perm))];
  },
};

// ---- Concat -------------------------------------------------------------------------------------

function concatAxis(ctx: OpContext, rank: number): number {
  return normAxis(ctx, ctx.opset < 4 ? ctx.attrs.int('axis', 1) : ctx.attrs.int('axis'), rank);
}

/** Concat's output shape: dims add up along the axis and agree elsewhere. */
function concatShape(ctx: OpContext, shapes: readonly (readonly Dim[])[]): { axis: number; shape: Dim[] } {
  if (shapes.length === 0) ctx.fail('needs at least one input');
  const rank = shapes[0].length;
  const axis = concatAxis(ctx, rank);
  const shape = [...shapes[0]];
  for (const s of shapes.slice(1)) {
    if (s.length !== rank) ctx.fail(`inputs ${shapes.map(shapeStr).join(', ')} differ in rank`);
    for (let i = 0; i < rank; i++) {
      if (i === axis) { shape[i] = dimAdd(shape[i], s[i]); continue; }
      if (dimEq(shape[i], s[i])) continue;
      if (!isSym(shape[i]) && !isSym(s[i])) {
        ctx.fail(`inputs ${shapes.map(shapeStr).join(', ')} differ on axis ${i} (${dimStr(shape[i])} vs ${dimStr(s[i])})`);
      }
      // A number wins over a symbol; two different symbols must agree at run time.
      if (!isSym(s[i])) shape[i] = s[i];
      else if (isSym(shape[i]) && ctx.equate) shape[i] = ctx.equate(shape[i], s[i]);
    }
  }
  return { axis, shape };
}

/** Concatenate flat contents of inputs of concrete `shapes` along `axis` into `out`. */
function concatInto<T>(shapes: readonly number[][], axis: number, parts: readonly ArrayLike<T>[], out: { [i: number]: T }): void {
  const outer = sizeOf(shapes[0].slice(0, axis));
  concatFlat(parts, outer, shapes.map((s) => sizeOf(s.slice(axis))), out);
}

const concat: OpDef = {
  name: 'Concat',
  since: [1, 4, 11, 13],
  infer(ctx) {
    const xs = ctx.inputs.map((_, i) => ctx.input(i));
    const { axis, shape } = concatShape(ctx, xs.map((x) => x.shape));
    const out: OutputInfo = { dtype: xs[0].dtype, shape };
    if (carriesKnown(shape) && xs.every((x) => x.known && isConcrete(x.shape))) {
      const known = new Array<Dim>(sizeOf(shape));
      concatInto(xs.map((x) => x.shape as number[]), axis, xs.map((x) => x.known!), known);
      out.known = known;
    }
    return [out];
  },
  evaluate(ctx, inputs) {
    const xs = inputs.map((_, i) => req(ctx, inputs, i, `inputs[${i}]`));
    const { axis, shape } = concatShape(ctx, xs.map((x) => x.shape));
    const s = shape as number[];
    const out = arrayFor(xs[0].dtype, sizeOf(s));
    const outer = sizeOf(s.slice(0, axis));
    const blocks = xs.map((x) => sizeOf(x.shape.slice(axis)));
    // Block copies (KV cache concat moves whole rows of heads at a time).
    let o = 0;
    for (let r = 0; r < outer; r++) {
      xs.forEach((x, k) => {
        const n = blocks[k];
        out.set(x.data.subarray(r * n, (r + 1) * n) as ArrayLike<number>, o);
        o += n;
      });
    }
    return [new Tensor(xs[0].dtype, s, out)];
  },
};

// ---- Split --------------------------------------------------------------------------------------

/** The sizes of Split's outputs along `axis` of a dim `d`. */
function splitSizes(ctx: OpContext, d: Dim, given: readonly Dim[] | undefined): Dim[] {
  const n = ctx.node.outputs.length;
  if (given) {
    if (given.length !== n) ctx.fail(`split has ${given.length} entries for ${n} outputs`);
    const total = given.reduce<Dim>((a, b) => dimAdd(a, b), 0);
    const diff = typeof total === 'number' && typeof d === 'number' ? d - total : 0;
    if (diff !== 0 || given.some((g) => typeof g === 'number' && g < 0)) {
      ctx.fail(`split [${given.map(dimStr).join(', ')}] does not partition a dim of ${dimStr(d)}`);
    }
    return [...given];
  }
  const parts = ctx.opset >= 18 && ctx.attrs.has('num_outputs') ? ctx.attrs.int('num_outputs') : n;
  if (parts !== n) ctx.fail(`num_outputs ${parts} does not match the ${n} outputs`);
  if (typeof d === 'number') {
    if (ctx.opset < 18 && d % n !== 0) ctx.fail(`cannot split a dim of ${d} into ${n} equal parts`);
    const chunk = Math.ceil(d / n); // opset 18: the last part takes the remainder
    return Array.from({ length: n }, (_, i) => Math.max(0, Math.min(chunk, d - i * chunk)));
  }
  return new Array<Dim>(n).fill(dimFloorDiv(d, n));
}

/** Each output of Split: its shape and where it starts along `axis`. */
interface SplitPart { axis: number; offset: Dim; shape: Dim[] }

function splitPlan(ctx: OpContext, shape: readonly Dim[], given: readonly Dim[] | undefined): SplitPart[] {
  const axis = normAxis(ctx, ctx.attrs.int('axis', 0), shape.length);
  let offset: Dim = 0;
  return splitSizes(ctx, shape[axis], given).map((len) => {
    const part = { axis, offset, shape: shape.map((d, i) => (i === axis ? len : d)) };
    offset = dimAdd(offset, len);
    return part;
  });
}

/** Index map of a contiguous range [offset, offset + outShape[axis]) along `axis`. */
function rangeIndex(inShape: readonly number[], axis: number, offset: number, outShape: readonly number[]): Int32Array {
  const starts = inShape.map((_, i) => (i === axis ? offset : 0));
  return sliceIndex(inShape, starts, inShape.map(() => 1), outShape);
}

/** Split-1/2/11 take 'split' as an attribute (Split-1 also as input 1), Split-13 as input 1. */
const splitGiven = (ctx: OpContext, fromInput: () => number[] | undefined): number[] | undefined =>
  ctx.opset < 13 ? ctx.attrs.optInts('split') ?? fromInput() : fromInput();

const split: OpDef = {
  name: 'Split',
  since: [1, 2, 11, 13, 18],
  infer(ctx) {
    const x = ctx.input(0);
    const fed = fedAtRunTime(ctx, 1) && !(ctx.opset < 13 && ctx.attrs.has('split'));
    const given: Dim[] | undefined = fed
      ? ctx.node.outputs.map((_, k) => freshDims(ctx, k, 1)[0])
      : splitGiven(ctx, () => optKnownInts(ctx, 1, 'split'));
    return splitPlan(ctx, x.shape, given).map((p) => {
      const off = p.offset;
      if (isSym(off)) return { dtype: x.dtype, shape: p.shape };
      return moved(x, p.shape, (inShape, outShape) => rangeIndex(inShape, p.axis, off, outShape));
    });
  },
  evaluate(ctx, inputs) {
    const x = req(ctx, inputs, 0, 'input');
    const given = splitGiven(ctx, () => optTensorInts(inputs, 1));
    return splitPlan(ctx, x.shape, given).map((p) => {
      const s = p.shape as number[];
      return takeTensor(x, s, rangeIndex(x.shape, p.axis, p.offset as number, s));
    });
  },
};

// ---- Gather, GatherND -----------------------------------------------------------------------------

/** Gather's output shape: data[:axis] ++ indices ++ data[axis+1:]. */
const gatherShape = (data: readonly Dim[], axis: number, indices: readonly Dim[]): Dim[] =>
  [...data.slice(0, axis), ...indices, ...data.slice(axis + 1)];

/** Make index values non-negative against a dim of `d`, failing on out-of-range ones. */
function wrapIndices(ctx: OpContext, idx: readonly number[], d: number, what: string): number[] {
  return idx.map((i) => {
    const j = i < 0 ? i + d : i;
    if (!Number.isInteger(j) || j < 0 || j >= d) ctx.fail(`${what} ${i} is out of range for a dim of ${d}`);
    return j;
  });
}

/** Index map of Gather on concrete data with (already wrapped) index values. */
function gatherIndex(data: readonly number[], axis: number, idx: readonly number[]): Int32Array {
  const outer = sizeOf(data.slice(0, axis)), inner = sizeOf(data.slice(axis + 1)), d = data[axis];
  const out = new Int32Array(outer * idx.length * inner);
  let o = 0;
  for (let r = 0; r < outer; r++) {
    for (const j of idx) {
      const base = (r * d + j) * inner;
      for (let k = 0; k < inner; k++) out[o++] = base + k;
    }
  }
  return out;
}

const gather: OpDef = {
  name: 'Gather',
  since: [1, 11, 13],
  infer(ctx) {
    const data = ctx.input(0), indices = ctx.input(1);
    const axis = normAxis(ctx, ctx.attrs.int('axis', 0), data.shape.length);
    const shape = gatherShape(data.shape, axis, indices.shape);
    const idx = ctx.numbers(1);
    const d = data.shape[axis];
    if (!idx || isSym(d)) return [{ dtype: data.dtype, shape }];
    const wrapped = wrapIndices(ctx, idx, d, 'index');
    return [moved(data, shape, (inShape) => gatherIndex(inShape, axis, wrapped))];
  },
  evaluate(ctx, inputs) {
    const data = req(ctx, inputs, 0, 'data'), indices = req(ctx, inputs, 1, 'indices');
    const axis = normAxis(ctx, ctx.attrs.int('axis', 0), data.rank);
    const idx = wrapIndices(ctx, tensorInts(indices), data.shape[axis], 'index');
    const shape = gatherShape(data.shape, axis, indices.shape) as number[];
    return [takeTensor(data, shape, gatherIndex(data.shape, axis, idx))];
  },
};

/** GatherND/ScatterND geometry: b batch dims, tuples of `depth` indices, slices after them. */
function ndGeometry(ctx: OpContext, data: readonly Dim[], indices: readonly Dim[], b: number) {
  const q = indices.length;
  if (q < 1) ctx.fail('indices must have rank ≥ 1');
  const depth = indices[q - 1];
  if (isSym(depth)) ctx.fail(`the last dim of indices must be constant, got ${dimStr(depth)}`);
  if (b < 0 || b >= q || b >= data.length) ctx.fail(`batch_dims ${b} is out of range for indices of rank ${q} and data of rank ${data.length}`);
  if (b + depth > data.length) ctx.fail(`index tuples of ${depth} do not fit data of rank ${data.length} (batch_dims ${b})`);
  return { depth, shape: [...indices.slice(0, q - 1), ...data.slice(b + depth)] };
}

/**
 * For each index tuple (in order), the flat offset of the slice it selects in `data`; tuples of
 * batch i index the i-th batch block.
 */
function ndOffsets(ctx: OpContext, data: readonly number[], indices: readonly number[], idx: readonly number[], b: number): { offsets: number[]; slice: number } {
  const depth = indices[indices.length - 1];
  const st = stridesOf(data);
  const batches = sizeOf(data.slice(0, b));
  const perBatch = sizeOf(indices.slice(b, indices.length - 1));
  const batchStride = sizeOf(data.slice(b));
  const offsets: number[] = [];
  for (let n = 0; n < batches; n++) {
    for (let t = 0; t < perBatch; t++) {
      let off = n * batchStride;
      for (let k = 0; k < depth; k++) {
        const raw = idx[(n * perBatch + t) * depth + k];
        const d = data[b + k];
        const j = raw < 0 ? raw + d : raw;
        if (!Number.isInteger(j) || j < 0 || j >= d) ctx.fail(`index ${raw} is out of range for a dim of ${d}`);
        off += j * st[b + k];
      }
      offsets.push(off);
    }
  }
  return { offsets, slice: sizeOf(data.slice(b + depth)) };
}

function gatherNDIndex(ctx: OpContext, data: readonly number[], indices: readonly number[], idx: readonly number[], b: number): Int32Array {
  const { offsets, slice: n } = ndOffsets(ctx, data, indices, idx, b);
  const out = new Int32Array(offsets.length * n);
  offsets.forEach((off, t) => { for (let k = 0; k < n; k++) out[t * n + k] = off + k; });
  return out;
}

const gatherND: OpDef = {
  name: 'GatherND',
  since: [11, 12, 13],
  infer(ctx) {
    const data = ctx.input(0), indices = ctx.input(1);
    const b = ctx.attrs.int('batch_dims', 0);
    const { shape } = ndGeometry(ctx, data.shape, indices.shape, b);
    const idx = ctx.numbers(1);
    if (!idx || !isConcrete(indices.shape)) return [{ dtype: data.dtype, shape }];
    const ishape = indices.shape;
    return [moved(data, shape, (inShape) => gatherNDIndex(ctx, inShape, ishape, idx, b))];
  },
  evaluate(ctx, inputs) {
    const data = req(ctx, inputs, 0, 'data'), indices = req(ctx, inputs, 1, 'indices');
    const b = ctx.attrs.int('batch_dims', 0);
    const { shape } = ndGeometry(ctx, data.shape, indices.shape, b);
    return [takeTensor(data, shape as number[], gatherNDIndex(ctx, data.shape, indices.shape, tensorInts(indices), b))];
  },
};

// ---- ScatterND ------------------------------------------------------------------------------------

const REDUCTIONS: Record<string, (a: number, b: number) => number> = {
  none: (_a, b) => b,
  add: (a, b) => a + b,
  mul: (a, b) => a * b,
  max: (a, b) => Math.max(a, b),
  min: (a, b) => Math.min(a, b),
};

function scatterReduction(ctx: OpContext): (a: number, b: number) => number {
  const r = ctx.attrs.string('reduction', 'none');
  const f = REDUCTIONS[r];
  if (!f || (ctx.opset < 18 && (r === 'max' || r === 'min'))) ctx.fail(`reduction '${r}' is not supported`);
  return f;
}

const scatterND: OpDef = {
  name: 'ScatterND',
  since: [11, 13, 16, 18],
  infer(ctx) {
    const data = ctx.input(0), indices = ctx.input(1), updates = ctx.input(2);
    const { shape } = ndGeometry(ctx, data.shape, indices.shape, 0);
    if (shape.length !== updates.shape.length || shape.some((d, i) => !isSym(d) && !isSym(updates.shape[i]) && d !== updates.shape[i])) {
      ctx.fail(`updates ${shapeStr(updates.shape)} must have shape ${shapeStr(shape)}`);
    }
    scatterReduction(ctx);
    return [{ dtype: data.dtype, shape: [...data.shape] }];
  },
  evaluate(ctx, inputs) {
    const data = req(ctx, inputs, 0, 'data'), indices = req(ctx, inputs, 1, 'indices');
    const updates = req(ctx, inputs, 2, 'updates');
    const { shape } = ndGeometry(ctx, data.shape, indices.shape, 0);
    if (sizeOf(shape as number[]) !== updates.size) ctx.fail(`updates [${updates.shape.join(', ')}] must have shape ${shapeStr(shape)}`);
    const f = scatterReduction(ctx);
    const { offsets, slice: n } = ndOffsets(ctx, data.shape, indices.shape, tensorInts(indices), 0);
    const out = Tensor.zeros(data.dtype, data.shape);
    out.data.set(data.data as ArrayLike<number>);
    const o = out.data, u = updates.data;
    offsets.forEach((off, t) => { for (let k = 0; k < n; k++) o[off + k] = f(o[off + k], u[t * n + k]); });
    return [storeRounded(out)];
  },
};

// ---- Tile ---------------------------------------------------------------------------------------

/** Index map of Tile: output element (i0..in) reads input element (i0 mod d0, ..). */
function tileIndex(inShape: readonly number[], outShape: readonly number[]): Int32Array {
  const n = sizeOf(outShape), rank = outShape.length;
  const st = stridesOf(inShape);
  const idx = new Int32Array(n);
  const counter = new Array<number>(rank).fill(0), pos = new Array<number>(rank).fill(0);
  let off = 0;
  for (let i = 0; i < n; i++) {
    idx[i] = off;
    for (let a = rank - 1; a >= 0; a--) {
      counter[a]++;
      pos[a]++;
      off += st[a];
      if (pos[a] === inShape[a]) { pos[a] = 0; off -= st[a] * inShape[a]; }
      if (counter[a] < outShape[a]) break;
      off -= st[a] * pos[a];
      counter[a] = 0;
      pos[a] = 0;
    }
  }
  return idx;
}

function tileShape(ctx: OpContext, shape: readonly Dim[], repeats: readonly Dim[]): Dim[] {
  if (repeats.length !== shape.length) ctx.fail(`repeats has ${repeats.length} entries for rank ${shape.length}`);
  if (repeats.some((r) => typeof r === 'number' && r < 0)) ctx.fail(`repeats [${repeats.map(dimStr).join(', ')}] must not be negative`);
  return shape.map((d, i) => dimMul(d, repeats[i]));
}

const tile: OpDef = {
  name: 'Tile',
  since: [6, 13],
  infer(ctx) {
    const x = ctx.input(0);
    if (fedAtRunTime(ctx, 1)) return [{ dtype: x.dtype, shape: freshDims(ctx, 0, x.shape.length) }];
    return [moved(x, tileShape(ctx, x.shape, knownDims(ctx, 1, 'repeats')), tileIndex)];
  },
  evaluate(ctx, inputs) {
    const x = req(ctx, inputs, 0, 'input');
    const shape = tileShape(ctx, x.shape, tensorInts(req(ctx, inputs, 1, 'repeats'))) as number[];
    return [takeTensor(x, shape, tileIndex(x.shape, shape))];
  },
};

// ---- Trilu --------------------------------------------------------------------------------------

const trilu: OpDef = {
  name: 'Trilu',
  since: [14],
  infer(ctx) {
    const x = ctx.input(0);
    if (x.shape.length < 2) ctx.fail(`input ${shapeStr(x.shape)} must have rank ≥ 2`);
    return [{ dtype: x.dtype, shape: [...x.shape] }];
  },
  evaluate(ctx, inputs) {
    const x = req(ctx, inputs, 0, 'input');
    if (x.rank < 2) ctx.fail(`input [${x.shape.join(', ')}] must have rank ≥ 2`);
    const k = inputs[1] ? inputs[1].data[0] : 0;
    const upper = ctx.attrs.int('upper', 1) !== 0;
    const rows = x.shape[x.rank - 2], cols = x.shape[x.rank - 1];
    const out = Tensor.zeros(x.dtype, x.shape);
    const a = x.data, o = out.data;
    for (let base = 0; base < x.size; base += rows * cols) {
      for (let i = 0; i < rows; i++) {
        for (let j = 0; j < cols; j++) {
          const keep = upper ? j - i >= k : j - i <= k;
          if (keep) o[base + i * cols + j] = a[base + i * cols + j];
        }
      }
    }
    return [out];
  },
};

export const tensorOps: OpDef[] = [
  transpose, concat, slice, split, gather, gatherND, scatterND, tile, trilu,
];

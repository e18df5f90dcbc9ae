/**
 * Helpers shared by the shape and data-movement ops (shape.ts, tensor.ts, slice.ts).
 *
 * Two ideas carry those ops:
 *  - a shape-consuming input (Reshape's shape, Slice's starts, Tile's repeats, ...) is read from
 *    its *known* contents at inference, with one clear error when it is data-dependent; only a
 *    graph input fed at run time (as in the ONNX node tests) gives fresh symbols instead;
 *  - moving data is described once, as a flat source index for every output element (an index
 *    map), and applied either to a tensor's typed array (evaluate) or to an input's known
 *    contents (infer), so shape arithmetic and reference evaluation cannot disagree.
 */
import { arrayFor } from '../../runtime/dtype.js';
import { sizeOf, stridesOf, Tensor } from '../../runtime/tensor.js';
import { dimStr, isSym, shapeStr, SymDim, type Dim } from '../ir/dim.js';
import { KNOWN_LIMIT } from '../ir/graph.js';
import type { InferContext, InputInfo, OpContext, OutputInfo } from './registry.js';

/** `'name'` of input i for error messages. */
export function inputName(ctx: OpContext, i: number): string {
  return `'${ctx.node.inputs[i]?.name ?? `#${i}`}'`;
}

/**
 * The contents of input i (entries may be symbolic), which the op consumes as a shape-like
 * value; fails clearly when it is omitted or only known at run time.
 */
export function knownDims(ctx: InferContext, i: number, what: string): Dim[] {
  const info = ctx.inputs[i];
  if (!info) ctx.fail(`${what} (input ${i}) is required`);
  if (!info.known) {
    ctx.fail(`${what} is data-dependent (input ${inputName(ctx, i)} not known at compile time)`);
  }
  return [...info.known];
}

/** Like knownDims, but every entry must be a plain number (axes, steps, perm-like inputs). */
export function knownInts(ctx: InferContext, i: number, what: string): number[] {
  const dims = knownDims(ctx, i, what);
  const bad = dims.find(isSym);
  if (bad !== undefined) ctx.fail(`${what} must be constant, but input ${inputName(ctx, i)} holds ${dimStr(bad)}`);
  return dims as number[];
}

/**
 * Whether input i is present but fed at run time: a graph input (no producer, no initializer)
 * whose contents inference cannot know. An op that consumes it as a shape then answers with
 * fresh symbols for the dims it determines (freshDims), an honest result that the interpreter
 * binds on first run; contents computed inside the graph but unknown still fail (knownDims).
 */
export function fedAtRunTime(ctx: InferContext, i: number): boolean {
  const info = ctx.inputs[i], v = ctx.node.inputs[i];
  return !!info && !info.known && !!v && !v.producer && !v.initializer;
}

/** Entries of a 1-D shape-like input (from its shape), which must be a number. */
export function operandLength(ctx: InferContext, i: number, what: string): number {
  const s = ctx.input(i).shape;
  const n = s.length === 0 ? 1 : s[0];
  if (s.length > 1 || typeof n !== 'number') ctx.fail(`${what} (input ${inputName(ctx, i)}) must be 1-D of constant length, got ${shapeStr(s)}`);
  return n;
}

/** `n` fresh symbols for dims of output `out` that only the run time knows (`name.d0`, ...). */
export function freshDims(ctx: InferContext, out: number, n: number): Dim[] {
  const name = ctx.node.outputs[out]?.name ?? `${ctx.node.name}:${out}`;
  return Array.from({ length: n }, (_, k) => SymDim.symbol(`${name}.d${k}`));
}

/** The contents of an integer tensor as plain numbers (evaluation). */
export const tensorInts = (t: Tensor): number[] => Array.from(t.data as ArrayLike<number>);

/** Optional input i's constant ints at inference (undefined when the input is omitted). */
export function optKnownInts(ctx: InferContext, i: number, what: string): number[] | undefined {
  return ctx.inputs[i] ? knownInts(ctx, i, what) : undefined;
}

/** Optional input i's ints at evaluation (undefined when the input is omitted). */
export function optTensorInts(inputs: readonly (Tensor | undefined)[], i: number): number[] | undefined {
  const t = inputs[i];
  return t ? tensorInts(t) : undefined;
}

/**
 * Ints an op took as attribute `name` before opset `since` and as an input from it on
 * (Squeeze/Unsqueeze axes, Split's split); `fromInput` reads the input in infer or evaluate.
 */
export function attrOrInput(
  ctx: OpContext,
  name: string,
  since: number,
  fromInput: () => number[] | undefined,
): number[] | undefined {
  return ctx.opset < since ? ctx.attrs.optInts(name) : fromInput();
}

/** A shape every dim of which is a number. */
export const isConcrete = (shape: readonly Dim[]): shape is number[] => !shape.some(isSym);

/** Whether an output of `shape` is small and concrete enough to carry `known` contents. */
export const carriesKnown = (shape: readonly Dim[]): shape is number[] =>
  isConcrete(shape) && sizeOf(shape) <= KNOWN_LIMIT;

/** Copy `src[idx[i]]` for every i into a new tensor of `shape` (same dtype). */
export function takeTensor(src: Tensor, shape: readonly number[], idx: Int32Array): Tensor {
  const out = arrayFor(src.dtype, idx.length);
  const a = src.data;
  for (let i = 0; i < idx.length; i++) out[i] = a[idx[i]];
  return new Tensor(src.dtype, [...shape], out);
}

/**
 * The output info of a data-movement op: `shape`, and `known` contents gathered from the input's
 * through the op's index map when the input's contents are known and the output is small.
 * `index` is only called when needed, with the input's (then concrete) shape.
 */
export function moved(
  input: InputInfo,
  shape: Dim[],
  index: (inShape: number[], outShape: number[]) => Int32Array,
): OutputInfo {
  const out: OutputInfo = { dtype: input.dtype, shape };
  const k = input.known;
  if (k && isConcrete(input.shape) && carriesKnown(shape)) {
    const idx = index(input.shape, shape);
    out.known = Array.from(idx, (j) => k[j]);
  }
  return out;
}

/** Identity index map: the op only renames the shape (Reshape, Squeeze, Unsqueeze, Flatten). */
export const sameOrder = (_in: number[], out: number[]): Int32Array => {
  const idx = new Int32Array(sizeOf(out));
  for (let i = 0; i < idx.length; i++) idx[i] = i;
  return idx;
};

/**
 * Index map of a strided view: output element at multi-index (i0..in) reads source offset
 * `offset + Σ ik * strides[k]` (Transpose, Slice, Split; strides may be negative or zero).
 */
export function stridedIndex(outShape: readonly number[], strides: readonly number[], offset: number): Int32Array {
  const n = sizeOf(outShape);
  const idx = new Int32Array(n);
  const rank = outShape.length;
  if (n === 0) return idx;
  const counter = new Array<number>(rank).fill(0);
  let off = offset;
  for (let i = 0; i < n; i++) {
    idx[i] = off;
    for (let a = rank - 1; a >= 0; a--) {
      counter[a]++;
      off += strides[a];
      if (counter[a] < outShape[a]) break;
      off -= strides[a] * counter[a];
      counter[a] = 0;
    }
  }
  return idx;
}

/** Index map of Transpose: output axis k is input axis perm[k]. */
export function transposeIndex(inShape: readonly number[], perm: readonly number[]): Int32Array {
  const st = stridesOf(inShape);
  return stridedIndex(perm.map((p) => inShape[p]), perm.map((p) => st[p]), 0);
}

/**
 * Concatenate flat parts along an axis: each part is `outer` blocks of `blocks[k]` elements,
 * and the output interleaves them block by block. Works on typed arrays and on known contents.
 */
export function concatFlat<T>(
  parts: readonly ArrayLike<T>[],
  outer: number,
  blocks: readonly number[],
  out: { [i: number]: T },
): void {
  let o = 0;
  for (let r = 0; r < outer; r++) {
    for (let k = 0; k < parts.length; k++) {
      const p = parts[k], b = blocks[k], base = r * b;
      for (let j = 0; j < b; j++) out[o++] = p[base + j];
    }
  }
}

/** Normalise a list of axes for `rank`, failing on out-of-range or repeated axes. */
export function normAxes(ctx: OpContext, axes: readonly number[], rank: number, what = 'axes'): number[] {
  const out = axes.map((a) => {
    const n = a < 0 ? a + rank : a;
    if (!Number.isInteger(n) || n < 0 || n >= rank) ctx.fail(`${what} ${a} is out of range for rank ${rank}`);
    return n;
  });
  if (new Set(out).size !== out.length) ctx.fail(`${what} [${axes.join(', ')}] repeat an axis`);
  return out;
}

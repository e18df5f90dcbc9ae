/**
 * Ops that make or reinterpret shapes: Shape, Size, Reshape, Flatten, Unsqueeze, Squeeze, Expand,
 * ConstantOfShape, Constant, Range.
 *
 * These carry the shape arithmetic every exporter emits (Shape → Gather → Unsqueeze → Concat →
 * Reshape/Expand/ConstantOfShape/Range), so their `infer` works on symbolic dims throughout:
 * Shape and Size produce `known` contents from the input's shape, ops that only rename a shape
 * pass `known` through, and ops that consume a shape read it from the `known` contents of that
 * input (movement.ts), failing clearly when it is data-dependent. A shape fed straight from a
 * graph input (as in the ONNX node tests), and a Range's length, become fresh symbols instead.
 */
import { arrayFor, isFloat, type DType } from '../../runtime/dtype.js';
import { sizeOf, storeRounded, Tensor } from '../../runtime/tensor.js';
import {
  dimAdd, dimFloorDiv, dimMul, dimProduct, dimStr, dimSub, isSym, shapeStr, type Dim,
} from '../ir/dim.js';
import { KNOWN_LIMIT } from '../ir/graph.js';
import {
  attrOrInput, carriesKnown, fedAtRunTime, freshDims, knownDims, moved, normAxes, operandLength,
  optKnownInts, optTensorInts, sameOrder, takeTensor, tensorInts,
} from './movement.js';
import type { InferContext, OpContext, OpDef, OutputInfo } from './registry.js';
import { broadcastConcrete, broadcastIndex, broadcastShapes, req } from './util.js';

// ---- Shape, Size -------------------------------------------------------------------------------

/** The [start, end) range of dims Shape-15 reports (start/end clamped like Slice). */
function shapeRange(ctx: OpContext, rank: number): [number, number] {
  const clamp = (x: number): number => Math.min(Math.max(x < 0 ? x + rank : x, 0), rank);
  const s = clamp(ctx.attrs.int('start', 0));
  return [s, Math.max(s, clamp(ctx.attrs.int('end', rank)))];
}

const shape: OpDef = {
  name: 'Shape',
  since: [1, 13, 15],
  infer(ctx) {
    const x = ctx.input(0);
    const [s, e] = shapeRange(ctx, x.shape.length);
    return [{ dtype: 'int64', shape: [e - s], known: x.shape.slice(s, e) }];
  },
  evaluate(ctx, inputs) {
    const x = req(ctx, inputs, 0, 'data');
    const [s, e] = shapeRange(ctx, x.rank);
    return [Tensor.from('int64', [e - s], x.shape.slice(s, e))];
  },
};

const size: OpDef = {
  name: 'Size',
  since: [1, 13],
  infer: (ctx) => [{ dtype: 'int64', shape: [], known: [dimProduct(ctx.input(0).shape)] }],
  evaluate: (ctx, inputs) => [Tensor.scalar('int64', req(ctx, inputs, 0, 'data').size)],
};

// ---- Reshape, Flatten, Squeeze, Unsqueeze --------------------------------------------------------

/**
 * Reshape's output shape: 0 copies the input dim (unless allowzero), -1 is inferred from the
 * element count. Works on symbolic and concrete shapes alike.
 */
function reshapeTarget(ctx: OpContext, inShape: readonly Dim[], target: readonly Dim[], allowZero: boolean): Dim[] {
  let inferred = -1;
  const out = target.map((t, i): Dim => {
    if (t === 0 && !allowZero) {
      if (i >= inShape.length) ctx.fail(`target shape ${shapeStr(target)} copies dim ${i} (0), but the input ${shapeStr(inShape)} has rank ${inShape.length}`);
      return inShape[i];
    }
    if (t === -1) {
      if (inferred >= 0) ctx.fail(`target shape ${shapeStr(target)} has more than one -1`);
      inferred = i;
      return 1;
    }
    if (typeof t === 'number' && (t < 0 || !Number.isInteger(t))) ctx.fail(`target shape ${shapeStr(target)} holds invalid dim ${t}`);
    return t;
  });
  const total = dimProduct(inShape);
  const rest = dimProduct(out);
  if (inferred >= 0) {
    if (rest === 0) ctx.fail(`cannot infer the -1 of target shape ${shapeStr(target)}: the other dims hold 0`);
    if (typeof total === 'number' && typeof rest === 'number' && total % rest !== 0) {
      ctx.fail(`cannot reshape ${shapeStr(inShape)} (${total} elements) to ${shapeStr(target)}`);
    }
    out[inferred] = dimFloorDiv(total, rest);
  } else {
    const diff = dimSub(total, rest);
    if (typeof diff === 'number' && diff !== 0) {
      ctx.fail(`cannot reshape ${shapeStr(inShape)} (${dimStr(total)} elements) to ${shapeStr(out)} (${dimStr(rest)})`);
    }
  }
  return out;
}

const reshape: OpDef = {
  name: 'Reshape',
  since: [1, 5, 13, 14],
  infer(ctx) {
    const x = ctx.input(0);
    if (ctx.opset >= 5 && fedAtRunTime(ctx, 1)) {
      return [{ dtype: x.dtype, shape: freshDims(ctx, 0, operandLength(ctx, 1, 'target shape')) }];
    }
    const target = ctx.opset < 5 ? ctx.attrs.ints('shape') : knownDims(ctx, 1, 'target shape');
    const out = reshapeTarget(ctx, x.shape, target, ctx.attrs.int('allowzero', 0) !== 0);
    return [moved(x, out, sameOrder)];
  },
  evaluate(ctx, inputs) {
    const x = req(ctx, inputs, 0, 'data');
    const target = ctx.opset < 5 ? ctx.attrs.ints('shape') : tensorInts(req(ctx, inputs, 1, 'shape'));
    return [x.reshape(reshapeTarget(ctx, x.shape, target, ctx.attrs.int('allowzero', 0) !== 0) as number[])];
  },
};

function flattenShape(ctx: OpContext, s: readonly Dim[]): Dim[] {
  let axis = ctx.attrs.int('axis', 1);
  if (axis < 0) axis += s.length;
  if (axis < 0 || axis > s.length) ctx.fail(`axis ${ctx.attrs.int('axis', 1)} is out of range for rank ${s.length}`);
  return [dimProduct(s.slice(0, axis)), dimProduct(s.slice(axis))];
}

const flatten: OpDef = {
  name: 'Flatten',
  since: [1, 9, 11, 13],
  infer(ctx) {
    const x = ctx.input(0);
    return [moved(x, flattenShape(ctx, x.shape), sameOrder)];
  },
  evaluate(ctx, inputs) {
    const x = req(ctx, inputs, 0, 'input');
    return [x.reshape(flattenShape(ctx, x.shape) as number[])];
  },
};

function unsqueezeShape(ctx: OpContext, s: readonly Dim[], axes: number[] | undefined): Dim[] {
  if (!axes) ctx.fail('axes are required');
  const rank = s.length + axes.length;
  const set = new Set(normAxes(ctx, axes, rank));
  const out: Dim[] = [];
  let j = 0;
  for (let i = 0; i < rank; i++) out.push(set.has(i) ? 1 : s[j++]);
  return out;
}

const unsqueeze: OpDef = {
  name: 'Unsqueeze',
  since: [1, 11, 13],
  infer(ctx) {
    const x = ctx.input(0);
    if (ctx.opset >= 13 && fedAtRunTime(ctx, 1)) {
      return [{ dtype: x.dtype, shape: freshDims(ctx, 0, x.shape.length + operandLength(ctx, 1, 'axes')) }];
    }
    const axes = attrOrInput(ctx, 'axes', 13, () => optKnownInts(ctx, 1, 'axes'));
    return [moved(x, unsqueezeShape(ctx, x.shape, axes), sameOrder)];
  },
  evaluate(ctx, inputs) {
    const x = req(ctx, inputs, 0, 'data');
    const axes = attrOrInput(ctx, 'axes', 13, () => optTensorInts(inputs, 1));
    return [x.reshape(unsqueezeShape(ctx, x.shape, axes) as number[])];
  },
};

/** Squeeze's output: drop the listed axes (which must be 1), or every dim of 1 when none are. */
function squeezeShape(ctx: OpContext, s: readonly Dim[], axes: number[] | undefined): Dim[] {
  if (!axes) {
    const sym = s.find(isSym);
    if (sym !== undefined) {
      ctx.fail(`without axes, Squeeze of ${shapeStr(s)} depends on whether ${dimStr(sym)} is 1 at run time`);
    }
    return s.filter((d) => d !== 1);
  }
  const drop = new Set(normAxes(ctx, axes, s.length));
  for (const a of drop) {
    if (typeof s[a] === 'number' && s[a] !== 1) ctx.fail(`cannot squeeze axis ${a} of ${shapeStr(s)}: its dim is not 1`);
  }
  return s.filter((_, i) => !drop.has(i));
}

const squeeze: OpDef = {
  name: 'Squeeze',
  since: [1, 11, 13],
  infer(ctx) {
    const x = ctx.input(0);
    if (ctx.opset >= 13 && fedAtRunTime(ctx, 1)) {
      return [{ dtype: x.dtype, shape: freshDims(ctx, 0, x.shape.length - operandLength(ctx, 1, 'axes')) }];
    }
    const axes = attrOrInput(ctx, 'axes', 13, () => optKnownInts(ctx, 1, 'axes'));
    return [moved(x, squeezeShape(ctx, x.shape, axes), sameOrder)];
  },
  evaluate(ctx, inputs) {
    const x = req(ctx, inputs, 0, 'data');
    const axes = attrOrInput(ctx, 'axes', 13, () => optTensorInts(inputs, 1));
    return [x.reshape(squeezeShape(ctx, x.shape, axes) as number[])];
  },
};

// ---- Expand, ConstantOfShape --------------------------------------------------------------------

/** A shape given as the contents of a tensor: every entry must be a size (≥ 0). */
function checkSizes(ctx: OpContext, s: readonly Dim[], what: string): void {
  for (const d of s) {
    if (typeof d === 'number' && (d < 0 || !Number.isInteger(d))) ctx.fail(`${what} ${shapeStr(s)} holds invalid dim ${d}`);
  }
}

const expand: OpDef = {
  name: 'Expand',
  since: [8, 13],
  infer(ctx) {
    const x = ctx.input(0);
    if (fedAtRunTime(ctx, 1)) {
      return [{ dtype: x.dtype, shape: freshDims(ctx, 0, Math.max(x.shape.length, operandLength(ctx, 1, 'target shape'))) }];
    }
    const target = knownDims(ctx, 1, 'target shape');
    checkSizes(ctx, target, 'target shape');
    return [moved(x, broadcastShapes(ctx, [x.shape, target]), broadcastIndex)];
  },
  evaluate(ctx, inputs) {
    const x = req(ctx, inputs, 0, 'input');
    const target = tensorInts(req(ctx, inputs, 1, 'shape'));
    checkSizes(ctx, target, 'target shape');
    const out = broadcastConcrete(ctx, [x.shape, target]);
    return [takeTensor(x, out, broadcastIndex(x.shape, out))];
  },
};

/** ConstantOfShape's fill value: the 'value' attribute (one element), default float32 0. */
function fillValue(ctx: OpContext): { dtype: DType; v: number } {
  const t = ctx.attrs.optTensor('value');
  if (!t) return { dtype: 'float32', v: 0 };
  if (t.size !== 1) ctx.fail(`attribute 'value' must hold one element, got shape [${t.shape.join(', ')}]`);
  return { dtype: t.dtype, v: t.data[0] };
}

const constantOfShape: OpDef = {
  name: 'ConstantOfShape',
  since: [9],
  infer(ctx) {
    const { dtype, v } = fillValue(ctx);
    if (fedAtRunTime(ctx, 0)) return [{ dtype, shape: freshDims(ctx, 0, operandLength(ctx, 0, 'shape')) }];
    const s = knownDims(ctx, 0, 'shape');
    checkSizes(ctx, s, 'shape');
    const out: OutputInfo = { dtype, shape: s };
    if (carriesKnown(s)) out.known = new Array<Dim>(sizeOf(s)).fill(v);
    return [out];
  },
  evaluate(ctx, inputs) {
    const s = tensorInts(req(ctx, inputs, 0, 'input'));
    checkSizes(ctx, s, 'shape');
    const { dtype, v } = fillValue(ctx);
    const out = Tensor.zeros(dtype, s);
    out.data.fill(v);
    return [out];
  },
};

// ---- Constant -----------------------------------------------------------------------------------

/** The tensor a Constant node holds, from whichever of its value attributes is set. */
function constantValue(ctx: OpContext): Tensor {
  const a = ctx.attrs;
  if (a.has('value')) return a.tensor('value');
  if (a.has('value_float')) return Tensor.scalar('float32', a.float('value_float'));
  if (a.has('value_floats')) { const v = a.floats('value_floats'); return Tensor.from('float32', [v.length], v); }
  if (a.has('value_int')) return Tensor.scalar('int64', a.int('value_int'));
  if (a.has('value_ints')) { const v = a.ints('value_ints'); return Tensor.from('int64', [v.length], v); }
  if (a.has('sparse_value')) ctx.fail(`attribute 'sparse_value' (sparse constants) is not supported`);
  if (a.has('value_string') || a.has('value_strings')) ctx.fail('string constants are not supported');
  ctx.fail('needs one of the attributes value, value_float(s), value_int(s)');
}

const constant: OpDef = {
  name: 'Constant',
  since: [1, 9, 11, 12, 13],
  infer(ctx) {
    const t = constantValue(ctx);
    const out: OutputInfo = { dtype: t.dtype, shape: [...t.shape] };
    if (t.size <= KNOWN_LIMIT) out.known = t.toArray();
    return [out];
  },
  evaluate: (ctx) => [constantValue(ctx)],
};

// ---- Range --------------------------------------------------------------------------------------

/** start, start + delta, ... (n values) in `dtype`. */
function rangeTensor(dtype: DType, start: number, delta: number, n: number): Tensor {
  const t = new Tensor(dtype, [n], arrayFor(dtype, n));
  for (let i = 0; i < n; i++) t.data[i] = start + i * delta;
  return storeRounded(t);
}

const rangeLength = (start: number, limit: number, delta: number): number =>
  Math.max(Math.ceil((limit - start) / delta), 0);

/** The length of a Range whose start or limit is symbolic: ceil((limit - start) / delta). */
function symbolicRangeLength(ctx: InferContext, start: Dim, limit: Dim, delta: Dim): Dim {
  if (isSym(delta)) ctx.fail(`delta must be constant, got ${dimStr(delta)}`);
  if (delta === 0) ctx.fail('delta must not be 0');
  if (isFloat(ctx.input(0).dtype)) ctx.fail('a floating-point Range needs constant start and limit');
  const diff = delta > 0 ? dimSub(limit, start) : dimSub(start, limit);
  const step = Math.abs(delta);
  const n = step === 1 ? diff : dimFloorDiv(dimAdd(diff, step - 1), step);
  return typeof n === 'number' ? Math.max(n, 0) : n;
}

const range: OpDef = {
  name: 'Range',
  since: [11],
  infer(ctx) {
    const dtype = ctx.input(0).dtype;
    // A Range whose bounds are only known at run time has a data-dependent length, which is an
    // honest fresh symbol wherever the bounds come from (unlike a lost Reshape target).
    if ([0, 1, 2].some((i) => !ctx.input(i).known)) return [{ dtype, shape: freshDims(ctx, 0, 1) }];
    const [start, limit, delta] = (['start', 'limit', 'delta'] as const).map((w, i) => {
      const k = knownDims(ctx, i, w);
      if (k.length !== 1) ctx.fail(`${w} must be a scalar, got ${k.length} elements`);
      return k[0];
    });
    if (typeof start === 'number' && typeof limit === 'number' && typeof delta === 'number') {
      if (delta === 0) ctx.fail('delta must not be 0');
      const n = rangeLength(start, limit, delta);
      const out: OutputInfo = { dtype, shape: [n] };
      if (n <= KNOWN_LIMIT) out.known = rangeTensor(dtype, start, delta, n).toArray();
      return [out];
    }
    const n = symbolicRangeLength(ctx, start, limit, delta);
    const out: OutputInfo = { dtype, shape: [n] };
    if (typeof n === 'number' && n <= KNOWN_LIMIT) {
      out.known = Array.from({ length: n }, (_, i) => dimAdd(start, dimMul(i, delta)));
    }
    return [out];
  },
  evaluate(ctx, inputs) {
    const [start, limit, delta] = (['start', 'limit', 'delta'] as const).map((w, i) => {
      const t = req(ctx, inputs, i, w);
      if (t.size !== 1) ctx.fail(`${w} must be a scalar, got shape [${t.shape.join(', ')}]`);
      return t.data[0];
    });
    if (delta === 0) ctx.fail('delta must not be 0');
    return [rangeTensor(inputs[0]!.dtype, start, delta, rangeLength(start, limit, delta))];
  },
};

export const shapeOps: OpDef[] = [
  shape, size, reshape, flatten, unsqueeze, squeeze, expand, constantOfShape, constant, range,
];

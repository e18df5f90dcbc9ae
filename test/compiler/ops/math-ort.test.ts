/**
 * Differential tests of the math ops against onnxruntime-node: each case is a one-node ONNX model
 * (some inputs with symbolic dims, shape-like operands as initializers) run on seeded random data
 * through lfc's importer, shape inference and reference interpreter, and through onnxruntime. They
 * cover what the ONNX node tests leave out: other shapes, broadcasting patterns, integer types,
 * axes, opsets and equations.
 */
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import '../../../compiler/ops/index.js';
import { ONNX_DTYPE_CODE, type DType } from '../../../runtime/dtype.js';
import { Tensor } from '../../../runtime/tensor.js';
import { importModelBytes } from '../../../compiler/onnx/import.js';
import { ATTR, onnx, type AttributeProto, type GraphProto, type ValueInfoProto } from '../../../compiler/onnx/proto.js';
import { encodeTensorProto } from '../../../compiler/onnx/tensor.js';
import { inferShapes } from '../../../compiler/ir/infer.js';
import { run } from '../../../compiler/ir/interpret.js';
import { mulberry32 } from '../../helpers/decoder.js';

type Gen = 'float' | 'pos' | 'int' | 'nonzero' | 'byte' | 'bool' | 'class';

interface In {
  dtype: DType;
  shape: number[];
  /** dim_param names for the declared input type (null: fixed). */
  sym?: (string | null)[];
  /** Fixed contents, fed as an initializer. */
  init?: number[];
  gen?: Gen;
}

interface Case {
  op: string;
  opset?: number;
  attrs?: Record<string, number | string | number[]>;
  inputs: (In | undefined)[];
  outputs?: number;
}

const F = (shape: number[], sym?: (string | null)[], gen: Gen = 'float'): In => ({ dtype: 'float32', shape, sym, gen });
const I64 = (init: number[], shape = [init.length]): In => ({ dtype: 'int64', shape, init });

function attrProto(name: string, v: number | string | number[]): AttributeProto {
  if (typeof v === 'string') return { name, type: ATTR.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: ATTR.INTS, ints: v };
  return Number.isInteger(v) && !['alpha', 'beta', 'epsilon', 'momentum'].includes(name)
    ? { name, type: ATTR.INT, i: v }
    : { name, type: ATTR.FLOAT, f: v };
}

function values(inp: In, rnd: () => number): number[] {
  const n = inp.shape.reduce((a, b) => a * b, 1);
  const g = inp.gen ?? (inp.dtype === 'bool' ? 'bool' : inp.dtype.startsWith('float') ? 'float' : 'int');
  return Array.from({ length: n }, () => {
    const r = rnd();
    switch (g) {
      case 'float': return r * 4 - 2;
      case 'pos': return 0.1 + r * 3;
      case 'int': return Math.floor(r * 21) - 10;
      case 'nonzero': { const v = Math.floor(r * 19) - 9; return v === 0 ? 3 : v; }
      case 'byte': return Math.floor(r * 256);
      case 'bool': return r < 0.5 ? 1 : 0;
      case 'class': return Math.floor(r * 3);
    }
  });
}

function buildModel(c: Case, tensors: (Tensor | undefined)[]): Uint8Array {
  const names = c.inputs.map((inp, i) => (inp ? `in${i}` : ''));
  const typeOf = (inp: In, name: string): ValueInfoProto => ({
    name,
    type: { tensorType: { elemType: ONNX_DTYPE_CODE[inp.dtype], shape: { dim: inp.shape.map((d, k) => (inp.sym?.[k] ? { dimParam: inp.sym[k]! } : { dimValue: d })) } } },
  });
  const outs = Array.from({ length: c.outputs ?? 1 }, (_, i) => `out${i}`);
  const graph: GraphProto = {
    name: c.op,
    node: [{ opType: c.op, input: names, output: outs, attribute: Object.entries(c.attrs ?? {}).map(([k, v]) => attrProto(k, v)) }],
    input: c.inputs.flatMap((inp, i) => (inp && !inp.init ? [typeOf(inp, names[i])] : [])),
    initializer: c.inputs.flatMap((inp, i) => (inp?.init ? [onnx.TensorProto.decode(encodeTensorProto(tensors[i]!, names[i]))] : [])),
    output: outs.map((name) => ({ name })),
  };
  return onnx.ModelProto.encode({ irVersion: 8, opsetImport: [{ domain: '', version: c.opset ?? 17 }], graph }).finish();
}

const ORT_TYPE: Partial<Record<DType, ort.Tensor.Type>> = {
  float32: 'float32', float64: 'float64', int64: 'int64', int32: 'int32', uint8: 'uint8', int8: 'int8', bool: 'bool',
};

function toOrt(t: Tensor): ort.Tensor {
  const type = ORT_TYPE[t.dtype];
  if (!type) throw new Error(`no ORT type for ${t.dtype}`);
  const data = t.dtype === 'int64' ? BigInt64Array.from(t.toArray().map((v) => BigInt(v))) : t.data;
  return new ort.Tensor(type, data as ort.Tensor.DataType, [...t.shape]);
}

async function check(c: Case, seed: number): Promise<void> {
  const rnd = mulberry32(seed);
  const tensors = c.inputs.map((inp) => (inp ? Tensor.from(inp.dtype, inp.shape, inp.init ?? values(inp, rnd)) : undefined));
  const bytes = buildModel(c, tensors);
  const { graph } = importModelBytes(bytes, `${c.op}.onnx`, undefined);
  inferShapes(graph);
  const feeds = new Map<string, Tensor>();
  c.inputs.forEach((inp, i) => { if (inp && !inp.init) feeds.set(`in${i}`, tensors[i]!); });
  const ours = run(graph, feeds);
  const session = await ort.InferenceSession.create(bytes);
  const ref = await session.run(Object.fromEntries([...feeds].map(([k, t]) => [k, toOrt(t)])));
  await session.release();
  for (const [name, r] of Object.entries(ref)) {
    const t = ours.get(name)!;
    expect(t.shape, `${name} shape`).toEqual(r.dims.map(Number));
    const want = Array.from(r.data as ArrayLike<number | bigint>, Number);
    const got = t.toArray();
    for (let i = 0; i < want.length; i++) {
      const tol = r.type.startsWith('float') ? 2e-5 * (1 + Math.abs(want[i])) : 0;
      if (!(got[i] === want[i] || Math.abs(got[i] - want[i]) <= tol || (Number.isNaN(got[i]) && Number.isNaN(want[i])))) {
        throw new Error(`${name}[${i}] = ${got[i]}, onnxruntime ${want[i]}`);
      }
    }
  }
}

const CASES: Record<string, Case> = {
  'Add [N,1,4] + [3,1]': { op: 'Add', inputs: [F([2, 1, 4], ['N', null, null]), F([3, 1])] },
  'Mul int64 broadcast': { op: 'Mul', inputs: [{ dtype: 'int64', shape: [2, 3] }, { dtype: 'int64', shape: [3] }] },
  'Div int32 truncates': { op: 'Div', inputs: [{ dtype: 'int32', shape: [12] }, { dtype: 'int32', shape: [12], gen: 'nonzero' }] },
  'Div int64 truncates': { op: 'Div', inputs: [{ dtype: 'int64', shape: [12] }, { dtype: 'int64', shape: [1], gen: 'nonzero' }] },
  'Mod int64': { op: 'Mod', inputs: [{ dtype: 'int64', shape: [12] }, { dtype: 'int64', shape: [12], gen: 'nonzero' }] },
  'Mod fmod float': { op: 'Mod', attrs: { fmod: 1 }, inputs: [F([12]), F([12], undefined, 'pos')] },
  'Pow float': { op: 'Pow', inputs: [F([3, 4], undefined, 'pos'), F([4])] },
  'Sub uint8': { op: 'Sub', inputs: [{ dtype: 'uint8', shape: [16], gen: 'byte' }, { dtype: 'uint8', shape: [16], gen: 'byte' }] },
  'Max 3 inputs': { op: 'Max', inputs: [F([2, 3]), F([3]), F([2, 1])] },
  'Min int32': { op: 'Min', inputs: [{ dtype: 'int32', shape: [2, 3] }, { dtype: 'int32', shape: [3] }] },
  'Mean 2 inputs': { op: 'Mean', inputs: [F([2, 3]), F([1, 3])] },
  'Where broadcast': { op: 'Where', inputs: [{ dtype: 'bool', shape: [1, 4] }, F([3, 4]), F([3, 1])] },
  'BitwiseAnd int64': { op: 'BitwiseAnd', opset: 18, inputs: [{ dtype: 'int64', shape: [12] }, { dtype: 'int64', shape: [12] }] },
  'BitwiseXor int32 broadcast': { op: 'BitwiseXor', opset: 18, inputs: [{ dtype: 'int32', shape: [3, 4] }, { dtype: 'int32', shape: [4] }] },
  'BitwiseOr uint8': { op: 'BitwiseOr', opset: 18, inputs: [{ dtype: 'uint8', shape: [8], gen: 'byte' }, { dtype: 'uint8', shape: [8], gen: 'byte' }] },
  'BitwiseNot int64': { op: 'BitwiseNot', opset: 18, inputs: [{ dtype: 'int64', shape: [6] }] },
  'BitwiseNot uint8': { op: 'BitwiseNot', opset: 18, inputs: [{ dtype: 'uint8', shape: [6], gen: 'byte' }] },
  'LessOrEqual': { op: 'LessOrEqual', inputs: [F([2, 5]), F([5])] },
  'Greater int64': { op: 'Greater', inputs: [{ dtype: 'int64', shape: [3, 2] }, { dtype: 'int64', shape: [1] }] },
  'Clip-13 int32': { op: 'Clip', opset: 13, inputs: [{ dtype: 'int32', shape: [10] }, { dtype: 'int32', shape: [], init: [-3] }, { dtype: 'int32', shape: [], init: [4] }] },
  'Clip-6': { op: 'Clip', opset: 6, attrs: { min: -0.5, max: 0.75 }, inputs: [F([10])] },
  'Erf': { op: 'Erf', inputs: [F([20])] },
  'Sigmoid, Tanh': { op: 'Sigmoid', inputs: [F([20])] },
  'Softplus': { op: 'Softplus', inputs: [F([20])] },
  'Round': { op: 'Round', inputs: [{ dtype: 'float32', shape: [8], init: [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49, 2.51] }] },
  'Cast float to int32': { op: 'Cast', attrs: { to: ONNX_DTYPE_CODE.int32 }, inputs: [F([10])] },
  'Cast int64 to float': { op: 'Cast', attrs: { to: ONNX_DTYPE_CODE.float32 }, inputs: [{ dtype: 'int64', shape: [5] }] },
  'ReduceSum-13 axes [0,2] keepdims': { op: 'ReduceSum', opset: 13, inputs: [F([2, 3, 4], ['N', null, null]), I64([0, 2])] },
  'ReduceMean-13 attr axes -1': { op: 'ReduceMean', opset: 13, attrs: { axes: [-1], keepdims: 0 }, inputs: [F([2, 3, 4])] },
  'ReduceMax-18 axes input': { op: 'ReduceMax', opset: 18, attrs: { keepdims: 0 }, inputs: [F([2, 3, 4]), I64([1])] },
  'ReduceLogSumExp-18': { op: 'ReduceLogSumExp', opset: 18, inputs: [F([3, 5]), I64([1])] },
  'ReduceProd int64 all': { op: 'ReduceProd', opset: 13, attrs: { keepdims: 0 }, inputs: [{ dtype: 'int64', shape: [2, 3], gen: 'nonzero' }] },
  'ArgMin axis 1 last': { op: 'ArgMin', attrs: { axis: 1, select_last_index: 1 }, inputs: [{ dtype: 'int32', shape: [3, 4] }] },
  'CumSum reverse exclusive axis 1': { op: 'CumSum', attrs: { reverse: 1, exclusive: 1 }, inputs: [F([2, 5]), I64([1], [])] },
  'Softmax-13 axis 1': { op: 'Softmax', opset: 13, attrs: { axis: 1 }, inputs: [F([2, 3, 4], ['N', null, null])] },
  'Softmax-11 axis 1 (2-D coercion)': { op: 'Softmax', opset: 11, attrs: { axis: 1 }, inputs: [F([2, 3, 4])] },
  'LogSoftmax-13 axis 0': { op: 'LogSoftmax', opset: 13, attrs: { axis: 0 }, inputs: [F([3, 4])] },
  'MatMul [N,S,8] x [8,5]': { op: 'MatMul', inputs: [F([2, 3, 8], ['N', 'S', null]), F([8, 5])] },
  'MatMul 1-D x batched': { op: 'MatMul', inputs: [F([6]), F([2, 6, 3])] },
  'MatMul broadcast batches': { op: 'MatMul', inputs: [F([2, 1, 3, 4]), F([5, 4, 2])] },
  'Gemm transA transB C row': { op: 'Gemm', attrs: { transA: 1, transB: 1, alpha: 0.5, beta: 2 }, inputs: [F([4, 3]), F([5, 4]), F([5])] },
  'Gemm C column': { op: 'Gemm', inputs: [F([6, 4]), F([4, 5]), F([6, 1])] },
  'LayerNormalization axis 1': { op: 'LayerNormalization', attrs: { axis: 1, epsilon: 1e-3 }, outputs: 3, inputs: [F([2, 3, 4]), F([3, 4]), F([4])] },
  'LayerNormalization no bias': { op: 'LayerNormalization', inputs: [F([2, 5], ['T', null]), F([5])] },
  'Einsum bhqd,bhkd->bhqk': { op: 'Einsum', opset: 12, attrs: { equation: 'bhqd,bhkd->bhqk' }, inputs: [F([2, 2, 3, 4]), F([2, 2, 5, 4])] },
  'Einsum ...ii->...i diagonal': { op: 'Einsum', opset: 12, attrs: { equation: '...ii->...i' }, inputs: [F([2, 3, 3])] },
  'Einsum implicit i,i (dot)': { op: 'Einsum', opset: 12, attrs: { equation: 'i,i' }, inputs: [F([5]), F([5])] },
  'Einsum ij,jk,k->i': { op: 'Einsum', opset: 12, attrs: { equation: 'ij,jk,k->i' }, inputs: [F([2, 3]), F([3, 4]), F([4])] },
  'QuantizeLinear int8 per axis': {
    op: 'QuantizeLinear', opset: 13, attrs: { axis: 0 },
    inputs: [F([3, 4]), { dtype: 'float32', shape: [3], init: [0.01, 0.02, 0.05] }, { dtype: 'int8', shape: [3], init: [0, -5, 10] }],
  },
  'DequantizeLinear uint8': { op: 'DequantizeLinear', inputs: [{ dtype: 'uint8', shape: [10], gen: 'byte' }, { dtype: 'float32', shape: [], init: [0.1] }, { dtype: 'uint8', shape: [], init: [128] }] },
  'DynamicQuantizeLinear': { op: 'DynamicQuantizeLinear', opset: 11, outputs: 3, inputs: [F([3, 7])] },
  'MatMulInteger per-column zp': {
    op: 'MatMulInteger', opset: 10,
    inputs: [{ dtype: 'uint8', shape: [3, 4], gen: 'byte' }, { dtype: 'uint8', shape: [4, 2], gen: 'byte' }, { dtype: 'uint8', shape: [], init: [100] }, { dtype: 'uint8', shape: [2], init: [3, 200] }],
  },
  'Det batched 3x3': { op: 'Det', opset: 11, inputs: [F([2, 3, 3])] },
  'RMSNormalization-23 axis -1': { op: 'RMSNormalization', opset: 23, attrs: { epsilon: 1e-4 }, inputs: [F([2, 3, 8], ['N', 'S', null]), F([8])] },
  'RMSNormalization-23 axis 1': { op: 'RMSNormalization', opset: 23, attrs: { axis: 1 }, inputs: [F([2, 3, 4]), F([3, 4])] },
  'InstanceNormalization': { op: 'InstanceNormalization', inputs: [F([2, 3, 5]), F([3]), F([3])] },
  'NegativeLogLikelihoodLoss weighted, ignore 1': {
    op: 'NegativeLogLikelihoodLoss', opset: 13, attrs: { ignore_index: 1 },
    inputs: [F([4, 3, 2]), { dtype: 'int64', shape: [4, 2], gen: 'class' }, F([3], undefined, 'pos')],
  },
};

describe('math ops agree with onnxruntime', () => {
  it.each(Object.keys(CASES))('%s', async (name) => {
    for (const seed of [1, 2]) await check(CASES[name], seed);
  });
});

/**
 * Already-fused attention forms (com.microsoft RotaryEmbedding / GroupQueryAttention /
 * MultiHeadAttention, ai.onnx Attention-23 / RotaryEmbedding-23): the interpreter's references
 * against onnxruntime-node's CPU kernels, then one-layer decoders built around each op that compile
 * (fuse-attention-forms → lfc.Rope / lfc.Attention + Concat(past, new)) to the usual plan steps and
 * verify against onnxruntime; near misses fail with the reason.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { Tensor } from '../../../runtime/tensor.js';
import '../../../compiler/ops/index.js';
import { inferShapes } from '../../../compiler/ir/infer.js';
import { run } from '../../../compiler/ir/interpret.js';
import { importModelBytes } from '../../../compiler/onnx/import.js';
import { ATTR, onnx, type AttributeProto, type NodeProto, type TensorProto, type ValueInfoProto } from '../../../compiler/onnx/proto.js';
import { encodeTensorProto } from '../../../compiler/onnx/tensor.js';
import { compileModel, formatReport } from '../../../compiler/compile.js';
import { verifyPlan } from '../../../compiler/verify.js';
import { ortOracle } from '../../../compiler/ort-oracle.js';
import { decoderFeeds, maxAbsDiff, mulberry32, runOrt } from '../../helpers/decoder.js';

const MS = 'com.microsoft';
const ELEM: Record<string, number> = { float32: 1, int32: 6, int64: 7, bool: 9 };
type AttrV = number | string | { f: number };

function attrs(a: Record<string, AttrV>): AttributeProto[] {
  return Object.entries(a).map(([name, v]) =>
    typeof v === 'string' ? { name, type: ATTR.STRING, s: new TextEncoder().encode(v) }
      : typeof v === 'object' ? { name, type: ATTR.FLOAT, f: v.f }
        : { name, type: ATTR.INT, i: v });
}

const vi = (name: string, dtype: string, shape: (number | string)[]): ValueInfoProto =>
  ({ name, type: { tensorType: { elemType: ELEM[dtype], shape: { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } } });

const toTp = (t: Tensor, name: string): TensorProto => onnx.TensorProto.decode(encodeTensorProto(t, name));

function rand(shape: number[], seed: number, scale = 1): Tensor {
  const r = mulberry32(seed);
  return Tensor.from('float32', shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (r() * 2 - 1) * scale));
}

function toOrtTensor(t: Tensor): ort.Tensor {
  switch (t.dtype) {
    case 'int64': return new ort.Tensor('int64', BigInt64Array.from(t.toArray().map(BigInt)), [...t.shape]);
    case 'int32': return new ort.Tensor('int32', Int32Array.from(t.toArray()), [...t.shape]);
    case 'bool': return new ort.Tensor('bool', Uint8Array.from(t.toArray()), [...t.shape]);
    default: return new ort.Tensor('float32', Float32Array.from(t.data as Float32Array), [...t.shape]);
  }
}

// ---- 1. op references against onnxruntime --------------------------------------------------------

interface OpCase { op: string; domain: string; inputs: (Tensor | undefined)[]; attrs?: Record<string, AttrV>; outputs: number }

function cosSin(P: number, half: number): [Tensor, Tensor] {
  const c = Tensor.zeros('float32', [P, half]), s = Tensor.zeros('float32', [P, half]);
  for (let p = 0; p < P; p++) for (let i = 0; i < half; i++) {
    const a = Math.fround(p * Math.fround(1 / Math.pow(10000, (2 * i) / (2 * half))));
    c.data[p * half + i] = Math.cos(a); s.data[p * half + i] = Math.sin(a);
  }
  return [c, s];
}

const i64 = (shape: number[], v: number[]) => Tensor.from('int64', shape, v);
const i32 = (shape: number[], v: number[]) => Tensor.from('int32', shape, v);
const [COS, SIN] = cosSin(32, 4);
const [COS8, SIN8] = cosSin(32, 8);

const opCases: Record<string, OpCase> = {
  'ms RotaryEmbedding 4-D BNSH, half': { op: 'RotaryEmbedding', domain: MS, inputs: [rand([2, 2, 3, 8], 1), i64([2, 3], [0, 1, 2, 4, 5, 6]), COS, SIN], outputs: 1 },
  'ms RotaryEmbedding 3-D, interleaved': { op: 'RotaryEmbedding', domain: MS, inputs: [rand([1, 3, 32], 2), i64([1, 3], [3, 4, 5]), COS8, SIN8], attrs: { interleaved: 1 }, outputs: 1 },
  'ms RotaryEmbedding 3-D, partial rotary': { op: 'RotaryEmbedding', domain: MS, inputs: [rand([1, 3, 32], 2), i64([1, 3], [3, 4, 5]), COS, SIN], attrs: { num_heads: 2, rotary_embedding_dim: 8 }, outputs: 1 },
  'RotaryEmbedding-23 4-D with position_ids': { op: 'RotaryEmbedding', domain: '', inputs: [rand([2, 2, 3, 8], 3), COS, SIN, i64([2, 3], [0, 1, 2, 7, 8, 9])], outputs: 1 },
  'RotaryEmbedding-23 3-D interleaved': { op: 'RotaryEmbedding', domain: '', inputs: [rand([1, 2, 16], 4), COS, SIN, i64([1, 2], [5, 6])], attrs: { interleaved: 1, num_heads: 2 }, outputs: 1 },
  'RotaryEmbedding-23 cos/sin per token': { op: 'RotaryEmbedding', domain: '', inputs: [rand([1, 2, 3, 8], 5), rand([1, 3, 4], 6), rand([1, 3, 4], 7)], outputs: 1 },
  'GQA with past (decode chunk)': {
    op: 'GroupQueryAttention', domain: MS, outputs: 3, attrs: { num_heads: 4, kv_num_heads: 2 },
    inputs: [rand([1, 3, 32], 10), rand([1, 3, 16], 11), rand([1, 3, 16], 12), rand([1, 2, 2, 8], 13), rand([1, 2, 2, 8], 14), i32([1], [4]), i32([], [5])],
  },
  'GQA decode, batch 2': {
    op: 'GroupQueryAttention', domain: MS, outputs: 3, attrs: { num_heads: 4, kv_num_heads: 2 },
    inputs: [rand([2, 1, 32], 15), rand([2, 1, 16], 16), rand([2, 1, 16], 17), rand([2, 2, 4, 8], 18), rand([2, 2, 4, 8], 19), i32([2], [4, 4]), i32([], [5])],
  },
  'GQA first prompt, rotary (half), scale': {
    op: 'GroupQueryAttention', domain: MS, outputs: 3, attrs: { num_heads: 2, kv_num_heads: 1, do_rotary: 1, scale: { f: 0.2 } },
    inputs: [rand([1, 4, 32], 20), rand([1, 4, 16], 21), rand([1, 4, 16], 22), undefined, undefined, i32([1], [3]), i32([], [4]), COS8, SIN8],
  },
  'GQA decode, rotary interleaved, past': {
    op: 'GroupQueryAttention', domain: MS, outputs: 3, attrs: { num_heads: 2, kv_num_heads: 2, do_rotary: 1, rotary_interleaved: 1 },
    inputs: [rand([1, 1, 32], 30), rand([1, 1, 32], 31), rand([1, 1, 32], 32), rand([1, 2, 5, 16], 33), rand([1, 2, 5, 16], 34), i32([1], [5]), i32([], [6]), COS8, SIN8],
  },
  'GQA local window and softcap': {
    op: 'GroupQueryAttention', domain: MS, outputs: 3, attrs: { num_heads: 2, kv_num_heads: 1, local_window_size: 2, softcap: { f: 2 } },
    inputs: [rand([1, 3, 16], 40, 3), rand([1, 3, 8], 41, 3), rand([1, 3, 8], 42), rand([1, 1, 3, 8], 43), rand([1, 1, 3, 8], 44), i32([1], [5]), i32([], [6])],
  },
  'MHA unidirectional with past and bias': {
    op: 'MultiHeadAttention', domain: MS, outputs: 3, attrs: { num_heads: 2, unidirectional: 1 },
    inputs: [rand([2, 3, 8], 50), rand([2, 3, 8], 51), rand([2, 3, 8], 52), rand([24], 53), undefined, undefined, rand([2, 2, 2, 4], 54), rand([2, 2, 2, 4], 55)],
  },
  'MHA with attention_bias and key_padding_mask': {
    op: 'MultiHeadAttention', domain: MS, outputs: 3, attrs: { num_heads: 2 },
    inputs: [rand([2, 3, 8], 60), rand([2, 3, 8], 61), rand([2, 3, 8], 62), undefined, i32([2, 5], [1, 1, 1, 1, 1, 0, 1, 1, 1, 1]), rand([1, 2, 3, 5], 63), rand([2, 2, 2, 4], 64), rand([2, 2, 2, 4], 65)],
  },
  'Attention-23 4-D causal with past, GQA heads': {
    op: 'Attention', domain: '', outputs: 3, attrs: { is_causal: 1 },
    inputs: [rand([2, 4, 3, 8], 70), rand([2, 2, 3, 8], 71), rand([2, 2, 3, 8], 72), undefined, rand([2, 2, 2, 8], 73), rand([2, 2, 2, 8], 74)],
  },
  'Attention-23 3-D with float mask and scale': {
    op: 'Attention', domain: '', outputs: 1, attrs: { q_num_heads: 2, kv_num_heads: 1, scale: { f: 0.3 } },
    inputs: [rand([1, 3, 16], 80), rand([1, 3, 8], 81), rand([1, 3, 8], 82), rand([1, 1, 3, 3], 83)],
  },
  'Attention-23 bool mask, softcap': {
    op: 'Attention', domain: '', outputs: 1, attrs: { softcap: { f: 1.5 } },
    inputs: [rand([1, 2, 2, 8], 90, 3), rand([1, 2, 4, 8], 91, 3), rand([1, 2, 4, 8], 92), Tensor.from('bool', [2, 4], [1, 1, 0, 1, 0, 1, 1, 1])],
  },
};

function oneNodeModel(c: OpCase): Uint8Array {
  const names = c.inputs.map((t, i) => (t ? `in${i}` : ''));
  while (names.length && names.at(-1) === '') names.pop();
  const outs = Array.from({ length: c.outputs }, (_, i) => `out${i}`);
  const node: NodeProto = { opType: c.op, domain: c.domain, input: names, output: outs, attribute: attrs(c.attrs ?? {}) };
  const input = c.inputs.flatMap((t, i) => (t ? [vi(`in${i}`, t.dtype, [...t.shape])] : []));
  return onnx.ModelProto.encode({
    irVersion: 10, opsetImport: [{ domain: '', version: 23 }, { domain: MS, version: 1 }],
    graph: { name: c.op, node: [node], input, output: outs.map((name) => ({ name })) },
  }).finish();
}

describe('attention-form references agree with onnxruntime 1.30 (CPU)', () => {
  it.each(Object.entries(opCases))('%s', async (_, c) => {
    const bytes = oneNodeModel(c);
    const feeds = new Map(c.inputs.flatMap((t, i) => (t ? [[`in${i}`, t] as const] : [])));
    const session = await ort.InferenceSession.create(bytes);
    const ref = await session.run(Object.fromEntries([...feeds].map(([k, t]) => [k, toOrtTensor(t)])));
    await session.release();
    const { graph } = importModelBytes(bytes, `${c.op}.onnx`, undefined);
    inferShapes(graph);
    const ours = run(graph, feeds);
    for (const [name, r] of Object.entries(ref)) {
      const t = ours.get(name)!;
      expect(t.shape, name).toEqual(r.dims.map(Number));
      const want = Tensor.from('float32', r.dims.map(Number), r.data as Float32Array);
      expect(maxAbsDiff(t, want), name).toBeLessThanOrEqual(2e-5);
    }
  });
});

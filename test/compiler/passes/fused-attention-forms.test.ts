/**
 * Already-fused attention forms (com.microsoft RotaryEmbedding / GroupQueryAttention /
 * MultiHeadAttention, ai.onnx Attention-23 / RotaryEmbedding-23): the interpreter's references
 * against onnxruntime-node's CPU kernels, then one-layer decoders built around each op that compile
 * (fuse-attention-forms → lfc.Rope / lfc.Attention + Concat(past, new)) to the usual plan steps and
 * verify against onnxruntime; near misses fail with the reason.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
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
type AttrV = number | string | number[] | { f: number };

function attrs(a: Record<string, AttrV>): AttributeProto[] {
  return Object.entries(a).map(([name, v]) =>
    typeof v === 'string' ? { name, type: ATTR.STRING, s: new TextEncoder().encode(v) }
      : Array.isArray(v) ? { name, type: ATTR.INTS, ints: v }
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
  'MHA unidirectional without past': {
    op: 'MultiHeadAttention', domain: MS, outputs: 1, attrs: { num_heads: 2, unidirectional: 1 },
    inputs: [rand([2, 4, 8], 56, 3), rand([2, 4, 8], 57, 3), rand([2, 4, 8], 58)],
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
  'Attention-23 float mask, is_causal and softcap': {
    op: 'Attention', domain: '', outputs: 1, attrs: { softcap: { f: 1.5 }, is_causal: 1 },
    inputs: [rand([1, 2, 2, 8], 95, 3), rand([1, 2, 4, 8], 96, 3), rand([1, 2, 4, 8], 97), rand([1, 2, 2, 4], 98, 4)],
  },
  'Attention-23 float mask with softcap, not causal': {
    op: 'Attention', domain: '', outputs: 1, attrs: { softcap: { f: 1.5 } },
    inputs: [rand([1, 2, 2, 8], 95, 3), rand([1, 2, 4, 8], 96, 3), rand([1, 2, 4, 8], 97), rand([1, 2, 2, 4], 98, 4)],
  },
  'Attention-23 is_causal without past, K longer than Q (top-left diagonal), softcap': {
    op: 'Attention', domain: '', outputs: 1, attrs: { softcap: { f: 1.5 }, is_causal: 1 },
    inputs: [rand([1, 2, 2, 8], 95, 3), rand([1, 2, 4, 8], 96, 3), rand([1, 2, 4, 8], 97)],
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

// ---- 2. one-layer decoders around each op: interpreter = onnxruntime, compile, verify ------------

const VOCAB = 50, HID = 32, HQ = 4, HKV = 2, D = 16, MAXPOS = 64;

interface Variant {
  label: string;
  opset: number;
  kvHeads: number;
  /** Nodes from q, k, v [b, s, H·D] (and the past inputs) to 'attn' [b, s, HQ·D] and present.0.key/value. */
  attention: (kv: number) => NodeProto[];
  rope: boolean;
  /** An export without past inputs (the compiler gives it the same paged cache). */
  noPast?: boolean;
  /** Feeds onnxruntime accepts for this op (GQA: batch 1 when a chunk meets a past). */
  cases: { batch: number; seq: number; past: number }[];
}

const n = (opType: string, input: string[], output: string[], a: Record<string, AttrV> = {}, domain = ''): NodeProto =>
  ({ opType, domain, input, output, name: `/model/layers.0/attn/${output[0]}`, attribute: attrs(a) });

const seqlensNodes = (minusOne = true): NodeProto[] => [
  n('ReduceSum', ['attention_mask', 'one_axis'], ['am_sum'], { keepdims: 0 }),
  ...(minusOne ? [n('Sub', ['am_sum', 'one_i64'], ['am_last'])] : [n('Identity', ['am_sum'], ['am_last'])]),
  n('Cast', ['am_last'], ['seqlens_k'], { to: 6 }),
  n('Shape', ['attention_mask'], ['am_shape']),
  n('Gather', ['am_shape', 'one_i64'], ['am_len'], { axis: 0 }),
  n('Cast', ['am_len'], ['total_len'], { to: 6 }),
];

const gqa = (extra: Record<string, AttrV> = {}, minusOne = true) => (kv: number): NodeProto[] => [
  ...seqlensNodes(minusOne),
  n('GroupQueryAttention', ['q', 'k', 'v', 'past_key_values.0.key', 'past_key_values.0.value', 'seqlens_k', 'total_len', 'cos_cache', 'sin_cache'],
    ['attn', 'present.0.key', 'present.0.value'], { num_heads: HQ, kv_num_heads: kv, do_rotary: 1, ...extra }, MS),
];

/** An exporter-style additive causal + padding mask [b, 1, s, T] from attention_mask ('causal_mask'). */
const causalMaskNodes = (): NodeProto[] => [
  n('Shape', ['attention_mask'], ['m_am_shape']), n('Gather', ['m_am_shape', 'one_i64'], ['m_T'], { axis: 0 }),
  n('Shape', ['input_ids'], ['m_ids_shape']), n('Gather', ['m_ids_shape', 'one_i64'], ['m_S'], { axis: 0 }),
  n('Sub', ['m_T', 'm_S'], ['m_start']),
  n('Range', ['m_start', 'm_T', 'one_i64'], ['m_rows']), n('Range', ['zero_i64', 'm_T', 'one_i64'], ['m_cols']),
  n('Unsqueeze', ['m_rows', 'one_axis'], ['m_rows2']), n('Unsqueeze', ['m_cols', 'zero_axis'], ['m_cols2']),
  n('LessOrEqual', ['m_cols2', 'm_rows2'], ['m_causal']),
  n('Cast', ['attention_mask'], ['m_pad'], { to: 9 }), n('Unsqueeze', ['m_pad', 'axes_12'], ['m_pad4']),
  n('And', ['m_causal', 'm_pad4'], ['m_allowed']),
  n('Where', ['m_allowed', 'zero_f', 'min_f'], ['causal_mask']),
];

const variants: Variant[] = [
  { label: 'GroupQueryAttention (rotary inside)', opset: 17, kvHeads: HKV, rope: true, attention: gqa(), cases: [{ batch: 1, seq: 3, past: 2 }, { batch: 2, seq: 1, past: 4 }, { batch: 2, seq: 4, past: 0 }] },
  { label: 'GroupQueryAttention (interleaved rotary)', opset: 17, kvHeads: HKV, rope: true, attention: gqa({ rotary_interleaved: 1 }), cases: [{ batch: 1, seq: 3, past: 2 }, { batch: 2, seq: 1, past: 4 }] },
  { label: 'GroupQueryAttention without past inputs', opset: 17, kvHeads: HKV, rope: true, attention: gqa(), noPast: true, cases: [{ batch: 2, seq: 4, past: 0 }] },
  {
    label: 'com.microsoft RotaryEmbedding + MultiHeadAttention (unidirectional, key_padding_mask)', opset: 17, kvHeads: HQ, rope: true,
    attention: (kv) => [
      n('RotaryEmbedding', ['q', 'position_ids', 'cos_cache', 'sin_cache'], ['q_rot'], { num_heads: HQ }, MS),
      n('RotaryEmbedding', ['k', 'position_ids', 'cos_cache', 'sin_cache'], ['k_rot'], { num_heads: kv }, MS),
      n('Cast', ['attention_mask'], ['kpm'], { to: 6 }),
      n('MultiHeadAttention', ['q_rot', 'k_rot', 'v', '', 'kpm', '', 'past_key_values.0.key', 'past_key_values.0.value'], ['attn', 'present.0.key', 'present.0.value'], { num_heads: HQ, unidirectional: 1 }, MS),
    ],
    cases: [{ batch: 2, seq: 3, past: 2 }, { batch: 2, seq: 1, past: 4 }],
  },
  {
    label: 'MultiHeadAttention with bias and a causal attention_bias (proved), no rotary', opset: 17, kvHeads: HQ, rope: false,
    attention: () => [
      ...causalMaskNodes(),
      n('MultiHeadAttention', ['q', 'k', 'v', 'mha_bias', '', 'causal_mask', 'past_key_values.0.key', 'past_key_values.0.value'], ['attn', 'present.0.key', 'present.0.value'], { num_heads: HQ, scale: { f: 0.2 } }, MS),
    ],
    cases: [{ batch: 2, seq: 3, past: 2 }, { batch: 2, seq: 1, past: 4 }],
  },
  {
    label: 'RotaryEmbedding-23 4-D + Attention-23 4-D with a float causal attn_mask (proved)', opset: 23, kvHeads: HKV, rope: true,
    attention: (kv) => [
      ...causalMaskNodes(),
      n('Reshape', ['q', 'shape_q'], ['q_bshd']), n('Transpose', ['q_bshd'], ['q4'], { perm: [0, 2, 1, 3] }),
      n('Reshape', ['k', kv === HQ ? 'shape_q' : 'shape_kv'], ['k_bshd']), n('Transpose', ['k_bshd'], ['k4'], { perm: [0, 2, 1, 3] }),
      n('Reshape', ['v', kv === HQ ? 'shape_q' : 'shape_kv'], ['v_bshd']), n('Transpose', ['v_bshd'], ['v4'], { perm: [0, 2, 1, 3] }),
      n('RotaryEmbedding', ['q4', 'cos_cache', 'sin_cache', 'position_ids'], ['q_rot']),
      n('RotaryEmbedding', ['k4', 'cos_cache', 'sin_cache', 'position_ids'], ['k_rot']),
      n('Attention', ['q_rot', 'k_rot', 'v4', 'causal_mask', 'past_key_values.0.key', 'past_key_values.0.value'], ['y4', 'present.0.key', 'present.0.value']),
      n('Transpose', ['y4'], ['y_bshd'], { perm: [0, 2, 1, 3] }), n('Reshape', ['y_bshd', 'shape_merged'], ['attn']),
    ],
    cases: [{ batch: 2, seq: 3, past: 2 }, { batch: 2, seq: 1, past: 4 }],
  },
  {
    label: 'RotaryEmbedding-23 (interleaved) + Attention-23 (3-D, is_causal)', opset: 23, kvHeads: HKV, rope: true,
    attention: (kv) => [
      n('RotaryEmbedding', ['q', 'cos_cache', 'sin_cache', 'position_ids'], ['q_rot'], { num_heads: HQ, interleaved: 1 }),
      n('RotaryEmbedding', ['k', 'cos_cache', 'sin_cache', 'position_ids'], ['k_rot'], { num_heads: kv, interleaved: 1 }),
      n('Attention', ['q_rot', 'k_rot', 'v', '', 'past_key_values.0.key', 'past_key_values.0.value'], ['attn', 'present.0.key', 'present.0.value'], { is_causal: 1, q_num_heads: HQ, kv_num_heads: kv }),
    ],
    cases: [{ batch: 2, seq: 3, past: 2 }, { batch: 2, seq: 1, past: 4 }],
  },
];

function decoderModel(v: Pick<Variant, 'opset' | 'kvHeads' | 'attention' | 'noPast'> & { fixedPast?: number }): Uint8Array {
  const kv = v.kvHeads;
  const [cos, sin] = cosSin(MAXPOS, D / 2);
  const inits: TensorProto[] = [
    toTp(rand([VOCAB, HID], 1), 'embed'), toTp(rand([HID], 2, 0.5), 'ln_b'), toTp(Tensor.from('float32', [HID], new Array(HID).fill(1)), 'ln_g'),
    toTp(rand([HID, HQ * D], 3, 0.3), 'wq'), toTp(rand([HID, kv * D], 4, 0.3), 'wk'), toTp(rand([HID, kv * D], 5, 0.3), 'wv'),
    toTp(rand([HQ * D, HID], 6, 0.2), 'wo'), toTp(rand([HID, VOCAB], 7, 0.3), 'lm_head'),
    toTp(cos, 'cos_cache'), toTp(sin, 'sin_cache'), toTp(i64([1], [1]), 'one_axis'), toTp(Tensor.from('int64', [], [1]), 'one_i64'),
    toTp(i64([1], [0]), 'zero_axis'), toTp(i64([2], [1, 2]), 'axes_12'), toTp(Tensor.from('int64', [], [0]), 'zero_i64'),
    toTp(Tensor.from('float32', [], [0]), 'zero_f'), toTp(Tensor.from('float32', [], [-3.4028234663852886e38]), 'min_f'),
    toTp(rand([3 * HQ * D], 8, 0.2), 'mha_bias'),
    toTp(i64([4], [0, 0, HQ, D]), 'shape_q'), toTp(i64([4], [0, 0, kv, D]), 'shape_kv'), toTp(i64([3], [0, 0, HQ * D]), 'shape_merged'),
  ];
  const dropPast = (p: NodeProto): NodeProto => (v.noPast ? { ...p, input: p.input!.map((i) => (i.startsWith('past_key_values') ? '' : i)) } : p);
  const nodes: NodeProto[] = [
    n('Gather', ['embed', 'input_ids'], ['h0'], { axis: 0 }),
    n('LayerNormalization', ['h0', 'ln_g', 'ln_b'], ['x'], { axis: -1, epsilon: { f: 1e-5 } }),
    n('MatMul', ['x', 'wq'], ['q']), n('MatMul', ['x', 'wk'], ['k']), n('MatMul', ['x', 'wv'], ['v']),
    ...v.attention(kv).map(dropPast),
    n('MatMul', ['attn', 'wo'], ['o']), n('Add', ['h0', 'o'], ['h1']), n('MatMul', ['h1', 'lm_head'], ['logits']),
  ];
  const past = (name: string) => vi(name, 'float32', ['batch_size', kv, v.fixedPast ?? 'past_sequence_length', D]);
  const present = (name: string) => vi(name, 'float32', ['batch_size', kv, 'total_sequence_length', D]);
  return onnx.ModelProto.encode({
    irVersion: 10, opsetImport: [{ domain: '', version: v.opset }, { domain: MS, version: 1 }],
    graph: {
      name: 'decoder', node: nodes, initializer: inits,
      input: [vi('input_ids', 'int64', ['batch_size', 'sequence_length']), vi('attention_mask', 'int64', ['batch_size', 'total_sequence_length']),
        vi('position_ids', 'int64', ['batch_size', 'sequence_length']), ...(v.noPast ? [] : [past('past_key_values.0.key'), past('past_key_values.0.value')])],
      output: [vi('logits', 'float32', ['batch_size', 'sequence_length', VOCAB]), present('present.0.key'), present('present.0.value')],
    },
  }).finish();
}

const readBack = (path: string): Uint8Array => readFileSync(path);
const tmp = mkdtempSync(join(tmpdir(), 'lfc-attn-forms-'));
function writeModel(label: string, bytes: Uint8Array): string {
  const path = join(tmp, `${label.replace(/[^A-Za-z0-9]+/g, '_')}.onnx`);
  writeFileSync(path, bytes);
  return path;
}

describe.each(variants)('$label', (v) => {
  const path = writeModel(v.label, decoderModel(v));

  it.each(v.cases)('interpreter matches onnxruntime: batch $batch, $seq new, past $past', async (c) => {
    const { graph } = importModelBytes(readBack(path), path, undefined);
    inferShapes(graph);
    const feeds = decoderFeeds(graph, { ...c, vocab: VOCAB, seed: 7 });
    const want = await runOrt(path, feeds);
    const got = run(graph, feeds);
    for (const [name, t] of want) expect(maxAbsDiff(got.get(name)!, t), name).toBeLessThanOrEqual(2e-5);
  });

  it('compiles to the usual plan steps and verifies against onnxruntime (fp32, 1e-4)', async () => {
    const r = compileModel(path);
    expect(r.error, formatReport(r)).toBeUndefined();
    expect(r.events.filter((e) => e.outcome === 'missed').map((e) => `${e.rule}: ${e.detail}`), formatReport(r)).toEqual([]);
    const kinds = r.plan!.steps.map((s) => s.kind);
    expect(kinds.filter((k) => k === 'attention')).toHaveLength(1);
    expect(kinds.filter((k) => k === 'cache_write')).toHaveLength(1);
    expect(kinds.filter((k) => k === 'rope')).toHaveLength(v.rope ? 2 : 0);
    expect(kinds.at(-1)).toBe('logits');
    expect(r.plan!.model).toMatchObject({ heads: HQ, kvHeads: v.kvHeads, headDim: D, layers: 1 });
    const oracle = (await ortOracle(path, r.original))!;
    const res = await verifyPlan(r.plan!, r.weights!.pack(), { seed: 3, cases: 3, atol: 1e-4, oracle });
    for (const c of res) expect(c.maxAbsError, JSON.stringify(c)).toBeLessThanOrEqual(1e-4);
  });
});

// ---- 3. near misses: reported with the reason, and compile fails with it (never a wrong plan) -----

describe('near misses', () => {
  const compileMiss = (label: string, v: Pick<Variant, 'opset' | 'kvHeads' | 'attention'> & { fixedPast?: number }) => {
    const r = compileModel(writeModel(label, decoderModel(v)));
    const misses = r.events.filter((e) => e.outcome === 'missed');
    return { r, misses, report: formatReport(r) };
  };

  it('GQA with a sliding window (local_window_size) is not rewritten; compile fails naming the window', () => {
    const { r, misses, report } = compileMiss('gqa window', { opset: 17, kvHeads: HKV, attention: gqa({ local_window_size: 8 }) });
    expect(misses.map((e) => e.detail)).toEqual(['sliding-window attention (local_window_size=8) is not supported by lfc.Attention']);
    expect(r.plan).toBeUndefined();
    expect(r.error).toMatch(/GroupQueryAttention/);
    expect(report).toMatch(/not fused \(group-query-attention\): sliding-window attention \(local_window_size=8\)/);
    // the graph is left as it was: the GQA node, no half-made lfc attention or dangling head splits
    expect(r.graph.nodes.filter((x) => x.domain === MS).map((x) => x.opType)).toEqual(['GroupQueryAttention']);
    expect(r.graph.nodes.filter((x) => x.domain === 'lfc' && /Attention|Rope/.test(x.opType))).toEqual([]);
    expect(r.graph.nodes.filter((x) => x.opType === 'Transpose')).toEqual([]);
  });

  it('GQA over a fixed-length (shared) past buffer is not rewritten', () => {
    const { r, misses } = compileMiss('gqa shared buffer', { opset: 17, kvHeads: HKV, attention: gqa(), fixedPast: 32 });
    expect(misses[0].detail).toMatch(/past_key has a fixed length 32: a past\/present buffer shared up to a maximum length is not supported/);
    expect(r.plan).toBeUndefined();
  });

  it('GQA with softcap is not rewritten', () => {
    const { r, misses } = compileMiss('gqa softcap', { opset: 17, kvHeads: HKV, attention: gqa({ softcap: { f: 30 } }) });
    expect(misses[0].detail).toMatch(/softcap \(30\) is not supported/);
    expect(r.plan).toBeUndefined();
  });

  it('GQA whose seqlens_k is not Σ attention_mask − 1 is not rewritten', () => {
    const { r, misses } = compileMiss('gqa seqlens', { opset: 17, kvHeads: HKV, attention: gqa({}, false) });
    expect(misses[0].detail).toMatch(/seqlens_k\[0\] is 3 for past 0, 3 new, left padding 0\/0, expected Σ attention_mask − 1 = 2/);
    expect(r.plan).toBeUndefined();
  });

  it('MultiHeadAttention without unidirectional or a causal bias is not causal', () => {
    const { r, misses } = compileMiss('mha bidirectional', {
      opset: 17, kvHeads: HQ,
      attention: () => [n('MultiHeadAttention', ['q', 'k', 'v', '', '', '', 'past_key_values.0.key', 'past_key_values.0.value'], ['attn', 'present.0.key', 'present.0.value'], { num_heads: HQ }, MS)],
    });
    expect(misses[0].detail).toBe('attention is not causal (unidirectional=0 and no attention_bias)');
    expect(r.plan).toBeUndefined();
  });

  it('Attention-23 with softcap, or without is_causal and a mask, is not rewritten', () => {
    const att = (a: Record<string, AttrV>) => (kv: number) => [n('Attention', ['q', 'k', 'v', '', 'past_key_values.0.key', 'past_key_values.0.value'], ['attn', 'present.0.key', 'present.0.value'], { q_num_heads: HQ, kv_num_heads: kv, ...a })];
    expect(compileMiss('a23 softcap', { opset: 23, kvHeads: HKV, attention: att({ is_causal: 1, softcap: { f: 5 } }) }).misses[0].detail).toMatch(/softcap \(5\)/);
    expect(compileMiss('a23 noncausal', { opset: 23, kvHeads: HKV, attention: att({}) }).misses[0].detail).toMatch(/not causal \(is_causal=0 and no attn_mask\)/);
  });
});

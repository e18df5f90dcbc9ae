/**
 * Already-fused forms (RMSNormalization-23, Gelu-20, com.microsoft SimplifiedLayerNormalization,
 * Skip(Simplified)LayerNormalization, Gelu, FastGelu, BiasGelu) run in the interpreter and lower to
 * the same lfc ops as their decomposed forms.
 */
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { Tensor } from '../../../runtime/tensor.js';
import { inferShapes } from '../../../compiler/ir/infer.js';
import { run } from '../../../compiler/ir/interpret.js';
import { importModelBytes } from '../../../compiler/onnx/import.js';
import { ATTR, onnx, type AttributeProto, type GraphProto, type ValueInfoProto } from '../../../compiler/onnx/proto.js';
import { encodeTensorProto } from '../../../compiler/onnx/tensor.js';
import { mulberry32 } from '../../helpers/decoder.js';
import { Builder, fuseAndCompare, missed, sym } from './fuse-helpers.js';

const X = [sym('b'), sym('s'), 8];
const ops = (g: { nodes: { domain: string; opType: string }[] }) => g.nodes.map((n) => `${n.domain}.${n.opType}`);

describe('already-fused norms', () => {
  it('RMSNormalization-23 → RMSNorm', () => {
    const { g, events } = fuseAndCompare(() => {
      const b = new Builder(23);
      return b.output(b.op('RMSNormalization', [b.input('x', X), b.rand([8], 1)], { epsilon: 1e-6 }));
    });
    expect(ops(g)).toEqual(['lfc.RMSNorm']);
    expect(missed(events)).toEqual([]);
  });

  it('com.microsoft SimplifiedLayerNormalization → RMSNorm', () => {
    const { g } = fuseAndCompare(() => {
      const b = new Builder();
      return b.output(b.dop('com.microsoft', 'SimplifiedLayerNormalization', [b.input('x', X), b.rand([8], 1)], { epsilon: 1e-6, axis: -1 })[0]);
    });
    expect(ops(g)).toEqual(['lfc.RMSNorm']);
  });

  it('com.microsoft SkipSimplifiedLayerNormalization (sum used) → AddNorm', () => {
    const { g } = fuseAndCompare(() => {
      const b = new Builder();
      const [y, , , s] = b.dop('com.microsoft', 'SkipSimplifiedLayerNormalization', [b.input('x', X), b.input('r', X), b.rand([8], 1)], { epsilon: 1e-6 }, 4);
      return b.output(y, b.op('Neg', [s]));
    });
    expect(ops(g).sort()).toEqual(['.Neg', 'lfc.AddNorm']);
    expect(g.nodes.find((n) => n.opType === 'AddNorm')!.attrs.get('kind')).toBe('rms');
  });

  it('com.microsoft SkipLayerNormalization with β and bias → Add + AddNorm', () => {
    const { g, events } = fuseAndCompare(() => {
      const b = new Builder();
      const [y] = b.dop('com.microsoft', 'SkipLayerNormalization', [b.input('x', X), b.input('r', X), b.rand([8], 1), b.rand([8], 2), b.rand([8], 3)], { epsilon: 1e-5 });
      return b.output(y);
    });
    expect(ops(g)).toEqual(['.Add', 'lfc.AddNorm']);
    expect(events.find((e) => e.rule === 'skip-norm-op')!.detail).toMatch(/bias added in front/);
  });

  it('reports a norm op whose statistics are used', () => {
    const { events } = fuseAndCompare(() => {
      const b = new Builder(23);
      const [y, inv] = b.ops('LayerNormalization', [b.input('x', X), b.rand([8], 1)], {}, 3);
      return b.output(y, inv);
    });
    expect(missed(events)[0].detail).toMatch(/has its statistics output '.*' used/);
  });
});

describe('already-fused GELU', () => {
  it.each([['none', 'gelu_erf'], ['tanh', 'gelu_tanh']])('Gelu-20 approximate=%s → Activation %s', (approximate, kind) => {
    const { g } = fuseAndCompare(() => {
      const b = new Builder(20);
      return b.output(b.op('Gelu', [b.input('x', X)], { approximate }));
    });
    expect(ops(g)).toEqual(['lfc.Activation']);
    expect(g.nodes[0].attrs.get('kind')).toBe(kind);
  });

  it('com.microsoft Gelu, FastGelu(X, bias), BiasGelu(A, B)', () => {
    const { g } = fuseAndCompare(() => {
      const b = new Builder();
      const x = b.input('x', X);
      return b.output(
        b.dop('com.microsoft', 'Gelu', [x])[0],
        b.dop('com.microsoft', 'FastGelu', [x, b.rand([8], 1)])[0],
        b.dop('com.microsoft', 'BiasGelu', [x, b.rand([8], 2)])[0],
      );
    });
    expect(ops(g).sort()).toEqual(['.Add', '.Add', 'lfc.Activation', 'lfc.Activation', 'lfc.Activation']);
    expect(g.nodes.filter((n) => n.opType === 'Activation').map((n) => n.attrs.get('kind')).sort()).toEqual(['gelu_erf', 'gelu_erf', 'gelu_tanh']);
  });
});

// ---- Differential check of the op references against onnxruntime's kernels -----------------------

interface OrtCase { op: string; domain: string; opset: number; inputs: number[][]; attrs?: Record<string, number | string>; outputs: number }

function oneNodeModel(c: OrtCase, tensors: Tensor[]): Uint8Array {
  const vi = (name: string, shape: number[]): ValueInfoProto => ({ name, type: { tensorType: { elemType: 1, shape: { dim: shape.map((d) => ({ dimValue: d })) } } } });
  const attribute: AttributeProto[] = Object.entries(c.attrs ?? {}).map(([name, v]) =>
    typeof v === 'string' ? { name, type: ATTR.STRING, s: new TextEncoder().encode(v) } : name === 'axis' ? { name, type: ATTR.INT, i: v } : { name, type: ATTR.FLOAT, f: v });
  const outs = Array.from({ length: c.outputs }, (_, i) => `out${i}`);
  const graph: GraphProto = {
    name: c.op,
    node: [{ opType: c.op, domain: c.domain, input: c.inputs.map((_, i) => `in${i}`), output: outs, attribute }],
    input: [vi('in0', c.inputs[0]), vi('in1', c.inputs[1] ?? [1])].slice(0, Math.min(2, c.inputs.length)),
    initializer: tensors.slice(2).map((t, i) => onnx.TensorProto.decode(encodeTensorProto(t, `in${i + 2}`))),
    output: outs.map((name) => ({ name })),
  };
  const opsetImport = [{ domain: '', version: c.domain === '' ? c.opset : 17 }, ...(c.domain ? [{ domain: c.domain, version: 1 }] : [])];
  return onnx.ModelProto.encode({ irVersion: 10, opsetImport, graph }).finish();
}

describe('fused-form references agree with onnxruntime', () => {
  const cases: Record<string, OrtCase> = {
    'SkipLayerNormalization (β, bias, all outputs)': { op: 'SkipLayerNormalization', domain: 'com.microsoft', opset: 1, inputs: [[2, 3, 8], [2, 3, 8], [8], [8], [8]], attrs: { epsilon: 1e-5 }, outputs: 4 },
    'SkipSimplifiedLayerNormalization': { op: 'SkipSimplifiedLayerNormalization', domain: 'com.microsoft', opset: 1, inputs: [[2, 3, 8], [2, 3, 8], [8]], attrs: { epsilon: 1e-6 }, outputs: 4 },
    'SimplifiedLayerNormalization (ai.onnx, as ORT registers it)': { op: 'SimplifiedLayerNormalization', domain: '', opset: 17, inputs: [[2, 3, 8], [8]], attrs: { epsilon: 1e-6, axis: -1 }, outputs: 1 },
    'RMSNormalization-23': { op: 'RMSNormalization', domain: '', opset: 23, inputs: [[2, 3, 8], [8]], attrs: { epsilon: 1e-6 }, outputs: 1 },
    'Gelu (com.microsoft)': { op: 'Gelu', domain: 'com.microsoft', opset: 1, inputs: [[2, 8]], outputs: 1 },
    'FastGelu with bias': { op: 'FastGelu', domain: 'com.microsoft', opset: 1, inputs: [[2, 8], [8]], outputs: 1 },
    'BiasGelu': { op: 'BiasGelu', domain: 'com.microsoft', opset: 1, inputs: [[2, 8], [8]], outputs: 1 },
  };
  it.each(Object.entries(cases))('%s', async (_, c) => {
    const rnd = mulberry32(11);
    const tensors = c.inputs.map((s) => Tensor.from('float32', s, Array.from({ length: s.reduce((a, b) => a * b, 1) }, () => rnd() * 4 - 2)));
    // Inputs 0 and 1 are fed; BiasGelu/FastGelu's bias and the norms' parameters beyond are initializers.
    const fed = Math.min(2, c.inputs.length);
    const bytes = oneNodeModel(c, tensors);
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(bytes);
    } catch (e) {
      console.log(`onnxruntime cannot run ${c.op}: ${(e as Error).message.split('\n')[0]}`);
      return;
    }
    const feeds = Object.fromEntries(tensors.slice(0, fed).map((t, i) => [`in${i}`, new ort.Tensor('float32', t.data as Float32Array, [...t.shape])]));
    const ref = await session.run(feeds);
    await session.release();
    const { graph } = importModelBytes(bytes, `${c.op}.onnx`, undefined);
    inferShapes(graph);
    const ours = run(graph, new Map(tensors.slice(0, fed).map((t, i) => [`in${i}`, t])));
    let compared = 0;
    for (const [name, r] of Object.entries(ref)) {
      if (r.dims.length === 0 || r.size === 0) continue; // an output ORT leaves empty
      compared++;
      const t = ours.get(name)!;
      expect(t.shape, name).toEqual(r.dims.map(Number));
      const want = Array.from(r.data as Float32Array);
      want.forEach((w, i) => expect(Math.abs(t.data[i] - w), `${name}[${i}]`).toBeLessThanOrEqual(2e-5 * (1 + Math.abs(w))));
    }
    expect(compared).toBeGreaterThan(0);
  });
});

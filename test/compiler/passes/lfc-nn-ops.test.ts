/**
 * The lfc ops the fusion passes produce (compiler/ops/lfc-nn.ts): their references agree with the
 * ONNX ops they replace, and shape inference rejects malformed uses naming the node.
 */
import { describe, expect, it } from 'vitest';
import { Tensor } from '../../../runtime/tensor.js';
import '../../../compiler/ops/index.js';
import { Node, Value, type AttrValue } from '../../../compiler/ir/graph.js';
import { opContext } from '../../../compiler/ir/infer.js';
import { resolveOp, type InferContext, type OpDef } from '../../../compiler/ops/index.js';
import type { InputInfo } from '../../../compiler/ops/registry.js';
import { mulberry32 } from '../../helpers/decoder.js';
import { sym } from './fuse-helpers.js';

function op(name: string, attrs: Record<string, AttrValue> = {}): { def: OpDef; node: Node } {
  const node = new Node(`/t/${name}`, name, 'lfc', 1, new Map(Object.entries(attrs)));
  node.outputs.push(new Value('y'), new Value('sum'));
  const def = resolveOp('lfc', name, 1);
  if (typeof def === 'string') throw new Error(def);
  return { def, node };
}

function evalLfc(name: string, inputs: (Tensor | undefined)[], attrs: Record<string, AttrValue> = {}): Tensor[] {
  const { def, node } = op(name, attrs);
  return def.evaluate(opContext(node), inputs);
}

function inferLfc(name: string, inputs: (InputInfo | undefined)[], attrs: Record<string, AttrValue> = {}) {
  const { def, node } = op(name, attrs);
  const base = opContext(node);
  const ctx: InferContext = {
    ...base, inputs,
    input: (i) => inputs[i] ?? base.fail(`input ${i} missing`),
    numbers: () => undefined,
  };
  return def.infer(ctx);
}

const rand = (shape: number[], seed: number): Tensor => {
  const r = mulberry32(seed);
  return Tensor.from('float32', shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => r() * 4 - 2));
};

const close = (a: Tensor, b: ArrayLike<number>, tol = 1e-6): void => {
  expect(a.size).toBe(b.length);
  for (let i = 0; i < a.size; i++) expect(Math.abs(a.data[i] - b[i])).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(b[i])));
};

describe('lfc ops', () => {
  const x = rand([2, 3, 4], 1), r = rand([2, 3, 4], 2), g = rand([4], 3), b = rand([4], 4);

  it('RMSNorm: x / sqrt(mean(x²) + ε) · γ over the last axis', () => {
    const [y] = evalLfc('RMSNorm', [x, g], { epsilon: 1e-5 });
    const want: number[] = [];
    for (let row = 0; row < 6; row++) {
      const v = Array.from(x.data.subarray(row * 4, row * 4 + 4));
      const inv = 1 / Math.sqrt(v.reduce((s, e) => s + e * e, 0) / 4 + 1e-5);
      v.forEach((e, j) => want.push(e * inv * g.data[j]));
    }
    close(y, want);
  });

  it('LayerNorm agrees with ONNX LayerNormalization', () => {
    const [y] = evalLfc('LayerNorm', [x, g, b], { epsilon: 1e-5 });
    const onnx = resolveOp('', 'LayerNormalization', 17) as OpDef;
    const ref = onnx.evaluate(opContext(new Node('ln', 'LayerNormalization', '', 17, new Map([['epsilon', 1e-5]]))), [x, g, b])[0];
    close(y, ref.data);
  });

  it('AddNorm returns the norm of the sum and the sum', () => {
    const [y, sum] = evalLfc('AddNorm', [x, r, g, b], { kind: 'layer', epsilon: 1e-5 });
    const s = Tensor.from('float32', x.shape, Array.from(x.data, (v, i) => v + r.data[i]));
    close(sum, s.data, 0);
    close(y, evalLfc('LayerNorm', [s, g, b], { epsilon: 1e-5 })[0].data);
    const [y2] = evalLfc('AddNorm', [x, r, g], { kind: 'rms', epsilon: 1e-5 });
    close(y2, evalLfc('RMSNorm', [s, g], { epsilon: 1e-5 })[0].data);
  });

  it('Activation, GatedAct and Linear{activation} share one activation definition', () => {
    const silu = (v: number) => v / (1 + Math.exp(-v));
    close(evalLfc('Activation', [x], { kind: 'silu' })[0], Array.from(x.data, silu));
    close(evalLfc('Activation', [x], { kind: 'relu' })[0], Array.from(x.data, (v) => Math.max(0, v)));
    const gelu = evalLfc('Activation', [x], { kind: 'gelu_tanh' })[0];
    const geluErf = evalLfc('Activation', [x], { kind: 'gelu_erf' })[0];
    close(gelu, geluErf.data, 2e-3); // the tanh approximation is close to the exact GELU
    close(evalLfc('GatedAct', [x, r], { kind: 'silu' })[0], Array.from(x.data, (v, i) => silu(v) * r.data[i]));
    const w = rand([4, 5], 5), bias = rand([5], 6);
    const lin = evalLfc('Linear', [x, w, bias], { activation: 'silu' })[0];
    expect(lin.shape).toEqual([2, 3, 5]);
    const want: number[] = [];
    for (let row = 0; row < 6; row++) {
      for (let n = 0; n < 5; n++) {
        let acc = bias.data[n];
        for (let k = 0; k < 4; k++) acc += x.data[row * 4 + k] * w.data[k * 5 + n];
        want.push(silu(acc));
      }
    }
    close(lin, want, 1e-5);
  });

  it('infers symbolic shapes and rejects malformed uses', () => {
    const f = (shape: (number | ReturnType<typeof sym>)[]) => ({ dtype: 'float32' as const, shape });
    expect(inferLfc('Linear', [f([sym('T'), 4]), f([4, 6])])[0].shape.map(String)).toEqual(['T', '6']);
    expect(inferLfc('AddNorm', [f([sym('T'), 4]), f([sym('T'), 4]), f([4])], { kind: 'rms', epsilon: 1e-6 }).length).toBe(2);
    expect(() => inferLfc('RMSNorm', [f([2, 4]), f([5])])).toThrow("RMSNorm node '/t/RMSNorm': gamma must be [4] (x's last dim), got [5]");
    expect(() => inferLfc('Linear', [f([2, 4]), f([5, 6])])).toThrow(/x \[2, 4\] has K = 4 but weight \[5, 6\] has K = 5/);
    expect(() => inferLfc('Activation', [f([2])], { kind: 'gelu' })).toThrow(/attribute 'kind' is 'gelu', expected one of silu, gelu_tanh, gelu_erf, relu/);
    expect(() => inferLfc('AddNorm', [f([2, 4]), f([1, 4]), f([4])], { kind: 'rms' })).toThrow(/must have the same shape/);
    expect(() => inferLfc('AddNorm', [f([2, 4]), f([2, 4]), f([4])], { kind: 'group' })).toThrow(/expected 'rms' or 'layer'/);
  });
});

/**
 * fuse-linear, fuse-linear-act and merge-qkv: MatMul/Gemm by constant weights into lfc.Linear (bias,
 * transB, alpha/beta, the Reshape pair around Gemm), activation epilogues, the Q/K/V merge into one
 * Linear + Split; near misses reported with the node.
 */
import { describe, expect, it } from 'vitest';
import { Builder, countOps, fuse, fuseAndCompare, missed, sym } from './fuse-helpers.js';

const B = sym('b'), S = sym('s');

describe('matmul', () => {
  it.each([
    ['no bias', 'none'],
    ['bias second', 'right'],
    ['bias first, as [1, N]', 'left'],
  ] as const)('fuses MatMul by a constant weight, %s', (_, bias) => {
    const { g, events } = fuseAndCompare(() => {
      const b = new Builder();
      const x = b.input('x', [B, S, 8]);
      const y = b.op('MatMul', [x, b.rand([8, 12], 1)], {}, '/p/MatMul');
      if (bias === 'none') return b.output(y);
      const bv = bias === 'left' ? b.rand([1, 12], 2) : b.rand([12], 2);
      return b.output(b.op('Add', bias === 'left' ? [bv, y] : [y, bv]));
    });
    expect(g.nodes.map((n) => `${n.domain}.${n.opType}`)).toEqual(['lfc.Linear']);
    expect(g.nodes[0].inputs.length).toBe(bias === 'none' ? 2 : 3);
    expect(g.nodes[0].inputs[2]?.type?.shape).toEqual(bias === 'none' ? undefined : [12]);
    expect(events.map((e) => `${e.outcome} ${e.rule}`)).toEqual(['fused matmul']);
  });

  it('leaves a product of two activations alone, unreported', () => {
    const b = new Builder();
    const g = b.output(b.op('MatMul', [b.input('q', [B, 4, 8]), b.input('k', [B, 8, 4])]));
    expect(fuse(g)).toEqual([]);
  });

  it('reports a constant weight that is not a matrix', () => {
    const b = new Builder();
    const g = b.output(b.op('MatMul', [b.input('x', [2, 3, 8]), b.rand([2, 8, 4], 1)], {}, '/p/MatMul'));
    expect(missed(fuse(g))[0].detail).toBe("MatMul node '/p/MatMul' multiplies by constant 'w0' of shape [2, 8, 4], not a [K, N] matrix");
  });
});

describe('gemm', () => {
  it('fuses Gemm with transB, alpha and beta folded into the constants', () => {
    const { g } = fuseAndCompare(() => {
      const b = new Builder();
      return b.output(b.op('Gemm', [b.input('x', [5, 8]), b.rand([12, 8], 1), b.rand([12], 2)], { transB: 1, alpha: 2, beta: 0.5 }));
    });
    expect(g.nodes.map((n) => n.opType)).toEqual(['Linear']);
    expect(g.nodes[0].inputs[1]!.type!.shape).toEqual([8, 12]);
  });

  it('absorbs the Reshape pair exporters put around Gemm (GPT-2 Conv1D)', () => {
    const { g, events } = fuseAndCompare(() => {
      const b = new Builder();
      const x = b.input('x', [2, 3, 8]);
      const flat = b.op('Reshape', [x, b.c([-1, 8], 'int64')]);
      const y = b.op('Gemm', [flat, b.rand([8, 12], 1), b.rand([12], 2)], {}, '/c_fc/Gemm');
      return b.output(b.op('Reshape', [y, b.c([2, 3, 12], 'int64')]));
    });
    expect(g.nodes.map((n) => n.opType)).toEqual(['Linear']);
    expect(g.nodes[0].inputs[0]!.name).toBe('x');
    expect(events[0].detail).toMatch(/Reshape pair absorbed/);
  });

  it('reports transA and a C that is not a bias vector', () => {
    let b = new Builder();
    let g = b.output(b.op('Gemm', [b.input('x', [8, 5]), b.rand([8, 12], 1)], { transA: 1 }, '/g'));
    expect(missed(fuse(g))[0].detail).toBe("Gemm node '/g' has transA=1 (the activation is transposed)");
    b = new Builder();
    g = b.output(b.op('Gemm', [b.input('x', [5, 8]), b.rand([8, 12], 1), b.rand([5, 12], 2)], {}, '/g'));
    expect(missed(fuse(g))[0].detail).toMatch(/Gemm node '\/g' adds C 'w\d+' \[5, 12\], not a constant \[N\] bias/);
    expect(countOps(g, 'Gemm')).toBe(1);
  });
});

describe('linear epilogue', () => {
  it('puts a GELU that is the only use of a Linear into its epilogue', () => {
    const { g, events } = fuseAndCompare(() => {
      const b = new Builder();
      const h = b.op('Add', [b.op('MatMul', [b.input('x', [B, 8]), b.rand([8, 16], 1)]), b.rand([16], 2)]);
      const e = b.op('Erf', [b.op('Mul', [h, b.c(Math.SQRT1_2)])]);
      return b.output(b.op('Mul', [b.op('Mul', [h, b.c(0.5)]), b.op('Add', [e, b.c(1)])]));
    });
    expect(g.nodes.map((n) => n.opType)).toEqual(['Linear']);
    expect(g.nodes[0].attrs.get('activation')).toBe('gelu_erf');
    expect(events.map((e) => e.rule)).toEqual(['matmul', 'activation', 'epilogue']);
  });
});

describe('merge-qkv', () => {
  function qkv(opset: number, bias: boolean | 'k-only', qAct = 'Neg') {
    const b = new Builder(opset);
    const x = b.input('x', [B, S, 16]);
    const proj = (name: string, n: number, seed: number) => {
      const y = b.op('MatMul', [x, b.rand([16, n], seed)], {}, `/attn/${name}_proj/MatMul`);
      return bias === true || (bias === 'k-only' && name === 'k') ? b.op('Add', [y, b.rand([n], seed + 10)]) : y;
    };
    const q = proj('q', 16, 1), k = proj('k', 8, 2), v = proj('v', 8, 3);
    return b.output(b.op(qAct, [q]), k, b.op('Neg', [v]));
  }

  it.each([[17, false], [17, true], [11, false]])('merges Q/K/V into one Linear + Split (opset %i, bias %s)', (opset, bias) => {
    const { g, events } = fuseAndCompare(() => qkv(opset, bias));
    const merged = g.nodes.filter((n) => n.opType === 'Linear');
    expect(merged.length).toBe(1);
    expect(merged[0].inputs[1]!.type!.shape).toEqual([16, 32]);
    expect(merged[0].inputs.length).toBe(bias ? 3 : 2);
    const split = g.nodes.find((n) => n.opType === 'Split')!;
    expect(split.outputs.map((o) => o.type!.shape[2])).toEqual([16, 8, 8]);
    expect(opset >= 13 ? split.inputs.length : (split.attrs.get('split') as number[]).length).toBe(opset >= 13 ? 2 : 3);
    expect(g.outputs[1].name).toBe(qkv(opset, bias).outputs[1].name); // graph output keeps its name
    expect(events.find((e) => e.rule === 'qkv')!.detail).toMatch(/merged into one Linear \[16, 32\] \+ Split \[16, 8, 8\]/);
  });

  it('gives the projections without a bias zeros when another has one', () => {
    const { g } = fuseAndCompare(() => qkv(17, 'k-only'));
    const merged = g.nodes.find((n) => n.opType === 'Linear')!;
    const bias = merged.inputs[2]!.initializer!.load().toArray();
    expect(bias.slice(0, 16).every((v) => v === 0) && bias.slice(24).every((v) => v === 0)).toBe(true);
    expect(bias.slice(16, 24).some((v) => v !== 0)).toBe(true);
  });

  it('reports a projection with an activation epilogue', () => {
    const { g, events } = fuseAndCompare(() => qkv(17, false, 'Relu'));
    expect(countOps(g, 'lfc.Linear')).toBe(3);
    expect(missed(events)[0].detail).toBe("Linear node '/attn/q_proj/Linear' on 'x' has an activation epilogue");
  });

  it('leaves two Linears on one input apart', () => {
    const b = new Builder();
    const x = b.input('x', [B, 16]);
    const g = b.output(b.op('MatMul', [x, b.rand([16, 4], 1)]), b.op('MatMul', [x, b.rand([16, 4], 2)]));
    fuse(g);
    expect(countOps(g, 'lfc.Linear')).toBe(2);
    expect(countOps(g, 'Split')).toBe(0);
  });
});

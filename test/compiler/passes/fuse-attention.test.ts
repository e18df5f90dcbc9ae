/**
 * Rotary-embedding and attention fusion on the shipped torch.onnx exports: what fuses, that the
 * fused graph computes what the original does (with KV past and left padding), and near misses
 * that must not fuse, each with the reason the fusion report gives.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import '../../../compiler/ops/index.js';
import { importModelFile } from '../../../compiler/onnx/import.js';
import { inferShapes } from '../../../compiler/ir/infer.js';
import { run } from '../../../compiler/ir/interpret.js';
import { addConstant, replaceAllUses } from '../../../compiler/ir/edit.js';
import { runPipeline, type FusionEvent } from '../../../compiler/passes/driver.js';
import { CANONICALIZE } from '../../../compiler/passes/canonicalize.js';
import { fuseAttention, fuseRope } from '../../../compiler/passes/fuse-attention.js';
import { Tensor } from '../../../runtime/tensor.js';
import type { Graph } from '../../../compiler/ir/graph.js';
import { decoderFeeds, maxAbsDiff } from '../../helpers/decoder.js';

const MODELS = join(import.meta.dirname, '../../../models');
const PASSES = [...CANONICALIZE, fuseRope, fuseAttention];
const count = (ev: FusionEvent[], rule: string, outcome: string) => ev.filter((e) => e.rule === rule && e.outcome === outcome).length;
const ops = (g: Graph, op: string) => g.nodes.filter((n) => n.opType === op).length;

const cases = [
  { file: 'coder-draft.onnx', rope: true },
  { file: 'coder-draft.no-past.onnx', rope: true },
  { file: 'gpt2-coder.onnx', rope: false },
  { file: 'gpt2-coder.no-past.onnx', rope: false },
].filter((c) => existsSync(join(MODELS, c.file)));

describe.each(cases)('$file', ({ file, rope }) => {
  const path = join(MODELS, file);
  const orig = importModelFile(path).graph;
  inferShapes(orig);
  const fused = importModelFile(path).graph;
  const events = runPipeline(fused, PASSES);
  const layers = ops(orig, 'Softmax');

  it('fuses every layer: no Softmax left, one lfc.Attention (and two lfc.Rope) per layer', () => {
    expect(layers).toBeGreaterThan(0);
    expect(count(events, 'sdpa', 'fused')).toBe(layers);
    expect(ops(fused, 'Softmax')).toBe(0);
    expect(ops(fused, 'Attention')).toBe(layers);
    expect(ops(fused, 'Rope')).toBe(rope ? 2 * layers : 0);
    expect(events.filter((e) => e.outcome === 'missed')).toEqual([]);
  });

  it.each([
    { label: 'prefill with left padding', batch: 2, seq: 5, past: 0, leftPad: [2, 0] },
    { label: 'decode with past', batch: 2, seq: 1, past: 4 },
    { label: 'chunk with past', batch: 1, seq: 3, past: 3 },
  ])('computes what the original graph does: $label', (c) => {
    if (file.includes('no-past') && c.past) return;
    const feeds = decoderFeeds(orig, { ...c, vocab: 200, seed: 99 });
    const want = run(orig, feeds), got = run(fused, feeds);
    for (const [name, t] of want) expect(maxAbsDiff(got.get(name)!, t), name).toBeLessThanOrEqual(1e-5);
  });
});

describe.skipIf(!existsSync(join(MODELS, 'coder-draft.onnx')))('near misses do not fuse and say why', () => {
  const load = () => {
    const { graph } = importModelFile(join(MODELS, 'coder-draft.onnx'));
    runPipeline(graph, CANONICALIZE);
    return graph;
  };

  it('a mask that is not causal', () => {
    const g = load();
    const sm = g.nodes.find((n) => n.opType === 'Softmax')!;
    const add = sm.inputs[0]!.producer!;
    const zeros = addConstant(g, Tensor.zeros('float32', [1, 1, 1, 1]), 'not_causal');
    add.inputs[1]!.consumers.splice(add.inputs[1]!.consumers.indexOf(add), 1);
    add.inputs[1] = zeros;
    zeros.consumers.push(add);
    const layers = ops(g, 'Softmax');
    const ev = runPipeline(g, [fuseAttention]);
    const miss = ev.find((e) => e.outcome === 'missed' && e.node === sm.name);
    expect(miss?.detail).toMatch(/mask is not causal: .*(mask has shape \[1,1,1,1\]|expected a large negative value)/);
    expect(count(ev, 'sdpa', 'fused')).toBe(layers - 1);
    expect(g.nodes.includes(sm)).toBe(true);
  });

  it('attention probabilities that escape as a graph output', () => {
    const g = load();
    const sm = g.nodes.find((n) => n.opType === 'Softmax')!;
    g.outputs.push(sm.outputs[0]);
    const ev = runPipeline(g, [fuseAttention]);
    expect(ev.find((e) => e.node === sm.name)).toMatchObject({ outcome: 'missed' });
    expect(ev.find((e) => e.node === sm.name)!.detail).toMatch(/used outside the attention pattern|not only multiplied by V/);
  });

  it('a rotate_half whose halves are swapped the wrong way is not RoPE', () => {
    const g = load();
    const cat = g.nodes.find((n) => n.opType === 'Concat' && n.inputs[0]?.producer?.opType === 'Neg')!;
    cat.inputs.reverse(); // Concat(x1, -x2): not rotate_half
    inferShapes(g);
    const ropes = ops(g, 'Neg');
    const ev = runPipeline(g, [fuseRope]);
    expect(count(ev, 'rope-rotate-half', 'fused')).toBe(ropes - 1);
    expect(ops(g, 'Neg')).toBe(1);
  });

  it('replacing uses keeps graph output names stable', () => {
    const g = load();
    const out = g.outputs[0];
    const id = g.nodes.find((n) => n.outputs[0] === out)!;
    expect(id).toBeDefined();
    const name = out.name;
    replaceAllUses(g, out, id.inputs[0]!.producer ? id.inputs[0]! : out);
    expect(g.outputs[0].name).toBe(name);
  });
});

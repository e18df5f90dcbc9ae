/**
 * Shape inference on real torch.onnx exports (models/): every value gets a dtype and a shape made
 * only of numbers and the model's own symbols (no opaque floor/min/max atoms, nothing unknown),
 * and the attention-mask length is proved equal to past + new tokens.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import '../../../compiler/ops/index.js';
import { importModelFile } from '../../../compiler/onnx/import.js';
import { inferShapes } from '../../../compiler/ir/infer.js';
import { dimStr, shapeStr } from '../../../compiler/ir/dim.js';

const MODELS = join(import.meta.dirname, '../../../models');
const files = existsSync(MODELS) ? readdirSync(MODELS).filter((f) => f.endsWith('.onnx')).sort() : [];
const CLEAN = new Set(['batch_size', 'sequence_length', 'past_sequence_length', 'past_sequence_length + sequence_length', 'batch_size*sequence_length']);

describe.each(files)('%s', (file) => {
  const { graph } = importModelFile(join(MODELS, file));
  inferShapes(graph);

  it('types every value with clean symbolic shapes', () => {
    const bad: string[] = [];
    for (const v of graph.values.values()) {
      if (!v.type) { bad.push(`${v.name}: untyped`); continue; }
      for (const d of v.type.shape) if (typeof d !== 'number' && !CLEAN.has(dimStr(d))) bad.push(`${v.name}: ${shapeStr(v.type.shape)}`);
    }
    expect(bad).toEqual([]);
  });

  it('gives logits [batch, seq, vocab] and presents [batch, kv_heads, past + seq, head_dim]', () => {
    const logits = graph.outputs.find((v) => v.name === 'logits')!;
    expect(shapeStr(logits.type!.shape)).toMatch(/^\[batch_size, sequence_length, \d+\]$/);
    const presents = graph.outputs.filter((v) => v.name.startsWith('present.'));
    if (file.includes('no-past')) {
      expect(presents).toEqual([]);
      return;
    }
    expect(presents.length).toBeGreaterThan(0);
    for (const p of presents) expect(shapeStr(p.type!.shape)).toMatch(/^\[batch_size, \d+, past_sequence_length \+ sequence_length, \d+\]$/);
    expect(dimStr(graph.dimEquations.get('total_sequence_length')!)).toBe('past_sequence_length + sequence_length');
  });
});

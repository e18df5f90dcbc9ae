/**
 * The key requirement of the shape ops, on real exports: after shape inference every value of a
 * GPT-2 or LLaMA torch.onnx export (models/*.onnx) has a shape over the model's declared symbols
 * only (batch, sequence, past sequence), with no fresh run-time symbols and no min/max/floor atoms
 * from lost shape arithmetic.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import '../../../compiler/ops/index.js';
import { dimStr, isSym } from '../../../compiler/ir/dim.js';
import { inferShapes } from '../../../compiler/ir/infer.js';
import { importModelFile } from '../../../compiler/onnx/import.js';

const MODELS = join(import.meta.dirname, '../../../models');
const files = existsSync(MODELS) ? readdirSync(MODELS).filter((f) => f.endsWith('.onnx')).sort() : [];

describe.runIf(files.length > 0).each(files)('%s', (file) => {
  it('infers every shape over the declared symbols', () => {
    const { graph } = importModelFile(join(MODELS, file));
    const declared = new Set<string>();
    for (const v of graph.inputs) {
      for (const d of v.type!.shape) if (isSym(d)) for (const m of d.terms.keys()) if (m) declared.add(m);
    }
    inferShapes(graph);
    const bad: string[] = [];
    for (const v of graph.values.values()) {
      if (!v.type) { bad.push(`${v.name}: no type`); continue; }
      for (const d of v.type.shape) {
        if (!isSym(d)) continue;
        const syms = [...d.terms.keys()].flatMap((m) => (m ? m.split('\u0001') : []));
        if (syms.some((s) => !declared.has(s))) bad.push(`${v.name}: ${dimStr(d)}`);
      }
    }
    expect(bad.slice(0, 10)).toEqual([]);
  });
});

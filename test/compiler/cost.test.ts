/**
 * The kernel cost model against counts derived by hand from the model's shapes.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileModel } from '../../compiler/compile.js';
import { decodeShape, planCost, prefillShape, stepCost } from '../../compiler/kernels/cost.js';

const MODEL = join(import.meta.dirname, '../../models/coder-draft.onnx');

describe.skipIf(!existsSync(MODEL))('cost model', () => {
  const plan = compileModel(MODEL, { maxPositions: 64 }).plan!;
  const { hidden, layers, heads, kvHeads, headDim, vocab } = plan.model;

  it('a decode step reads every weight once and does 2 FLOPs per weight of each matmul', () => {
    const c = planCost(plan, decodeShape(1, 100));
    const linearParams = plan.steps.filter((s) => s.kind === 'linear').reduce((a, s) => a + (s.kind === 'linear' ? s.K * s.N : 0), 0);
    expect(c.perKind.linear.flops).toBe(2 * linearParams);
    expect(c.perKind.logits.flops).toBe(2 * hidden * vocab);
    const weightBytes = plan.weights.reduce((a, w) => a + w.bytes, 0);
    const tableBytes = plan.weights.filter((w) => w.name.includes('table') || w.name.startsWith('rope.')).reduce((a, w) => a + w.bytes, 0);
    expect(c.bytes).toBeGreaterThan(weightBytes - tableBytes);
    // attention: K and V of 100 context tokens per layer, 4 bytes each, read once per kv head
    expect(c.perKind.attention.bytes).toBeGreaterThanOrEqual(layers * 2 * 100 * kvHeads * headDim * 4);
    expect(c.perKind.attention.flops).toBe(layers * 4 * headDim * heads * 100);
  });

  it('prefill is compute-heavier per byte than decode, and attention grows quadratically', () => {
    const d = planCost(plan, decodeShape(1, 256)), p = planCost(plan, prefillShape(256));
    expect(p.flops / p.bytes).toBeGreaterThan(10 * (d.flops / d.bytes));
    const att = plan.steps.find((s) => s.kind === 'attention')!;
    const a1 = stepCost(plan, att, prefillShape(128)).flops, a2 = stepCost(plan, att, prefillShape(256)).flops;
    expect(a2 / a1).toBeCloseTo((256 * 257) / (128 * 129), 5);
  });
});

/**
 * Synthetic LLaMA-shaped plans (compiler/synthetic.ts): valid plans (parsePlan), GEMM operands
 * rounded to the storage dtype, and a reference forward with finite, non-degenerate logits.
 */
import { describe, expect, it } from 'vitest';
import { syntheticLlama, LLAMA3_8B } from '../../compiler/synthetic.js';
import { ReferenceBackend } from '../../runtime/backends/reference.js';
import { parsePlan } from '../../runtime/plan.js';
import { storeBf16 } from '../../runtime/kernels/common.js';

const tiny = { ...LLAMA3_8B, name: 'tiny', hidden: 96, heads: 6, kvHeads: 2, headDim: 16, intermediate: 136, vocab: 77, layers: 2, maxPositions: 64 };

describe('synthetic LLaMA plans', () => {
  it('parse, carry bf16-exact matrices, and give finite varied logits on the reference backend', () => {
    const { plan, weights } = syntheticLlama(tiny, { seed: 3 });
    expect(() => parsePlan(JSON.stringify(plan))).not.toThrow();
    expect(plan.steps.filter((s) => s.kind === 'attention')).toHaveLength(2);
    const qkv = plan.weights.find((w) => w.name === 'l0.qkv')!;
    const vals = new Float32Array(weights.buffer, weights.byteOffset + qkv.offset, qkv.bytes / 4);
    expect(vals.every((v) => v !== 0 && storeBf16(v) === v)).toBe(true);
    const be = new ReferenceBackend(plan, weights, { numBlocks: 8, maxTokens: 16 });
    const T = 5;
    const logits = be.forward({
      tokens: Int32Array.from([1, 5, 9, 33, 76]), positions: Int32Array.from([0, 1, 2, 3, 4]), seqStarts: Int32Array.from([0, T]),
      contextLens: Int32Array.from([T]), blockTables: Int32Array.from([3]), maxBlocksPerSeq: 1, slotMapping: Int32Array.from([48, 49, 50, 51, 52]),
      logitIndices: Int32Array.from([4]),
    });
    expect(logits).toHaveLength(tiny.vocab);
    expect(logits.every(Number.isFinite)).toBe(true);
    expect(Math.max(...logits) - Math.min(...logits)).toBeGreaterThan(0.1);
  });
});

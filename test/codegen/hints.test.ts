/**
 * The cost-model hint that turns speculation off where it stops paying (issue 10 back-off):
 * hints.json's specMaxBatchTokens is where the GEMMs become compute-bound, near the card's
 * FLOP/byte ridge (peak / bandwidth) for a 7B-shaped model, and the engine uses a backend's hint
 * unless the caller set maxBatchTokens.
 */
import { describe, expect, it } from 'vitest';
import { runtimeHints } from '../../compiler/cuda-artifact.js';
import { GPU_PEAKS } from '../../compiler/codegen/report.js';
import { LLAMA2_7B, syntheticLlama } from '../../compiler/synthetic.js';
import { ReferenceBackend } from '../../runtime/backends/reference.js';
import { Engine } from '../../runtime/engine.js';
import { NgramProposer } from '../../runtime/spec/proposer.js';

describe('speculation back-off hint', () => {
  it('sits at the GEMM ridge of a 7B-shaped layer on each card', () => {
    // The plan of a tiny LLaMA with its GEMMs given LLaMA-2-7B's shapes (generating 7B weights is slow).
    const { plan } = syntheticLlama({ ...LLAMA2_7B, name: 'tiny', hidden: 32, heads: 2, kvHeads: 2, headDim: 16, intermediate: 48, vocab: 40, layers: 1, maxPositions: 64 });
    const H = 4096, I = 11008;
    const shapes = [[H, 3 * H], [H, H], [H, 2 * I], [I, H]];
    let li = 0;
    plan.steps = plan.steps.map((s) => {
      if (s.kind === 'linear') { const [K, N] = shapes[li++]; return { ...s, K, N }; }
      if (s.kind === 'logits') return { ...s, hidden: H, vocab: 32000 };
      return s;
    });
    expect(li).toBe(4);
    const h = runtimeHints(plan).specMaxBatchTokens;
    for (const g of ['a100', 'h100'] as const) {
      // bf16 weights: 2 FLOP per weight per token over 2 bytes per weight read once → ridge T ≈ peak / bandwidth,
      // pushed up a little by the activations each token reads and writes.
      const ridge = GPU_PEAKS[g].bf16Flops / GPU_PEAKS[g].bandwidth;
      expect(h[g]).toBeGreaterThanOrEqual(Math.floor(ridge));
      expect(h[g]).toBeLessThan(ridge * 1.25);
    }
  });

  it('the engine takes the backend hint unless maxBatchTokens is given', () => {
    const { plan, weights } = syntheticLlama({ ...LLAMA2_7B, name: 'tiny', hidden: 32, heads: 2, kvHeads: 1, headDim: 16, intermediate: 48, vocab: 40, layers: 1, maxPositions: 64 });
    const be = Object.assign(new ReferenceBackend(plan, weights, { numBlocks: 8, maxTokens: 32 }), { specMaxBatchTokens: 77 });
    const proposer = new NgramProposer(2);
    expect(new Engine(be, { speculative: { proposer } }).spec!.maxBatchTokens).toBe(77);
    expect(new Engine(be, { speculative: { proposer, maxBatchTokens: 9 } }).spec!.maxBatchTokens).toBe(9);
    expect(new Engine(new ReferenceBackend(plan, weights, { numBlocks: 8, maxTokens: 32 }), { speculative: { proposer } }).spec!.maxBatchTokens).toBe(64);
  });
});

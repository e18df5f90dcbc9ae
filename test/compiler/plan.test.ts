/**
 * The compiled plan computes what the ONNX graph computes (ARCHITECTURE.md, first invariant):
 * for random sequence sets split into random ragged steps (prefill, chunked prefill, decode,
 * multi-token continuation, several sequences per batch, shuffled cache blocks), the plan's
 * logits on the reference backend equal the original graph's, run per sequence by onnxruntime.
 * Also: the plan's structure, the memory planner, and clear errors for bad plans.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileModel, formatReport, writeArtifact } from '../../compiler/compile.js';
import { verifyPlan } from '../../compiler/verify.js';
import { ortOracle } from '../../compiler/ort-oracle.js';
import { parsePlan } from '../../runtime/plan.js';
import { ReferenceBackend } from '../../runtime/backends/reference.js';
import { bufferFields } from '../../compiler/plan/memory.js';

const MODELS = join(import.meta.dirname, '../../models');
const files = ['coder-draft.onnx', 'coder-draft.no-past.onnx', 'gpt2-coder.onnx', 'gpt2-coder.no-past.onnx', 'coder.onnx', 'coder.no-past.onnx']
  .filter((f) => existsSync(join(MODELS, f)));

describe.each(files)('%s compiles to a plan that matches the graph', (file) => {
  const path = join(MODELS, file);
  const r = compileModel(path, { maxPositions: 256 });

  it('lowers without error, one attention per layer', () => {
    expect(r.error, formatReport(r)).toBeUndefined();
    const p = r.plan!;
    expect(p.steps.filter((s) => s.kind === 'attention')).toHaveLength(p.model.layers);
    expect(p.steps.filter((s) => s.kind === 'cache_write')).toHaveLength(p.model.layers);
    expect(p.steps.at(-1)!.kind).toBe('logits');
    expect(p.model.vocab).toBe(259);
  });

  it('memory plan: no two live buffers overlap', () => {
    const p = r.plan!;
    const life = new Map<string, [number, number]>();
    p.steps.forEach((s, i) => {
      const { reads, writes } = bufferFields(s);
      for (const b of [...writes, ...reads]) { const l = life.get(b) ?? [i, i]; life.set(b, [Math.min(l[0], i), Math.max(l[1], i)]); }
    });
    for (const a of p.buffers) for (const b of p.buffers) {
      if (a === b) continue;
      const [s1, e1] = life.get(a.name)!, [s2, e2] = life.get(b.name)!;
      const overlapLife = s1 <= e2 && s2 <= e1;
      const overlapCols = a.column < b.column + b.features && b.column < a.column + a.features;
      expect(overlapLife && overlapCols, `${a.name} and ${b.name}`).toBe(false);
    }
    expect(p.arenaFeatures).toBeLessThan(p.buffers.reduce((s, b) => s + b.features, 0));
  });

  it('property: random ragged batch compositions match onnxruntime (fp32, 1e-4)', async () => {
    const oracle = (await ortOracle(path, r.original))!;
    const weights = r.weights!.pack();
    await fc.assert(fc.asyncProperty(fc.integer({ min: 1, max: 1e6 }), async (seed) => {
      const [c] = await verifyPlan(r.plan!, weights, { seed, cases: 1, atol: 1e-4, oracle });
      expect(c.maxAbsError, `seed ${seed}: ${JSON.stringify(c)}`).toBeLessThanOrEqual(1e-4);
    }), { numRuns: 3, seed: 42 });
  });
});

describe.skipIf(!files.length)('artifact files', () => {
  it('round-trip through plan.json and weights.bin; bad plans fail clearly', () => {
    const r = compileModel(join(MODELS, files[0]), { maxPositions: 64 });
    const dir = mkdtempSync(join(tmpdir(), 'lfc-plan-'));
    writeArtifact(r, dir);
    const text = readFileSync(join(dir, 'plan.json'), 'utf8');
    const plan = parsePlan(text);
    const backend = new ReferenceBackend(plan, readFileSync(join(dir, 'weights.bin')), { numBlocks: 8, maxTokens: 16 });
    expect(backend.plan.model.layers).toBeGreaterThan(0);
    expect(() => parsePlan(text.replace('"version": 1', '"version": 99'))).toThrow(/plan version 99 is not supported .* recompile/);
    expect(() => parsePlan(text.slice(0, 100))).toThrow(/plan.json: not valid JSON/);
    expect(() => parsePlan(JSON.stringify({ ...plan, schema: 'x' }))).toThrow(/'schema' is "x"/);
    const broken = JSON.parse(text);
    broken.steps[0].out = 'nope';
    expect(() => parsePlan(JSON.stringify(broken))).toThrow(/step 0 \(embedding\) field 'out' names unknown buffer or weight 'nope'/);
    writeFileSync(join(dir, 'weights.bin'), new Uint8Array(10));
    expect(() => new ReferenceBackend(plan, readFileSync(join(dir, 'weights.bin')))).toThrow(/weights.bin is 10 bytes/);
  });
});

describe.skipIf(!existsSync(join(MODELS, 'coder-draft.onnx')))('narrow activation dtypes', () => {
  it.each([['float16', 5e-2], ['bfloat16', 3e-1]] as const)('a %s plan stays within %d of the fp32 graph', async (dtype, atol) => {
    const path = join(MODELS, 'coder-draft.onnx');
    const r = compileModel(path, { maxPositions: 128, dtype });
    expect(r.plan!.dtype).toBe(dtype);
    const oracle = (await ortOracle(path, r.original))!;
    const [c] = await verifyPlan(r.plan!, r.weights!.pack(), { seed: 5, cases: 1, atol, oracle });
    expect(c.maxAbsError).toBeLessThanOrEqual(atol);
    expect(c.maxAbsError).toBeGreaterThan(1e-4); // the narrow dtype is really in effect
  });
});

/**
 * The tuning path end to end on lfc's CPU emulator (timings meaningless, every stage exercised):
 * a one-layer LLaMA-shaped synthetic artifact, one decode shape with the top-1 candidate per
 * problem: rank, round builds (baseline + candidates), reference check, profile, DB write; a
 * second run resumes past the shape without building; a new shape runs alone; a candidate made
 * wrong on purpose is rejected by the check and never wins; the entries, read as an h100
 * database, compose through kernelFor into kernels that still match the reference.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { findTool } from '../../compiler/build/cuda-build.js';
import { LLAMA3_8B, syntheticLlama } from '../../compiler/synthetic.js';
import { loadDb, setTuningDb } from '../../compiler/tune/db.js';
import { buildEmuLibrary } from '../../compiler/build/artifact-build.js';
import { kernelFor } from '../../compiler/codegen/families/index.js';
import { generateCudaSources } from '../../compiler/codegen/launcher.js';
import { compareSteps, scenario } from '../../compiler/tools/step-check.js';
import { CudaBackend } from '../../runtime/backends/cuda/index.js';
import type { Plan } from '../../runtime/plan.js';
import { formatTune, pickDiverse, tune } from '../../compiler/tune/tune.js';
import type { Candidate } from '../../compiler/tune/spaces.js';

const hasEmu = findTool('g++') !== null;
const dir = mkdtempSync(join(tmpdir(), 'lfc-tune-'));
let plan: Plan, weights: Uint8Array;

beforeAll(() => {
  ({ plan, weights } = syntheticLlama({ ...LLAMA3_8B, name: 'tune-mini', hidden: 64, heads: 4, kvHeads: 1, headDim: 32, intermediate: 96, vocab: 61, layers: 1, maxPositions: 128 }, { dtype: 'bfloat16', seed: 3 }));
  writeFileSync(join(dir, 'plan.json'), JSON.stringify(plan));
  writeFileSync(join(dir, 'weights.bin'), weights);
});

describe('top-k picking', () => {
  it('one per tile first, then per stage count, then split variants, each in rank order', () => {
    const c = (key: string) => ({ key }) as Candidate;
    const ranked = ['gemm 64x64x32 w2x2 s2', 'gemm 64x64x32 w2x2 s3', 'gemm 64x64x32 w2x2 s2 sk4/4', 'gemm 32x64x32 w1x2 s2', 'decode w1 r1 kv2 n16 s2 split 16/128/8'].map(c);
    expect(pickDiverse(ranked, 3).map((x) => x.key)).toEqual(['gemm 64x64x32 w2x2 s2', 'gemm 32x64x32 w1x2 s2', 'decode w1 r1 kv2 n16 s2 split 16/128/8']);
    expect(pickDiverse(ranked, 5).map((x) => x.key)).toEqual(['gemm 64x64x32 w2x2 s2', 'gemm 32x64x32 w1x2 s2', 'decode w1 r1 kv2 n16 s2 split 16/128/8', 'gemm 64x64x32 w2x2 s3', 'gemm 64x64x32 w2x2 s2 sk4/4']);
  });
});

describe.skipIf(!hasEmu)('lfc tune on the emulator', () => {
  const out = join(dir, 'db-emu.json');
  const logs: string[] = [];
  const base = { artifact: dir, target: 'emu' as const, out, topK: 1, checkPrompt: 8, onProgress: (m: string) => logs.push(m) };

  it('tunes every linear and attention problem at a decode shape and writes measured entries', async () => {
    const r = await tune({ ...base, shapes: [{ kind: 'decode', B: 2, context: 12 }] });
    console.log(formatTune(r));
    expect(r.builds).toBe(2); // baseline + one round with every problem's top candidate
    const db = loadDb(out);
    expect(db.gpu).toBe('emu');
    const keys = Object.keys(db.entries);
    // qkv and gate_up (both N 192, K 64), o (N 64, K 128), down (N 64, K 96), attention: 4 problems.
    expect(keys.sort()).toEqual(['attention|bf16|D32|H4|KV1|decode|T2|C16', 'linear|bf16|N192|K64|dense|T2', 'linear|bf16|N64|K128|dense|T2', 'linear|bf16|N64|K96|dense|T2']);
    for (const e of Object.values(db.entries)) {
      expect(e.source).toBe('measured');
      expect(e.ms).toBeGreaterThan(0);
      expect(e.baseline!.ms).toBeGreaterThan(0);
      expect(e.timed).toBe(2);
      expect(e.ratioToFloor).toBeCloseTo(e.ms! / e.floorMs);
    }
  }, 150_000);

  it('resumes: a second run skips the shape without building; a new shape runs alone', async () => {
    const before = readFileSync(out, 'utf8');
    const again = await tune({ ...base, shapes: [{ kind: 'decode', B: 2, context: 12 }] });
    expect(again.builds).toBe(0);
    expect(again.shapes[0].skipped).toBe(true);
    expect(readFileSync(out, 'utf8')).toBe(before);
    const more = await tune({ ...base, shapes: [{ kind: 'decode', B: 2, context: 12 }, { kind: 'prefill', T: 16 }] });
    expect(more.shapes.map((s) => s.skipped)).toEqual([true, false]);
    expect(Object.keys(loadDb(out).entries)).toHaveLength(8);
  }, 150_000);

  it('rejects a candidate whose outputs are wrong', async () => {
    const bad = join(dir, 'db-bad.json');
    const r = await tune({
      ...base, out: bad, shapes: [{ kind: 'prefill', T: 8 }],
      // The o projection's candidate returns without computing anything.
      mutateKernel: (k, p) => (p.family === 'linear' && p.N === 64 && p.K === 128
        ? { ...k, name: `${k.name}_bad`, launches: [{ fn: `${k.name}_bad`, args: 'LfcLinearArgs' }],
          source: k.source.replaceAll(k.name, `${k.name}_bad`).replace(/(cudaError_t \w+\(const LfcLinearArgs& a, cudaStream_t stream\) \{)/, '$1\n  if (a.T > 0) return cudaSuccess;') }
        : k),
    });
    const o = loadDb(bad).entries['linear|bf16|N64|K128|dense|T8'];
    expect(o.rejected?.[0].reason).toMatch(/outputs differ from the reference: step \d+ \(linear\)/);
    expect(o.baseline!.choiceKey).toBe(o.choiceKey); // only the chooser was left to win
    expect(r.builds).toBe(3); // baseline, the round with the wrong candidate, the round rebuilt without it
    // The other problems' candidates in that round were still timed.
    expect(Object.values(loadDb(bad).entries).filter((e) => e.timed === 2).length).toBe(3);
    expect(existsSync(join(dir, '.tune'))).toBe(true);
  }, 150_000);

  it('--model-only writes the model\'s picks as source "model" entries without building; kernelFor marks them', async () => {
    const out = join(dir, 'h100-model.json');
    const r = await tune({ ...base, target: 'h100', out, ptxas: false, modelOnly: true, shapes: [{ kind: 'decode', B: 1, context: 100 }, { kind: 'prefill', T: 64 }] });
    expect(r.builds).toBe(0);
    const db = loadDb(out);
    expect(Object.keys(db.entries)).toHaveLength(8);
    for (const e of Object.values(db.entries)) {
      expect(e.source).toBe('model');
      expect(e.ms).toBeUndefined();
      expect(e.predictedMs).toBeGreaterThanOrEqual(e.floorMs);
    }
    setTuningDb('h100', db);
    try {
      const src = generateCudaSources(plan, { target: 'h100', maxTokens: 64, maxSeqs: 4, kernelFor });
      expect(src.kernels.filter((k) => k.tuning).every((k) => k.tuning!.source === 'model')).toBe(true);
      expect(src.kernels.some((k) => k.tuning)).toBe(true);
    } finally {
      setTuningDb('h100', undefined);
    }
  });

  it('the entries it wrote, read as an h100 database, compose into kernels that match the reference', async () => {
    const db = loadDb(join(dir, 'db-emu.json'));
    setTuningDb('h100', { ...db, gpu: 'h100' });
    try {
      const src = generateCudaSources(plan, { target: 'h100', maxTokens: 64, maxSeqs: 4, kernelFor });
      const byName = new Map(src.kernels.map((k) => [k.name, k]));
      plan.steps.forEach((s, i) => {
        const k = byName.get(src.stepKernel[i])!;
        if (s.kind === 'linear' || s.kind === 'attention') expect(k.tuning, `step ${i} ${s.kind}`).toMatchObject({ source: 'measured', gpu: 'h100' });
        else expect(k.tuning).toBeUndefined();
      });
      // Every step's problem had the decode and the prefill bucket.
      for (const k of src.kernels) if (k.tuning) expect(k.tuning.entries.length).toBe(2);
      const out = join(dir, 'composed');
      const { library } = await buildEmuLibrary(out, src);
      const cuda = new CudaBackend(plan, library, join(dir, 'weights.bin'), { numBlocks: 16, maxTokens: 64, maxSeqs: 4, emulator: true });
      const r = compareSteps(plan, weights, cuda, scenario(plan, { numBlocks: 16, seqs: 3, prompt: 12 }));
      cuda.close();
      expect(Math.max(...r.steps.map((s) => s.relErr))).toBeLessThan(0.05);
    } finally {
      setTuningDb('h100', undefined);
    }
  }, 150_000);
});

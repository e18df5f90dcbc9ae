/**
 * The GPU check (scripts/gpu/check.sh runs it, bundled, on the machine with the GPU): builds the
 * CUDA artifacts of the shipped `coder` model and of one-layer LLaMA-2-7B / LLaMA-3-8B shaped
 * synthetic models, checks every step of each against the reference backend on ragged batches
 * (outputs poisoned by the launcher's fresh allocations), greedy-decodes `coder` on both backends
 * and compares the tokens, and times every step (CUDA events) at decode and prefill shapes, with
 * each step's roofline floor from the card's measured GEMM rate and copy bandwidth
 * (scripts/gpu/baselines.py's JSON, when given) or the datasheet peaks.
 *
 *   node gpu-check.js --out DIR [--target h100|a100|emu] [--baselines DIR/baselines.json] [--quick]
 *
 * Writes DIR/gpu-check.json and prints a short table last. Also runs here with --target emu
 * (tiny shapes) as the dry run.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Engine } from '../../runtime/engine.js';
import { NgramProposer } from '../../runtime/spec/proposer.js';
import { CudaBackend } from '../../runtime/backends/cuda/index.js';
import type { RaggedBatch } from '../../runtime/batch.js';
import type { Plan } from '../../runtime/plan.js';
import { compileModel, writeArtifact } from '../compile.js';
import { buildCudaArtifact, type BuildTarget } from '../cuda-artifact.js';
import { stepCost } from '../kernels/cost.js';
import { LLAMA2_7B, LLAMA3_8B, syntheticLlama, type LlamaShape } from '../synthetic.js';
import { compareSteps, scenario, uniformBatch } from './step-check.js';

interface Peaks { gemmTflops: number; bandwidthGBs: number; source: string }
const DATASHEET: Record<string, Peaks> = {
  h100: { gemmTflops: 989, bandwidthGBs: 3350, source: 'H100 SXM datasheet (bf16 dense, HBM3)' },
  a100: { gemmTflops: 312, bandwidthGBs: 2039, source: 'A100 SXM 80GB datasheet (bf16 dense, HBM2e)' },
  emu: { gemmTflops: 0.001, bandwidthGBs: 1, source: 'emulator (no meaning)' },
};

function log(m: string) { console.error(`[gpu-check] ${m}`); }

function peaksFrom(baselines: string | undefined, target: string): Peaks {
  if (baselines && existsSync(baselines)) {
    try {
      const j = JSON.parse(readFileSync(baselines, 'utf8')) as { gemm?: { tflops: number }[]; copy?: { gbs: number }[] };
      const g = Math.max(...(j.gemm ?? []).map((x) => x.tflops));
      const c = Math.max(...(j.copy ?? []).map((x) => x.gbs));
      if (Number.isFinite(g) && Number.isFinite(c)) return { gemmTflops: g, bandwidthGBs: c, source: `measured by baselines.py (${baselines})` };
    } catch (e) {
      log(`cannot read ${baselines}: ${(e as Error).message}; using datasheet peaks`);
    }
  }
  return DATASHEET[target] ?? DATASHEET.h100;
}

async function build(plan: Plan, weights: Uint8Array, dir: string, target: BuildTarget, maxTokens: number, maxSeqs: number) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'plan.json'), JSON.stringify(plan) + '\n');
  writeFileSync(path.join(dir, 'weights.bin'), weights);
  const t0 = Date.now();
  const r = await buildCudaArtifact(plan, dir, { target, maxTokens, maxSeqs, onProgress: log, noModule: true });
  if (!r.library) throw new Error(`no library built: ${r.notes.join('; ')}`);
  return { library: r.library, buildMs: Date.now() - t0, units: r.units?.map((u) => ({ unit: u.unit, family: u.family, ptxas: u.ptxas })) };
}

export async function main(argv = process.argv.slice(2)): Promise<number> {
  const { values } = parseArgs({ args: argv, options: {
    out: { type: 'string', default: 'gpu-check-out' }, target: { type: 'string', default: 'h100' }, baselines: { type: 'string' },
    quick: { type: 'boolean', default: false }, root: { type: 'string', default: '.' },
    only: { type: 'string' },
  } });
  const want = (name: string) => !values.only || values.only.split(',').includes(name);
  const out = values.out!, target = values.target as BuildTarget, emu = target === 'emu', quick = values.quick || emu;
  mkdirSync(out, { recursive: true });
  const work = path.join(out, 'artifacts');
  const peaks = peaksFrom(values.baselines, target);
  const result: Record<string, unknown> = { target, peaks, started: new Date().toISOString(), models: [] as unknown[] };
  const models = result.models as Record<string, unknown>[];
  const table: string[] = [];
  let failures = 0;
  const tol = { stepRel: 0.05, logitsRel: 0.05 };

  // 1. coder: per-step check, greedy decode agreement.
  if (want('coder')) try {
    const model = path.join(values.root!, 'models', 'coder.onnx');
    log(`compiling ${model} (bf16)`);
    const r = compileModel(model, { dtype: 'bfloat16' });
    if (!r.plan) throw new Error(r.error ?? 'no plan');
    const dir = path.join(work, 'coder');
    writeArtifact(r, dir, model);
    const weights = r.weights!.pack();
    const b = await build(r.plan, weights, dir, target, 256, 16);
    const cuda = new CudaBackend(r.plan, b.library, path.join(dir, 'weights.bin'), { numBlocks: 128, maxTokens: 256, maxSeqs: 16, emulator: emu });
    const cmp = compareSteps(r.plan, weights, cuda, scenario(r.plan, { numBlocks: cuda.numBlocks, seqs: 3, prompt: emu ? 12 : 40 }));
    const worst = cmp.steps.reduce((w, s) => (s.relErr > w.relErr ? s : w), cmp.steps[0]);
    const logitsRel = Math.max(...cmp.logits.map((l) => l.relErr));
    cuda.close();
    const prompt = 'def fibonacci(n):';
    const steps = emu ? 6 : 48;
    const ref = Engine.load(dir, { backend: 'reference' });
    const gpu = Engine.load(dir, { backend: emu ? 'emu' : 'cuda', maxSeqs: 16, maxTokens: 256, numBlocks: 128 });
    const a = await ref.generate(prompt, { max_tokens: steps, temperature: 0 });
    const g = await gpu.generate(prompt, { max_tokens: steps, temperature: 0 });
    const same = a.tokens.filter((t, i) => g.tokens[i] === t).length;
    // Device sampling and speculative verification (n-gram drafts) against the host paths on the same GPU logits.
    const sampled = async (deviceSampling: boolean, spec: boolean) => {
      const e = Engine.load(dir, { backend: emu ? 'emu' : 'cuda', maxSeqs: 16, maxTokens: 256, numBlocks: 128, deviceSampling, ...(spec ? { speculative: { proposer: new NgramProposer(2, 4), maxK: 3 } } : {}) });
      const c = await e.generate('def add(a, b):\n    return a + b\n\ndef add(', { max_tokens: emu ? 6 : 32, temperature: 0.7, seed: 5, ignore_eos: true });
      return { tokens: c.tokens, device: e.stats.deviceSampledSteps, spec: e.spec?.metrics };
    };
    const dev = await sampled(true, false), host = await sampled(false, false), sdev = await sampled(true, true), shost = await sampled(false, true);
    const devOk = dev.device > 0 && JSON.stringify(dev.tokens) === JSON.stringify(host.tokens) && sdev.device > 0 && JSON.stringify(sdev.tokens) === JSON.stringify(shost.tokens) && JSON.stringify(sdev.spec) === JSON.stringify(shost.spec);
    const ok = worst.relErr < tol.stepRel && logitsRel < tol.logitsRel && same === a.tokens.length && devOk;
    if (!ok) failures++;
    models.push({ name: 'coder', build: b, worstStep: worst, logits: cmp.logits, greedy: { reference: a.tokens, cuda: g.tokens, agree: same }, deviceSampling: { dev, host, specDevice: sdev, specHost: shost, ok: devOk }, ok });
    table.push(`coder        steps worst rel ${worst.relErr.toExponential(2)} (step ${worst.index} ${worst.kind})  logits rel ${logitsRel.toExponential(2)}  greedy ${same}/${a.tokens.length}  device sampling/verify ${devOk ? 'same' : 'DIFFERENT'}  ${ok ? 'OK' : 'FAIL'}`);
  } catch (e) {
    failures++;
    models.push({ name: 'coder', error: String((e as Error).stack ?? e) });
    table.push(`coder        ERROR ${(e as Error).message.split('\n')[0]}`);
  }

  // 2. 7B/8B-shaped one-layer models: per-step check and per-step timing.
  const shapes: LlamaShape[] = emu
    ? [{ ...LLAMA3_8B, name: 'llama3-8b-mini', hidden: 128, heads: 4, kvHeads: 1, headDim: 32, intermediate: 160, vocab: 97, layers: 1, maxPositions: 256 }]
    : [{ ...LLAMA2_7B, layers: 1 }, { ...LLAMA3_8B, layers: 1, vocab: 32000, maxPositions: 4096 }];
  // LLaMA-3-8B's 128256-entry vocabulary would make a 2 GiB fp32 embedding in weights.bin and in
  // this process; its lm_head GEMM is measured by baselines.py (torch) instead.
  for (const shape of shapes.filter((x) => want(x.name))) {
    try {
      log(`synthetic ${shape.name}: generating weights`);
      const { plan, weights } = syntheticLlama(shape, { dtype: 'bfloat16', seed: 11 });
      const maxTokens = emu ? 64 : 4096, maxSeqs = emu ? 8 : 64;
      const dir = path.join(work, shape.name);
      const b = await build(plan, weights, dir, target, maxTokens, maxSeqs);
      const numBlocks = emu ? 64 : 64 * Math.ceil(2048 / plan.kv.blockSize) + 64;
      const cuda = new CudaBackend(plan, b.library, path.join(dir, 'weights.bin'), { numBlocks, maxTokens, maxSeqs, emulator: emu });
      const cmp = compareSteps(plan, weights, cuda, scenario(plan, { numBlocks, seqs: 2, prompt: emu ? 9 : 24 }));
      const worst = cmp.steps.reduce((w, s) => (s.relErr > w.relErr ? s : w), cmp.steps[0]);
      const logitsRel = Math.max(...cmp.logits.map((l) => l.relErr));
      const timings: unknown[] = [];
      if (!emu) {
        const shapesToTime = quick ? [{ B: 1, n: 1, ctx: 1024 }, { B: 1, n: 512, ctx: 0 }] : [{ B: 1, n: 1, ctx: 1024 }, { B: 32, n: 1, ctx: 1024 }, { B: 1, n: 512, ctx: 0 }, { B: 1, n: 2048, ctx: 0 }];
        for (const t of shapesToTime) {
          const batch = uniformBatch(plan, t.B, t.n, t.ctx);
          if (t.ctx > 0) cuda.forward(uniformBatch(plan, t.B, Math.min(t.ctx, maxTokens / t.B), 0));
          const ms = cuda.profile(batch, quick ? 5 : 20);
          const T = t.B * t.n, shapeB = { T, contextTokens: t.B * (t.ctx + t.n), attendedKeys: t.B * (t.n * t.ctx + (t.n * (t.n + 1)) / 2), L: t.B };
          const steps = plan.steps.map((s, i) => {
            const c = stepCost(plan, s, shapeB, { weightBytes: 2 }); // matrices are bf16 on the GPU
            const floorMs = Math.max(c.flops / (peaks.gemmTflops * 1e12), c.bytes / (peaks.bandwidthGBs * 1e9)) * 1e3;
            return { index: i, kind: s.kind, ms: ms[i], floorMs, efficiency: floorMs / ms[i] };
          });
          const total = steps.reduce((x, s) => x + s.ms, 0), floor = steps.reduce((x, s) => x + s.floorMs, 0);
          timings.push({ ...t, totalMs: total, floorMs: floor, steps });
          table.push(`${shape.name.padEnd(12)} B=${t.B} new=${t.n} ctx=${t.ctx}: ${total.toFixed(3)} ms/forward, floor ${floor.toFixed(3)} ms (${((floor / total) * 100).toFixed(0)}%)`);
        }
      }
      cuda.close();
      const ok = worst.relErr < tol.stepRel && logitsRel < tol.logitsRel;
      if (!ok) failures++;
      models.push({ name: shape.name, shape, build: b, worstStep: worst, logits: cmp.logits, timings, ok });
      table.push(`${shape.name.padEnd(12)} steps worst rel ${worst.relErr.toExponential(2)} (step ${worst.index} ${worst.kind})  logits rel ${logitsRel.toExponential(2)}  ${ok ? 'OK' : 'FAIL'}`);
    } catch (e) {
      failures++;
      models.push({ name: shape.name, error: String((e as Error).stack ?? e) });
      table.push(`${shape.name.padEnd(12)} ERROR ${(e as Error).message.split('\n')[0]}`);
    }
  }
  result.finished = new Date().toISOString();
  result.failures = failures;
  writeFileSync(path.join(out, 'gpu-check.json'), JSON.stringify(result, null, 1) + '\n');
  console.log(`\n== lfc GPU check (${target}; floors from ${peaks.source}) ==`);
  for (const l of table) console.log(l);
  console.log(failures ? `${failures} FAILED` : 'all OK');
  return failures ? 1 : 0;
}

if (process.argv[1] && /gpu-check\.(js|mjs|ts)$/.test(process.argv[1])) {
  main().then((c) => { process.exitCode = c; }, (e) => { console.error(e); process.exitCode = 2; });
}

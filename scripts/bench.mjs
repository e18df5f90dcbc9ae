#!/usr/bin/env node
/**
 * `npm run bench -- <name>`: lfc's CPU benchmarks. Each writes a JSON result under
 * bench/results/ named after the machine, and prints a short table.
 *
 *   import   load + shape-infer models/llama-32l-tiny.onnx (a 7B LLaMA's 32-layer node
 *            structure at tiny widths, weights in external data that must not be read)
 *   compile  import + passes + planning of the same export, beside onnxruntime-node's session
 *            creation (graph optimisation level 'all') on the same file, in the same process
 *   kernels  CPU kernel references: linear 128×512×2048 (fp16 storage), paged attention
 *            (B=4, 128 context, Hq 8, Hkv 2, D 64; prefill and decode), scheduler µs/step at
 *            256 running sequences
 *   decode   reference-backend tokens/s on the shipped default model: one sequence, greedy,
 *            128-token prompt then 64 decode steps
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, hostname } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

const root = join(import.meta.dirname, '..');
const lfc = await import(join(root, 'dist/compiler/index.js'));

const benches = {
  async import() {
    const model = join(root, 'models/llama-32l-tiny.onnx');
    const times = [];
    let nodes = 0, externalRead = false, symbolic = 0;
    for (let i = 0; i < 7; i++) {
      const t0 = performance.now();
      const m = lfc.importModelFile(model);
      lfc.inferShapes(m.graph);
      times.push(performance.now() - t0);
      nodes = m.graph.nodes.length;
      // Inspection must not have read external weights: loading is lazy and cached per initializer.
      externalRead = m.graph.initializers.some((v) => v.initializer.external && v.initializer.loaded);
      symbolic = [...m.graph.values.values()].filter((v) => v.type?.shape.some((d) => typeof d !== 'number')).length;
    }
    const first = times[0];
    times.sort((a, b) => a - b);
    return {
      model: 'models/llama-32l-tiny.onnx', nodes, symbolicValues: symbolic,
      firstRunMs: +first.toFixed(1), medianMs: +times[3].toFixed(1), runs: times.length,
      goalMs: 1000, externalDataRead: externalRead,
    };
  },
};

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

benches.compile = async () => {
  const model = join(root, 'models/llama-32l-tiny.onnx');
  const { compileModel } = await import(join(root, 'dist/compiler/compile.js'));
  const ort = await import('onnxruntime-node');
  const lfcMs = [], ortMs = [];
  let steps = 0, err;
  for (let i = 0; i < 3; i++) {
    let t0 = performance.now();
    const r = compileModel(model, { maxPositions: 2048 });
    lfcMs.push(performance.now() - t0);
    steps = r.plan?.steps.length ?? 0; err = r.error;
    t0 = performance.now();
    const s = await ort.InferenceSession.create(model, { graphOptimizationLevel: 'all' });
    ortMs.push(performance.now() - t0);
    await s.release();
  }
  return { model: 'models/llama-32l-tiny.onnx', planSteps: steps, error: err, lfcMedianMs: +median(lfcMs).toFixed(1), onnxruntimeSessionMedianMs: +median(ortMs).toFixed(1), ratio: +(median(ortMs) / median(lfcMs)).toFixed(2), runs: 3 };
};

benches.kernels = async () => {
  const { linear, pagedAttention } = await import(join(root, 'dist/runtime/kernels/index.js'));
  const { benchScheduler } = await import(join(root, 'dist/runtime/scheduler-bench.js'));
  const time = (f, n = 5) => { f(); const xs = []; for (let i = 0; i < n; i++) { const t0 = performance.now(); f(); xs.push(performance.now() - t0); } return +median(xs).toFixed(2); };
  const rnd = (n) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * 0.5);
  const T = 128, K = 512, N = 2048;
  const x = rnd(T * K), w = rnd(N * K);
  const linearMs = time(() => linear.reference({ x, weight: w, T, K, N, dtype: 'float16' }));
  const attn = (fresh) => {
    const B = 4, ctx = 128, bs = 16, Hq = 8, Hkv = 2, D = 64, nb = B * ctx / bs, Tt = B * fresh;
    const batch = {
      positions: Int32Array.from({ length: Tt }, (_, t) => ctx - fresh + (t % fresh)), seqStarts: Int32Array.from({ length: B + 1 }, (_, b) => b * fresh),
      contextLens: new Int32Array(B).fill(ctx), blockTables: Int32Array.from({ length: nb }, (_, i) => i), maxBlocksPerSeq: ctx / bs,
    };
    const args = { q: rnd(Tt * Hq * D), kCache: rnd(nb * bs * Hkv * D), vCache: rnd(nb * bs * Hkv * D), batch, Hq, Hkv, D, blockSize: bs, numBlocks: nb, dtype: 'float16' };
    return time(() => pagedAttention.reference(args));
  };
  const sched = benchScheduler();
  return { linear128x512x2048Ms: linearMs, pagedAttentionPrefillMs: attn(128), pagedAttentionDecodeMs: attn(1), schedulerUsPerStepAt256: +sched.usPerStep.toFixed(1) };
};

benches.decode = async () => {
  const { compileModel } = await import(join(root, 'dist/compiler/compile.js'));
  const { ReferenceBackend } = await import(join(root, 'dist/runtime/backends/reference.js'));
  const model = ['coder.onnx', 'coder-draft.onnx'].map((f) => join(root, 'models', f)).find((f) => existsSync(f));
  const r = compileModel(model, { maxPositions: 512 });
  if (r.error) throw new Error(r.error);
  const plan = r.plan, bs = plan.kv.blockSize;
  const be = new ReferenceBackend(plan, r.weights.pack(), { numBlocks: 64, maxTokens: 256 });
  const blocks = Array.from({ length: 64 }, (_, i) => i);
  const batch = (tokens, start) => {
    const T = tokens.length, ctx = start + T, nb = Math.ceil(ctx / bs);
    return {
      tokens: Int32Array.from(tokens), positions: Int32Array.from(tokens, (_, i) => start + i), seqStarts: Int32Array.from([0, T]),
      contextLens: Int32Array.from([ctx]), blockTables: Int32Array.from(blocks.slice(0, 32)), maxBlocksPerSeq: 32,
      slotMapping: Int32Array.from(tokens, (_, i) => blocks[Math.floor((start + i) / bs)] * bs + ((start + i) % bs)), logitIndices: Int32Array.from([T - 1]),
    };
  };
  const prompt = Array.from({ length: 128 }, (_, i) => 32 + (i * 7) % 90);
  let t0 = performance.now();
  let logits = be.forward(batch(prompt, 0));
  const prefillMs = performance.now() - t0;
  const argmax = (l) => l.reduce((bi, v, i, a) => (v > a[bi] ? i : bi), 0);
  let tok = argmax(logits), pos = prompt.length;
  t0 = performance.now();
  for (let i = 0; i < 64; i++) { logits = be.forward(batch([tok], pos)); tok = argmax(logits); pos++; }
  const decodeMs = performance.now() - t0;
  return { model: model.split('/').pop(), params: plan.weights.reduce((a, w) => a + w.bytes / 4, 0), prefillTokens: 128, prefillMs: +prefillMs.toFixed(1), prefillTokPerS: +(128000 / prefillMs).toFixed(1), decodeSteps: 64, decodeTokPerS: +(64000 / decodeMs).toFixed(1) };
};

const name = process.argv[2] ?? 'import';
if (!benches[name]) { console.error(`bench: unknown benchmark '${name}' (have: ${Object.keys(benches).join(', ')})`); process.exit(2); }
const result = { bench: name, machine: { host: hostname(), cpu: cpus()[0]?.model, cores: cpus().length, node: process.version }, date: new Date().toISOString(), result: await benches[name]() };
console.log(JSON.stringify(result, null, 2));
const dir = join(root, 'bench/results');
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, `${name}-cpu-${cpus().length}core.json`), JSON.stringify(result, null, 2) + '\n');

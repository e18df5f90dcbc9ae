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
 *   serve    a ShareGPT-like trace (lognormal prompt/output lengths scaled to the tiny model,
 *            Poisson arrivals) replayed in-process against the Engine on coder-draft (reference
 *            backend), policies 'continuous' and 'static' in the same run: throughput, TTFT /
 *            TPOT / ITL p50/p99, KV usage, and the continuous/static ratio
 *   spec     speculative decoding at batch 1 on held-out code prompts, coder (target) with the
 *            coder-draft model or n-gram lookup, k = 1..8 and adaptive: acceptance rate, mean
 *            accepted length, target forwards per token, wall-clock speedup, identical output
 *   quant    quantized formats on coder (fp32, bf16, int8 W8A8, int4 W4A16): held-out bits/byte on
 *            the first 16 chunks of 256 bytes, greedy agreement with fp32, weight bytes
 */
import { existsSync, mkdirSync, readFileSync as readFileSyncTop, writeFileSync } from 'node:fs';
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

const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] : NaN; };
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const ms = (x) => +x.toFixed(1);

/**
 * A deterministic ShareGPT-like trace (benches serve and ablation). ShareGPT's lengths are roughly
 * lognormal (means ~226 prompt / ~200 output tokens in vLLM's benchmark_serving); scaled here to
 * means 60 / 40, prompts in [2, 384], outputs in [2, min(256, P − prompt)], Poisson arrivals at
 * `rate` requests/s. Prompts: BOS then byte windows of runtime/*.ts.
 */
async function shareGptTrace({ N, rate, P }) {
  const { readFileSync, readdirSync } = await import('node:fs');
  let state = 0x9e3779b9;
  const rand = () => { state = (state + 0x6d2b79f5) >>> 0; let t = state; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
  const normal = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const lognormal = (mean, sigma) => Math.exp(Math.log(mean) - sigma * sigma / 2 + sigma * normal());
  const corpus = Buffer.concat(readdirSync(join(root, 'runtime')).filter((f) => f.endsWith('.ts')).map((f) => readFileSync(join(root, 'runtime', f))));
  const trace = [];
  let at = 0;
  for (let i = 0; i < N; i++) {
    at += -Math.log(1 - rand()) / rate;
    const promptLen = Math.min(384, Math.max(2, Math.round(lognormal(60, 0.8))));
    const outputLen = Math.min(P - promptLen, 256, Math.max(2, Math.round(lognormal(40, 0.9))));
    const off = Math.floor(rand() * (corpus.length - promptLen));
    trace.push({ at, prompt: [256, ...corpus.subarray(off, off + promptLen - 1)], outputLen, seed: i });
  }
  return trace;
}

/** Trace summary (lengths) for a result file. */
const traceSummary = (trace) => ({
  promptTokens: { mean: +mean(trace.map((t) => t.prompt.length)).toFixed(1), p50: pct(trace.map((t) => t.prompt.length), 0.5), max: Math.max(...trace.map((t) => t.prompt.length)) },
  outputTokens: { mean: +mean(trace.map((t) => t.outputLen)).toFixed(1), p50: pct(trace.map((t) => t.outputLen), 0.5), max: Math.max(...trace.map((t) => t.outputLen)) },
});

/**
 * Replay `trace` against `engine` in real time (request i starts at t0 + at). Each request asks
 * `maxTokens(req)` tokens (default its outputLen, with ignore_eos); with `stopAt`, the client
 * stops reading after outputLen tokens (its stream closes: the engine aborts it, as at an EOS),
 * so max_tokens can be a generous cap as servers see it. Returns per-request token times.
 */
async function replayTrace(engine, trace, { sampling = (req) => ({ temperature: 0.8, seed: req.seed }), maxTokens = (req) => req.outputLen, stopAt = false } = {}) {
  const t0 = performance.now();
  const one = async (req) => {
    const delay = t0 + req.at * 1000 - performance.now();
    if (delay > 0) await new Promise((res) => setTimeout(res, delay));
    const start = performance.now();
    const times = [];
    const it = engine.stream(req.prompt, { max_tokens: maxTokens(req), ignore_eos: true, ...sampling(req) });
    for (;;) {
      const x = await it.next();
      if (x.done) break;
      const now = performance.now();
      for (let k = 0; k < x.value.tokens.length && !(stopAt && times.length >= req.outputLen); k++) times.push(now);
      if (stopAt && times.length >= req.outputLen) { await it.return(undefined); break; }
    }
    return { start, times, prompt: req.prompt.length };
  };
  const done = await Promise.all(trace.map(one));
  return { done, wall: (performance.now() - t0) / 1000 };
}

/** Throughput and latency percentiles of a replay. */
function latencyStats({ done, wall }) {
  const ttft = done.map((d) => d.times[0] - d.start);
  const tpot = done.filter((d) => d.times.length > 1).map((d) => (d.times.at(-1) - d.times[0]) / (d.times.length - 1));
  const itl = done.flatMap((d) => d.times.slice(1).map((t, i) => t - d.times[i]));
  const out = done.reduce((a, d) => a + d.times.length, 0), inp = done.reduce((a, d) => a + d.prompt, 0);
  return {
    wallS: +wall.toFixed(2), requestsPerS: +(done.length / wall).toFixed(2), outputTokPerS: +(out / wall).toFixed(1), totalTokPerS: +((out + inp) / wall).toFixed(1),
    ttftMs: { mean: ms(mean(ttft)), p50: ms(pct(ttft, 0.5)), p99: ms(pct(ttft, 0.99)) },
    tpotMs: { mean: ms(mean(tpot)), p50: ms(pct(tpot, 0.5)), p99: ms(pct(tpot, 0.99)) },
    itlMs: { mean: ms(mean(itl)), p50: ms(pct(itl, 0.5)), p99: ms(pct(itl, 0.99)) },
  };
}

benches.serve = async () => {
  const { compileModel } = await import(join(root, 'dist/compiler/compile.js'));
  const { ReferenceBackend } = await import(join(root, 'dist/runtime/backends/reference.js'));
  const { Engine } = await import(join(root, 'dist/runtime/engine.js'));
  const P = 512, NUM_BLOCKS = 128, MAX_SEQS = 16, MAX_BATCHED = 256;
  const N = Number(process.env.SERVE_REQUESTS ?? 300), RATE = Number(process.env.SERVE_RATE ?? 12); // requests/s
  const r = compileModel(join(root, 'models/coder-draft.onnx'), { maxPositions: P });
  if (r.error) throw new Error(r.error);
  const weights = r.weights.pack();
  const trace = await shareGptTrace({ N, rate: RATE, P });
  const { NgramProposer } = await import(join(root, 'dist/runtime/spec/index.js'));
  const run = async (policy, speculative) => {
    const engine = new Engine(new ReferenceBackend(r.plan, weights, { numBlocks: NUM_BLOCKS, maxTokens: MAX_BATCHED }), {
      policy, maxSeqs: MAX_SEQS, maxBatchedTokens: MAX_BATCHED, ...(speculative ? { speculative } : {}),
    });
    await Promise.all([0, 1, 2, 3].map((i) => engine.generate(trace[i].prompt, { max_tokens: 8, temperature: 0 }))); // warm-up
    const kv = engine.scheduler.kv, steps0 = engine.stats.steps, pre0 = engine.scheduler.numPreemptions;
    const usage = [], fill = [];
    const sampler = setInterval(() => {
      if (engine.scheduler.numRunning === 0) return;
      const s = kv.stats();
      usage.push(s.usedBlocks / s.numBlocks); fill.push(s.utilisation);
    }, 20);
    const replay = await replayTrace(engine, trace);
    clearInterval(sampler);
    const res = {
      policy, ...latencyStats(replay),
      kvBlocksUsedMean: +mean(usage).toFixed(3), kvBlocksUsedMax: +Math.max(...usage).toFixed(3), kvSlotFillMean: +mean(fill).toFixed(3),
      steps: engine.stats.steps - steps0, preemptions: engine.scheduler.numPreemptions - pre0,
    };
    if (engine.spec) {
      const m = engine.spec.metrics;
      res.speculation = { numSpecRows: m.numSpecRows, draftTokens: m.numDraftTokens, acceptedTokens: m.numAcceptedTokens, maxBatchTokens: engine.spec.maxBatchTokens };
    }
    if (kv.numFreeBlocks !== NUM_BLOCKS) throw new Error(`${policy}: ${NUM_BLOCKS - kv.numFreeBlocks} KV blocks leaked`);
    console.error(`[bench serve] ${policy}${speculative ? ' + n-gram speculation' : ''}: ${res.outputTokPerS} out tok/s, TTFT p50 ${res.ttftMs.p50} ms, TPOT p50 ${res.tpotMs.p50} ms in ${res.wallS} s`);
    return res;
  };
  const continuous = await run('continuous');
  const stat = await run('static');
  // Issue 10's loaded-server check: the same trace with n-gram speculation (k ≤ 4, adaptive, the
  // engine's back-off above 64 tokens per step): throughput must not fall below plain decoding.
  const spec = await run('continuous', { proposer: new NgramProposer(3, 4), maxK: 4 });
  return {
    model: 'coder-draft.onnx', backend: 'reference', maxPositions: P, numBlocks: NUM_BLOCKS, blockSize: r.plan.kv.blockSize, maxSeqs: MAX_SEQS, maxBatchedTokens: MAX_BATCHED,
    trace: {
      requests: N, poissonRatePerS: RATE, sampling: 'temperature 0.8, seed per request, ignore_eos (outputs run to their drawn length)',
      promptTokens: { dist: 'lognormal mean 60 sigma 0.8, in [2, 384]', ...traceSummary(trace).promptTokens },
      outputTokens: { dist: 'lognormal mean 40 sigma 0.9, in [2, 256]', ...traceSummary(trace).outputTokens },
    },
    continuous, static: stat,
    continuousSpeculative: spec,
    speculativeOverPlain: { outputThroughput: +(spec.outputTokPerS / continuous.outputTokPerS).toFixed(2), tpotP50: +(spec.tpotMs.p50 / continuous.tpotMs.p50).toFixed(3) },
    continuousOverStatic: { outputThroughput: +(continuous.outputTokPerS / stat.outputTokPerS).toFixed(2), ttftP50: +(continuous.ttftMs.p50 / stat.ttftMs.p50).toFixed(3), ttftP99: +(continuous.ttftMs.p99 / stat.ttftMs.p99).toFixed(3) },
  };
};

benches.spec = async () => {
  // Speculative decoding at batch 1 on held-out code prompts (models/data/prompts.json), greedy,
  // 48 tokens each: the target alone, then draft-model (coder-draft) and n-gram (n = 3) proposers
  // at k = 1..8 (adaptive k off, so k is the draft length). SPEC_PROMPTS sets the subsample.
  const { compileModel } = await import(join(root, 'dist/compiler/compile.js'));
  const { ReferenceBackend } = await import(join(root, 'dist/runtime/backends/reference.js'));
  const { Engine } = await import(join(root, 'dist/runtime/engine.js'));
  const { DraftModelProposer, NgramProposer } = await import(join(root, 'dist/runtime/spec/index.js'));
  const { readFileSync } = await import('node:fs');
  const target = ['coder.onnx', 'coder-draft.onnx'].map((f) => join(root, 'models', f)).find((f) => existsSync(f));
  const compile = (f) => { const r = compileModel(f, { maxPositions: 512 }); if (r.error) throw new Error(r.error); return { plan: r.plan, weights: r.weights.pack() }; };
  const tgt = compile(target), dft = compile(join(root, 'models/coder-draft.onnx'));
  const all = JSON.parse(readFileSync(join(root, 'models/data/prompts.json'), 'utf8'));
  const NP = Number(process.env.SPEC_PROMPTS ?? 6), TOK = 48;
  const prompts = Array.from({ length: NP }, (_, i) => all[Math.floor((i * all.length) / NP)].slice(-96));
  const run = async (proposer, k, adaptive = false) => {
    const e = new Engine(new ReferenceBackend(tgt.plan, tgt.weights, { numBlocks: 64, maxTokens: 256 }), {
      maxSeqs: 1, ...(proposer ? { speculative: { proposer, maxK: k, adaptive } } : {}),
    });
    const out = [];
    let gen = 0;
    const t0 = performance.now();
    for (const p of prompts) { const c = await e.generate(p, { max_tokens: TOK, temperature: 0, ignore_eos: true }); out.push(c.tokens); gen += c.tokens.length; }
    const ms = performance.now() - t0, m = e.spec?.metrics;
    // Target forwards per generated token, decode phase: the first token of each prompt comes from its prefill.
    const decodeForwards = e.stats.steps - prompts.length, decodeTokens = gen - prompts.length;
    return {
      out, ms, r: {
        k, ms: +ms.toFixed(0), tokens: gen, targetForwardsPerToken: +(decodeForwards / decodeTokens).toFixed(3),
        ...(m ? {
          acceptanceRate: +(m.numAcceptedTokens / Math.max(1, m.numDraftTokens)).toFixed(3),
          meanAcceptedLength: +(m.numEmittedTokens / Math.max(1, m.numSpecRows)).toFixed(2),
          acceptanceRatePerPosition: m.proposedPerPos.map((n, j) => +(n ? m.acceptedPerPos[j] / n : 0).toFixed(3)),
          ...(proposer.forwards !== undefined ? { draftForwards: proposer.forwards } : {}),
        } : {}),
      },
    };
  };
  const base = await run(undefined, 0);
  const results = { draft: [], ngram: [] };
  for (const kind of ['draft', 'ngram']) {
    for (let k = 1; k <= 8; k++) {
      const prop = kind === 'draft' ? new DraftModelProposer(new ReferenceBackend(dft.plan, dft.weights, { numBlocks: 64, maxTokens: 256 })) : new NgramProposer(3, 8);
      const x = await run(prop, k);
      results[kind].push({ ...x.r, speedup: +(base.ms / x.ms).toFixed(2), identicalToGreedy: JSON.stringify(x.out) === JSON.stringify(base.out) });
      console.error(`[spec] ${kind} k=${k}: ${JSON.stringify(results[kind].at(-1))}`);
    }
  }
  // The default engine setting: adaptive k (from each request's acceptance EMA) up to maxK = 8.
  const adaptive = {};
  for (const kind of ['draft', 'ngram']) {
    const prop = kind === 'draft' ? new DraftModelProposer(new ReferenceBackend(dft.plan, dft.weights, { numBlocks: 64, maxTokens: 256 })) : new NgramProposer(3, 8);
    const x = await run(prop, 8, true);
    adaptive[kind] = { ...x.r, k: 'adaptive ≤ 8', speedup: +(base.ms / x.ms).toFixed(2), identicalToGreedy: JSON.stringify(x.out) === JSON.stringify(base.out) };
    console.error(`[spec] ${kind} adaptive: ${JSON.stringify(adaptive[kind])}`);
  }
  return {
    target: target.split('/').pop(), draft: 'coder-draft.onnx', prompts: NP, promptChars: 96, tokensPerPrompt: TOK, batch: 1, sampling: 'greedy',
    baseline: base.r, ...results, adaptive,
  };
};

/** Single-sequence batch over blocks 0..31 (benches quant and ablation): `all` asks logits at every token. */
const seqBatch = (tokens, start, all) => {
  const T = tokens.length, nb = 32;
  return {
    tokens: Int32Array.from(tokens), positions: Int32Array.from(tokens, (_, i) => start + i), seqStarts: Int32Array.from([0, T]),
    contextLens: Int32Array.from([start + T]), blockTables: Int32Array.from({ length: nb }, (_, i) => i), maxBlocksPerSeq: nb,
    slotMapping: Int32Array.from(tokens, (_, i) => start + i), logitIndices: all ? Int32Array.from(tokens, (_, i) => i) : Int32Array.from([T - 1]),
  };
};

/**
 * Held-out bits/byte of a backend (the models/README.md procedure): BOS + 255 bytes of each
 * 256-byte chunk of models/data/heldout.txt, −log2 p(byte) at every position, first `chunks` chunks.
 */
async function heldoutBitsPerByte(be, chunks) {
  const { readFileSync } = await import('node:fs');
  const held = readFileSync(join(root, 'models/data/heldout.txt')).subarray(0, chunks * 256);
  const V = be.plan.model.vocab, BOS = be.plan.model.bos ?? 256;
  let bits = 0, n = 0;
  for (let c = 0; c < chunks; c++) {
    const bytes = held.subarray(c * 256, c * 256 + 256);
    const logits = be.forward(seqBatch([BOS, ...bytes.subarray(0, 255)], 0, true));
    for (let t = 0; t < 256; t++) {
      const row = logits.subarray(t * V, t * V + V);
      let m = -Infinity; for (const v of row) m = Math.max(m, v);
      let z = 0; for (const v of row) z += Math.exp(v - m);
      bits += -(row[bytes[t]] - m - Math.log(z)) / Math.LN2; n++;
    }
  }
  return bits / n;
}

benches.quant = async () => {
  // Quality of the quantized formats on the shipped coder (issue 11): held-out bits/byte (the
  // models/README.md procedure, first CHUNKS chunks of 256 bytes), greedy agreement with fp32, weight bytes.
  const { compileModel } = await import(join(root, 'dist/compiler/compile.js'));
  const { quantizePlan } = await import(join(root, 'dist/compiler/passes/quantize.js'));
  const { ReferenceBackend } = await import(join(root, 'dist/runtime/backends/reference.js'));
  const { readFileSync } = await import('node:fs');
  const model = join(root, 'models/coder.onnx');
  const CHUNKS = 16, GEN = 24;
  const prompts = JSON.parse(readFileSync(join(root, 'models/data/prompts.json'), 'utf8')).slice(0, 3).map((p) => Buffer.from(typeof p === 'string' ? p : p.prompt ?? JSON.stringify(p)).subarray(-64));
  const fp32 = compileModel(model, { maxPositions: 512 });
  const bf16 = compileModel(model, { maxPositions: 512, dtype: 'bfloat16' });
  const formats = { fp32: { plan: fp32.plan, bin: fp32.weights.pack() }, bf16: { plan: bf16.plan, bin: bf16.weights.pack() } };
  for (const kind of ['int8', 'int4']) {
    const t0 = performance.now();
    const q = quantizePlan(fp32.plan, formats.fp32.bin, { kind, onProgress: (m) => { if (!m.startsWith('quantize')) console.error(`[quant] ${m}`); } });
    formats[kind] = { plan: q.plan, bin: q.weights, quantizeMs: performance.now() - t0 };
  }
  const batch = seqBatch;
  const argmax = (l) => l.reduce((bi, v, i, a) => (v > a[bi] ? i : bi), 0);
  const BOS = fp32.plan.model.bos ?? 256;
  const out = {};
  let greedyRef;
  for (const [name, f] of Object.entries(formats)) {
    const be = new ReferenceBackend(f.plan, f.bin, { numBlocks: 40, maxTokens: 256 });
    const t0 = performance.now();
    const bpb = await heldoutBitsPerByte(be, CHUNKS);
    const greedy = prompts.map((p) => {
      let l = be.forward(batch([BOS, ...p], 0, false)), pos = p.length + 1;
      const toks = [];
      for (let i = 0; i < GEN; i++) { const t = argmax(l); toks.push(t); l = be.forward(batch([t], pos++, false)); }
      return toks;
    });
    if (name === 'fp32') greedyRef = greedy;
    let same = 0, total = 0;
    greedy.forEach((g, i) => g.forEach((t, j) => { total++; if (t === greedyRef[i][j]) same++; }));
    const weightBytes = f.plan.weights.reduce((a, w) => a + w.bytes, 0);
    out[name] = { bitsPerByte: +bpb.toFixed(4), greedyAgreement: +(same / total).toFixed(3), weightBytes, ms: +(performance.now() - t0).toFixed(0), ...(f.quantizeMs ? { quantizeMs: +f.quantizeMs.toFixed(0) } : {}) };
    console.error(`[quant] ${name}: ${JSON.stringify(out[name])}`);
  }
  for (const k of ['bf16', 'int8', 'int4']) out[k].degradationPct = +(100 * (out[k].bitsPerByte / out.fp32.bitsPerByte - 1)).toFixed(2);
  return { model: 'coder.onnx', heldoutBytes: CHUNKS * 256, chunks: CHUNKS, greedyPrompts: prompts.length, greedyTokens: GEN, int4GroupSize: 128, smoothQuantAlpha: 0.5, goals: { int8: '< 1%', int4: '< 3%' }, formats: out };
};

benches.ablation = async () => {
  // Issue 13, CPU scale: the five techniques switched one by one through the same Engine and
  // artifact on the reference backend. Env: ABL_REQUESTS (per rate), ABL_RATES (req/s, comma-
  // separated), ABL_MAX_TOKENS (the max_tokens cap every request asks), ABL_QUANT (int8|int4),
  // ABL_CHUNKS (held-out chunks for bits/byte), ABL_CODE_PROMPTS, ABL_CODE_RATE.
  const { compileModel } = await import(join(root, 'dist/compiler/compile.js'));
  const { quantizePlan } = await import(join(root, 'dist/compiler/passes/quantize.js'));
  const { ReferenceBackend } = await import(join(root, 'dist/runtime/backends/reference.js'));
  const { Engine } = await import(join(root, 'dist/runtime/engine.js'));
  const { DraftModelProposer, NgramProposer } = await import(join(root, 'dist/runtime/spec/index.js'));
  const { pagedAttention, unfusedAttention } = await import(join(root, 'dist/runtime/kernels/index.js'));
  const { readFileSync } = await import('node:fs');
  const env = process.env;
  const P = 512, NUM_BLOCKS = Number(env.ABL_BLOCKS ?? 128), MAX_SEQS = 16, MAX_BATCHED = 256;
  const N = Number(env.ABL_REQUESTS ?? 40), RATES = (env.ABL_RATES ?? '4,12').split(',').map(Number);
  const CAP = Number(env.ABL_MAX_TOKENS ?? 256), QUANT = env.ABL_QUANT ?? 'int8', CHUNKS = Number(env.ABL_CHUNKS ?? 4);
  const CODE_N = Number(env.ABL_CODE_PROMPTS ?? 8), CODE_TOK = 48, CODE_RATE = Number(env.ABL_CODE_RATE ?? 1);
  const t00 = performance.now();
  const log = (m) => console.error(`[ablation ${((performance.now() - t00) / 1000).toFixed(0)}s] ${m}`);

  // The artifacts: fp32 plans, and the quantized plans of the same compile (compiler/passes/quantize.ts).
  const formats = async (file, kinds) => {
    const r = compileModel(join(root, 'models', file), { maxPositions: P });
    if (r.error) throw new Error(r.error);
    const out = { fp32: { plan: r.plan, bin: r.weights.pack() } };
    for (const kind of kinds) {
      const t0 = performance.now();
      const q = quantizePlan(r.plan, out.fp32.bin, { kind });
      out[kind] = { plan: q.plan, bin: q.weights, quantizeMs: Math.round(performance.now() - t0) };
    }
    for (const [k, f] of Object.entries(out)) {
      f.weightBytes = f.plan.weights.reduce((a, w) => a + w.bytes, 0);
      f.bitsPerByte = +(await heldoutBitsPerByte(new ReferenceBackend(f.plan, f.bin, { numBlocks: 40, maxTokens: 256 }), CHUNKS)).toFixed(4);
      log(`${file} ${k}: ${f.bitsPerByte} bits/byte on ${CHUNKS} held-out chunks, ${f.weightBytes} weight bytes`);
    }
    return out;
  };
  const small = await formats('coder-draft.onnx', ['int8', 'int4']);
  const big = await formats('coder.onnx', [QUANT]);

  const TECH = ['batching', 'paged', 'flash', 'quant', 'spec'];
  const LABEL = { batching: 'continuous batching', paged: 'paged KV', flash: 'flash attention', quant: `${QUANT} weights`, spec: 'speculation' };
  const engineFor = (fmts, on, { spec = 'ngram', quant = QUANT, draft } = {}) => {
    const f = on.includes('quant') ? fmts[quant] : fmts.fp32;
    const attention = on.includes('flash') ? 'flash' : 'unfused';
    const be = new ReferenceBackend(f.plan, f.bin, { numBlocks: NUM_BLOCKS, maxTokens: MAX_BATCHED, attention });
    let speculative;
    if (on.includes('spec')) {
      const proposer = spec === 'draft'
        ? new DraftModelProposer(new ReferenceBackend(draft.plan, draft.bin, { numBlocks: NUM_BLOCKS, maxTokens: MAX_BATCHED, attention }))
        : new NgramProposer(3, 4);
      speculative = { proposer, maxK: 4 };
    }
    const engine = new Engine(be, {
      policy: on.includes('batching') ? 'continuous' : 'static', kv: on.includes('paged') ? 'paged' : 'contiguous',
      maxSeqs: MAX_SEQS, maxBatchedTokens: MAX_BATCHED, ...(speculative ? { speculative } : {}),
    });
    return { engine, bitsPerByte: f.bitsPerByte, weightBytes: f.weightBytes };
  };

  // One replay with per-step KV accounting (sampled before each forward: what the step runs on).
  const run = async (name, on, fmts, trace, opts = {}, replayOpts = {}) => {
    const { engine, bitsPerByte, weightBytes } = engineFor(fmts, on, opts);
    await Promise.all(trace.slice(0, 2).map((t) => engine.generate(t.prompt, { max_tokens: 4, temperature: 0 }))); // warm-up
    const kv = engine.scheduler.kv, be = engine.backend, forward = be.forward.bind(be);
    const acc = { steps: 0, reserved: 0, live: 0, spare: 0, running: 0, maxRunning: 0, maxReserved: 0 };
    be.forward = (batch) => {
      const s = kv.stats();
      acc.steps++; acc.reserved += s.usedBlocks; acc.live += s.utilisation * s.usedBlocks; acc.spare += s.reservedBlocks;
      const nr = engine.scheduler.numRunning;
      acc.running += nr; acc.maxRunning = Math.max(acc.maxRunning, nr); acc.maxReserved = Math.max(acc.maxReserved, s.usedBlocks);
      return forward(batch);
    };
    const pre0 = engine.scheduler.numPreemptions, steps0 = engine.stats.steps;
    const replay = await replayTrace(engine, trace, {
      stopAt: true, maxTokens: (req) => Math.min(CAP, P - (typeof req.prompt === 'string' ? req.prompt.length + 1 : req.prompt.length)), ...replayOpts,
    });
    be.forward = forward;
    if (kv.numFreeBlocks !== NUM_BLOCKS) throw new Error(`${name}: ${NUM_BLOCKS - kv.numFreeBlocks} KV blocks leaked`);
    const res = {
      config: name, on: [...on], ...(opts.spec && on.includes('spec') ? { proposer: opts.spec } : {}), ...latencyStats(replay),
      kv: {
        blocks: NUM_BLOCKS, reservedBlocksMean: +(acc.reserved / acc.steps).toFixed(1), liveTokenBlocksMean: +(acc.live / acc.steps).toFixed(1),
        utilisation: +(acc.live / Math.max(1e-9, acc.reserved)).toFixed(3), reservedAheadBlocksMean: +(acc.spare / acc.steps).toFixed(1), reservedBlocksMax: acc.maxReserved,
      },
      runningMean: +(acc.running / acc.steps).toFixed(2), maxConcurrentSeqs: acc.maxRunning,
      steps: engine.stats.steps - steps0, preemptions: engine.scheduler.numPreemptions - pre0,
      ...(on.includes('quant') ? { quant: opts.quant ?? QUANT, bitsPerByte, bitsPerByteFp32: fmts.fp32.bitsPerByte } : {}), weightBytes,
    };
    if (engine.spec) {
      const m = engine.spec.metrics;
      res.speculation = { draftTokens: m.numDraftTokens, acceptedTokens: m.numAcceptedTokens, acceptanceRate: +(m.numAcceptedTokens / Math.max(1, m.numDraftTokens)).toFixed(3) };
    }
    log(`${name}: ${res.outputTokPerS} out tok/s, TTFT p50/p99 ${res.ttftMs.p50}/${res.ttftMs.p99} ms, TPOT p50 ${res.tpotMs.p50} ms, KV util ${res.kv.utilisation}, max seqs ${res.maxConcurrentSeqs}, ${res.wallS} s`);
    return res;
  };

  const configs = [
    { name: 'naive', on: [] },
    ...TECH.map((t) => ({ name: `+ ${LABEL[t]}`, on: [t] })),
    ...TECH.map((t) => ({ name: `all − ${LABEL[t]}`, on: TECH.filter((x) => x !== t) })),
    { name: 'all five', on: TECH },
    ...(QUANT === 'int8' ? [{ name: 'all five (int4 weights)', on: TECH, opts: { quant: 'int4' } }] : []),
  ];
  const shareGpt = [];
  for (const rate of RATES) {
    const trace = await shareGptTrace({ N, rate, P });
    const rows = [];
    for (const c of configs) rows.push(await run(c.name, c.on, small, trace, { spec: 'ngram', ...c.opts }));
    shareGpt.push({ ratePerS: rate, requests: N, ...traceSummary(trace), rows });
  }

  // Code completion: held-out prompts (models/data/prompts.json, last 96 chars), greedy, 48
  // tokens each, Poisson arrivals; coder as the target, coder-draft as its draft model.
  const all = JSON.parse(readFileSync(join(root, 'models/data/prompts.json'), 'utf8'));
  let st = 7;
  const rnd = () => { st = (Math.imul(st, 1103515245) + 12345) >>> 0; return st / 4294967296; };
  let at = 0;
  const codeTrace = Array.from({ length: CODE_N }, (_, i) => {
    at += -Math.log(1 - rnd()) / CODE_RATE;
    return { at, prompt: all[Math.floor((i * all.length) / CODE_N) % all.length].slice(-96), outputLen: CODE_TOK, seed: i };
  });
  const greedy = { sampling: () => ({ temperature: 0 }) };
  const codeConfigs = [
    { name: 'naive', on: [] },
    { name: '+ speculation (draft model)', on: ['spec'], opts: { spec: 'draft' } },
    { name: 'all − speculation', on: TECH.filter((x) => x !== 'spec') },
    { name: 'all five (n-gram)', on: TECH, opts: { spec: 'ngram' } },
    { name: 'all five (draft model)', on: TECH, opts: { spec: 'draft' } },
  ];
  const codeRows = [];
  for (const c of codeConfigs) codeRows.push(await run(c.name, c.on, big, codeTrace, { draft: small.fp32, ...c.opts }, greedy));

  // The attention op alone, fused ('flash') vs unfused reference, at the kernels bench's shape.
  const time = (f, n = 5) => { f(); const xs = []; for (let i = 0; i < n; i++) { const t0 = performance.now(); f(); xs.push(performance.now() - t0); } return +median(xs).toFixed(2); };
  const rndArr = (n) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * 0.5);
  const attn = (fresh) => {
    const B = 4, ctx = 128, bs = 16, Hq = 8, Hkv = 2, D = 64, nb = B * ctx / bs, Tt = B * fresh;
    const batch = {
      positions: Int32Array.from({ length: Tt }, (_, t) => ctx - fresh + (t % fresh)), seqStarts: Int32Array.from({ length: B + 1 }, (_, b) => b * fresh),
      contextLens: new Int32Array(B).fill(ctx), blockTables: Int32Array.from({ length: nb }, (_, i) => i), maxBlocksPerSeq: ctx / bs,
    };
    const args = { q: rndArr(Tt * Hq * D), kCache: rndArr(nb * bs * Hkv * D), vCache: rndArr(nb * bs * Hkv * D), batch, Hq, Hkv, D, blockSize: bs, numBlocks: nb, dtype: 'float32' };
    return { flashMs: time(() => pagedAttention.reference(args), 9), unfusedMs: time(() => unfusedAttention.reference(args), 9) };
  };
  const attentionOp = { shape: 'B=4, context 128, Hq 8, Hkv 2, D 64, fp32', prefill128: attn(128), decode1: attn(1) };
  log(`attention op: ${JSON.stringify(attentionOp)}`);

  const result = {
    model: 'coder-draft.onnx (ShareGPT-like trace); coder.onnx + coder-draft.onnx draft (code trace)', backend: 'reference (CPU)',
    maxPositions: P, numBlocks: NUM_BLOCKS, blockSize: small.fp32.plan.kv.blockSize, maxSeqs: MAX_SEQS, maxBatchedTokens: MAX_BATCHED,
    switches: {
      batching: "on: policy 'continuous'; off: 'static' (admit up to maxSeqs when idle, run them to completion)",
      paged: "on: kv 'paged' (blocks on demand, prefix caching); off: kv 'contiguous' (prompt + max_tokens reserved at admission, no prefix caching)",
      flash: "on: ReferenceBackend attention 'flash' (fused single-pass paged reference); off: 'unfused' (K/V gathered, QKᵀ materialised, softmax, ·V)",
      quant: `on: ${QUANT} weights (compiler/passes/quantize.ts on the same compile); off: fp32 weights`,
      spec: 'on: n-gram prompt lookup (n = 3, k ≤ 4, adaptive) on the ShareGPT-like trace; n-gram or the coder-draft model on the code trace; off: none',
    },
    trace: {
      shareGpt: `lognormal prompt mean 60 / output mean 40 (serve bench's generator), ${N} requests per rate, Poisson ${RATES.join(' and ')} req/s, temperature 0.8, seed per request; every request asks max_tokens = min(${CAP}, ${P} − prompt) and the client stops reading at its drawn output length (the engine frees it, as at an EOS)`,
      code: `${CODE_N} held-out prompts (models/data/prompts.json, last 96 chars), greedy, ${CODE_TOK} tokens each, Poisson ${CODE_RATE} req/s, same max_tokens cap`,
    },
    quality: Object.fromEntries([['coder-draft', small], ['coder', big]].map(([m, f]) => [m, Object.fromEntries(Object.entries(f).map(([k, v]) => [k, { bitsPerByte: v.bitsPerByte, weightBytes: v.weightBytes, ...(v.quantizeMs ? { quantizeMs: v.quantizeMs } : {}) }]))])),
    heldoutChunks: CHUNKS, dims: { 'coder-draft': small.fp32.plan.model, coder: big.fp32.plan.model },
    shareGpt, code: { ...traceSummary(codeTrace), rows: codeRows }, attentionOp,
    totalS: Math.round((performance.now() - t00) / 1000), machineCores: cpus().length,
  };
  const base = join(root, 'bench/results', `ablation-cpu-${cpus().length}core`);
  mkdirSync(join(root, 'bench/results'), { recursive: true });
  writeFileSync(`${base}.md`, ablationMarkdown(result));
  writeFileSync(`${base}.svg`, ablationSvg(result));
  return result;
};

/** bench/results/ablation-*.md: the tables, the seed's claims against these numbers, the reading. */
function ablationMarkdown(r, repeat) {
  const f1 = (x) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
  const sec = (msv) => (msv >= 1000 ? `${(msv / 1000).toFixed(2)} s` : `${msv.toFixed(0)} ms`);
  const table = (rows) => [
    '| configuration | out tok/s | TTFT p50 / p99 | TPOT p50 / p99 | KV blocks reserved (mean) | blocks of live tokens (mean) | utilisation | max concurrent seqs | preemptions | bits/byte |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map((x) => `| ${x.config} | ${f1(x.outputTokPerS)} | ${sec(x.ttftMs.p50)} / ${sec(x.ttftMs.p99)} | ${f1(x.tpotMs.p50)} / ${f1(x.tpotMs.p99)} ms | ${x.kv.reservedBlocksMean} / ${x.kv.blocks} | ${x.kv.liveTokenBlocksMean} | ${(100 * x.kv.utilisation).toFixed(0)}% | ${x.maxConcurrentSeqs} | ${x.preemptions} | ${x.bitsPerByte !== undefined ? `${x.bitsPerByte} (fp32 ${x.bitsPerByteFp32})` : '—'} |`),
  ].join('\n');
  const by = (rows, name) => rows.find((x) => x.config === name);
  const ratio = (a, b) => +(a / b).toFixed(2);
  const pctChange = (a, b, d = 0) => `${a >= b ? '+' : '−'}${Math.abs(100 * (a / b - 1)).toFixed(d)}%`;
  const hi = r.shareGpt.at(-1), lo = r.shareGpt[0], H = hi.rows, L = lo.rows;
  const naive = by(H, 'naive'), allF = by(H, 'all five');
  const naiveL = by(L, 'naive'), allL = by(L, 'all five');
  const C = r.code.rows, cNoSpec = by(C, 'all − speculation'), cDraft = by(C, 'all five (draft model)'), cNgram = by(C, 'all five (n-gram)'), cNaive = by(C, 'naive'), cSpecAlone = by(C, '+ speculation (draft model)');
  const q = r.quality['coder-draft'], qc = r.quality.coder;
  const qk = Object.keys(q).filter((k) => k !== 'fp32');
  const lab = (t) => H.find((x) => x.config.startsWith('+ ') && x.on.length === 1 && x.on[0] === t).config.slice(2);
  const claims = [
    ['continuous batching', '+60-80% throughput',
      `${pctChange(by(H, `+ ${lab('batching')}`).outputTokPerS, naive.outputTokPerS)} alone over naive (TTFT p50 ${pctChange(by(H, `+ ${lab('batching')}`).ttftMs.p50, naive.ttftMs.p50)}), ${pctChange(allF.outputTokPerS, by(H, `all − ${lab('batching')}`).outputTokPerS)} in the full set (TTFT p50 ${pctChange(allF.ttftMs.p50, by(H, `all − ${lab('batching')}`).ttftMs.p50)}) at ${hi.ratePerS} req/s; ${pctChange(by(L, `+ ${lab('batching')}`).outputTokPerS, naiveL.outputTokPerS)} / ${pctChange(allL.outputTokPerS, by(L, `all − ${lab('batching')}`).outputTokPerS)} at ${lo.ratePerS} req/s`,
      'A CPU forward costs about its token count, so a bigger batch buys little per-token speed: batching wins only by not idling slots while a static batch drains (TTFT gains more than throughput). Below saturation throughput is the arrival rate whatever the policy.'],
    ['PagedAttention', 'KV use 40-60% → 90-95%, 2× concurrency',
      `utilisation ${(100 * naive.kv.utilisation).toFixed(0)}% (contiguous) → ${(100 * by(H, `+ ${lab('paged')}`).kv.utilisation).toFixed(0)}% (paged); max concurrent sequences ${naive.maxConcurrentSeqs} → ${by(H, `+ ${lab('paged')}`).maxConcurrentSeqs} (${ratio(by(H, `+ ${lab('paged')}`).maxConcurrentSeqs, naive.maxConcurrentSeqs)}×); full set ${(100 * by(H, `all − ${lab('paged')}`).kv.utilisation).toFixed(0)}% → ${(100 * allF.kv.utilisation).toFixed(0)}%, ${by(H, `all − ${lab('paged')}`).maxConcurrentSeqs} → ${allF.maxConcurrentSeqs} seqs`,
      `The memory effect is reproduced: it is a scheduler/allocator property, not a GPU one. Its size depends on how far max_tokens (${r.trace.shareGpt.match(/min\((\d+)/)[1]}) overshoots real outputs (mean ${hi.outputTokens.mean}); the cap of ${r.maxSeqs} sequences per step bounds the concurrency gain. Throughput follows only where the run is KV-bound.`],
    ['speculative decoding', '1.5-2.5× on predictable output',
      `code trace: draft model ${ratio(cDraft.outputTokPerS, cNoSpec.outputTokPerS)}× throughput, TPOT p50 ${ratio(cDraft.tpotMs.p50, cNoSpec.tpotMs.p50)}× (acceptance ${cDraft.speculation.acceptanceRate}); n-gram ${ratio(cNgram.outputTokPerS, cNoSpec.outputTokPerS)}× (acceptance ${cNgram.speculation.acceptanceRate}); alone over naive ${ratio(cSpecAlone.outputTokPerS, cNaive.outputTokPerS)}×; ShareGPT-like trace (temperature 0.8, n-gram): ${ratio(allF.outputTokPerS, by(H, `all − ${lab('spec')}`).outputTokPerS)}×`,
      `Verifying k+1 tokens costs the CPU about k+1 forwards of one token (no memory-bound regime where extra tokens are free), and the draft model is 1/${(qc.fp32.weightBytes / q.fp32.weightBytes).toFixed(0)} of the target's weights, its k sequential forwards adding up, so accepted drafts save little time; the spec bench shows the target-forward reduction (3.7× at adaptive k, batch 1) that a GPU would turn into speed. In a loaded batch, the engine backs off speculation above 64 tokens per step.`],
    ['FlashAttention', '2-4× attention',
      `attention op alone: prefill ${ratio(r.attentionOp.prefill128.unfusedMs, r.attentionOp.prefill128.flashMs)}×, decode ${ratio(r.attentionOp.decode1.unfusedMs, r.attentionOp.decode1.flashMs)}× (unfused/fused time); end to end ${pctChange(allF.outputTokPerS, by(H, `all − ${lab('flash')}`).outputTokPerS)} throughput in the full set, ${pctChange(by(H, `+ ${lab('flash')}`).outputTokPerS, naive.outputTokPerS)} alone`,
      `FlashAttention saves HBM traffic for the score matrix; the CPU reference does the same FLOPs either way and its matrices sit in cache at these sizes (context ≤ ${r.maxPositions}, ${r.dims['coder-draft'].heads} heads of ${r.dims['coder-draft'].headDim} in coder-draft), and attention is a small part of a forward next to the linears. This is a GPU-scale effect; the CPU scale only checks that the switch is plumbed and exact.`],
    ['quantization', 'INT8 1.5-2×, INT4 2-3× speed, <1% quality loss',
      `${qk.map((k) => `${k}: bits/byte ${q[k].bitsPerByte} vs fp32 ${q.fp32.bitsPerByte} (${pctChange(q[k].bitsPerByte, q.fp32.bitsPerByte, 2)}), weights ${ratio(q.fp32.weightBytes, q[k].weightBytes)}× smaller`).join('; ')} (coder-draft); coder ${Object.keys(qc).filter((k) => k !== 'fp32').map((k) => `${k} ${pctChange(qc[k].bitsPerByte, qc.fp32.bitsPerByte, 2)}`).join(', ')}; speed: ${pctChange(allF.outputTokPerS, by(H, `all − ${lab('quant')}`).outputTokPerS)} in the full set, ${pctChange(by(H, `+ ${lab('quant')}`).outputTokPerS, naive.outputTokPerS)} alone${by(H, 'all five (int4 weights)') ? `; int4 full set ${pctChange(by(H, 'all five (int4 weights)').outputTokPerS, by(H, `all − ${lab('quant')}`).outputTokPerS)}` : ''}`,
      'The quality half is measured and holds. The speed half cannot show here: the reference backend emulates the quantized kernels exactly (int8: per-row activation quantisation, then Int8Array dot products; int4: nibble unpacking and dequantisation), which V8 runs slower than the plain fp32 loop; the GPU gain comes from moving fewer weight bytes in memory-bound decode, and a compute-bound CPU loop gains nothing from smaller weights at these sizes (they fit in cache).'],
    ['all five', 'median TTFT −55-65%, throughput >3×',
      `at ${hi.ratePerS} req/s: TTFT p50 ${pctChange(allF.ttftMs.p50, naive.ttftMs.p50)}, p99 ${pctChange(allF.ttftMs.p99, naive.ttftMs.p99)}, throughput ${ratio(allF.outputTokPerS, naive.outputTokPerS)}×; at ${lo.ratePerS} req/s: TTFT p50 ${pctChange(allL.ttftMs.p50, naiveL.ttftMs.p50)}, throughput ${ratio(allL.outputTokPerS, naiveL.outputTokPerS)}×; code trace: TTFT p50 ${pctChange(cDraft.ttftMs.p50, cNaive.ttftMs.p50)}, throughput ${ratio(cDraft.outputTokPerS, cNaive.outputTokPerS)}×. Without ${lab('quant')} (the CPU's best set, "all − ${lab('quant')}"): at ${hi.ratePerS} req/s TTFT p50 ${pctChange(by(H, `all − ${lab('quant')}`).ttftMs.p50, naive.ttftMs.p50)}, p99 ${pctChange(by(H, `all − ${lab('quant')}`).ttftMs.p99, naive.ttftMs.p99)}, throughput ${ratio(by(H, `all − ${lab('quant')}`).outputTokPerS, naive.outputTokPerS)}×; at ${lo.ratePerS} req/s TTFT p50 ${pctChange(by(L, `all − ${lab('quant')}`).ttftMs.p50, naiveL.ttftMs.p50)}, throughput ${ratio(by(L, `all − ${lab('quant')}`).outputTokPerS, naiveL.outputTokPerS)}×`,
      'What remains on the CPU is the scheduling/memory half (continuous batching, paged KV); the kernel half (flash, quantized GEMMs, cheap verification) needs the memory-bound GPU regime. Below saturation no policy can raise throughput above the offered load.'],
  ];
  const rowsMd = (set) => `### ${set.title}\n\n${table(set.rows)}\n`;
  return `# Ablation of the five techniques, CPU scale (${r.backend})

Generated by \`npm run bench -- ablation\` (scripts/bench.mjs, \`benches.ablation\`) with the numbers in
\`ablation-cpu-${r.machineCores ?? 2}core.json\`; chart: \`ablation-cpu-${r.machineCores ?? 2}core.svg\` (throughput vs p99 TTFT).
This is the CPU scale of issue 13: the shipped models on the reference backend, which checks the
plumbing and the scheduler/KV effects that do not depend on a GPU. **The H100 scale (LLaMA-2-7B-shaped
weights, \`scripts/gpu/bench-ablation\`) is not run yet; it is where the kernel techniques' figures
must come from.**

Switches (each independent, same Engine and artifact): ${Object.entries(r.switches).map(([k, v]) => `**${k}** ${v}`).join('; ')}.
Engine: ${r.numBlocks} KV blocks × ${r.blockSize} tokens, ≤ ${r.maxSeqs} sequences and ≤ ${r.maxBatchedTokens} tokens per step, model positions ${r.maxPositions}.
Traces: ShareGPT-like, ${r.trace.shareGpt}. Code: ${r.trace.code}.
KV columns: blocks held (used) and blocks-worth of live tokens, averaged over the steps (sampled
before each forward); utilisation = live / held. bits/byte: held-out, first ${r.heldoutChunks} chunks × 256 bytes.

${[...r.shareGpt.map((s) => ({ title: `ShareGPT-like trace, coder-draft, Poisson ${s.ratePerS} req/s (${s.requests} requests; prompt mean ${s.promptTokens.mean}, output mean ${s.outputTokens.mean} tokens)`, rows: s.rows })),
    { title: `Code-completion trace, coder target (+ coder-draft draft), greedy`, rows: r.code.rows }].map(rowsMd).join('\n')}
Attention op alone (${r.attentionOp.shape}): prefill 128 new tokens/sequence fused ${r.attentionOp.prefill128.flashMs} ms vs unfused ${r.attentionOp.prefill128.unfusedMs} ms; decode fused ${r.attentionOp.decode1.flashMs} ms vs unfused ${r.attentionOp.decode1.unfusedMs} ms.

## The seed's claims against these numbers

| technique | claim | measured here (CPU reference) | why it differs |
|---|---|---|---|
${claims.map((c) => `| ${c.join(' | ')} |`).join('\n')}

## Reading

- The CPU reference backend's forward costs about its token count (compute-bound TypeScript
  loops, no memory-bound regime), and the models are tiny (coder-draft ${(r.quality['coder-draft'].fp32.weightBytes / 1e6).toFixed(1)} MB,
  coder ${(r.quality.coder.fp32.weightBytes / 1e6).toFixed(1)} MB of fp32 weights). Every claim whose mechanism is "the GPU is waiting on
  memory" (FlashAttention, quantized GEMMs, nearly free verification of k+1 tokens, bigger decode
  batches at the same step time) has nothing to act on here, so those rows are near 1× or below.
- What does carry over is the memory and scheduling half: paged KV's utilisation and concurrency,
  and continuous batching's TTFT. Those numbers depend on the workload (how far max_tokens
  overshoots the output; how loaded the server is), not on the card.
- Quality of quantization is measured at full fidelity (the reference emulates the kernels exactly).
- ${lab('quant')} is the largest single cost on this backend (the W8A8 reference quantises every
  activation row, then runs Int8Array dot products, slower in V8 than the fp32 loop): ${pctChange(by(H, `+ ${lab('quant')}`).outputTokPerS, naive.outputTokPerS)} throughput alone
  at ${hi.ratePerS} req/s, and it drags "all five" below naive. Rows that keep it are slower (or, below saturation,
  later) than the same rows without it; read the kernel-independent techniques on the rows without it. int4 (W4A16, weight-only
  dequantisation) costs ${pctChange(by(H, 'all five (int4 weights)')?.outputTokPerS ?? NaN, by(H, `all − ${lab('quant')}`).outputTokPerS)} in the full set.
- At ${lo.ratePerS} req/s the offered load (~${(lo.rows[0].outputTokPerS).toFixed(0)} output tok/s) is below every fast configuration's
  capacity, so throughput is the arrival rate and only latency separates the rows; p99 over ${lo.requests} requests is
  close to the maximum.
- Run-to-run noise on this shared 2-core VM is about ±10% on throughput; a row within that of
  another is a tie.
${repeat ? repeatSection(r, repeat) : ''}`;
}

/** How far a second run of the same code (ablation-*.repeat.json) moves the numbers and the key ratios. */
function repeatSection(r, rep) {
  const q = rep.result;
  const sets = (x) => [...x.shareGpt.map((s) => [`${s.ratePerS} req/s`, s.rows]), ['code', x.code.rows]];
  const A = sets(r), B = sets(q);
  const thr = [], ttft = [];
  A.forEach(([, rows], i) => rows.forEach((x, j) => {
    const y = B[i][1][j];
    thr.push(Math.abs(y.outputTokPerS / x.outputTokPerS - 1));
    ttft.push(Math.max(y.ttftMs.p50 / x.ttftMs.p50, x.ttftMs.p50 / y.ttftMs.p50));
  }));
  const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const key = (x) => {
    const H = x.shareGpt.at(-1).rows, by = (n) => H.find((y) => y.config === n), nv = by('naive');
    const lab = (t) => H.find((y) => y.config.startsWith('+ ') && y.on.length === 1 && y.on[0] === t).config.slice(2);
    const C = x.code.rows, cb = (n) => C.find((y) => y.config === n);
    const f = (a, b) => (a / b).toFixed(2);
    return [
      `continuous batching alone:: throughput ${f(by(`+ ${lab('batching')}`).outputTokPerS, nv.outputTokPerS)}×, TTFT p50 ${f(by(`+ ${lab('batching')}`).ttftMs.p50, nv.ttftMs.p50)}×`,
      `paged KV alone:: utilisation ${(100 * nv.kv.utilisation).toFixed(0)}% → ${(100 * by(`+ ${lab('paged')}`).kv.utilisation).toFixed(0)}%, max sequences ${nv.maxConcurrentSeqs} → ${by(`+ ${lab('paged')}`).maxConcurrentSeqs}`,
      `speculation on code (draft, full set):: ${f(cb('all five (draft model)').outputTokPerS, cb('all − speculation').outputTokPerS)}×`,
      `all five:: throughput ${f(by('all five').outputTokPerS, nv.outputTokPerS)}×, TTFT p50 ${f(by('all five').ttftMs.p50, nv.ttftMs.p50)}×; all − ${lab('quant')}: ${f(by(`all − ${lab('quant')}`).outputTokPerS, nv.outputTokPerS)}×, TTFT p50 ${f(by(`all − ${lab('quant')}`).ttftMs.p50, nv.ttftMs.p50)}×`,
    ];
  };
  const k1 = key(r), k2 = key(q);
  return `
## Repeatability

A second run of the same code on the same machine (\`ablation-cpu-${r.machineCores ?? 2}core.repeat.json\`, ${rep.date}):
output throughput moved by a median ${(100 * med(thr)).toFixed(0)}% (max ${(100 * Math.max(...thr)).toFixed(0)}%) per row; TTFT p50 by a median factor
${med(ttft).toFixed(2)} (max ${Math.max(...ttft).toFixed(2)}): on overloaded rows TTFT depends on queueing and is much noisier than
throughput. KV utilisation and max concurrency are properties of the trace and the policy and barely move.
Key ratios at ${r.shareGpt.at(-1).ratePerS} req/s (over naive, or over the full set without it), table run and repeat:

${k1.map((x, i) => `- ${x.split(':: ')[0]}: ${x.split(':: ')[1]} (table run); ${k2[i].split(':: ')[1]} (repeat)`).join('\n')}

So the direction of each effect holds between runs; its size, for the small ones (continuous batching's
throughput, flash, speculation), is within the noise.
`;
}

/** A hand-written SVG scatter: output tokens/s (x) vs p99 TTFT (y, log) per configuration, one colour per trace/rate. */
function ablationSvg(r) {
  const sets = [...r.shareGpt.map((s) => ({ name: `ShareGPT-like ${s.ratePerS} req/s`, rows: s.rows })), { name: 'code trace (coder)', rows: r.code.rows }];
  const colors = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd'];
  const W = 960, Hh = 620, m = { l: 70, r: 230, t: 40, b: 60 };
  const pts = sets.flatMap((s) => s.rows);
  const xmax = Math.max(...pts.map((p) => p.outputTokPerS)) * 1.1;
  const ys = pts.map((p) => Math.max(1, p.ttftMs.p99));
  const ylo = Math.pow(10, Math.floor(Math.log10(Math.min(...ys)))), yhi = Math.pow(10, Math.ceil(Math.log10(Math.max(...ys))));
  const X = (v) => m.l + (v / xmax) * (W - m.l - m.r);
  const Y = (v) => m.t + (1 - (Math.log10(Math.max(1, v)) - Math.log10(ylo)) / (Math.log10(yhi) - Math.log10(ylo))) * (Hh - m.t - m.b);
  const esc = (t) => String(t).replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${Hh}" viewBox="0 0 ${W} ${Hh}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${Hh}" fill="white"/>`,
    `<text x="${m.l}" y="22" font-size="14">lfc ablation, CPU reference backend: output tokens/s vs p99 TTFT per configuration</text>`];
  for (let i = 0; i <= 5; i++) {
    const v = (xmax * i) / 5;
    out.push(`<line x1="${X(v)}" y1="${m.t}" x2="${X(v)}" y2="${Hh - m.b}" stroke="#eee"/><text x="${X(v)}" y="${Hh - m.b + 16}" text-anchor="middle">${v.toFixed(0)}</text>`);
  }
  for (let e = Math.log10(ylo); e <= Math.log10(yhi); e++) {
    const v = Math.pow(10, e);
    out.push(`<line x1="${m.l}" y1="${Y(v)}" x2="${W - m.r}" y2="${Y(v)}" stroke="#eee"/><text x="${m.l - 6}" y="${Y(v) + 4}" text-anchor="end">${v >= 1000 ? `${v / 1000} s` : `${v} ms`}</text>`);
  }
  out.push(`<line x1="${m.l}" y1="${Hh - m.b}" x2="${W - m.r}" y2="${Hh - m.b}" stroke="black"/><line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${Hh - m.b}" stroke="black"/>`);
  out.push(`<text x="${(m.l + W - m.r) / 2}" y="${Hh - 18}" text-anchor="middle">output tokens/s (higher is better)</text>`);
  out.push(`<text transform="translate(18 ${(m.t + Hh - m.b) / 2}) rotate(-90)" text-anchor="middle">p99 TTFT, log scale (lower is better)</text>`);
  sets.forEach((s, si) => {
    const c = colors[si % colors.length];
    out.push(`<rect x="${W - m.r + 16}" y="${m.t + si * 18}" width="10" height="10" fill="${c}"/><text x="${W - m.r + 32}" y="${m.t + si * 18 + 9}">${esc(s.name)}</text>`);
    for (const p of s.rows) {
      const x = X(p.outputTokPerS), y = Y(p.ttftMs.p99);
      const short = p.config.replace('continuous batching', 'batching').replace('flash attention', 'flash').replace(' weights', '').replace('speculation', 'spec');
      out.push(`<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="4" fill="${c}" fill-opacity="0.8"><title>${esc(`${s.name}: ${p.config}: ${p.outputTokPerS} tok/s, p99 TTFT ${p.ttftMs.p99} ms`)}</title></circle>`);
      out.push(`<text x="${(x + 6).toFixed(1)}" y="${(y + 3).toFixed(1)}" fill="${c}" font-size="9">${esc(short)}</text>`);
    }
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

// `npm run bench -- ablation-report [CORES]`: rewrite the ablation's .md and .svg from its committed JSON (no run).
if (process.argv[2] === 'ablation-report') {
  const base = join(root, 'bench/results', `ablation-cpu-${process.argv[3] ?? cpus().length}core`);
  const r = JSON.parse(readFileSyncTop(`${base}.json`, 'utf8')).result;
  // A second run of the same code, when kept beside it (ablation-*.repeat.json): a repeatability section.
  const repeat = existsSync(`${base}.repeat.json`) ? JSON.parse(readFileSyncTop(`${base}.repeat.json`, 'utf8')) : undefined;
  writeFileSync(`${base}.md`, ablationMarkdown(r, repeat));
  writeFileSync(`${base}.svg`, ablationSvg(r));
  console.error(`wrote ${base}.md and .svg`);
  process.exit(0);
}

const name = process.argv[2] ?? 'import';
if (!benches[name]) { console.error(`bench: unknown benchmark '${name}' (have: ${Object.keys(benches).join(', ')})`); process.exit(2); }
const result = { bench: name, machine: { host: hostname(), cpu: cpus()[0]?.model, cores: cpus().length, node: process.version }, date: new Date().toISOString(), result: await benches[name]() };
console.log(JSON.stringify(result, null, 2));
const dir = join(root, 'bench/results');
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, `${name}-cpu-${cpus().length}core.json`), JSON.stringify(result, null, 2) + '\n');

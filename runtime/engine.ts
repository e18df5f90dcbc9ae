/**
 * Engine: requests in, token streams out. One loop runs the nano-vllm step
 *
 *   step = scheduler.schedule()  →  backend.forward(step.batch)  →  scheduler.postprocess(sampled)
 *
 * while any request has work, yielding to the event loop between steps so new requests join the
 * running batch (continuous batching). Each request samples with its own seeded counter-based RNG,
 * so its tokens do not depend on what it was batched with. Abort (AbortSignal) and stop strings
 * free everything the request held.
 */
import type { Backend, DeviceSampleRows, DeviceVerifyRequest } from './backends/backend.js';
import { ReferenceBackend } from './backends/reference.js';
import { loadCudaBackend } from './backends/cuda/index.js';
import { loadArtifact } from './artifact.js';
import { resolveSamplingParams, Sampler, type ResolvedSampling, type SamplingParams } from './sampling.js';
import { Scheduler, type FinishReason, type KvPolicy, type SchedulerPolicy, type Sequence } from './scheduler.js';
import { ByteTokenizer, HfTokenizer, type Tokenizer } from './tokenizer.js';
import { SpecDecoder, type SpecOptions } from './spec/spec-decoder.js';

export interface EngineOptions {
  /** 'reference': the TypeScript kernels; 'cuda': libmodel.so on the GPU; 'emu': libmodel-emu.so (the same CUDA artifact on lfc's CPU emulator). */
  backend?: 'reference' | 'cuda' | 'emu';
  /** Sample on the device when the backend supports it and the step's requests allow it (default true). */
  deviceSampling?: boolean;
  maxBatchedTokens?: number;
  maxSeqs?: number;
  numBlocks?: number;
  policy?: SchedulerPolicy;
  /**
   * KV allocation (default 'paged'): 'contiguous' reserves each request's maximum length (prompt +
   * max_tokens, or the model's max positions when the request gives no max_tokens) at admission
   * (the ablation's naive KV, issue 13; prefix caching then defaults to off).
   */
  kv?: KvPolicy;
  /** Reference backend only (Engine.load): 'unfused' materialises QKᵀ per sequence (runtime/kernels/unfused-attention.ts); default 'flash'. */
  attention?: 'flash' | 'unfused';
  prefixCaching?: boolean;
  tokenizer?: Tokenizer;
  /** Speculative decoding (runtime/spec): a proposer and its limits. */
  speculative?: SpecOptions;
}

export interface GenerateOptions extends SamplingParams {
  max_tokens?: number;
  /** Stop strings: generation ends before the first occurrence. */
  stop?: string | string[];
  stop_token_ids?: number[];
  /** Keep generating past EOS. */
  ignore_eos?: boolean;
  signal?: AbortSignal;
  /** Opt out of speculative decoding for this request (default: on when the engine has it). */
  speculative?: boolean;
}

export interface Delta {
  text: string;
  tokens: number[];
  /** When the request asked for logprobs: each token's log-probability, and its top-n alternatives. */
  logprobs?: number[];
  topLogprobs?: { token: number; logprob: number }[][];
}

export interface Completion {
  text: string;
  tokens: number[];
  finishReason: FinishReason;
  usage: { promptTokens: number; completionTokens: number; cachedTokens: number };
  timings: { ttftMs: number; totalMs: number };
}

interface Live {
  seq: Sequence;
  params: ResolvedSampling;
  stops: string[];
  decoder: ReturnType<Tokenizer['decoder']>;
  text: string;
  emitted: number;
  queue: Delta[];
  wake?: () => void;
  done?: Completion;
  error?: Error;
  start: number;
  ttft?: number;
  logprobs: number[];
  topLogprobs: { token: number; logprob: number }[][];
}

let nextId = 0;

export class Engine {
  readonly scheduler: Scheduler;
  readonly tokenizer: Tokenizer;
  private readonly sampler: Sampler;
  private readonly live = new Map<number | string, Live>();
  private looping = false;
  /** Set when the loop died; every later request fails with it. */
  dead?: Error;
  readonly stats = { steps: 0, tokens: 0, preemptions: 0, deviceSampledSteps: 0 };
  /** Sample on the device when the backend can and a step allows it (EngineOptions.deviceSampling). */
  private readonly deviceSampling: boolean;
  /** Speculative decoding, when the engine was built with `speculative`. */
  readonly spec?: SpecDecoder;

  constructor(readonly backend: Backend, opts: EngineOptions = {}) {
    const plan = backend.plan;
    this.deviceSampling = opts.deviceSampling ?? true;
    this.tokenizer = opts.tokenizer ?? new ByteTokenizer(plan.model.vocab, plan.model.bos ?? 256, plan.model.eos ?? 257);
    this.sampler = new Sampler(plan.model.vocab);
    this.scheduler = new Scheduler({
      maxBatchedTokens: Math.min(opts.maxBatchedTokens ?? 256, backend.maxTokens),
      maxSeqs: Math.min(opts.maxSeqs ?? 16, backend.maxSeqs ?? Infinity),
      blockSize: plan.kv.blockSize,
      numBlocks: backend.numBlocks,
      policy: opts.policy ?? 'continuous',
      prefixCaching: opts.prefixCaching ?? opts.kv !== 'contiguous',
      kv: opts.kv ?? 'paged',
    });
    // Unless told, speculation backs off at the backend's cost-model threshold (CUDA: hints.json).
    if (opts.speculative) {
      const so = opts.speculative.maxBatchTokens === undefined && backend.specMaxBatchTokens !== undefined
        ? { ...opts.speculative, maxBatchTokens: backend.specMaxBatchTokens } : opts.speculative;
      this.spec = new SpecDecoder(so, plan.model.vocab);
    }
  }

  /** Load a compiled artifact folder onto a backend. */
  static load(dir: string, opts: EngineOptions & { numBlocks?: number; maxTokens?: number } = {}): Engine {
    const kind = opts.backend ?? 'reference';
    if (kind === 'cuda' || kind === 'emu') {
      if (opts.attention === 'unfused') throw new Error(`attention 'unfused' is a reference-backend option (the ${kind} backend runs the artifact's flash kernels)`);
      const backend = loadCudaBackend(dir, { emulator: kind === 'emu', numBlocks: opts.numBlocks, maxTokens: opts.maxTokens, maxSeqs: opts.maxSeqs });
      return new Engine(backend, { ...opts, tokenizer: opts.tokenizer ?? HfTokenizer.fromDir(dir, backend.plan.model.vocab) });
    }
    if (kind !== 'reference') throw new Error(`unknown backend '${String(kind)}' (reference, cuda or emu)`);
    const { plan, weights } = loadArtifact(dir);
    const backend = new ReferenceBackend(plan, weights, { numBlocks: opts.numBlocks, maxTokens: opts.maxTokens ?? 256, attention: opts.attention });
    return new Engine(backend, { ...opts, tokenizer: opts.tokenizer ?? HfTokenizer.fromDir(dir, plan.model.vocab) });
  }

  /** Stream a completion: yields text deltas, returns the final completion. */
  async *stream(prompt: string | number[], opts: GenerateOptions = {}): AsyncGenerator<Delta, Completion> {
    if (this.dead) throw new Error(`engine is dead: ${this.dead.message}`);
    const { max_tokens, stop, stop_token_ids, ignore_eos, signal, speculative, ...sampling } = opts;
    const params = resolveSamplingParams(sampling);
    const tokens = typeof prompt === 'string' ? this.tokenizer.encode(prompt) : prompt;
    const V = this.backend.plan.model.vocab, P = this.backend.plan.model.maxPositions;
    if (tokens.length === 0) throw new Error('prompt is empty');
    tokens.forEach((t, i) => { if (!Number.isInteger(t) || t < 0 || t >= V) throw new Error(`prompt token ${i} is ${t}, outside the vocabulary 0..${V - 1}`); });
    const maxTokens = max_tokens ?? 128;
    if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new Error(`max_tokens must be a positive integer, got ${max_tokens}`);
    if (tokens.length + maxTokens > P) throw new Error(`prompt (${tokens.length} tokens) + max_tokens (${maxTokens}) exceeds the model's ${P} positions`);
    const id = `req-${nextId++}`;
    const eos = this.tokenizer.eos;
    // Speculation: off when opted out or when logprobs are asked (they are not tracked per draft).
    const k = this.spec && speculative !== false && params.logprobs < 0 ? this.spec.maxK : 0;
    const seq = this.scheduler.add({ id, prompt: tokens, maxTokens, numSpeculativeTokens: k, ...(max_tokens === undefined ? { reserveTokens: P } : {}), stopTokenIds: [...(stop_token_ids ?? []), ...(!ignore_eos && eos !== undefined ? [eos] : [])] });
    const live: Live = {
      seq, params, stops: stop === undefined ? [] : Array.isArray(stop) ? stop : [stop], decoder: this.tokenizer.decoder(),
      text: '', emitted: 0, queue: [], start: performance.now(), logprobs: [], topLogprobs: [],
    };
    if (seq.status === 'finished') throw new Error(seq.error ?? 'request rejected');
    this.live.set(id, live);
    const onAbort = () => this.finish(live, 'aborted');
    signal?.addEventListener('abort', onAbort, { once: true });
    this.kick();
    try {
      for (;;) {
        while (live.queue.length) yield live.queue.shift()!;
        if (live.error) throw live.error;
        if (live.done) return live.done;
        await new Promise<void>((r) => { live.wake = r; });
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      if (!live.done) this.finish(live, 'aborted');
      this.live.delete(id);
    }
  }

  /** The whole completion at once. */
  async generate(prompt: string | number[], opts: GenerateOptions = {}): Promise<Completion> {
    const it = this.stream(prompt, opts);
    for (;;) {
      const r = await it.next();
      if (r.done) return r.value;
    }
  }

  private kick(): void {
    if (this.looping) return;
    this.looping = true;
    setImmediate(() => { this.loop().catch((e: Error) => this.die(e)); });
  }

  private die(e: Error): void {
    this.dead = e;
    this.looping = false;
    for (const l of this.live.values()) { l.error = e; l.wake?.(); }
  }

  private async loop(): Promise<void> {
    while (this.scheduler.hasWork()) {
      if (this.spec) this.prepareDrafts(this.spec);
      const step = this.scheduler.schedule();
      if (!step) break;
      if (step.copies.length) this.backend.copyBlocks(step.copies.map((c) => [c.src, c.dst] as const));
      const L = step.batch.logitIndices.length;
      const device = this.deviceSampleRows(step);
      if (device) {
        // Every row is plain sampling: the backend samples on the device, logits stay there.
        const r = this.backend.forwardSample!(step.batch, device);
        this.stats.deviceSampledSteps++;
        const finished = this.scheduler.postprocess(r.tokens);
        this.afterStep(step, finished);
        await new Promise<void>((res) => setImmediate(res));
        continue;
      }
      const verified = this.spec ? this.deviceVerify(step, this.spec) : undefined;
      if (verified) {
        // Speculative verification (and the plain rows' sampling) on the device.
        this.stats.deviceSampledSteps++;
        const finished = this.scheduler.postprocess(verified);
        this.afterStep(step, finished);
        await new Promise<void>((res) => setImmediate(res));
        continue;
      }
      const logits = this.backend.forward(step.batch);
      const V = this.backend.plan.model.vocab;
      const sampled = new Int32Array(L);
      const lps = new Float64Array(L);
      for (let li = 0; li < L;) {
        const row = step.logitRows[li];
        let n = 1;
        while (li + n < L && step.logitRows[li + n] === row) n++;
        const seq = step.seqs[row];
        const l = this.live.get(seq.id);
        const params = l?.params ?? resolveSamplingParams({ temperature: 0 });
        if (n > 1 && this.spec) {
          sampled.set(this.spec.verify(seq, params, seq.draft.subarray(0, n - 1), logits.subarray(li * V, (li + n) * V)), li);
          li += n;
          continue;
        }
        for (let j = 0; j < n; j++, li++) {
          const r = this.sampler.sample(logits.subarray(li * V, (li + 1) * V), params, seq, seq.length + j);
          sampled[li] = r.token;
          lps[li] = r.logprob;
          if (l && params.logprobs >= 0) { l.logprobs.push(r.logprob); l.topLogprobs.push(r.top ?? []); }
        }
      }
      const finished = this.scheduler.postprocess(sampled);
      this.afterStep(step, finished);
      await new Promise<void>((r) => setImmediate(r));
    }
    this.looping = false;
    if (this.scheduler.hasWork()) this.kick();
  }

  private afterStep(step: NonNullable<ReturnType<Scheduler['schedule']>>, finished: Sequence[]): void {
    this.stats.steps++;
    this.stats.tokens += step.batch.tokens.length;
    for (const seq of new Set(step.seqs)) {
      const l = this.live.get(seq.id);
      if (l) this.emit(l);
    }
    for (const seq of finished) {
      const l = this.live.get(seq.id);
      if (l && !l.done) this.finish(l, seq.finishReason ?? 'stop');
    }
  }

  /**
   * Forward + verification on the device when the backend can and every request of the step is
   * plain sampling (no penalties, min_p, logprobs): each sequence's k + 1 rows (k = 0 for rows
   * without drafts) go to lfc_forward_verify; the bookkeeping SpecDecoder.verify does on the host
   * (metrics, acceptance EMA, proposer feedback) is done here from the accepted counts.
   */
  private deviceVerify(step: NonNullable<ReturnType<Scheduler['schedule']>>, spec: SpecDecoder): Int32Array | undefined {
    if (!this.deviceSampling || !this.backend.forwardVerify) return undefined;
    const L = step.batch.logitIndices.length, V = this.backend.plan.model.vocab;
    const groups: { li: number; k: number; seq: Sequence; params: ResolvedSampling }[] = [];
    for (let li = 0; li < L;) {
      const row = step.logitRows[li];
      let n = 1;
      while (li + n < L && step.logitRows[li + n] === row) n++;
      const seq = step.seqs[row];
      const params = this.live.get(seq.id)?.params ?? resolveSamplingParams({ temperature: 0 });
      if (params.repetitionPenalty !== 1 || params.presencePenalty !== 0 || params.frequencyPenalty !== 0 || params.minP !== 0 || params.logprobs >= 0) return undefined;
      groups.push({ li, k: n - 1, seq, params });
      li += n;
    }
    if (!groups.some((g) => g.k > 0)) return undefined; // plain steps take forwardSample
    const S = groups.length, D = groups.reduce((a, g) => a + g.k, 0);
    const req: DeviceVerifyRequest = {
      logitRows: Int32Array.from(groups, (g) => g.li), draftStarts: new Int32Array(S + 1), draftTokens: new Int32Array(D),
      temperature: Float32Array.from(groups, (g) => g.params.temperature), topK: Int32Array.from(groups, (g) => g.params.topK),
      topP: Float32Array.from(groups, (g) => g.params.topP), seed: BigUint64Array.from(groups, (g) => BigInt.asUintN(64, BigInt(g.params.seed))),
      position: BigInt64Array.from(groups, (g) => BigInt(g.seq.length)),
    };
    const q = groups.map((g) => (g.k > 0 ? spec.proposer.draftProbs?.(g.seq.id) : undefined));
    if (q.some((x) => x)) { req.draftProbs = new Float32Array(D * V); req.hasDraftProbs = new Int32Array(S); }
    let d = 0;
    groups.forEach((g, i) => {
      req.draftStarts[i] = d;
      req.draftTokens.set(g.seq.draft.subarray(0, g.k), d);
      if (q[i] && req.draftProbs) { req.hasDraftProbs![i] = 1; for (let j = 0; j < g.k; j++) req.draftProbs.set(q[i]![j], (d + j) * V); }
      d += g.k;
    });
    req.draftStarts[S] = d;
    const out = this.backend.forwardVerify(step.batch, req);
    for (const g of groups) {
      if (g.k === 0) continue;
      let a = 0;
      while (a < g.k && out[g.li + a] === g.seq.draft[a]) a++;
      spec.record(g.seq.id, g.k, a);
    }
    return out;
  }

  /**
   * The per-row parameters for device sampling when the backend can sample and every logit row of
   * the step is plain sampling (no penalties, min_p, logprobs, speculative verification); else undefined.
   */
  private deviceSampleRows(step: NonNullable<ReturnType<Scheduler['schedule']>>): DeviceSampleRows | undefined {
    if (!this.deviceSampling || !this.backend.forwardSample) return undefined;
    const L = step.batch.logitIndices.length;
    const rows: DeviceSampleRows = {
      temperature: new Float32Array(L), topK: new Int32Array(L), topP: new Float32Array(L), seed: new BigUint64Array(L), counter: new BigInt64Array(L),
    };
    for (let li = 0; li < L; li++) {
      const row = step.logitRows[li];
      if ((li > 0 && step.logitRows[li - 1] === row) || (li + 1 < L && step.logitRows[li + 1] === row)) return undefined; // verification rows
      const seq = step.seqs[row];
      const p = this.live.get(seq.id)?.params ?? resolveSamplingParams({ temperature: 0 });
      if (p.repetitionPenalty !== 1 || p.presencePenalty !== 0 || p.frequencyPenalty !== 0 || p.minP !== 0 || p.logprobs >= 0) return undefined;
      rows.temperature[li] = p.temperature;
      rows.topK[li] = p.topK;
      rows.topP[li] = p.topP;
      rows.seed[li] = BigInt.asUintN(64, BigInt(p.seed));
      rows.counter[li] = BigInt(seq.length);
    }
    return rows;
  }

  /** Drafts for the decoding requests, unless the step is already large (SpecDecoder.prepare). */
  private prepareDrafts(spec: SpecDecoder): void {
    let pending = 0;
    const seqs = [];
    for (const l of this.live.values()) {
      const s = l.seq;
      if (s.status === 'finished' || l.done) continue;
      const left = s.length - s.numComputed;
      if (s.status === 'running' && left === 1) { if (s.numSpeculativeTokens > 0) seqs.push({ seq: s, params: l.params }); else pending++; }
      else pending += left;
    }
    if (seqs.length) spec.prepare(seqs, pending, (id, d) => this.scheduler.setDraft(id, d));
  }

  private emit(l: Live): void {
    const out = l.seq.outputTokens;
    if (out.length <= l.emitted || l.done) return;
    const fresh = Array.from(out.subarray(l.emitted));
    l.emitted = out.length;
    l.ttft ??= performance.now() - l.start;
    const lp = l.params.logprobs >= 0
      ? { logprobs: l.logprobs.splice(0, fresh.length), topLogprobs: l.topLogprobs.splice(0, fresh.length) } : {};
    let text = l.decoder.push(fresh.filter((t) => !l.seq.stopTokenIds.includes(t)));
    const before = l.text.length;
    l.text += text;
    for (const s of l.stops) {
      const at = l.text.indexOf(s, Math.max(0, before - s.length + 1));
      if (at >= 0) {
        text = text.slice(0, Math.max(0, at - before));
        l.text = l.text.slice(0, at);
        l.queue.push({ text, tokens: fresh, ...lp });
        this.finish(l, 'stop');
        return;
      }
    }
    l.queue.push({ text, tokens: fresh, ...lp });
    l.wake?.();
  }

  private finish(l: Live, reason: FinishReason): void {
    if (l.done) return;
    this.spec?.release(l.seq.id);
    if (l.seq.status !== 'finished') this.scheduler.abort(l.seq.id, reason);
    const tail = l.decoder.flush();
    if (tail) { l.text += tail; l.queue.push({ text: tail, tokens: [] }); }
    const now = performance.now();
    l.done = {
      text: l.text, tokens: Array.from(l.seq.outputTokens), finishReason: reason,
      usage: { promptTokens: l.seq.promptLen, completionTokens: l.seq.numOutput, cachedTokens: l.seq.numCachedTokens },
      timings: { ttftMs: l.ttft ?? now - l.start, totalMs: now - l.start },
    };
    l.wake?.();
  }
}

/**
 * An OpenAI-compatible HTTP server over an Engine (node:http, no framework):
 *
 *   POST /v1/completions        prompt (string | string[] | token ids | token-id arrays)
 *   POST /v1/chat/completions   messages, rendered to a prompt by a ChatTemplate
 *   GET  /v1/models             the one model served
 *   GET  /health                200 {"status":"ok"}, 503 when the engine loop died
 *   GET  /metrics               Prometheus text format (metrics.ts)
 *
 * `stream: true` answers with server-sent events: `data: {chunk}\n\n` per delta, a last chunk per
 * choice carrying finish_reason, an optional usage chunk (stream_options.include_usage), then
 * `data: [DONE]\n\n`. n > 1 runs n engine requests with seeds seed, seed+1, … (so each choice is
 * reproducible on its own). A client that disconnects aborts its requests, which frees their KV
 * blocks.
 *
 * Errors use OpenAI's shape {"error": {"message", "type", "param", "code"}}: 400 for a bad body
 * (the message names the field), 401 without the API key (when one is set; it guards /v1/*
 * only, as in vLLM), 404 for unknown routes and models, 405, 413 over the body limit, 503 while
 * shutting down or when the engine is dead. The server listens on 127.0.0.1 unless told otherwise.
 * close() stops accepting, lets in-flight requests finish for a grace period, then aborts them
 * (finish_reason "abort") and closes every connection.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { Completion, Delta, Engine, GenerateOptions } from '../engine.js';
import { resolveSamplingParams, type SamplingParams } from '../sampling.js';
import { plainChatTemplate, type ChatTemplate } from './chat-template.js';
import { ServerMetrics } from './metrics.js';
import { chatBody, completionBody, describeIssue, type ChatBody, type CompletionBody } from './schemas.js';

export interface ServerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 8000; 0 = an ephemeral port. */
  port?: number;
  /** When set, /v1/* requires `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** The id /v1/models lists and responses carry. Default 'lfc'. */
  modelName?: string;
  /** Request body limit in bytes (default 1 MiB). */
  maxBodyBytes?: number;
  /** How long close() lets in-flight requests run before aborting them (default 10 s). */
  shutdownTimeoutMs?: number;
  chatTemplate?: ChatTemplate;
}

export class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly type = 'invalid_request_error', readonly param: string | null = null, readonly code: string | null = null) {
    super(message);
  }
}

/** The field an engine / sampling error message starts with ("top_p must be …"). */
function paramOf(message: string): string | null {
  const m = /^([a-z_]+) (must|is)\b/.exec(message);
  return m ? m[1] : null;
}

type Common = CompletionBody | ChatBody;
interface Job { index: number; prompt: number[]; opts: GenerateOptions; countPrompt: boolean }
interface ChoiceResult {
  index: number; completion: Completion;
  logprobs: number[]; top: { token: number; logprob: number }[][]; tokens: number[];
}

const FINISH: Record<string, string> = { stop: 'stop', length: 'length', aborted: 'abort', rejected: 'abort' };

export class OpenAIServer {
  readonly http: Server;
  readonly metrics: ServerMetrics;
  readonly modelName: string;
  private readonly opts: Required<Omit<ServerOptions, 'apiKey'>> & { apiKey?: string };
  private readonly inflight = new Set<{ ac: AbortController; done: Promise<void> }>();
  private closing?: Promise<void>;
  private baseUrl?: string;
  private readonly created = Math.floor(Date.now() / 1000);

  constructor(readonly engine: Engine, opts: ServerOptions = {}) {
    this.opts = {
      host: '127.0.0.1', port: 8000, modelName: 'lfc', maxBodyBytes: 1 << 20, shutdownTimeoutMs: 10_000,
      chatTemplate: plainChatTemplate, ...opts,
    };
    this.modelName = this.opts.modelName;
    this.metrics = new ServerMetrics(engine);
    this.http = createServer((req, res) => { void this.handle(req, res); });
  }

  /** Start listening; resolves to the base URL (http://host:port). */
  listen(): Promise<string> {
    return new Promise((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(this.opts.port, this.opts.host, () => {
        this.http.off('error', reject);
        const a = this.http.address() as AddressInfo;
        this.baseUrl = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
        resolve(this.baseUrl);
      });
    });
  }

  /** The base URL (http://host:port) once listening. */
  get url(): string {
    if (!this.baseUrl) throw new Error('the server is not listening yet');
    return this.baseUrl;
  }

  /** Requests being generated now. */
  get numInflight(): number { return this.inflight.size; }

  /**
   * Graceful shutdown: stop accepting connections, wait up to `timeoutMs` for in-flight requests,
   * abort the rest, close every connection.
   */
  close(timeoutMs = this.opts.shutdownTimeoutMs): Promise<void> {
    this.closing ??= (async () => {
      const closed = new Promise<void>((r) => this.http.close(() => r()));
      this.http.closeIdleConnections();
      const all = () => Promise.all([...this.inflight].map((f) => f.done));
      let timer: NodeJS.Timeout | undefined;
      const finished = await Promise.race([all().then(() => true), new Promise<boolean>((r) => { timer = setTimeout(() => r(false), timeoutMs); })]);
      clearTimeout(timer);
      if (!finished) {
        for (const f of this.inflight) f.ac.abort(new Error('server shutting down'));
        await all();
      }
      this.http.closeAllConnections();
      await closed;
    })();
    return this.closing;
  }

  // ---- routing ----

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const endpoint = path === '/v1/completions' || path === '/v1/chat/completions' ? path : undefined;
    try {
      if (this.closing) { res.setHeader('Connection', 'close'); throw new HttpError(503, 'the server is shutting down', 'server_error'); }
      const method = req.method ?? 'GET';
      const allow = (m: string) => { if (method !== m) throw new HttpError(405, `${method} ${path} is not allowed; use ${m}`, 'invalid_request_error'); };
      if (path === '/health') {
        allow('GET');
        if (this.engine.dead) return this.json(res, 503, { status: 'dead', error: this.engine.dead.message });
        return this.json(res, 200, { status: 'ok' });
      }
      if (path === '/metrics') {
        allow('GET');
        const text = await this.metrics.registry.metrics();
        res.writeHead(200, { 'Content-Type': this.metrics.registry.contentType });
        res.end(text);
        return;
      }
      if (path.startsWith('/v1/')) {
        this.authorize(req);
        if (path === '/v1/models') { allow('GET'); return this.json(res, 200, { object: 'list', data: [this.modelCard()] }); }
        if (path === `/v1/models/${this.modelName}`) { allow('GET'); return this.json(res, 200, this.modelCard()); }
        if (endpoint) {
          allow('POST');
          if (this.engine.dead) throw new HttpError(503, `the engine is dead: ${this.engine.dead.message}`, 'server_error');
          const body = await this.readJson(req);
          await this.track(res, (signal) => endpoint === '/v1/completions' ? this.completions(body, res, signal) : this.chat(body, res, signal));
          this.metrics.requests.inc({ endpoint, status: String(res.statusCode) });
          return;
        }
      }
      throw new HttpError(404, `unknown route: ${req.method} ${path}`, 'not_found_error');
    } catch (e) {
      const err = e instanceof HttpError ? e : new HttpError(500, (e as Error).message, 'server_error');
      if (endpoint) this.metrics.requests.inc({ endpoint, status: String(err.status) });
      if (res.headersSent) { res.end(); return; }
      if (err.status === 413) res.setHeader('Connection', 'close');
      this.json(res, err.status, { error: { message: err.message, type: err.type, param: err.param, code: err.code } });
    }
  }

  private authorize(req: IncomingMessage): void {
    const key = this.opts.apiKey;
    if (!key) return;
    const got = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
    const a = Buffer.from(got), b = Buffer.from(key);
    if (a.length !== b.length || !timingSafeEqual(a, b))
      throw new HttpError(401, got ? 'incorrect API key' : 'missing API key: send Authorization: Bearer <key>', 'authentication_error', null, 'invalid_api_key');
  }

  private modelCard() {
    return { id: this.modelName, object: 'model', created: this.created, owned_by: 'lfc', max_model_len: this.engine.backend.plan.model.maxPositions };
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }

  /** Run a generation handler as an in-flight request: aborted when the client goes away or on shutdown. */
  private async track(res: ServerResponse, run: (signal: AbortSignal) => Promise<void>): Promise<void> {
    const ac = new AbortController();
    const onClose = () => { if (!res.writableFinished) ac.abort(new Error('client disconnected')); };
    res.on('close', onClose);
    let resolve!: () => void;
    const entry = { ac, done: new Promise<void>((r) => { resolve = r; }) };
    this.inflight.add(entry);
    try { await run(ac.signal); } finally {
      res.off('close', onClose);
      this.inflight.delete(entry);
      resolve();
    }
  }

  private readJson(req: IncomingMessage): Promise<unknown> {
    const limit = this.opts.maxBodyBytes;
    const tooLarge = () => new HttpError(413, `request body exceeds the ${limit}-byte limit`, 'invalid_request_error', null, 'request_too_large');
    if (Number(req.headers['content-length']) > limit) { req.resume(); return Promise.reject(tooLarge()); }
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0, over = false;
      req.on('data', (c: Buffer) => {
        if (over) return;
        size += c.length;
        if (size > limit) { over = true; chunks.length = 0; reject(tooLarge()); return; }
        chunks.push(c);
      });
      req.on('error', (e) => reject(new HttpError(400, `reading the request body failed: ${e.message}`)));
      req.on('end', () => {
        if (over) return;
        const text = Buffer.concat(chunks).toString('utf8');
        if (!text.trim()) { reject(new HttpError(400, 'request body is empty; expected a JSON object')); return; }
        try { resolve(JSON.parse(text)); } catch (e) { reject(new HttpError(400, `request body is not valid JSON: ${(e as Error).message}`)); }
      });
    });
  }

  private parse<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'request body must be a JSON object');
    const r = schema.safeParse(body);
    if (!r.success) { const { message, param } = describeIssue(r.error); throw new HttpError(400, message, 'invalid_request_error', param); }
    const model = (r.data as { model?: string | null }).model;
    if (model != null && model !== this.modelName)
      throw new HttpError(404, `model '${model}' does not exist; this server serves '${this.modelName}'`, 'not_found_error', 'model', 'model_not_found');
    return r.data;
  }

  // ---- request → engine jobs ----

  /** Validate sampling and lengths before any response is started; one job per prompt × n. */
  private jobs(body: Common, prompts: (string | number[])[], maxTokens: number | undefined, logprobs: number | undefined): Job[] {
    const sampling: SamplingParams = {};
    for (const k of ['temperature', 'top_p', 'top_k', 'min_p', 'presence_penalty', 'frequency_penalty', 'repetition_penalty', 'seed'] as const) {
      const v = body[k];
      if (v != null) sampling[k] = v;
    }
    if (logprobs !== undefined) sampling.logprobs = logprobs;
    try { resolveSamplingParams(sampling); } catch (e) { const m = (e as Error).message; throw new HttpError(400, m, 'invalid_request_error', paramOf(m)); }
    const { vocab: V, maxPositions: P } = this.engine.backend.plan.model;
    const n = body.n ?? 1, jobs: Job[] = [];
    prompts.forEach((p, i) => {
      const tokens = typeof p === 'string' ? this.engine.tokenizer.encode(p) : p;
      if (tokens.length === 0) throw new HttpError(400, 'prompt is empty', 'invalid_request_error', 'prompt');
      const bad = tokens.findIndex((t) => t < 0 || t >= V);
      if (bad >= 0) throw new HttpError(400, `prompt token ${bad} is ${tokens[bad]}, outside the vocabulary 0..${V - 1}`, 'invalid_request_error', 'prompt');
      const max = maxTokens ?? P - tokens.length;
      if (tokens.length + max > P)
        throw new HttpError(400, `prompt (${tokens.length} tokens) + max_tokens (${max}) exceeds the model's ${P} positions`, 'invalid_request_error', maxTokens === undefined ? 'prompt' : 'max_tokens');
      if (max < 1) throw new HttpError(400, `prompt (${tokens.length} tokens) leaves no room to generate in the model's ${P} positions`, 'invalid_request_error', 'prompt');
      for (let j = 0; j < n; j++) {
        const opts: GenerateOptions = { ...sampling, max_tokens: max };
        if (sampling.seed !== undefined) opts.seed = sampling.seed + j;
        if (body.stop != null) opts.stop = body.stop;
        if (body.stop_token_ids != null) opts.stop_token_ids = body.stop_token_ids;
        if (body.ignore_eos) opts.ignore_eos = true;
        if (body.speculative === false) opts.speculative = false;
        jobs.push({ index: i * n + j, prompt: tokens, opts, countPrompt: j === 0 });
      }
    });
    return jobs;
  }

  /** Run one job on the engine, recording TTFT / ITL / token counters; `onDelta` sees each delta. */
  private async runJob(job: Job, signal: AbortSignal, t0: number, onDelta?: (d: Delta) => void): Promise<ChoiceResult> {
    const it = this.engine.stream(job.prompt, { ...job.opts, signal });
    const lps: number[] = [], top: { token: number; logprob: number }[][] = [];
    let last = t0, first = true;
    for (;;) {
      let r: IteratorResult<Delta, Completion>;
      try { r = await it.next(); } catch (e) {
        const m = (e as Error).message;
        throw this.engine.dead ? new HttpError(503, m, 'server_error') : new HttpError(400, m, 'invalid_request_error', paramOf(m));
      }
      if (r.done) {
        const c = r.value;
        if (job.countPrompt) this.metrics.promptTokens.inc(c.usage.promptTokens);
        this.metrics.generationTokens.inc(c.usage.completionTokens);
        return { index: job.index, completion: c, logprobs: lps, top, tokens: c.tokens };
      }
      const d = r.value;
      if (d.tokens.length) {
        const now = performance.now();
        if (first) { this.metrics.ttft.observe((now - t0) / 1000); first = false; }
        else for (let k = 0; k < d.tokens.length; k++) this.metrics.itl.observe((now - last) / 1000 / d.tokens.length);
        last = now;
      }
      if (d.logprobs) lps.push(...d.logprobs);
      if (d.topLogprobs) top.push(...d.topLogprobs);
      onDelta?.(d);
    }
  }

  private tokenText(t: number): string {
    const d = this.engine.tokenizer.decoder();
    return d.push([t]) + d.flush();
  }

  private completionLogprobs(tokens: number[], lps: number[], top: { token: number; logprob: number }[][], offset: number) {
    const strs = tokens.map((t) => this.tokenText(t));
    const text_offset: number[] = [];
    for (const s of strs) { text_offset.push(offset); offset += s.length; }
    return {
      tokens: strs, token_logprobs: lps.slice(0, tokens.length), text_offset,
      top_logprobs: top.slice(0, tokens.length).map((alts) => Object.fromEntries(alts.map((a) => [this.tokenText(a.token), a.logprob]))),
    };
  }

  private chatLogprobs(tokens: number[], lps: number[], top: { token: number; logprob: number }[][]) {
    const entry = (t: number, logprob: number) => { const token = this.tokenText(t); return { token, logprob, bytes: [...Buffer.from(token)] }; };
    return { content: tokens.map((t, i) => ({ ...entry(t, lps[i]), top_logprobs: (top[i] ?? []).map((a) => entry(a.token, a.logprob)) })) };
  }

  private usage(results: ChoiceResult[], jobs: Job[]) {
    let prompt = 0, completion = 0;
    results.forEach((r, i) => { if (jobs[i].countPrompt) prompt += r.completion.usage.promptTokens; completion += r.completion.usage.completionTokens; });
    return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
  }

  private startSse(res: ServerResponse): (data: unknown) => void {
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    res.flushHeaders();
    return (data) => { if (!res.writableEnded && !res.destroyed) res.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`); };
  }

  /** Stream jobs as SSE; `chunk(job, delta | null, finish)` builds one choice's chunk. */
  private async streamJobs(res: ServerResponse, signal: AbortSignal, jobs: Job[], includeUsage: boolean,
    base: object, chunk: (job: Job, d: Delta | null, finish: string | null) => object | null): Promise<void> {
    const t0 = performance.now();
    const send = this.startSse(res);
    try {
      const results = await Promise.all(jobs.map(async (job) => {
        const hello = chunk(job, null, null);
        if (hello) send({ ...base, choices: [hello] });
        const r = await this.runJob(job, signal, t0, (d) => { if (d.text || d.logprobs?.length) send({ ...base, choices: [chunk(job, d, null)] }); });
        send({ ...base, choices: [chunk(job, { text: '', tokens: [] }, FINISH[r.completion.finishReason] ?? 'stop')] });
        return r;
      }));
      if (includeUsage) send({ ...base, choices: [], usage: this.usage(results, jobs) });
    } catch (e) {
      const err = e instanceof HttpError ? e : new HttpError(500, (e as Error).message, 'server_error');
      send({ error: { message: err.message, type: err.type, param: err.param, code: err.code } });
    }
    send('[DONE]');
    res.end();
  }

  private async completions(raw: unknown, res: ServerResponse, signal: AbortSignal): Promise<void> {
    const body = this.parse(completionBody, raw);
    if (body.echo) throw new HttpError(400, 'echo is not supported', 'invalid_request_error', 'echo');
    const p = body.prompt;
    const prompts: (string | number[])[] = typeof p === 'string' ? [p]
      : typeof p[0] === 'string' ? p as string[] : typeof p[0] === 'number' ? [p as number[]] : p as number[][];
    const lp = body.logprobs ?? undefined;
    const jobs = this.jobs(body, prompts, body.max_tokens ?? 16, lp);
    const base = { id: `cmpl-${randomUUID()}`, object: 'text_completion', created: Math.floor(Date.now() / 1000), model: this.modelName };
    if (body.stream) {
      const offsets = new Map<number, number>();
      return this.streamJobs(res, signal, jobs, !!body.stream_options?.include_usage, base, (job, d, finish) => {
        if (!d) return null;
        const off = offsets.get(job.index) ?? 0;
        offsets.set(job.index, off + d.text.length);
        const logprobs = lp !== undefined && d.logprobs ? this.completionLogprobs(d.tokens, d.logprobs, d.topLogprobs ?? [], off) : null;
        return { index: job.index, text: d.text, logprobs, finish_reason: finish };
      });
    }
    const t0 = performance.now();
    const results = await Promise.all(jobs.map((j) => this.runJob(j, signal, t0)));
    if (signal.aborted && res.destroyed) return;
    this.json(res, 200, {
      ...base,
      choices: results.map((r) => ({
        index: r.index, text: r.completion.text, finish_reason: FINISH[r.completion.finishReason] ?? 'stop',
        logprobs: lp !== undefined ? this.completionLogprobs(r.tokens, r.logprobs, r.top, 0) : null,
      })),
      usage: this.usage(results, jobs),
    });
  }

  private async chat(raw: unknown, res: ServerResponse, signal: AbortSignal): Promise<void> {
    const body = this.parse(chatBody, raw);
    let prompt: string;
    try { prompt = this.opts.chatTemplate.render(body.messages); } catch (e) {
      throw new HttpError(400, `messages: the chat template failed: ${(e as Error).message}`, 'invalid_request_error', 'messages');
    }
    const want = !!body.logprobs;
    if (body.top_logprobs != null && !want) throw new HttpError(400, 'top_logprobs requires logprobs: true', 'invalid_request_error', 'top_logprobs');
    const jobs = this.jobs(body, [prompt], body.max_completion_tokens ?? body.max_tokens ?? undefined, want ? body.top_logprobs ?? 0 : undefined);
    const base = { id: `chatcmpl-${randomUUID()}`, object: 'chat.completion', created: Math.floor(Date.now() / 1000), model: this.modelName };
    if (body.stream) {
      return this.streamJobs(res, signal, jobs, !!body.stream_options?.include_usage, { ...base, object: 'chat.completion.chunk' }, (job, d, finish) => {
        if (!d) return { index: job.index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null };
        const logprobs = want && d.logprobs?.length ? this.chatLogprobs(d.tokens, d.logprobs, d.topLogprobs ?? []) : null;
        return { index: job.index, delta: finish ? {} : { content: d.text }, logprobs, finish_reason: finish };
      });
    }
    const t0 = performance.now();
    const results = await Promise.all(jobs.map((j) => this.runJob(j, signal, t0)));
    if (signal.aborted && res.destroyed) return;
    this.json(res, 200, {
      ...base,
      choices: results.map((r) => ({
        index: r.index, message: { role: 'assistant', content: r.completion.text },
        logprobs: want ? this.chatLogprobs(r.tokens, r.logprobs, r.top) : null,
        finish_reason: FINISH[r.completion.finishReason] ?? 'stop',
      })),
      usage: this.usage(results, jobs),
    });
  }
}

/** Create a server over `engine` and start listening; `server.url` is where. */
export async function serve(engine: Engine, opts: ServerOptions = {}): Promise<OpenAIServer> {
  const s = new OpenAIServer(engine, opts);
  await s.listen();
  return s;
}

/**
 * The OpenAI-compatible server, live on 127.0.0.1 (ephemeral port) over the compiled coder-draft
 * model: the official `openai` client for completions (stream and not), chat completions, n = 2,
 * seeded determinism, stop strings and /v1/models; raw fetch for errors (400 naming the problem,
 * 401, 404, 413), /health, /metrics, client disconnect (KV blocks freed) and graceful shutdown.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileModel } from '../../compiler/compile.js';
import { ReferenceBackend } from '../../runtime/backends/reference.js';
import { Engine } from '../../runtime/engine.js';
import { jinjaChatTemplate, serve, type OpenAIServer } from '../../runtime/server/index.js';

const ROOT = join(import.meta.dirname, '../..');
const MODEL = join(ROOT, 'models/coder-draft.onnx');
const CLI = join(ROOT, 'dist/compiler/cli.js');
const KEY = 'sk-test-key';
const NUM_BLOCKS = 64;

describe.skipIf(!existsSync(MODEL))('OpenAI-compatible server', () => {
  let engine: Engine, server: OpenAIServer, url: string, client: OpenAI;
  let newEngine: () => Engine;

  beforeAll(async () => {
    const r = compileModel(MODEL, { maxPositions: 256 });
    const weights = r.weights!.pack();
    newEngine = () => new Engine(new ReferenceBackend(r.plan!, weights, { numBlocks: NUM_BLOCKS, maxTokens: 128 }), { maxBatchedTokens: 128 });
    engine = newEngine();
    server = await serve(engine, { port: 0, apiKey: KEY, modelName: 'coder-draft', maxBodyBytes: 64 * 1024 });
    url = server.url;
    client = new OpenAI({ baseURL: `${url}/v1`, apiKey: KEY, maxRetries: 0, timeout: 60_000 });
  });
  afterAll(async () => { await server?.close(1000); });

  const post = (path: string, body: string | object, headers: Record<string, string> = { Authorization: `Bearer ${KEY}` }) =>
    fetch(`${url}${path}`, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });

  it('listens on 127.0.0.1 only', () => {
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('completions: same text as the engine, streamed or not, with usage', async () => {
    const prompt = 'def add(a, b):';
    const direct = await engine.generate(prompt, { max_tokens: 12, temperature: 0 });
    const c = await client.completions.create({ model: 'coder-draft', prompt, max_tokens: 12, temperature: 0 });
    expect(c.object).toBe('text_completion');
    expect(c.choices).toHaveLength(1);
    expect(c.choices[0].text).toBe(direct.text);
    expect(c.choices[0].finish_reason).toBe(direct.finishReason);
    expect(c.usage).toEqual({ prompt_tokens: 1 + prompt.length, completion_tokens: direct.usage.completionTokens, total_tokens: 1 + prompt.length + direct.usage.completionTokens });

    const stream = await client.completions.create({ model: 'coder-draft', prompt, max_tokens: 12, temperature: 0, stream: true, stream_options: { include_usage: true } });
    let text = '', finish: string | null = null, usage;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      for (const ch of chunk.choices) { text += ch.text; if (ch.finish_reason) finish = ch.finish_reason; }
    }
    expect(text).toBe(direct.text);
    expect(finish).toBe(direct.finishReason);
    expect(usage).toEqual(c.usage);
  });

  it('chat completions: messages rendered as "role: content" lines ending "assistant: "', async () => {
    const messages = [{ role: 'system' as const, content: 'be brief' }, { role: 'user' as const, content: 'write a loop' }];
    const direct = await engine.generate('system: be brief\nuser: write a loop\nassistant: ', { max_tokens: 10, temperature: 0 });
    const c = await client.chat.completions.create({ model: 'coder-draft', messages, max_tokens: 10, temperature: 0 });
    expect(c.object).toBe('chat.completion');
    expect(c.choices[0].message.role).toBe('assistant');
    expect(c.choices[0].message.content).toBe(direct.text);

    const stream = await client.chat.completions.create({ model: 'coder-draft', messages, max_tokens: 10, temperature: 0, stream: true });
    let text = '', role: string | undefined, finish: string | null = null;
    for await (const chunk of stream) {
      expect(chunk.object).toBe('chat.completion.chunk');
      role ??= chunk.choices[0]?.delta.role;
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(role).toBe('assistant');
    expect(text).toBe(direct.text);
    expect(finish).toBe(direct.finishReason);
  });

  it('n = 2 runs two requests with seeds seed and seed + 1; the same seed gives the same text', async () => {
    const params = { model: 'coder-draft', prompt: 'import ', max_tokens: 16, temperature: 1, top_p: 0.95 };
    const two = await client.completions.create({ ...params, n: 2, seed: 41 });
    expect(two.choices.map((c) => c.index).sort()).toEqual([0, 1]);
    const byIndex = (i: number) => two.choices.find((c) => c.index === i)!.text;
    const s41 = await client.completions.create({ ...params, seed: 41 });
    const s42 = await client.completions.create({ ...params, seed: 42 });
    const s41again = await client.completions.create({ ...params, seed: 41 });
    expect(s41again.choices[0].text).toBe(s41.choices[0].text);
    expect(byIndex(0)).toBe(s41.choices[0].text);
    expect(byIndex(1)).toBe(s42.choices[0].text);
    expect(two.usage!.prompt_tokens).toBe(1 + 'import '.length);
    expect(two.usage!.completion_tokens).toBe(s41.usage!.completion_tokens + s42.usage!.completion_tokens);

    // chat, streamed, n = 2: both choices arrive and each ends with a finish_reason
    const stream = await client.chat.completions.create({ model: 'coder-draft', messages: [{ role: 'user', content: 'hi' }], max_tokens: 6, n: 2, seed: 3, stream: true });
    const finished = new Set<number>();
    for await (const chunk of stream) for (const ch of chunk.choices) if (ch.finish_reason) finished.add(ch.index);
    expect([...finished].sort()).toEqual([0, 1]);
  });

  it('stop strings end the text before the stop string', async () => {
    const full = await client.completions.create({ model: 'coder-draft', prompt: 'def f(x):\n', max_tokens: 30, temperature: 0 });
    const t = full.choices[0].text;
    const stop = t.slice(3, 5);
    const c = await client.completions.create({ model: 'coder-draft', prompt: 'def f(x):\n', max_tokens: 30, temperature: 0, stop: [stop] });
    expect(c.choices[0].finish_reason).toBe('stop');
    expect(c.choices[0].text).toBe(t.slice(0, t.indexOf(stop)));
  });

  it('logprobs: completions (top-n per token) and chat (content entries)', async () => {
    const c = await client.completions.create({ model: 'coder-draft', prompt: 'x = ', max_tokens: 5, temperature: 0, logprobs: 2 });
    const lp = c.choices[0].logprobs!;
    expect(lp.tokens!.length).toBe(c.usage!.completion_tokens);
    expect(lp.token_logprobs!.every((x) => x <= 0)).toBe(true);
    expect(lp.top_logprobs!.every((o) => Object.keys(o).length >= 1)).toBe(true);
    const chat = await client.chat.completions.create({ model: 'coder-draft', messages: [{ role: 'user', content: 'x' }], max_tokens: 4, temperature: 0, logprobs: true, top_logprobs: 3 });
    const content = chat.choices[0].logprobs!.content!;
    expect(content.length).toBe(chat.usage!.completion_tokens);
    expect(content[0].top_logprobs).toHaveLength(3);
  });

  it('/v1/models lists the served model', async () => {
    const models = [];
    for await (const m of client.models.list()) models.push(m.id);
    expect(models).toEqual(['coder-draft']);
  });

  it('errors: OpenAI error format, field named, right status', async () => {
    const expectError = async (r: Response, status: number, match: RegExp, param?: string | null) => {
      expect(r.status).toBe(status);
      const body = await r.json() as { error: { message: string; type: string; param: string | null; code: string | null } };
      expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
      expect(body.error.message).toMatch(match);
      if (param !== undefined) expect(body.error.param).toBe(param);
    };
    await expectError(await post('/v1/completions', '{"prompt": "x",'), 400, /not valid JSON/);
    await expectError(await post('/v1/completions', '[1, 2]'), 400, /must be a JSON object/);
    await expectError(await post('/v1/completions', { prompt: 'x', temperature: -1 }), 400, /temperature must be >= 0/, 'temperature');
    await expectError(await post('/v1/completions', { prompt: 'x', temperature: 'hot' }), 400, /^temperature: .*number/, 'temperature');
    await expectError(await post('/v1/completions', { prompt: 'x', top_p: 1.5 }), 400, /top_p must be in \(0, 1\]/, 'top_p');
    await expectError(await post('/v1/completions', { max_tokens: 4 }), 400, /^prompt:/, 'prompt');
    await expectError(await post('/v1/completions', { prompt: 'x', max_tokens: 1000 }), 400, /exceeds the model's 256 positions/, 'max_tokens');
    await expectError(await post('/v1/completions', { prompt: [1, 2, 999] }), 400, /prompt token 2 is 999/, 'prompt');
    await expectError(await post('/v1/chat/completions', { messages: [{ role: 'wizard', content: 'x' }] }), 400, /^messages\.0\.role:/, 'messages.0.role');
    await expectError(await post('/v1/completions', { model: 'gpt-9', prompt: 'x' }), 404, /model 'gpt-9' does not exist/, 'model');
    await expectError(await fetch(`${url}/nope`), 404, /unknown route: GET \/nope/);
    await expectError(await fetch(`${url}/v1/completions`, { headers: { Authorization: `Bearer ${KEY}` } }), 405, /use POST/);
    await expectError(await post('/v1/completions', { prompt: 'x'.repeat(100_000) }), 413, /exceeds the 65536-byte limit/);
    await expectError(await post('/v1/completions', { prompt: 'x' }, {}), 401, /missing API key/);
    await expectError(await post('/v1/completions', { prompt: 'x' }, { Authorization: 'Bearer wrong' }), 401, /incorrect API key/);
    // the openai client surfaces the same errors as exceptions with the status
    await expect(client.completions.create({ model: 'coder-draft', prompt: 'x', temperature: -1 })).rejects.toMatchObject({ status: 400 });
    // /health and /metrics need no key
    expect((await fetch(`${url}/health`)).status).toBe(200);
  });

  it('/metrics: Prometheus text whose counters and histograms grow with traffic', async () => {
    const scrape = async () => {
      const r = await fetch(`${url}/metrics`);
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toMatch(/^text\/plain/);
      const m = new Map<string, number>();
      for (const line of (await r.text()).split('\n')) {
        const x = /^([a-z_]+(?:\{[^}]*\})?) ([0-9.e+-]+|NaN)$/.exec(line);
        if (x) m.set(x[1], Number(x[2]));
      }
      return m;
    };
    const before = await scrape();
    for (const g of ['lfc_requests_running', 'lfc_requests_waiting', 'lfc_kv_cache_usage_ratio']) expect(before.has(g)).toBe(true);
    const c = await client.completions.create({ model: 'coder-draft', prompt: 'print(', max_tokens: 8, temperature: 0, stream: true });
    for await (const _ of c) { /* drain */ }
    const after = await scrape();
    const d = (k: string) => after.get(k)! - (before.get(k) ?? 0);
    expect(d('lfc_prompt_tokens_total')).toBe(1 + 'print('.length);
    expect(d('lfc_generation_tokens_total')).toBeGreaterThanOrEqual(1);
    expect(d('lfc_time_to_first_token_seconds_count')).toBe(1);
    expect(d('lfc_inter_token_latency_seconds_count')).toBe(d('lfc_generation_tokens_total') - 1);
    expect(after.get('lfc_requests_running')).toBe(0);
  });

  it('a client that disconnects mid-stream frees its KV blocks', async () => {
    const r = await post('/v1/completions', { prompt: 'while True:', max_tokens: 200, temperature: 0, ignore_eos: true, stream: true });
    const reader = r.body!.getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toMatch(/^data: /);
    expect(engine.scheduler.kv.numFreeBlocks).toBeLessThan(NUM_BLOCKS);
    await reader.cancel();
    for (let i = 0; i < 200 && (engine.scheduler.kv.numFreeBlocks < NUM_BLOCKS || server.numInflight > 0); i++) await new Promise((res) => setTimeout(res, 10));
    expect(engine.scheduler.kv.numFreeBlocks).toBe(NUM_BLOCKS);
    expect(server.numInflight).toBe(0);
  });

  it('graceful shutdown: stops accepting, aborts what runs past the grace period, frees everything', async () => {
    const e = newEngine();
    const s = await serve(e, { port: 0 });
    const r = await fetch(`${s.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ prompt: 'for i in', max_tokens: 240, temperature: 0, ignore_eos: true, stream: true }) });
    const reader = r.body!.getReader();
    await reader.read();
    const closed = s.close(50);
    await expect(fetch(`${s.url}/health`)).rejects.toThrow();
    let text = '';
    for (let i = 0; i < 10_000; i++) { const x = await reader.read(); if (x.done) break; text += new TextDecoder().decode(x.value); }
    await closed;
    expect(text).toMatch(/"finish_reason":"abort"/);
    expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);
    expect(e.scheduler.kv.numFreeBlocks).toBe(NUM_BLOCKS);
  });

  it('graceful shutdown lets a request that ends within the grace period finish normally', async () => {
    const e = newEngine();
    const s = await serve(e, { port: 0 });
    const pending = fetch(`${s.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ prompt: 'x = ', max_tokens: 5, temperature: 0, ignore_eos: true }) });
    for (let i = 0; i < 200 && s.numInflight === 0; i++) await new Promise((res) => setTimeout(res, 5));
    await s.close(30_000);
    const r = await pending;
    expect(r.status).toBe(200);
    const body = await r.json() as { choices: { finish_reason: string }[]; usage: { completion_tokens: number } };
    expect(body.choices[0].finish_reason).toBe('length');
    expect(body.usage.completion_tokens).toBe(5);
  });

  it('a Jinja chat template plugs in; its errors are 400s on messages', async () => {
    const tpl = jinjaChatTemplate(
      "{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('no system messages') }}{% endif %}<{{ m.role }}>{{ m.content }}\n{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}");
    expect(tpl.render([{ role: 'user', content: 'hi' }])).toBe('<user>hi\n<assistant>');
    const s = await serve(engine, { port: 0, chatTemplate: tpl });
    try {
      const c = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'none', maxRetries: 0 });
      const direct = await engine.generate('<user>hi\n<assistant>', { max_tokens: 6, temperature: 0 });
      const r = await c.chat.completions.create({ model: 'lfc', messages: [{ role: 'user', content: 'hi' }], max_tokens: 6, temperature: 0 });
      expect(r.choices[0].message.content).toBe(direct.text);
      const bad = await fetch(`${s.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ messages: [{ role: 'system', content: 'x' }] }) });
      expect(bad.status).toBe(400);
      expect(await bad.json()).toMatchObject({ error: { param: 'messages', message: expect.stringMatching(/no system messages/) } });
    } finally { await s.close(1000); }
  });

  it('/health is 503 when the engine is dead', async () => {
    const e = newEngine();
    e.dead = new Error('backend exploded');
    const s = await serve(e, { port: 0 });
    try {
      const r = await fetch(`${s.url}/health`);
      expect(r.status).toBe(503);
      expect(await r.json()).toMatchObject({ status: 'dead' });
      expect((await fetch(`${s.url}/v1/completions`, { method: 'POST', body: '{"prompt":"x"}' })).status).toBe(503);
    } finally { await s.close(100); }
  });
});

describe.skipIf(!existsSync(MODEL) || !existsSync(CLI))('lfc serve', () => {
  it('prints its URL, serves the static scheduler, and exits 0 on SIGTERM', async () => {
    const child = spawn(process.execPath, [CLI, 'serve', MODEL, '--port', '0', '--api-key', 'k', '--scheduler', 'static', '--max-seqs', '4'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = '', err = '';
        const timer = setTimeout(() => reject(new Error(`no URL within 60 s; stderr: ${err}`)), 60_000);
        child.stdout.on('data', (d: Buffer) => {
          out += d;
          const m = /(http:\/\/127\.0\.0\.1:\d+)\/v1/.exec(out);
          if (m) { clearTimeout(timer); resolve(m[1]); }
        });
        child.stderr.on('data', (d: Buffer) => { err += d; });
        child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`lfc serve exited with ${code}: ${err}`)); });
      });
      const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'k', maxRetries: 0 });
      const c = await client.completions.create({ model: 'coder-draft', prompt: 'def ', max_tokens: 4, temperature: 0 });
      expect(c.choices[0].finish_reason).toMatch(/^(length|stop)$/);
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});

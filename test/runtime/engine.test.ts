/**
 * The engine on a real compiled model (reference backend): streaming, batching independence
 * (same seed → same tokens alone or among other requests, greedy and sampled), continuous
 * batching under a small token budget with preemption, stop strings, abort, and clear errors.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileModel } from '../../compiler/compile.js';
import { ReferenceBackend } from '../../runtime/backends/reference.js';
import { Engine } from '../../runtime/engine.js';
import { HfTokenizer } from '../../runtime/tokenizer.js';
import { writeArtifact } from '../../compiler/compile.js';
import { byteLevelBpe } from '../helpers/tokenizers.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';

const MODEL = join(import.meta.dirname, '../../models/coder-draft.onnx');

describe.skipIf(!existsSync(MODEL))('Engine', () => {
  const r = compileModel(MODEL, { maxPositions: 256 });
  const weights = r.weights!.pack();
  const engine = (opts: { numBlocks?: number; maxBatchedTokens?: number; maxSeqs?: number } = {}) =>
    new Engine(new ReferenceBackend(r.plan!, weights, { numBlocks: opts.numBlocks ?? 64, maxTokens: 128 }), opts);

  it('streams deltas whose concatenation is the completion', async () => {
    const e = engine();
    let text = '';
    const it = e.stream('def add(a, b):', { max_tokens: 12, temperature: 0 });
    let res;
    for (;;) { const x = await it.next(); if (x.done) { res = x.value; break; } text += x.value.text; }
    expect(res.text).toBe(text);
    expect(res.usage.completionTokens).toBe(res.tokens.length);
    expect(res.finishReason === 'length' || res.finishReason === 'stop').toBe(true);
    expect(res.usage.promptTokens).toBe(1 + 'def add(a, b):'.length);
  });

  it('tokens do not depend on batching (greedy and seeded sampling)', async () => {
    const prompts = ['import os\n', 'class Foo:\n    def ', 'for i in range(', '# compute the sum\n'];
    const params = (i: number) => (i % 2 ? { temperature: 0 } : { temperature: 0.9, top_p: 0.95, seed: 100 + i });
    const alone = [];
    for (const [i, p] of prompts.entries()) alone.push((await engine().generate(p, { max_tokens: 16, ...params(i) })).tokens);
    // all at once, on one engine with a small budget so prefills are chunked and mixed with decodes
    const e = engine({ maxBatchedTokens: 8, numBlocks: 10 });
    const together = await Promise.all(prompts.map((p, i) => e.generate(p, { max_tokens: 16, ...params(i) })));
    expect(together.map((c) => c.tokens)).toEqual(alone);
    expect(e.scheduler.kv.numFreeBlocks).toBe(10);
  });

  it('stop strings end the completion before the stop text', async () => {
    const e = engine();
    const full = await e.generate('def f(x):\n', { max_tokens: 30, temperature: 0 });
    const stop = full.text.slice(3, 5);
    const c = await e.generate('def f(x):\n', { max_tokens: 30, temperature: 0, stop });
    expect(c.finishReason).toBe('stop');
    expect(c.text).toBe(full.text.slice(0, full.text.indexOf(stop)));
  });

  it('abort frees every block', async () => {
    const e = engine({ numBlocks: 16 });
    const ac = new AbortController();
    const it = e.stream('while True:', { max_tokens: 100, temperature: 0, signal: ac.signal });
    await it.next();
    ac.abort();
    let last;
    for (;;) { const x = await it.next(); if (x.done) { last = x.value; break; } }
    expect(last.finishReason).toBe('aborted');
    expect(e.scheduler.kv.numFreeBlocks).toBe(16);
  });

  it('loads an artifact folder and uses its tokenizer.json', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lfc-art-'));
    writeArtifact(r, dir);
    const { json, config } = byteLevelBpe();
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(json));
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config));
    const e = Engine.load(dir, { numBlocks: 32 });
    expect(e.tokenizer).toBeInstanceOf(HfTokenizer);
    const c = await e.generate('def main():', { max_tokens: 10, temperature: 0 });
    const bytes = c.tokens.filter((t) => t < 256);
    expect(c.text).toBe(new TextDecoder().decode(Uint8Array.from(bytes)));
    expect(c.usage.promptTokens).toBe('def main():'.length);
  });

  it('rejects bad requests with the field named', async () => {
    const e = engine();
    await expect(e.generate([1, 2, 999], {})).rejects.toThrow(/prompt token 2 is 999, outside the vocabulary 0..258/);
    await expect(e.generate('x', { max_tokens: 0 })).rejects.toThrow(/max_tokens must be a positive integer/);
    await expect(e.generate('x', { max_tokens: 1000 })).rejects.toThrow(/exceeds the model's 256 positions/);
    await expect(e.generate('x', { top_p: 1.5 })).rejects.toThrow(/top_p must be in \(0, 1\], got 1.5/);
  });
});

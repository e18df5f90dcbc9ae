/**
 * The ablation's naive switches (issue 13): the 'contiguous' KV policy (each request reserves
 * blocks for its maximum length at admission; a property over random workloads: no leak, never
 * more concurrent requests than their maxima fit), the unfused attention reference against the
 * fused paged reference on random ragged batches, and the CLI flags reaching the engine.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KvBlockManager } from '../../runtime/kv/block-manager.js';
import { Scheduler } from '../../runtime/scheduler.js';
import { reference as fused } from '../../runtime/kernels/paged-attention.js';
import { reference as unfused } from '../../runtime/kernels/unfused-attention.js';

describe('contiguous KV (reservation at admission)', () => {
  it('KvBlockManager holds the reserved blocks from allocate to free, and counts them as used but not live', () => {
    const m = new KvBlockManager(16, 4, false);
    expect(m.allocate('a', [1, 2, 3, 4, 5], 5, Infinity, 20)).toBe(0);
    expect(m.numSeqBlocks('a')).toBe(2);
    expect(m.numSpareBlocks('a')).toBe(3);
    expect(m.numFreeBlocks).toBe(11);
    let s = m.stats();
    expect(s.usedBlocks).toBe(5);
    expect(s.reservedBlocks).toBe(3);
    expect(s.utilisation).toBeCloseTo(5 / 20);
    // Appends take the spares first: the free list does not move.
    expect(m.canAppend('a', 15)).toBe(true);
    m.appendSlots('a', 7); // 12 tokens: 3 blocks
    expect(m.numFreeBlocks).toBe(11);
    expect(m.numSpareBlocks('a')).toBe(2);
    // Rejected speculative slots go back to the spares, not to the free list.
    m.truncate('a', 5);
    expect(m.numSpareBlocks('a')).toBe(3);
    expect(m.numFreeBlocks).toBe(11);
    m.checkInvariants();
    s = m.stats();
    expect(s.usedBlocks).toBe(5);
    m.free('a');
    expect(m.numFreeBlocks).toBe(16);
    m.checkInvariants();
    // Paged (no reservation) for comparison: only the blocks the tokens need.
    m.allocate('b', [1, 2, 3, 4, 5], 5);
    expect(m.stats().usedBlocks).toBe(2);
    expect(m.stats().reservedBlocks).toBe(0);
  });

  it('the scheduler admits a request only when its maximum fits, reserving prompt + max tokens', () => {
    const sch = new Scheduler({ maxBatchedTokens: 64, maxSeqs: 8, blockSize: 4, numBlocks: 10, kv: 'contiguous', prefixCaching: false });
    const a = sch.add({ id: 'a', prompt: [1, 2, 3], maxTokens: 13 }); // 16 slots: 4 blocks
    const b = sch.add({ id: 'b', prompt: [1, 2, 3], maxTokens: 13 });
    const c = sch.add({ id: 'c', prompt: [1, 2, 3], maxTokens: 13 });
    const step = sch.schedule()!;
    expect(step.seqs.map((s) => s.id)).toEqual(['a', 'b']); // c's 4 blocks do not fit in the 2 left
    expect(sch.kv.numSeqBlocks('a') + sch.kv.numSpareBlocks('a')).toBe(4);
    expect(sch.kv.numFreeBlocks).toBe(2);
    expect(c.status).toBe('waiting');
    sch.postprocess([7, 7]);
    expect(a.status).toBe('running');
    expect(b.status).toBe('running');
    // Paged admits all three at once with the same cache.
    const paged = new Scheduler({ maxBatchedTokens: 64, maxSeqs: 8, blockSize: 4, numBlocks: 10, prefixCaching: false });
    for (const id of ['a', 'b', 'c']) paged.add({ id, prompt: [1, 2, 3], maxTokens: 13 });
    expect(paged.schedule()!.seqs.length).toBe(3);
  });

  it('reserveTokens (max positions when max_tokens is unknown) is capped at the cache', () => {
    const sch = new Scheduler({ maxBatchedTokens: 64, maxSeqs: 8, blockSize: 4, numBlocks: 10, kv: 'contiguous' });
    const s = sch.add({ id: 'a', prompt: [1, 2], maxTokens: 4, reserveTokens: 1000 });
    expect(s.status).toBe('waiting');
    sch.schedule();
    expect(sch.kv.numFreeBlocks).toBe(0);
  });

  it('property: random workloads with drafts and aborts never leak, never preempt, and never run more requests than their maxima fit', () => {
    fc.assert(fc.property(
      fc.record({
        numBlocks: fc.integer({ min: 4, max: 40 }),
        maxSeqs: fc.integer({ min: 1, max: 6 }),
        policy: fc.constantFrom('continuous' as const, 'static' as const),
        reqs: fc.array(fc.record({ prompt: fc.integer({ min: 1, max: 20 }), maxTokens: fc.integer({ min: 1, max: 20 }), k: fc.integer({ min: 0, max: 3 }), abortAt: fc.option(fc.integer({ min: 0, max: 30 })) }), { minLength: 1, maxLength: 12 }),
        seed: fc.integer({ min: 1, max: 1 << 30 }),
      }),
      ({ numBlocks, maxSeqs, policy, reqs, seed }) => {
        const bs = 4;
        const sch = new Scheduler({ maxBatchedTokens: 32, maxSeqs, blockSize: bs, numBlocks, kv: 'contiguous', policy, prefixCaching: seed % 2 === 0 });
        let r = seed;
        const rnd = () => { r = (Math.imul(r, 1103515245) + 12345) >>> 0; return r / 4294967296; };
        const seqs = reqs.map((q, i) => sch.add({ id: i, prompt: Array.from({ length: q.prompt }, (_, j) => (i * 7 + j) % 50), maxTokens: q.maxTokens, numSpeculativeTokens: q.k }));
        const need = (i: number) => Math.ceil(Math.min(seqs[i].reserveTokens, numBlocks * bs) / bs);
        for (let stepNo = 0; sch.hasWork() && stepNo < 500; stepNo++) {
          for (const [i, s] of seqs.entries()) {
            if (s.status === 'running' && s.length - s.numComputed === 1 && s.numSpeculativeTokens > 0) sch.setDraft(i, Array.from({ length: s.numSpeculativeTokens }, () => (rnd() < 0.5 ? 3 : 4)));
            if (s.status !== 'finished' && reqs[i].abortAt === stepNo) sch.abort(i);
          }
          const step = sch.schedule();
          if (!step) break;
          // Every running request holds blocks for its whole maximum; together they fit.
          let held = 0;
          for (const [i, s] of seqs.entries()) {
            if (s.status !== 'running') continue;
            const h = sch.kv.numSeqBlocks(i) + sch.kv.numSpareBlocks(i);
            expect(h).toBeGreaterThanOrEqual(need(i));
            held += need(i);
          }
          expect(held).toBeLessThanOrEqual(numBlocks);
          sch.kv.checkInvariants();
          sch.postprocess(Array.from(step.batch.logitIndices, () => (rnd() < 0.5 ? 3 : 5)));
        }
        expect(sch.hasWork()).toBe(false);
        expect(sch.numPreemptions).toBe(0);
        expect(sch.kv.numFreeBlocks).toBe(numBlocks);
        sch.kv.checkInvariants();
      },
    ), { numRuns: 150 });
  });
});

describe('unfused attention', () => {
  it('equals the fused paged reference within fp32 tolerance on random ragged batches', () => {
    fc.assert(fc.property(
      fc.record({
        seqs: fc.array(fc.record({ ctx: fc.integer({ min: 1, max: 40 }), fresh: fc.integer({ min: 1, max: 40 }) }), { minLength: 1, maxLength: 4 }),
        heads: fc.constantFrom([4, 4], [4, 2], [4, 1], [6, 2]),
        D: fc.constantFrom(4, 8, 16),
        extra: fc.constantFrom('none', 'window', 'softcap'),
        seed: fc.integer({ min: 1, max: 1 << 30 }),
      }),
      ({ seqs, heads: [Hq, Hkv], D, extra, seed }) => {
        let r = seed;
        const rnd = () => { r = (Math.imul(r, 1103515245) + 12345) >>> 0; return r / 4294967296 - 0.5; };
        const S = 4, B = seqs.length;
        const M = Math.max(...seqs.map((s) => Math.ceil(s.ctx / S)));
        const NB = seqs.reduce((a, s) => a + Math.ceil(s.ctx / S), 0) + 2;
        // Blocks handed out in a shuffled order, so tables are not contiguous.
        const order = Array.from({ length: NB }, (_, i) => i).sort(() => rnd());
        const blockTables = new Int32Array(B * M).fill(-1);
        let nb = 0;
        const positions: number[] = [], seqStarts = [0];
        seqs.forEach((s, b) => {
          for (let j = 0; j < Math.ceil(s.ctx / S); j++) blockTables[b * M + j] = order[nb++];
          const n = Math.min(s.fresh, s.ctx);
          for (let p = s.ctx - n; p < s.ctx; p++) positions.push(p);
          seqStarts.push(positions.length);
        });
        const T = positions.length;
        const args = {
          q: Float32Array.from({ length: T * Hq * D }, rnd), kCache: Float32Array.from({ length: NB * S * Hkv * D }, rnd), vCache: Float32Array.from({ length: NB * S * Hkv * D }, rnd),
          batch: { positions: Int32Array.from(positions), seqStarts: Int32Array.from(seqStarts), contextLens: Int32Array.from(seqs, (s) => s.ctx), blockTables, maxBlocksPerSeq: M },
          Hq, Hkv, D, blockSize: S, numBlocks: NB, dtype: 'float32' as const,
          ...(extra === 'window' ? { window: 5 } : extra === 'softcap' ? { softcap: 0.7 } : {}),
        };
        const a = fused(args), b = unfused(args);
        expect(b.length).toBe(a.length);
        for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThan(1e-5);
      },
    ), { numRuns: 100 });
  });

  it('rounds to the storage dtype like the fused reference', () => {
    const S = 4, Hq = 2, Hkv = 1, D = 8;
    const args = {
      q: Float32Array.from({ length: 3 * Hq * D }, (_, i) => Math.sin(i)), kCache: Float32Array.from({ length: 2 * S * D }, (_, i) => Math.cos(i)), vCache: Float32Array.from({ length: 2 * S * D }, (_, i) => Math.sin(3 * i)),
      batch: { positions: Int32Array.from([3, 4, 5]), seqStarts: Int32Array.from([0, 3]), contextLens: Int32Array.from([6]), blockTables: Int32Array.from([1, 0]), maxBlocksPerSeq: 2 },
      Hq, Hkv, D, blockSize: S, numBlocks: 2, dtype: 'bfloat16' as const,
    };
    const a = fused(args), b = unfused(args);
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThanOrEqual(Math.abs(a[i]) * 2 ** -7 + 1e-6);
  });

  it('names the bad field', () => {
    const batch = { positions: Int32Array.from([5]), seqStarts: Int32Array.from([0, 1]), contextLens: Int32Array.from([3]), blockTables: Int32Array.from([0]), maxBlocksPerSeq: 1 };
    expect(() => unfused({ q: new Float32Array(4), kCache: new Float32Array(16), vCache: new Float32Array(16), batch, Hq: 1, Hkv: 1, D: 4, blockSize: 4, numBlocks: 1, dtype: 'float32' })).toThrow(/position 5/);
  });
});

const ROOT = join(import.meta.dirname, '../..');
const CLI = join(ROOT, 'dist/compiler/cli.js');

describe.skipIf(!existsSync(CLI))('ablation flags on the CLI', () => {
  const lfc = (...args: string[]) => {
    const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: ROOT });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };

  it('lfc generate --json --kv contiguous --attention unfused reaches the engine and gives the same greedy tokens', () => {
    const naive = lfc('generate', 'def f(x):', '--max-tokens', '6', '--json', '--kv', 'contiguous', '--attention', 'unfused', '--ngram', '3', '--spec', 'off');
    expect(naive.code, naive.err).toBe(0);
    const n = JSON.parse(naive.out);
    expect(n.engine).toEqual({ kv: 'contiguous', attention: 'unfused', spec: 'off' });
    const dflt = lfc('generate', 'def f(x):', '--max-tokens', '6', '--json', '--spec', 'ngram');
    expect(dflt.code, dflt.err).toBe(0);
    const d = JSON.parse(dflt.out);
    expect(d.engine).toEqual({ kv: 'paged', attention: 'flash', spec: 'ngram' });
    expect(n.tokens).toEqual(d.tokens);
  }, 60_000);

  it('rejects a bad choice and --spec draft without --draft', () => {
    const bad = lfc('generate', 'x', '--kv', 'ring');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--kv/);
    const noDraft = lfc('generate', 'x', '--spec', 'draft', '--max-tokens', '1');
    expect(noDraft.code).toBe(2);
    expect(noDraft.err).toMatch(/--spec draft needs --draft/);
  }, 60_000);
});

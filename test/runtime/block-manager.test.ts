/**
 * KvBlockManager: unit tests (copy-on-write, LRU eviction order, prefix hits, errors, stats) and
 * a model-based property: random allocate / append / fork / free sequences against a simulated
 * cache whose slots hold tokens, checking after every operation that each sequence reads its own
 * tokens through its block table, and that ref counts equal users (checkInvariants).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BlockHashTable } from '../../runtime/kv/hash-table.js';
import { hashBlockTokens, KvBlockManager } from '../../runtime/kv/block-manager.js';

describe('KvBlockManager', () => {
  it('copies a shared partly filled last block on write, and only then', () => {
    const m = new KvBlockManager(8, 4);
    expect(m.allocate('a', [1, 2, 3, 4, 5], 5)).toBe(0);
    const [a0, a1] = m.blockTable('a');
    m.fork('a', 'b');
    expect([m.refCount[a0], m.refCount[a1]]).toEqual([2, 2]);
    const copy = m.appendSlots('b', 1);
    expect(copy).toEqual({ src: a1, dst: m.blockTable('b')[1] });
    expect(m.blockTable('b')[0]).toBe(a0);
    expect([...m.blockTable('a')]).toEqual([a0, a1]);
    expect([m.refCount[a0], m.refCount[a1]]).toEqual([2, 1]);
    expect(m.appendSlots('a', 1)).toBeNull(); // a's last block is private now
    m.checkInvariants();
    m.free('a'); m.free('b');
    expect(m.numFreeBlocks).toBe(8);
  });

  it('does not copy when the shared last block is full', () => {
    const m = new KvBlockManager(8, 4);
    m.allocate('a', [1, 2, 3, 4], 4);
    m.fork('a', 'b');
    expect(m.canAppend('b', 1)).toBe(true);
    expect(m.appendSlots('b', 1)).toBeNull();
    expect(m.numSeqBlocks('b')).toBe(2);
    m.checkInvariants();
  });

  it('evicts free blocks least useful first: uncached, then a freed sequence from its tail', () => {
    const m = new KvBlockManager(4, 2);
    const x = [1, 2, 3, 4, 5];
    m.allocate('x', x, 5);
    m.cacheFullBlocks('x', x, 5);
    const [x0, x1, x2] = m.blockTable('x');
    m.free('x');
    expect(m.stats().cachedFreeBlocks).toBe(2);
    m.allocate('y', [9], 1);
    expect(m.blockTable('y')[0]).toBe(x2); // x's partial block held nothing cacheable
    m.allocate('z', [7, 7, 7], 3);
    expect([...m.blockTable('z')]).toEqual([3, x1]); // the never-used block, then x's tail
    expect(m.stats().evictions).toBe(1);
    expect(m.cachedPrefixLength(x)).toBe(2); // x's first block survives
    m.free('y'); m.free('z');
    expect(m.allocate('x2', x, 5)).toBe(2);
    expect(m.blockTable('x2')[0]).toBe(x0);
    m.checkInvariants();
  });

  it('hits whole blocks of an identical prefix, never the last token, and verifies hits', () => {
    const m = new KvBlockManager(16, 4);
    const p = [1, 2, 3, 4, 5, 6, 7, 8, 9];
    m.allocate('a', p, 9);
    m.cacheFullBlocks('a', p, 9);
    expect(m.cachedPrefixLength(p)).toBe(8);
    expect(m.cachedPrefixLength(p.slice(0, 8))).toBe(4); // the last token is always computed
    expect(m.cachedPrefixLength([1, 2, 3, 4, 5, 6, 7, 0, 9])).toBe(4);
    expect(m.cachedPrefixLength([0, 2, 3, 4, 5, 6, 7, 8, 9])).toBe(0); // same 2nd block, other parent
    expect(m.allocate('b', p, 9)).toBe(8);
    expect(m.blockTable('b').subarray(0, 2)).toEqual(m.blockTable('a').subarray(0, 2));
    expect(m.stats()).toMatchObject({ queriedTokens: 18, hitTokens: 8 });
    expect(hashBlockTokens(1, p, 0, 4)).not.toBe(hashBlockTokens(2, p, 0, 4));
    expect(hashBlockTokens(1, p, 0, 4)).toBe(hashBlockTokens(1, [1, 2, 3, 4], 0, 4));
    expect(Number.isSafeInteger(hashBlockTokens(1, p, 0, 4))).toBe(true);
    const off = new KvBlockManager(16, 4, false);
    off.allocate('a', p, 9);
    off.cacheFullBlocks('a', p, 9);
    expect(off.cachedPrefixLength(p)).toBe(0);
  });

  it('allocates only what fits, and reports utilisation', () => {
    const m = new KvBlockManager(3, 4);
    expect(m.canAllocate(12)).toBe(true);
    expect(m.canAllocate(13)).toBe(false);
    expect(m.allocate('a', new Array(13).fill(1), 13)).toBe(-1);
    expect(m.has('a')).toBe(false);
    expect(m.allocate('a', new Array(13).fill(1), 13, 5)).toBe(0);
    expect(m.numTokens('a')).toBe(5);
    expect(m.stats()).toMatchObject({ usedBlocks: 2, freeBlocks: 1, utilisation: 5 / 8 });
    expect(m.canAppend('a', 7)).toBe(true);
    expect(m.canAppend('a', 8)).toBe(false);
    expect(() => m.appendSlots('a', 8)).toThrow('sequence a needs 8 more slots, 1 free blocks do not suffice');
  });

  it('names the sequence in every misuse error', () => {
    const m = new KvBlockManager(4, 4);
    m.allocate(3, [1, 2], 2);
    m.free(3);
    expect(() => m.free(3)).toThrow('free of sequence 3, which holds no blocks (double free or unknown sequence)');
    expect(() => m.appendSlots(5, 1)).toThrow('unknown sequence 5');
    expect(() => m.blockTable('q')).toThrow('unknown sequence q');
    m.allocate(4, [1], 1);
    expect(() => m.allocate(4, [1], 1)).toThrow('sequence 4 is already allocated');
    expect(() => m.fork(4, 4)).toThrow('cannot fork 4 into 4: sequence 4 is already allocated');
    expect(() => m.allocate(6, [], 0)).toThrow('sequence 6 has no tokens');
    m.appendSlots(4, 5);
    m.cacheFullBlocks(4, [1, 1, 1, 1, 1, 1], 6);
    expect(() => m.truncate(4, 3)).toThrow('cannot truncate sequence 4 from 6 to 3 tokens (4 are in the prefix cache)');
    m.truncate(4, 4);
    expect(m.numSeqBlocks(4)).toBe(1);
    expect(() => new KvBlockManager(0)).toThrow('numBlocks must be a positive integer, got 0');
  });
});

type Op =
  | { kind: 'alloc'; prompt: number; len: number }
  | { kind: 'append'; seq: number; token: number }
  | { kind: 'fork'; seq: number }
  | { kind: 'free'; seq: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('alloc' as const), prompt: fc.nat(3), len: fc.integer({ min: 1, max: 14 }) }),
  fc.record({ kind: fc.constant('append' as const), seq: fc.nat(), token: fc.nat(9) }),
  fc.record({ kind: fc.constant('append' as const), seq: fc.nat(), token: fc.nat(9) }),
  fc.record({ kind: fc.constant('fork' as const), seq: fc.nat() }),
  fc.record({ kind: fc.constant('free' as const), seq: fc.nat() }),
);

describe('KvBlockManager model', () => {
  it('random allocate/append/fork/free: every sequence reads its own tokens; ref counts equal users; nothing leaks', () => {
    let copies = 0, hits = 0;
    fc.assert(fc.property(fc.integer({ min: 2, max: 12 }), fc.constantFrom(1, 2, 4), fc.array(opArb, { maxLength: 60 }), (numBlocks, bs, ops) => {
      const prompts = [0, 1, 2, 3].map((p) => Array.from({ length: 14 }, (_, i) => (p < 2 ? i % 5 : (i * p) % 7)));
      const m = new KvBlockManager(numBlocks, bs);
      const slots = new Int32Array(numBlocks * bs).fill(-1);
      const live = new Map<number, number[]>();
      let nextId = 0;
      const write = (id: number, pos: number, token: number): void => {
        slots[m.blockTable(id)[Math.floor(pos / bs)] * bs + (pos % bs)] = token;
      };
      for (const op of ops) {
        const ids = [...live.keys()];
        if (op.kind === 'alloc') {
          const toks = prompts[op.prompt].slice(0, op.len), id = nextId++;
          const cached = m.allocate(id, toks, toks.length);
          if (cached < 0) { expect(m.canAllocate(toks.length)).toBe(false); continue; }
          hits += cached;
          for (let p = cached; p < toks.length; p++) write(id, p, toks[p]);
          m.cacheFullBlocks(id, toks, toks.length);
          live.set(id, toks);
        } else if (ids.length > 0) {
          const id = ids[op.seq % ids.length], toks = live.get(id)!;
          if (op.kind === 'free') { m.free(id); live.delete(id); }
          else if (op.kind === 'fork') { const c = nextId++; m.fork(id, c); live.set(c, [...toks]); }
          else if (m.canAppend(id, 1)) {
            const copy = m.appendSlots(id, 1);
            if (copy) { copies++; slots.copyWithin(copy.dst * bs, copy.src * bs, (copy.src + 1) * bs); }
            toks.push(op.token);
            write(id, toks.length - 1, op.token);
            m.cacheFullBlocks(id, toks, toks.length);
          }
        }
        m.checkInvariants();
        for (const [id, toks] of live) {
          const table = m.blockTable(id);
          expect(m.numTokens(id)).toBe(toks.length);
          expect(toks.map((_, p) => slots[table[Math.floor(p / bs)] * bs + (p % bs)])).toEqual(toks);
        }
      }
      for (const id of live.keys()) m.free(id);
      m.checkInvariants();
      expect(m.numFreeBlocks).toBe(numBlocks);
    }), { numRuns: 300 });
    expect(copies).toBeGreaterThan(0);
    expect(hits).toBeGreaterThan(0);
  });
});

describe('BlockHashTable', () => {
  it('behaves as a Map under random add/delete/get, with colliding home slots', () => {
    fc.assert(fc.property(fc.array(fc.tuple(fc.constantFrom('add', 'del'), fc.integer({ min: 0, max: 40 }))), (ops) => {
      const t = new BlockHashTable(32), m = new Map<number, number>();
      // keys sharing their low bits, so probe runs overlap and wrap
      const key = (k: number): number => (k % 5) * 2 ** 40 + ((k * 16 + 60) & 63);
      ops.forEach(([op, k], v) => {
        const h = key(k);
        if (op === 'add' && !m.has(h) && m.size < 32) { t.add(h, v); m.set(h, v); }
        if (op === 'del') expect(t.delete(h)).toBe(m.delete(h));
        for (let j = 0; j <= 40; j++) expect(t.get(key(j))).toBe(m.get(key(j)) ?? -1);
      });
      expect(t.size).toBe(m.size);
      expect(new Map(t.entries())).toEqual(m);
    }));
  });
});

/**
 * KvBlockManager: the paged KV cache's bookkeeping (ARCHITECTURE.md, "The runtime"). The cache is
 * `numBlocks` blocks of `blockSize` token slots, all allocated up front by the backend; this class
 * only decides which sequence owns which block. It never touches K/V data: the one thing the
 * backend must do for it is run the copy a copy-on-write returns.
 *
 *   refCount[b]        sequences whose block table holds block b (forks and prefix hits share)
 *   free list          blocks with refCount 0, a doubly linked list that is also the LRU eviction
 *                      queue: allocation takes the head; a freed block that holds a cached prefix
 *                      goes to the tail (evicted last), one that holds nothing useful to the head
 *   prefix cache       each FULL block gets hash(parent block's hash, its tokens), registered
 *                      (hash → block, a BlockHashTable) once its K/V is written. A free block
 *                      stays in the cache until allocation reuses (evicts) it
 *
 * Hash: 53 bits from two 32-bit lanes that both absorb the parent hash and every token (a murmur3
 * round and an xxhash32 round per word, fmix32 finalisers): a plain number, no allocation. A hit
 * is also checked against the block's stored tokens and parent hash, so a collision can cost a
 * miss, never wrong K/V.
 * A prompt never takes its last token from the cache: at most ⌊(len-1)/blockSize⌋ blocks hit, so
 * at least one token is computed and yields the logits to sample from (as vLLM does).
 *
 * Reservations (the naive 'contiguous' KV policy of the ablation, issue 13): `allocate(..., reserveTokens)`
 * also takes, at admission, the blocks the sequence could ever need (its maximum length) off the
 * free list as the sequence's `spare` blocks: they count as used, hold no tokens, and are what its
 * later appends take first, so memory is held for the maximum from admission to free, as a
 * contiguous per-sequence KV buffer would be. Rejected speculative slots go back to its spares.
 */

import { BlockHashTable } from './hash-table.js';

/** Copy block `src` into block `dst` (all layers, K and V) before the next forward. */
export interface CopyOp { src: number; dst: number }

export interface KvStats {
  numBlocks: number;
  blockSize: number;
  freeBlocks: number;
  /** Free blocks that still hold a cached prefix (reusable by a hit, evictable by allocation). */
  cachedFreeBlocks: number;
  usedBlocks: number;
  /** Used blocks reserved by a sequence for its maximum length that hold no token yet (contiguous policy; 0 when paged). */
  reservedBlocks: number;
  /** Slots holding live tokens / slots of used blocks (1 when every used block is full). */
  utilisation: number;
  /** Prompt tokens looked up in the prefix cache, and how many of them hit. */
  queriedTokens: number;
  hitTokens: number;
  evictions: number;
}

interface SeqBlocks {
  blocks: Int32Array; // capacity grows by doubling; entries 0..numBlocks-1 are valid
  numBlocks: number;
  numTokens: number; // slots reserved: tokens whose K/V has (or will have) a place
  numHashed: number; // leading full blocks whose hash is known (registered or taken from cache)
  spare?: number[]; // blocks reserved at admission, not yet in the table (reservation policy)
}

const ROOT_HASH = 0x1234567;
const TWO32 = 4294967296;

const rotl = (x: number, r: number): number => (x << r) | (x >>> (32 - r));
function fmix32(h: number): number {
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** One murmur3 round (lane a) and one xxhash32 round (lane b) absorbing word t. */
const mix32a = (a: number, t: number): number => (Math.imul(rotl(a ^ Math.imul(rotl(Math.imul(t, 0xcc9e2d51), 15), 0x1b873593), 13), 5) + 0xe6546b64) | 0;
const mix32b = (b: number, t: number): number => Math.imul(rotl((b + Math.imul(t, 0x85ebca77)) | 0, 13), 0x9e3779b1);

/** 53-bit hash of `tokens[start..start+n)` chained from `parent` (a previous result or ROOT_HASH). */
export function hashBlockTokens(parent: number, tokens: ArrayLike<number>, start: number, n: number): number {
  // Both lanes see every word: the parent's two halves, then the tokens.
  let a = mix32a(mix32a(0x9747b28c, parent >>> 0), Math.floor(parent / TWO32) | 0);
  let b = mix32b(mix32b(0x165667b1, parent >>> 0), Math.floor(parent / TWO32) | 0);
  for (let i = start; i < start + n; i++) { a = mix32a(a, tokens[i] | 0); b = mix32b(b, tokens[i] | 0); }
  return (fmix32(a ^ n) >>> 11) * TWO32 + fmix32(b ^ n);
}

export class KvBlockManager {
  readonly refCount: Int32Array;
  private readonly prev: Int32Array; // free list links; index numBlocks is the sentinel
  private readonly next: Int32Array;
  private readonly blockHash: Float64Array; // -1 when the block's content has no hash
  private readonly parentHash: Float64Array;
  private readonly blockTokens: Int32Array; // tokens of hashed blocks, to verify hits
  private readonly cache: BlockHashTable; // hash → block
  private readonly seqs = new Map<number | string, SeqBlocks>();
  private lastId: number | string | undefined; // one-entry lookup cache: the scheduler makes
  private lastSeq: SeqBlocks | undefined; //      several calls in a row for the same sequence
  private numFree: number;
  private queried = 0;
  private hits = 0;
  private evicted = 0;

  constructor(readonly numBlocks: number, readonly blockSize = 16, readonly prefixCaching = true) {
    if (!Number.isInteger(numBlocks) || numBlocks < 1) throw new Error(`KvBlockManager: numBlocks must be a positive integer, got ${numBlocks}`);
    if (!Number.isInteger(blockSize) || blockSize < 1) throw new Error(`KvBlockManager: blockSize must be a positive integer, got ${blockSize}`);
    this.refCount = new Int32Array(numBlocks);
    this.prev = new Int32Array(numBlocks + 1);
    this.next = new Int32Array(numBlocks + 1);
    this.blockHash = new Float64Array(numBlocks).fill(-1);
    this.parentHash = new Float64Array(numBlocks).fill(-1);
    this.blockTokens = new Int32Array(prefixCaching ? numBlocks * blockSize : 0);
    this.cache = new BlockHashTable(prefixCaching ? numBlocks : 0);
    const S = numBlocks;
    this.prev[S] = this.next[S] = S;
    for (let b = 0; b < numBlocks; b++) this.pushTail(b);
    this.numFree = numBlocks;
  }

  get numFreeBlocks(): number { return this.numFree; }
  /** Slots the whole cache holds. */
  get capacity(): number { return this.numBlocks * this.blockSize; }
  blocksFor(numTokens: number): number { return Math.ceil(numTokens / this.blockSize); }
  has(seqId: number | string): boolean { return this.seqs.has(seqId); }
  numTokens(seqId: number | string): number { return this.seq(seqId).numTokens; }
  /** The sequence's blocks, in order (a view: valid until its next change). */
  blockTable(seqId: number | string): Int32Array { const s = this.seq(seqId); return s.blocks.subarray(0, s.numBlocks); }
  /** The array behind blockTable (no allocation): its first numSeqBlocks entries are the table. */
  rawBlockTable(seqId: number | string): Int32Array { return this.seq(seqId).blocks; }
  numSeqBlocks(seqId: number | string): number { return this.seq(seqId).numBlocks; }
  /** Whether a new sequence of `numTokens` tokens fits in the free blocks (not counting cache hits). */
  canAllocate(numTokens: number): boolean { return this.blocksFor(numTokens) <= this.numFree; }

  /** Tokens of `tokens[0..length)` a new sequence would take from the prefix cache. Changes nothing. */
  cachedPrefixLength(tokens: ArrayLike<number>, length = tokens.length): number {
    return this.walkCache(tokens, length, null) * this.blockSize;
  }

  /**
   * Start sequence `seqId` whose known tokens are `tokens[0..length)`: take the cached prefix and
   * reserve slots for up to `maxNewTokens` of the tokens after it. Returns the number of cached
   * tokens (their K/V is already in the cache), or -1, changing nothing, when the free blocks do
   * not suffice. `numTokens(seqId)` then tells how many slots were reserved.
   */
  allocate(seqId: number | string, tokens: ArrayLike<number>, length: number, maxNewTokens = Infinity, reserveTokens = 0): number {
    if (this.seqs.has(seqId)) throw new Error(`KvBlockManager: sequence ${seqId} is already allocated`);
    if (length < 1) throw new Error(`KvBlockManager: sequence ${seqId} has no tokens`);
    const hitBlocks: number[] = [];
    const numHit = this.walkCache(tokens, length, hitBlocks);
    const cached = numHit * this.blockSize;
    const total = cached + Math.min(length - cached, maxNewTokens);
    let hitFree = 0;
    for (const b of hitBlocks) if (this.refCount[b] === 0) hitFree++;
    // With a reservation: blocks for max(total, reserveTokens), all taken now.
    const held = Math.max(this.blocksFor(total), this.blocksFor(reserveTokens));
    if (held - numHit + hitFree > this.numFree) return -1;
    const s: SeqBlocks = { blocks: new Int32Array(Math.max(4, held)), numBlocks: 0, numTokens: cached, numHashed: numHit };
    for (const b of hitBlocks) {
      if (this.refCount[b]++ === 0) { this.unlink(b); this.numFree--; }
      s.blocks[s.numBlocks++] = b;
    }
    this.queried += length;
    this.hits += cached;
    this.seqs.set(seqId, s);
    this.reserve(s, total);
    if (reserveTokens > 0) {
      s.spare = [];
      for (let i = held - s.numBlocks; i > 0; i--) s.spare.push(this.takeFree());
    }
    return cached;
  }

  /** Blocks `seqId` holds in reserve (taken at admission, not yet in its table). */
  numSpareBlocks(seqId: number | string): number { return this.seq(seqId).spare?.length ?? 0; }

  /** Whether `n` more slots fit (counting a copy-on-write of a shared last block). */
  canAppend(seqId: number | string, n: number): boolean {
    const s = this.seq(seqId);
    return this.blocksFor(s.numTokens + n) - s.numBlocks + (this.needsCopy(s, n) ? 1 : 0) <= this.numFree + (s.spare?.length ?? 0);
  }

  /**
   * Reserve `n` more slots for `seqId`. If its partly filled last block is shared (a fork), it is
   * first replaced by a private copy: the returned CopyOp must run before the next forward.
   * Throws when the blocks do not suffice (check `canAppend` first).
   */
  appendSlots(seqId: number | string, n: number): CopyOp | null {
    const s = this.seq(seqId);
    if (this.blocksFor(s.numTokens + n) - s.numBlocks + (this.needsCopy(s, n) ? 1 : 0) > this.numFree + (s.spare?.length ?? 0)) throw new Error(`KvBlockManager: sequence ${seqId} needs ${n} more slots, ${this.numFree} free blocks do not suffice`);
    let copy: CopyOp | null = null;
    if (this.needsCopy(s, n)) {
      const src = s.blocks[s.numBlocks - 1], dst = this.take(s);
      this.refCount[src]--;
      s.blocks[s.numBlocks - 1] = dst;
      copy = { src, dst };
    }
    this.reserve(s, s.numTokens + n);
    return copy;
  }

  /**
   * Register the full blocks among the first `numComputed` tokens of `seqId` (`tokens` are its
   * tokens) in the prefix cache. Call once their K/V has been written, i.e. after the forward.
   */
  cacheFullBlocks(seqId: number | string, tokens: ArrayLike<number>, numComputed: number): void {
    const s = this.seq(seqId);
    if (!this.prefixCaching) return;
    const bs = this.blockSize, full = Math.min(Math.floor(numComputed / bs), s.numBlocks);
    for (let i = s.numHashed; i < full; i++) {
      const b = s.blocks[i];
      const parent = i === 0 ? ROOT_HASH : this.blockHash[s.blocks[i - 1]];
      const h = hashBlockTokens(parent, tokens, i * bs, bs);
      this.blockHash[b] = h;
      this.parentHash[b] = parent;
      for (let j = 0; j < bs; j++) this.blockTokens[b * bs + j] = tokens[i * bs + j];
      if (this.cache.get(h) < 0) this.cache.add(h, b);
    }
    if (full > s.numHashed) s.numHashed = full;
  }

  /** Give back the slots after the first `numTokens` (speculative tokens that were rejected). */
  truncate(seqId: number | string, numTokens: number): void {
    const s = this.seq(seqId);
    if (numTokens > s.numTokens || numTokens < s.numHashed * this.blockSize) {
      throw new Error(`KvBlockManager: cannot truncate sequence ${seqId} from ${s.numTokens} to ${numTokens} tokens (${s.numHashed * this.blockSize} are in the prefix cache)`);
    }
    const keep = this.blocksFor(numTokens);
    while (s.numBlocks > keep) {
      const b = s.blocks[--s.numBlocks];
      // Reserved: a private block goes back to the sequence's spares (still held for its maximum length).
      if (s.spare && this.refCount[b] === 1) { this.uncache(b); s.spare.push(b); } else this.release(b);
    }
    s.numTokens = numTokens;
  }

  /** Start `childId` as a copy of `parentId` sharing all its blocks (copy-on-write). */
  fork(parentId: number | string, childId: number | string): void {
    const p = this.seq(parentId);
    if (this.seqs.has(childId)) throw new Error(`KvBlockManager: cannot fork ${parentId} into ${childId}: sequence ${childId} is already allocated`);
    for (let i = 0; i < p.numBlocks; i++) this.refCount[p.blocks[i]]++;
    this.seqs.set(childId, { blocks: p.blocks.slice(), numBlocks: p.numBlocks, numTokens: p.numTokens, numHashed: p.numHashed });
  }

  /** Release every block of `seqId` (last block first, so a sequence's tail is evicted first). */
  free(seqId: number | string): void {
    const s = this.seqs.get(seqId);
    if (!s) throw new Error(`KvBlockManager: free of sequence ${seqId}, which holds no blocks (double free or unknown sequence)`);
    if (s.spare) for (const b of s.spare) this.release(b);
    for (let i = s.numBlocks - 1; i >= 0; i--) this.release(s.blocks[i]);
    this.seqs.delete(seqId);
    if (this.lastSeq === s) this.lastId = this.lastSeq = undefined;
  }

  stats(): KvStats {
    const bs = this.blockSize, fill = new Int32Array(this.numBlocks);
    for (const s of this.seqs.values())
      for (let i = 0; i < s.numBlocks; i++) fill[s.blocks[i]] = Math.max(fill[s.blocks[i]], Math.min(bs, s.numTokens - i * bs));
    let live = 0, cachedFree = 0, reserved = 0;
    for (const s of this.seqs.values()) reserved += s.spare?.length ?? 0;
    for (let b = 0; b < this.numBlocks; b++) {
      live += fill[b];
      if (this.refCount[b] === 0 && this.isCached(b)) cachedFree++;
    }
    const used = this.numBlocks - this.numFree;
    return {
      numBlocks: this.numBlocks, blockSize: bs, freeBlocks: this.numFree, cachedFreeBlocks: cachedFree, usedBlocks: used, reservedBlocks: reserved,
      utilisation: used === 0 ? 1 : live / (used * bs), queriedTokens: this.queried, hitTokens: this.hits, evictions: this.evicted,
    };
  }

  /** Throw unless ref counts equal the block tables that hold each block and the free list holds exactly the unreferenced blocks (tests, debugging). */
  checkInvariants(): void {
    const users = new Int32Array(this.numBlocks);
    for (const [id, s] of this.seqs) {
      if (this.blocksFor(s.numTokens) !== s.numBlocks) throw new Error(`KvBlockManager: sequence ${id} has ${s.numBlocks} blocks for ${s.numTokens} tokens`);
      for (let i = 0; i < s.numBlocks; i++) users[s.blocks[i]]++;
      if (s.spare) for (const b of s.spare) users[b]++;
    }
    let inList = 0;
    for (let b = this.next[this.numBlocks]; b !== this.numBlocks; b = this.next[b]) {
      if (this.refCount[b] !== 0) throw new Error(`KvBlockManager: block ${b} is on the free list with ${this.refCount[b]} users`);
      if (++inList > this.numBlocks) throw new Error('KvBlockManager: free list has a cycle');
    }
    if (inList !== this.numFree) throw new Error(`KvBlockManager: free list has ${inList} blocks, free count says ${this.numFree}`);
    for (let b = 0; b < this.numBlocks; b++)
      if (users[b] !== this.refCount[b]) throw new Error(`KvBlockManager: block ${b} has ref count ${this.refCount[b]} but ${users[b]} users`);
    for (const [h, b] of this.cache.entries()) if (this.blockHash[b] !== h) throw new Error(`KvBlockManager: cache entry for block ${b} has a stale hash`);
  }

  private seq(seqId: number | string): SeqBlocks {
    if (seqId === this.lastId && this.lastSeq) return this.lastSeq;
    const s = this.seqs.get(seqId);
    if (!s) throw new Error(`KvBlockManager: unknown sequence ${seqId} (never allocated, or already freed)`);
    this.lastId = seqId;
    this.lastSeq = s;
    return s;
  }

  private needsCopy(s: SeqBlocks, n: number): boolean {
    return n > 0 && s.numTokens % this.blockSize !== 0 && this.refCount[s.blocks[s.numBlocks - 1]] > 1;
  }

  private reserve(s: SeqBlocks, numTokens: number): void {
    const need = this.blocksFor(numTokens);
    if (need > s.blocks.length) { const g = new Int32Array(Math.max(need, 2 * s.blocks.length)); g.set(s.blocks); s.blocks = g; }
    while (s.numBlocks < need) s.blocks[s.numBlocks++] = this.take(s);
    s.numTokens = numTokens;
  }

  /** Number of leading full blocks of `tokens[0..length)` found in the cache (never all tokens). */
  private walkCache(tokens: ArrayLike<number>, length: number, out: number[] | null): number {
    if (!this.prefixCaching) return 0;
    const bs = this.blockSize, max = Math.floor((length - 1) / bs);
    let parent = ROOT_HASH, i = 0;
    for (; i < max; i++) {
      const h = hashBlockTokens(parent, tokens, i * bs, bs);
      const b = this.cache.get(h);
      if (b < 0 || this.parentHash[b] !== parent) break;
      let same = true;
      for (let j = 0; j < bs && same; j++) same = this.blockTokens[b * bs + j] === tokens[i * bs + j];
      if (!same) break;
      out?.push(b);
      parent = h;
    }
    return i;
  }

  /** A block for `s`: one of its reserved spares first, else a free one. */
  private take(s: SeqBlocks): number {
    return s.spare && s.spare.length > 0 ? s.spare.pop()! : this.takeFree();
  }

  /** Forget block b's prefix-cache entry (its content is about to be overwritten). */
  private uncache(b: number): void {
    if (this.blockHash[b] < 0) return;
    if (this.isCached(b)) this.cache.delete(this.blockHash[b]);
    this.blockHash[b] = -1;
  }

  private isCached(b: number): boolean { return this.blockHash[b] >= 0 && this.cache.get(this.blockHash[b]) === b; }

  private takeFree(): number {
    const b = this.next[this.numBlocks];
    if (b === this.numBlocks) throw new Error('KvBlockManager: out of blocks');
    this.unlink(b);
    this.numFree--;
    this.refCount[b] = 1;
    if (this.blockHash[b] >= 0) {
      if (this.isCached(b)) { this.cache.delete(this.blockHash[b]); this.evicted++; }
      this.blockHash[b] = -1;
    }
    return b;
  }

  private release(b: number): void {
    if (this.refCount[b] <= 0) throw new Error(`KvBlockManager: block ${b} released with ref count ${this.refCount[b]}`);
    if (--this.refCount[b] > 0) return;
    if (this.isCached(b)) this.pushTail(b); else { this.blockHash[b] = -1; this.pushHead(b); }
    this.numFree++;
  }

  private pushTail(b: number): void {
    const S = this.numBlocks, last = this.prev[S];
    this.prev[b] = last; this.next[b] = S; this.next[last] = b; this.prev[S] = b;
  }

  private pushHead(b: number): void {
    const S = this.numBlocks, first = this.next[S];
    this.next[b] = first; this.prev[b] = S; this.prev[first] = b; this.next[S] = b;
  }

  private unlink(b: number): void {
    this.next[this.prev[b]] = this.next[b];
    this.prev[this.next[b]] = this.prev[b];
  }
}

/**
 * Proposers for speculative decoding (ARCHITECTURE.md, "SpecDecoder"): given a sequence's tokens,
 * guess its next k tokens cheaply. The target then verifies them in one forward (SpecDecoder).
 *
 *   NgramProposer       prompt lookup: the latest earlier occurrence of the last n tokens (n..1)
 *                       and what followed it. No model; q is one-hot (deterministic).
 *   DraftModelProposer  a second (small) compiled plan on its own backend and its own paged KV
 *                       cache (its own KvBlockManager). Greedy for greedy requests, otherwise it
 *                       samples from its own distribution q and records q for rejection sampling.
 *                       Its cache follows the target lazily: before each proposal the cached
 *                       tokens are compared with the sequence's tokens, the cache is truncated to
 *                       the common prefix (rollback of rejected drafts) and the rest is fed
 *                       (catch-up of accepted / corrected tokens, or a whole prompt).
 */
import type { Backend } from '../backends/backend.js';
import { KvBlockManager } from '../kv/block-manager.js';
import { Sampler, uniform, type ResolvedSampling } from '../sampling.js';

export interface ProposeSeq {
  id: number | string;
  /** The sequence's tokens: tokens[0..length) are known (prompt then generated). */
  tokens: ArrayLike<number>;
  length: number;
  promptLen?: number;
  /** The request's sampling parameters (greedy when temperature is 0). */
  params?: ResolvedSampling;
}

export interface Proposer {
  readonly name: string;
  /** Up to k[i] draft tokens for each sequence (fewer, or none, when it has no guess). */
  propose(seqs: readonly ProposeSeq[], k: readonly number[]): Int32Array[];
  /** q of each token of the last proposal for `id` (full vocabulary rows), or undefined: one-hot. */
  draftProbs?(id: number | string): Float64Array[] | undefined;
  /** Verification accepted `accepted` of the `proposed` drafts of `id`. */
  onAccepted?(id: number | string, accepted: number, proposed: number): void;
  /** The sequence is finished or aborted: drop its state (and cache blocks). */
  release?(id: number | string): void;
}

/** Stream of the Philox RNG used for the draft model's own draws. */
export const DRAFT_STREAM = 1;

export class NgramProposer implements Proposer {
  readonly name = 'ngram';
  constructor(readonly n = 3, readonly maxK = 8) {
    if (!Number.isInteger(n) || n < 1) throw new Error(`NgramProposer: n must be a positive integer, got ${n}`);
  }

  propose(seqs: readonly ProposeSeq[], k: readonly number[]): Int32Array[] {
    return seqs.map((s, i) => this.lookup(s.tokens, s.length, Math.min(k[i], this.maxK)));
  }

  /** Latest earlier match of the last m tokens (m = n..1): the tokens that followed it. */
  lookup(t: ArrayLike<number>, len: number, k: number): Int32Array {
    if (k <= 0) return new Int32Array(0);
    for (let m = Math.min(this.n, len - 1); m >= 1; m--) {
      for (let start = len - m - 1; start >= 0; start--) {
        let j = 0;
        while (j < m && t[start + j] === t[len - m + j]) j++;
        if (j < m) continue;
        const from = start + m, n = Math.min(k, len - from);
        if (n <= 0) continue;
        const out = new Int32Array(n);
        for (let i = 0; i < n; i++) out[i] = t[from + i];
        return out;
      }
    }
    return new Int32Array(0);
  }
}

interface DraftState { fed: number[]; q: Float64Array[] }

export interface DraftModelOptions {
  /** Tokens per draft forward (default: the backend's maxTokens). */
  maxTokens?: number;
}

export class DraftModelProposer implements Proposer {
  readonly name = 'draft';
  readonly kv: KvBlockManager;
  readonly sampler: Sampler;
  forwards = 0;
  private readonly state = new Map<number | string, DraftState>();
  private readonly maxTokens: number;

  constructor(readonly backend: Backend, opts: DraftModelOptions = {}) {
    this.kv = new KvBlockManager(backend.numBlocks, backend.plan.kv.blockSize, false);
    this.sampler = new Sampler(backend.plan.model.vocab);
    this.maxTokens = Math.min(opts.maxTokens ?? backend.maxTokens, backend.maxTokens);
  }

  get vocab(): number { return this.backend.plan.model.vocab; }

  draftProbs(id: number | string): Float64Array[] | undefined {
    const q = this.state.get(id)?.q;
    return q && q.length ? q : undefined;
  }

  release(id: number | string): void {
    if (this.kv.has(id)) this.kv.free(id);
    this.state.delete(id);
  }

  propose(seqs: readonly ProposeSeq[], k: readonly number[]): Int32Array[] {
    const out = seqs.map(() => new Int32Array(0));
    const P = this.backend.plan.model.maxPositions;
    // Per sequence: the tokens to feed now (catch-up, ending with the last known token).
    const rows: { i: number; id: number | string; feed: number[]; start: number; k: number; got: number[] }[] = [];
    for (let i = 0; i < seqs.length; i++) {
      const s = seqs[i];
      const kk = Math.min(k[i], P - s.length);
      let st = this.state.get(s.id);
      if (!st) { st = { fed: [], q: [] }; this.state.set(s.id, st); }
      st.q = [];
      if (kk <= 0 || s.length < 1) continue;
      let c = 0;
      const fed = st.fed;
      while (c < fed.length && c < s.length && fed[c] === s.tokens[c]) c++;
      if (c === s.length) c--; // the last token's logits are needed: recompute it
      const need = s.length + kk - 1; // slots after this proposal
      if (this.kv.has(s.id)) {
        if (c < this.kv.numTokens(s.id)) this.kv.truncate(s.id, c);
        const add = need - this.kv.numTokens(s.id);
        if (add > 0) {
          if (!this.kv.canAppend(s.id, add)) { this.release(s.id); continue; }
          this.kv.appendSlots(s.id, add);
        }
      } else {
        c = 0;
        if (this.kv.allocate(s.id, s.tokens, s.length, need) < 0) { this.state.delete(s.id); continue; }
        // allocate reserves min(length, need) = length slots; grow to need
        const add = need - this.kv.numTokens(s.id);
        if (add > 0) {
          if (!this.kv.canAppend(s.id, add)) { this.release(s.id); continue; }
          this.kv.appendSlots(s.id, add);
        }
        this.state.set(s.id, st);
      }
      fed.length = c;
      const feed: number[] = [];
      for (let j = c; j < s.length; j++) feed.push(s.tokens[j]);
      rows.push({ i, id: s.id, feed, start: c, k: kk, got: [] });
    }
    const hist = new Int32Array(P + 1);
    for (let step = 0; rows.some((r) => r.got.length < r.k); step++) {
      const active = rows.filter((r) => r.got.length < r.k);
      const logits = this.run(active);
      const V = this.vocab;
      for (let a = 0; a < active.length; a++) {
        const r = active[a], s = seqs[r.i], st = this.state.get(s.id)!;
        for (const t of r.feed) st.fed.push(t);
        const row = logits.subarray(a * V, (a + 1) * V);
        const pos = s.length + r.got.length; // position of the token being proposed
        const p = s.params;
        let tok = 0;
        if (!p || p.temperature === 0) {
          for (let v = 1; v < V; v++) if (row[v] > row[tok]) tok = v;
        } else {
          for (let j = 0; j < s.length; j++) hist[j] = s.tokens[j];
          for (let j = 0; j < r.got.length; j++) hist[s.length + j] = r.got[j];
          const q = this.sampler.distribution(row, p, { tokens: hist, promptLen: s.promptLen ?? s.length, length: pos });
          const u = uniform(p.seed, pos, DRAFT_STREAM);
          let acc = 0; tok = -1;
          for (let v = 0; v < V; v++) { if (q[v] === 0) continue; acc += q[v]; tok = v; if (u < acc) break; }
          st.q.push(Float64Array.from(q));
        }
        r.got.push(tok);
        r.start += r.feed.length;
        r.feed = [tok];
      }
    }
    for (const r of rows) {
      out[r.i] = Int32Array.from(r.got);
      // The cache reserved slots up to length + k - 1; the last draft was never fed.
      const id = seqs[r.i].id;
      const fedLen = this.state.get(id)!.fed.length;
      if (this.kv.numTokens(id) > fedLen) this.kv.truncate(id, fedLen);
    }
    return out;
  }

  /** One logit row (of the last fed token) per row; rows longer than the budget are chunked. */
  private run(rows: { id: number | string; feed: number[]; start: number }[]): Float32Array {
    const V = this.vocab, out = new Float32Array(rows.length * V);
    const bs = this.kv.blockSize;
    // Pack (row, chunk) pieces into forwards of at most maxTokens tokens.
    type Piece = { r: number; from: number; n: number; last: boolean };
    const pieces: Piece[] = [];
    rows.forEach((row, r) => {
      for (let from = 0; from < row.feed.length; from += this.maxTokens) {
        const n = Math.min(this.maxTokens, row.feed.length - from);
        pieces.push({ r, from, n, last: from + n === row.feed.length });
      }
    });
    let p = 0;
    while (p < pieces.length) {
      const batch: Piece[] = [];
      let T = 0;
      const seen = new Set<number>();
      while (p < pieces.length && T + pieces[p].n <= this.maxTokens && !seen.has(pieces[p].r)) {
        seen.add(pieces[p].r); T += pieces[p].n; batch.push(pieces[p++]);
      }
      const B = batch.length;
      let M = 1;
      for (const b of batch) M = Math.max(M, Math.ceil((rows[b.r].start + b.from + b.n) / bs));
      const tokens = new Int32Array(T), positions = new Int32Array(T), slots = new Int32Array(T);
      const seqStarts = new Int32Array(B + 1), contextLens = new Int32Array(B), tables = new Int32Array(B * M).fill(-1);
      const logitIdx: number[] = [], logitRow: number[] = [];
      let t = 0;
      batch.forEach((b, j) => {
        const row = rows[b.r], id = row.id;
        const table = this.kv.blockTable(id);
        const ctx = row.start + b.from + b.n;
        for (let x = 0; x < Math.ceil(ctx / bs); x++) tables[j * M + x] = table[x];
        seqStarts[j] = t;
        contextLens[j] = ctx;
        for (let x = 0; x < b.n; x++, t++) {
          const pos = row.start + b.from + x;
          tokens[t] = row.feed[b.from + x];
          positions[t] = pos;
          slots[t] = table[(pos / bs) | 0] * bs + (pos % bs);
        }
        if (b.last) { logitIdx.push(t - 1); logitRow.push(b.r); }
      });
      seqStarts[B] = T;
      const logits = this.backend.forward({
        tokens, positions, seqStarts, contextLens, blockTables: tables, maxBlocksPerSeq: M, slotMapping: slots,
        logitIndices: Int32Array.from(logitIdx),
      });
      this.forwards++;
      logitRow.forEach((r, j) => out.set(logits.subarray(j * V, (j + 1) * V), r * V));
    }
    return out;
  }

}

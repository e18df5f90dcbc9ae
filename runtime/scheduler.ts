/**
 * Scheduler: decides, step after step, which tokens of which requests go into the next forward
 * (ARCHITECTURE.md, "The runtime"), and turns the sampled tokens back into request state. The
 * loop around it is nano-vllm's three lines:
 *
 *   const step = scheduler.schedule();             // RaggedBatch + copy-on-write copies
 *   const logits = backend.forward(step.batch);    // after running step.copies
 *   scheduler.postprocess(sample(logits, step));   // one token per logit index
 *
 * Each step, under `maxBatchedTokens` and `maxSeqs` (policy 'continuous'):
 *   1. running requests in admission order: a decode (1 token, plus up to `numSpeculativeTokens`
 *      draft tokens set with `setDraft`), or the next chunk of a prefill. When the KV blocks run
 *      out, the most recently admitted running request is preempted by recompute: its blocks are
 *      freed, its progress reset (it keeps its generated tokens, re-prefilled with the prompt) and
 *      it goes to the FRONT of the waiting queue;
 *   2. unless step 1 preempted: waiting requests FCFS, each taking its cached prefix from the
 *      KvBlockManager and a prefill chunk that fits the remaining token budget.
 * Policy 'static' (the benchmark baseline): when nothing runs, admit up to maxSeqs waiting
 * requests, then run them to completion before admitting more.
 * KV policy 'contiguous' (the ablation's naive KV, issue 13): admission reserves the blocks of the
 * request's maximum length (SchedulerRequest.reserveTokens, default prompt + max tokens + draft
 * tokens; capped at the whole cache) and holds them until it finishes, as a per-sequence
 * contiguous KV buffer would: a request is admitted only when its maximum fits, and no running
 * request is ever preempted. 'paged' (default) allocates blocks as tokens arrive.
 * A request whose prompt + max tokens exceed the whole cache is rejected when added, so every
 * admitted request can always finish alone, and preemption always terminates.
 * Logits: the last token of a sequence whose prefill completes this step, every decode token and
 * every draft token. Cost per step is O(tokens + sequences + new block-table entries): typed
 * arrays are reused, and a batch row that keeps its sequence from the last step only gets the
 * block-table entries added since (a finished request shifts the rows after it: those are
 * rewritten whole). scheduler-bench.ts measures it at 256 running decodes.
 */
import type { RaggedBatch } from './batch.js';
import { Deque } from './deque.js';
import { KvBlockManager, type CopyOp } from './kv/block-manager.js';

export type SchedulerPolicy = 'continuous' | 'static';
/** 'paged': blocks on demand; 'contiguous': blocks for the maximum length reserved at admission. */
export type KvPolicy = 'paged' | 'contiguous';

export interface SchedulerConfig {
  maxBatchedTokens: number;
  maxSeqs: number;
  blockSize: number;
  numBlocks: number;
  policy?: SchedulerPolicy;
  prefixCaching?: boolean;
  /** KV allocation policy (default 'paged'). */
  kv?: KvPolicy;
}

export interface SchedulerRequest {
  id: number | string;
  prompt: ArrayLike<number>;
  maxTokens: number;
  stopTokenIds?: readonly number[];
  /** Draft tokens a decode row may carry for verification (speculative decoding); default 0. */
  numSpeculativeTokens?: number;
  /** KV policy 'contiguous': slots reserved at admission (default prompt + maxTokens + numSpeculativeTokens). */
  reserveTokens?: number;
}

const NO_DRAFT = new Int32Array(0);

export type FinishReason = 'stop' | 'length' | 'aborted' | 'rejected';

/** A request's state: its tokens (prompt then generated) and its progress through the cache. */
export class Sequence {
  /** prompt = tokens[0..promptLen), generated = tokens[promptLen..length). */
  readonly tokens: Int32Array;
  readonly promptLen: number;
  length: number;
  /** Tokens whose K/V is in the cache; the rest are computed by the coming steps. */
  numComputed = 0;
  status: 'waiting' | 'running' | 'finished' = 'waiting';
  finishReason?: FinishReason;
  /** Why it was rejected or aborted. */
  error?: string;
  numPreemptions = 0;
  /** Bumped whenever its block table changes other than by growing (admission, rollback). */
  tableEpoch = 0;
  /** Prompt tokens found in the prefix cache at the last admission. */
  numCachedTokens = 0;
  /** Draft tokens to verify in its next decode row (see Scheduler.setDraft). */
  draft: Int32Array = NO_DRAFT;
  readonly stopTokenIds: readonly number[];
  readonly maxTokens: number;
  readonly numSpeculativeTokens: number;
  /** Slots the 'contiguous' KV policy reserves at admission. */
  reserveTokens: number;

  /** `promptLen` < prompt.length for a fork: it inherits generated tokens. */
  constructor(readonly id: number | string, req: SchedulerRequest, promptLen = req.prompt.length) {
    this.promptLen = promptLen;
    this.maxTokens = req.maxTokens;
    this.numSpeculativeTokens = req.numSpeculativeTokens ?? 0;
    this.tokens = new Int32Array(this.promptLen + this.maxTokens + this.numSpeculativeTokens);
    this.tokens.set(req.prompt);
    this.length = req.prompt.length;
    this.stopTokenIds = req.stopTokenIds ?? [];
    this.reserveTokens = Math.max(req.reserveTokens ?? 0, this.tokens.length);
  }

  get numOutput(): number { return this.length - this.promptLen; }
  get outputTokens(): Int32Array { return this.tokens.subarray(this.promptLen, this.length); }
}

export interface ScheduledStep {
  batch: RaggedBatch;
  /** Copy-on-write block copies the backend runs before this forward. */
  copies: CopyOp[];
  /** The request of each batch row. */
  seqs: Sequence[];
  /** The batch row of each logit index. */
  logitRows: Int32Array;
}

export class Scheduler {
  readonly kv: KvBlockManager;
  readonly config: Required<SchedulerConfig>;
  private readonly waiting = new Deque<Sequence>();
  private running: Sequence[] = [];
  private readonly all = new Map<number | string, Sequence>();
  numPreemptions = 0;
  // The step being built / in flight: reused buffers.
  private pending = false;
  private B = 0;
  private T = 0;
  private L = 0;
  private rows: Sequence[] = [];
  private rowNew: Int32Array;
  private rowLogit: Int32Array; // first logit index of the row, -1 when it has none
  private rowStart: Int32Array; // numComputed of the row's sequence when scheduled
  private rowTable: Int32Array[] = [];
  private tokens: Int32Array;
  private positions: Int32Array;
  private slots: Int32Array;
  private logits: Int32Array;
  private logitRows: Int32Array;
  private seqStarts: Int32Array;
  private contextLens: Int32Array;
  // Block tables persist between steps (B × stride, stride sticky): a row whose sequence and
  // table epoch are unchanged only gets its new entries written, not its whole table.
  private tables = new Int32Array(0);
  private stride = 0;
  private rowSeq: (Sequence | undefined)[] = [];
  private rowEpoch: Int32Array;
  private rowLen: Int32Array; // entries of the persistent row that are set; the rest are -1
  private copies: CopyOp[] = [];

  constructor(config: SchedulerConfig) {
    const c = { policy: 'continuous' as SchedulerPolicy, prefixCaching: true, kv: 'paged' as KvPolicy, ...config };
    for (const k of ['maxBatchedTokens', 'maxSeqs', 'blockSize', 'numBlocks'] as const)
      if (!Number.isInteger(c[k]) || c[k] < 1) throw new Error(`Scheduler: ${k} must be a positive integer, got ${c[k]}`);
    if (c.policy !== 'continuous' && c.policy !== 'static') throw new Error(`Scheduler: policy must be 'continuous' or 'static', got '${c.policy}'`);
    if (c.kv !== 'paged' && c.kv !== 'contiguous') throw new Error(`Scheduler: kv must be 'paged' or 'contiguous', got '${c.kv}'`);
    this.config = c;
    this.kv = new KvBlockManager(c.numBlocks, c.blockSize, c.prefixCaching);
    const T = c.maxBatchedTokens, B = c.maxSeqs;
    this.tokens = new Int32Array(T); this.positions = new Int32Array(T); this.slots = new Int32Array(T);
    this.logits = new Int32Array(T); this.logitRows = new Int32Array(T);
    this.seqStarts = new Int32Array(B + 1); this.contextLens = new Int32Array(B);
    this.rowNew = new Int32Array(B); this.rowLogit = new Int32Array(B); this.rowStart = new Int32Array(B);
    this.rowEpoch = new Int32Array(B); this.rowLen = new Int32Array(B);
  }

  get numWaiting(): number { return this.waiting.length; }
  get numRunning(): number { return this.running.length; }
  hasWork(): boolean { return this.waiting.length + this.running.length > 0; }
  get(id: number | string): Sequence | undefined { return this.all.get(id); }

  /** Queue a request. Returns its state: 'finished' with reason 'rejected' when it can never fit. */
  add(req: SchedulerRequest): Sequence {
    const id = req.id;
    if (this.all.has(id)) throw new Error(`Scheduler: request ${id} is already queued or running`);
    if (!Number.isInteger(req.maxTokens) || req.maxTokens < 1) throw new Error(`Scheduler: request ${id}: maxTokens must be a positive integer, got ${req.maxTokens}`);
    const k = req.numSpeculativeTokens ?? 0;
    if (!Number.isInteger(k) || k < 0) throw new Error(`Scheduler: request ${id}: numSpeculativeTokens must be a non-negative integer, got ${k}`);
    for (let i = 0; i < req.prompt.length; i++)
      if (!Number.isInteger(req.prompt[i]) || req.prompt[i] < 0) throw new Error(`Scheduler: request ${id}: prompt token ${i} is ${req.prompt[i]}, not a token id`);
    const s = new Sequence(id, req);
    this.all.set(id, s);
    const need = s.promptLen + s.maxTokens + k, cap = this.kv.capacity;
    if (s.promptLen === 0) this.finish(s, 'rejected', `request ${id}: the prompt is empty`);
    else if (need > cap) this.finish(s, 'rejected', `request ${id}: prompt (${s.promptLen} tokens) + max tokens (${s.maxTokens}) need ${need} KV slots, the cache holds ${cap}`);
    else {
      s.reserveTokens = Math.min(s.reserveTokens, cap);
      this.waiting.pushBack(s);
    }
    return s;
  }

  /** Stop a request wherever it is and free its blocks. False when it is unknown or finished. */
  abort(id: number | string, why = 'aborted'): boolean {
    const s = this.all.get(id);
    if (!s || s.status === 'finished') return false;
    if (s.status === 'waiting') this.waiting.remove(s);
    else { this.kv.free(id); this.running = this.running.filter((r) => r !== s); }
    this.finish(s, 'aborted', why);
    return true;
  }

  /** Draft tokens (e.g. from a proposer) that `id`'s next decode row carries for verification. */
  setDraft(id: number | string, draft: ArrayLike<number>): void {
    const s = this.all.get(id);
    if (!s) throw new Error(`Scheduler: setDraft for unknown request ${id}`);
    s.draft = Int32Array.from(draft).subarray(0, s.numSpeculativeTokens);
  }

  /**
   * Start request `req.id` as a copy of running request `parentId` (n > 1 sampling): it shares the
   * parent's tokens and KV blocks (copy-on-write) and goes on with its own maxTokens (counting the
   * generated tokens it inherits) and stop tokens. Call between postprocess() and schedule().
   */
  fork(parentId: number | string, req: Omit<SchedulerRequest, 'prompt'>): Sequence {
    const p = this.all.get(parentId), id = req.id;
    const fail = (m: string): never => { throw new Error(`Scheduler: cannot fork request ${parentId} into ${id}: ${m}`); };
    if (!p || p.status !== 'running') fail(`request ${parentId} is not running`);
    if (this.pending) fail('a step is in flight (fork between postprocess() and schedule())');
    if (this.all.has(id)) fail(`request ${id} exists`);
    if (this.running.length >= this.config.maxSeqs) fail(`${this.running.length} requests run, maxSeqs is ${this.config.maxSeqs}`);
    const parent = p!, k = req.numSpeculativeTokens ?? 0;
    if (!Number.isInteger(req.maxTokens) || req.maxTokens <= parent.numOutput) fail(`maxTokens must be an integer above the ${parent.numOutput} inherited tokens, got ${req.maxTokens}`);
    if (parent.promptLen + req.maxTokens + k > this.kv.capacity) fail(`${parent.promptLen + req.maxTokens + k} KV slots needed, the cache holds ${this.kv.capacity}`);
    const s = new Sequence(id, { ...req, prompt: parent.tokens.subarray(0, parent.length) }, parent.promptLen);
    this.kv.fork(parentId, id);
    s.numComputed = parent.numComputed;
    s.status = 'running';
    s.tableEpoch++;
    this.all.set(id, s);
    this.running.push(s);
    return s;
  }

  /** Build the next step, or null when there is nothing to run. */
  schedule(): ScheduledStep | null {
    if (this.pending) throw new Error('Scheduler: schedule() called again before postprocess() of the previous step');
    const c = this.config;
    this.B = this.T = this.L = 0;
    this.copies = [];
    let budget = c.maxBatchedTokens, preempted = false;
    if (c.policy === 'static' && this.running.length === 0) {
      while (this.waiting.length > 0 && this.running.length < c.maxSeqs && this.admit(this.waiting.peek()!, 0) >= 0);
    }
    for (let i = 0; i < this.running.length && budget > 0; i++) {
      const s = this.running[i];
      let n = s.length - s.numComputed;
      if (n === 1) n += s.draft.length;
      n = Math.min(n, budget);
      while (!this.kv.canAppend(s.id, n)) {
        const victim = this.running.pop()!;
        this.preempt(victim);
        preempted = true;
        if (victim === s) break;
      }
      if (s.status !== 'running') break;
      const copy = this.kv.appendSlots(s.id, n);
      if (copy) this.copies.push(copy);
      this.emit(s, n);
      budget -= n;
    }
    if (c.policy === 'continuous' && !preempted) {
      while (this.waiting.length > 0 && this.running.length < c.maxSeqs && budget > 0) {
        const s = this.waiting.peek()!, cached = this.admit(s, budget);
        if (cached < 0) break;
        const n = this.kv.numTokens(s.id) - cached;
        this.emit(s, n);
        budget -= n;
      }
    }
    if (this.B === 0) return null;
    this.pending = true;
    return this.build();
  }

  /**
   * Apply a step's results: `sampled[i]` is the token sampled at logit index i. Appends tokens
   * (accepting draft tokens while they match), checks stop tokens and max tokens, registers full
   * blocks in the prefix cache, frees finished requests. Returns the requests that finished.
   */
  postprocess(sampled: ArrayLike<number>): Sequence[] {
    if (!this.pending) throw new Error('Scheduler: postprocess() without a scheduled step');
    if (sampled.length !== this.L) throw new Error(`Scheduler: postprocess got ${sampled.length} tokens for ${this.L} logit indices`);
    this.pending = false;
    const finished: Sequence[] = [];
    for (let r = 0; r < this.B; r++) {
      const s = this.rows[r], n = this.rowNew[r], li = this.rowLogit[r];
      if (s.status !== 'running') continue; // aborted while in flight
      if (li < 0) {
        s.numComputed += n;
      } else {
        const drafts = n - (s.length - s.numComputed);
        let accepted = 0;
        while (accepted < drafts && s.draft[accepted] === sampled[li + accepted]) accepted++;
        s.numComputed = s.length + accepted;
        let done = false;
        for (let j = 0; j < accepted && !done; j++) done = this.append(s, s.draft[j]);
        if (!done) done = this.append(s, sampled[li + accepted]);
        if (drafts > 0) { this.kv.truncate(s.id, s.numComputed); s.tableEpoch++; }
        if (s.draft.length > 0) s.draft = NO_DRAFT; // used, or stale now
        if (done) finished.push(s);
      }
      // Register newly filled blocks: only when this step crossed a block boundary.
      const bs = this.config.blockSize;
      if (((s.numComputed / bs) | 0) !== ((this.rowStart[r] / bs) | 0)) this.kv.cacheFullBlocks(s.id, s.tokens, s.numComputed);
    }
    if (finished.length > 0) {
      for (const s of finished) this.kv.free(s.id);
      this.running = this.running.filter((s) => s.status === 'running');
    }
    return finished;
  }

  /** Take `s` from the waiting queue into the cache, reserving up to `maxNew` tokens. */
  private admit(s: Sequence, maxNew: number): number {
    const cached = this.kv.allocate(s.id, s.tokens, s.length, maxNew, this.config.kv === 'contiguous' ? s.reserveTokens : 0);
    if (cached < 0) return -1;
    this.waiting.shift();
    s.numComputed = s.numCachedTokens = cached;
    s.status = 'running';
    s.tableEpoch++;
    this.running.push(s);
    return cached;
  }

  private preempt(s: Sequence): void {
    this.kv.free(s.id);
    s.numComputed = 0;
    s.draft = NO_DRAFT;
    s.status = 'waiting';
    s.numPreemptions++;
    this.numPreemptions++;
    this.waiting.pushFront(s);
  }

  /** Append a generated token; true when the request is now finished. */
  private append(s: Sequence, token: number): boolean {
    s.tokens[s.length++] = token;
    if (s.stopTokenIds.includes(token)) { this.finish(s, 'stop'); return true; }
    if (s.numOutput >= s.maxTokens) { this.finish(s, 'length'); return true; }
    return false;
  }

  private finish(s: Sequence, reason: FinishReason, error?: string): void {
    s.status = 'finished';
    s.finishReason = reason;
    if (error !== undefined) s.error = error;
    this.all.delete(s.id);
  }

  /** Add row `s` with its next `n` tokens (real tokens, then draft tokens) to the step. */
  private emit(s: Sequence, n: number): void {
    const r = this.B++, bs = this.config.blockSize, start = s.numComputed, table = this.kv.rawBlockTable(s.id);
    this.rows[r] = s;
    this.rowNew[r] = n;
    this.rowStart[r] = start;
    this.rowTable[r] = table;
    this.seqStarts[r] = this.T;
    this.contextLens[r] = start + n;
    const real = Math.min(n, s.length - start);
    for (let j = 0; j < n; j++) {
      const t = this.T + j, pos = start + j;
      this.tokens[t] = j < real ? s.tokens[pos] : s.draft[j - real];
      this.positions[t] = pos;
      this.slots[t] = table[(pos / bs) | 0] * bs + (pos % bs);
    }
    if (start + real === s.length) { // prefill completes (or a decode): logits from the last real token on
      this.rowLogit[r] = this.L;
      for (let j = real - 1; j < n; j++) { this.logitRows[this.L] = r; this.logits[this.L++] = this.T + j; }
    } else {
      this.rowLogit[r] = -1;
    }
    this.T += n;
  }

  private build(): ScheduledStep {
    const B = this.B, bs = this.config.blockSize;
    this.seqStarts[B] = this.T;
    let need = 1;
    for (let r = 0; r < B; r++) need = Math.max(need, Math.ceil(this.contextLens[r] / bs));
    if (need > this.stride || 4 * need < this.stride) this.relayout(need);
    const M = this.stride, tables = this.tables.subarray(0, B * M);
    for (let r = 0; r < B; r++) {
      const s = this.rows[r], t = this.rowTable[r], n = Math.ceil(this.contextLens[r] / bs), off = r * M, len = this.rowLen[r];
      const from = this.rowSeq[r] === s && this.rowEpoch[r] === s.tableEpoch ? Math.max(0, Math.min(len, n) - 1) : 0;
      for (let j = from; j < n; j++) tables[off + j] = t[j];
      if (len > n) tables.fill(-1, off + n, off + len);
      this.rowSeq[r] = s;
      this.rowEpoch[r] = s.tableEpoch;
      this.rowLen[r] = n;
    }
    return {
      batch: {
        tokens: this.tokens.subarray(0, this.T), positions: this.positions.subarray(0, this.T),
        seqStarts: this.seqStarts.subarray(0, B + 1), contextLens: this.contextLens.subarray(0, B),
        blockTables: tables, maxBlocksPerSeq: M, slotMapping: this.slots.subarray(0, this.T),
        logitIndices: this.logits.subarray(0, this.L),
      },
      copies: this.copies,
      seqs: this.rows.slice(0, B),
      logitRows: this.logitRows.subarray(0, this.L),
    };
  }

  /** New stride for the persistent block tables (rounded up to 16 blocks): every row is rewritten. */
  private relayout(need: number): void {
    this.stride = Math.ceil(need / 16) * 16;
    const size = this.config.maxSeqs * this.stride;
    if (this.tables.length < size) this.tables = new Int32Array(size);
    this.tables.fill(-1);
    this.rowSeq.fill(undefined);
    this.rowLen.fill(0);
  }
}
